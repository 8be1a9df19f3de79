// The Environment tab (the captured environment document) and the Code tab (the code snapshot: its
// metadata, its files and any file's text, and a download of the archive).
import { api } from "../api.js";
import { html, useEffect, useState } from "../html.js";
import { useFetch } from "../hooks.js";
import { decode } from "../api.js";
import { fmtNumber, fmtTime } from "../format.js";
import { KeyValues } from "../components/kv-table.js";
import { Empty, ErrorBox, Loading } from "../components/message.js";
import { listZip, readEntry } from "../zip.js";

async function loadFile(run, kind, signal) {
  try {
    return await api.file(run.id, kind, { signal });
  } catch (err) {
    if (err.status === 404) return null;
    throw err;
  }
}

function Environment({ file }) {
  const { data, error } = useFetch(async () => decode(await api.blobText(file.blob)), [file.blob]);
  if (error) return html`<${ErrorBox} error=${error} what="the environment" />`;
  if (!data) return html`<${Loading} what="environment" />`;
  const scalars = {};
  const sections = [];
  for (const [key, value] of Object.entries(data)) {
    if (value !== null && typeof value === "object" && !Array.isArray(value)) sections.push([key, value]);
    else scalars[key] = value;
  }
  return html`<div class="files-grid">
    ${Object.keys(scalars).length ? html`<${KeyValues} title="Environment" data=${scalars} />` : null}
    ${sections.map(([key, value]) => html`<${KeyValues} title=${key} data=${value} />`)}
  </div>`;
}

function Code({ file }) {
  const [archive, setArchive] = useState(null);
  const [open, setOpen] = useState(null);
  const [text, setText] = useState("");
  const [error, setError] = useState(null);
  useEffect(() => {
    setError(null);
    setArchive(null);
    api
      .blob(file.blob)
      .then(async (blob) => {
        const buffer = await blob.arrayBuffer();
        setArchive({ buffer, entries: listZip(buffer), url: URL.createObjectURL(blob) });
      })
      .catch((err) => setError(err));
  }, [file.blob]);
  const show = async (entry) => {
    setOpen(entry.name);
    const bytes = await readEntry(archive.buffer, entry);
    const decoded = new TextDecoder("utf-8", { fatal: false }).decode(bytes.slice(0, 2000000));
    setText(decoded.includes("\u0000") ? "(binary file)" : decoded);
  };
  return html`<div class="code-tab">
    <div class="files-grid">
      <${KeyValues} title="Snapshot" data=${{ ...file.meta, recorded: fmtTime(file.time) }} />
    </div>
    <div class="toolbar"><a class=${`btn${archive ? "" : " disabled"}`} href=${archive ? archive.url : undefined} download=${`code-${file.blob.slice(0, 12)}.zip`}>Download snapshot (.zip)</a>
      ${archive ? html`<span class="muted">${archive.entries.length} files</span>` : null}</div>
    ${error ? html`<div class="msg msg-error">${error.message}</div>` : null}
    ${archive
      ? html`<div class="code-view card">
          <ul class="file-list">${archive.entries.map(
            (entry) => html`<li class=${open === entry.name ? "active" : ""}><button class="btn-link" onClick=${() => show(entry)}>${entry.name}</button><span class="muted">${fmtNumber(entry.size)} B</span></li>`,
          )}</ul>
          <pre class="file-text">${open ? text : "Choose a file to read it."}</pre>
        </div>`
      : null}
  </div>`;
}

export function FileTab({ run, kind }) {
  const { data, error, loading } = useFetch((signal) => loadFile(run, kind, signal), [run.id, kind]);
  if (error) return html`<${ErrorBox} error=${error} what=${`the ${kind}`} />`;
  if (loading && data === undefined) return html`<${Loading} what=${kind} />`;
  if (!data) {
    return kind === "environment"
      ? html`<${Empty} title="No environment captured">runlane captures Python, packages, git state and hardware with <code>init(capture_env=True)</code>.</${Empty}>`
      : html`<${Empty} title="No code snapshot">Pass <code>init(snapshot_code=True)</code> to archive the workspace at run start.</${Empty}>`;
  }
  return kind === "environment" ? html`<${Environment} file=${data} />` : html`<${Code} file=${data} />`;
}
