// The run page: a header with who/what/when, and tabs (each its own URL: /run/CR-1/charts).
import { api, runHref } from "../api.js";
import { html, useEffect, useState } from "../html.js";
import { usePoll } from "../hooks.js";
import { fmtDuration, fmtTime, runDuration } from "../format.js";
import { StatusBadge } from "../components/status.js";
import { RunRef, rememberRuns } from "../components/run-ref.js";
import { Tags } from "../components/tags.js";
import { ErrorBox, Loading } from "../components/message.js";
import { OverviewTab } from "./run-overview.js";
import { ChartsTab } from "./run-charts.js";
import { LogsTab } from "./run-logs.js";
import { ImagesTab } from "./run-images.js";
import { SystemTab } from "./run-system.js";
import { FileTab } from "./run-files.js";

export const TABS = ["overview", "charts", "logs", "images", "system", "environment", "code"];

function Header({ run }) {
  const hosts = [...new Set((run.writers || []).map((w) => w.host))];
  const owner = (run.writers || []).find((w) => w.owner);
  return html`<header class="run-head card">
    <div class="run-title">
      <h1><span class="mono run-id">${run.display_id}</span> ${run.name ? html`<span class="run-name">${run.name}</span>` : null}</h1>
      ${run.alias ? html`<span class="alias big">${run.alias}</span>` : null}
      <${StatusBadge} run=${run} withReason=${true} />
      <div class="grow"></div>
      <a class="btn" href=${`/lineage/${encodeURIComponent(run.display_id)}`}>Lineage</a>
      ${run.fork_run_id !== null ? html`<a class="btn" href=${`/compare?runs=${run.fork_run_id},${run.id}`}>Compare with parent</a>` : null}
    </div>
    <dl class="facts">
      <div><dt>project</dt><dd><a href=${`/runs?project=${encodeURIComponent(run.project)}`}>${run.project}</a></dd></div>
      <div><dt>uid</dt><dd class="mono small" data-field="uid">${run.uid}</dd></div>
      <div><dt>created</dt><dd>${fmtTime(run.created_at)}</dd></div>
      <div><dt>started</dt><dd>${fmtTime(run.started_at)}</dd></div>
      <div><dt>ended</dt><dd>${run.ended_at ? fmtTime(run.ended_at) : "—"}</dd></div>
      <div><dt>duration</dt><dd>${fmtDuration(runDuration(run))}</dd></div>
      <div><dt>host</dt><dd>${hosts.join(", ") || "—"}${owner ? html`<span class="muted"> pid ${owner.pid}</span>` : null}</dd></div>
      ${run.fork_run_id !== null
        ? html`<div><dt>forked from</dt><dd><${RunRef} id=${run.fork_run_id} suffix=${` at step ${run.fork_step}`} /></dd></div>`
        : null}
      ${run.primary_metric
        ? html`<div><dt>primary</dt><dd>${run.primary_metric} (${run.primary_mode})</dd></div>`
        : null}
    </dl>
    ${run.tags.length ? html`<div class="run-tags"><${Tags} tags=${run.tags} href=${(t) => `/runs?project=${encodeURIComponent(run.project)}&tag=${encodeURIComponent(t)}`} /></div>` : null}
    ${run.notes ? html`<p class="notes">${run.notes}</p>` : null}
  </header>`;
}

export function RunView({ params, query }) {
  const ref = decodeURIComponent(params.ref);
  const tab = TABS.includes(params.tab) ? params.tab : "overview";
  const [run, setRun] = useState(null);
  const [lineage, setLineage] = useState(null);
  const [error, setError] = useState(null);

  useEffect(() => {
    const controller = new AbortController();
    setRun(null);
    setError(null);
    setLineage(null);
    Promise.all([api.run(ref, { signal: controller.signal }), api.lineage(ref, { signal: controller.signal })]).then(
      ([info, lin]) => {
        rememberRuns([info, ...lin.ancestors, ...lin.children]);
        setRun(info);
        setLineage(lin);
        document.title = `${info.display_id}${info.name ? ` ${info.name}` : ""} · runlane`;
      },
      (err) => err.name !== "AbortError" && setError(err),
    );
    return () => controller.abort();
  }, [ref]);

  const live = run && (run.status === "running" || run.status === "scheduled");
  usePoll(
    async () => {
      const [info, lin] = await Promise.all([api.run(ref), api.lineage(ref)]);
      setRun(info);
      setLineage(lin);
    },
    2000,
    Boolean(live),
  );

  if (error) return html`<${ErrorBox} error=${error} what=${`Run ${ref}`} />`;
  if (!run || !lineage) return html`<${Loading} what=${`run ${ref}`} />`;
  const counts = {
    charts: Object.keys(run.metrics).filter((k) => !k.startsWith("sys/")).length,
  };
  const body = {
    overview: () => html`<${OverviewTab} run=${run} lineage=${lineage} />`,
    charts: () => html`<${ChartsTab} run=${run} lineage=${lineage} query=${query} />`,
    logs: () => html`<${LogsTab} run=${run} query=${query} />`,
    images: () => html`<${ImagesTab} run=${run} />`,
    system: () => html`<${SystemTab} run=${run} />`,
    environment: () => html`<${FileTab} run=${run} kind="environment" />`,
    code: () => html`<${FileTab} run=${run} kind="code" />`,
  }[tab];
  return html`<div class="page run-page" data-run=${run.display_id}>
    <${Header} run=${run} />
    <nav class="tabs" role="tablist">
      ${TABS.map(
        (name) => html`<a role="tab" class=${`tab${name === tab ? " active" : ""}`} aria-selected=${name === tab} href=${runHref(run, name === "overview" ? "" : name)} data-tab=${name}>
          ${name}${counts[name] ? html`<span class="count">${counts[name]}</span>` : null}
        </a>`,
      )}
    </nav>
    <div class="tab-body" data-tab=${tab} key=${tab}>${body()}</div>
  </div>`;
}
