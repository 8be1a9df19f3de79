// The run's text log: every line loaded in pages, drawn as a virtual list (only the rows in view exist in
// the DOM, so 100,000 lines scroll like 100), searched and filtered by stream on the server, tailed live.
import { api } from "../api.js";
import { ansiToNodes } from "../ansi.js";
import { html, useEffect, useLayoutEffect, useRef, useState } from "../html.js";
import { useDebounced, usePoll } from "../hooks.js";
import { navigate, withQuery } from "../router.js";
import { fmtNumber, fmtTime } from "../format.js";

const ROW = 18;
const PAGE = 5000;
const STREAMS = ["stdout", "stderr", "log"];

function Highlight({ text, term }) {
  if (!term || text.includes("\x1b")) return ansiToNodes(text);
  const lower = text.toLowerCase();
  const needle = term.toLowerCase();
  const out = [];
  let at = 0;
  for (let i = lower.indexOf(needle); i >= 0; i = lower.indexOf(needle, at)) {
    out.push(text.slice(at, i), html`<mark>${text.slice(i, i + needle.length)}</mark>`);
    at = i + needle.length;
  }
  out.push(text.slice(at));
  return out;
}

export function LogsTab({ run, query }) {
  const search = query.get("q") || "";
  const streams = query.getAll("stream");
  const [text, setText] = useState(search);
  const typed = useDebounced(text, 300);
  const [lines, setLines] = useState([]);
  const [done, setDone] = useState(false);
  const [error, setError] = useState(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [height, setHeight] = useState(600);
  const [follow, setFollow] = useState(run.status === "running");
  const box = useRef(null);
  const last = useRef(null);
  const filterKey = JSON.stringify([run.id, search, streams]);
  const params = () => ({ search: search || undefined, stream: streams.length ? streams : undefined });

  useEffect(() => {
    if (typed !== search) navigate(withQuery({ q: typed }), { replace: true });
  }, [typed]);

  useEffect(() => {
    // Load everything there is, page by page; the list is usable from the first page on.
    const controller = new AbortController();
    setLines([]);
    setDone(false);
    setError(null);
    last.current = null;
    (async () => {
      let after;
      for (;;) {
        const answer = await api.logs(run.id, { ...params(), after, limit: PAGE }, { signal: controller.signal });
        const items = answer.items;
        if (items.length) {
          last.current = items[items.length - 1].id;
          setLines((prev) => prev.concat(items));
        }
        if (items.length < PAGE) break;
        after = last.current;
      }
      setDone(true);
    })().catch((err) => err.name !== "AbortError" && setError(err));
    return () => controller.abort();
  }, [filterKey]);

  usePoll(
    async () => {
      const answer = await api.logs(run.id, { ...params(), after: last.current ?? undefined, limit: PAGE });
      if (answer.items.length) {
        last.current = answer.items[answer.items.length - 1].id;
        setLines((prev) => prev.concat(answer.items));
      }
    },
    1000,
    done && run.status === "running",
  );

  useLayoutEffect(() => {
    if (follow && box.current) box.current.scrollTop = box.current.scrollHeight;
  }, [lines.length, follow]);

  useEffect(() => {
    const measure = () => box.current && setHeight(box.current.clientHeight);
    measure();
    window.addEventListener("resize", measure);
    return () => window.removeEventListener("resize", measure);
  }, []);

  const first = Math.max(0, Math.floor(scrollTop / ROW) - 30);
  const count = Math.ceil(height / ROW) + 60;
  const visible = lines.slice(first, first + count);
  const toggleStream = (stream) => {
    // No stream parameter means every stream; a click turns one off or back on (never the last one off).
    const shown = streams.length ? streams : STREAMS;
    const next = shown.includes(stream) ? shown.filter((s) => s !== stream) : [...shown, stream];
    if (next.length === 0) return;
    navigate(withQuery({ stream: next.length === STREAMS.length ? [] : STREAMS.filter((s) => next.includes(s)) }));
  };
  const onScroll = (e) => {
    const el = e.currentTarget;
    setScrollTop(el.scrollTop);
    const atBottom = el.scrollHeight - el.scrollTop - el.clientHeight < ROW * 2;
    if (follow !== atBottom && run.status === "running") setFollow(atBottom);
  };

  return html`<div class="logs-tab">
    <div class="toolbar">
      <input class="input search" type="search" name="log-search" placeholder="Search the log" value=${text} onInput=${(e) => setText(e.target.value)} />
      <div class="chips" role="group" aria-label="streams">
        ${STREAMS.map((s) => html`<button class=${`chip stream-${s}${streams.length === 0 || streams.includes(s) ? " on" : ""}`} data-stream=${s} onClick=${() => toggleStream(s)}>${s}</button>`)}
      </div>
      ${run.status === "running"
        ? html`<label class="tb-item"><input type="checkbox" name="follow" checked=${follow} onChange=${(e) => setFollow(e.target.checked)} /> follow <span class="live-dot"></span></label>`
        : null}
      <div class="grow"></div>
      <span class="muted" data-lines=${lines.length}>${fmtNumber(lines.length)} ${lines.length === 1 ? "line" : "lines"}${done ? "" : " · loading…"}${search ? ` matching “${search}”` : ""}</span>
    </div>
    ${error ? html`<div class="msg msg-error">${error.message}</div>` : null}
    <div class="log-box card" ref=${box} onScroll=${onScroll}>
      ${done && lines.length === 0 ? html`<div class="muted pad">${search || streams.length ? "No line matches." : "This run has no log lines."}</div>` : null}
      <div class="log-spacer" style=${`height:${lines.length * ROW}px`}>
        <div class="log-rows" style=${`transform:translateY(${first * ROW}px)`}>
          ${visible.map(
            (line, i) => html`<div class=${`log-line s-${line.stream}`} key=${line.id} data-id=${line.id}>
              <span class="ln">${first + i + 1}</span><span class="lt" title=${fmtTime(line.time)}>${fmtTime(line.time).slice(11)}</span><span class="ls">${line.stream}</span><span class="lx"><${Highlight} text=${line.text} term=${search} /></span>
            </div>`,
          )}
        </div>
      </div>
    </div>
  </div>`;
}
