// The runs table: one server page at a time (sorted, filtered and searched by the server, so 10,000 or
// 100,000 runs cost the same), extra columns from config and summary, selection for compare, live rows.
import { api, runHref } from "../api.js";
import { html, useEffect, useMemo, useRef, useState } from "../html.js";
import { useDebounced, usePoll } from "../hooks.js";
import { navigate, withQuery } from "../router.js";
import { flatten, fmtAgo, fmtDuration, fmtNumber, fmtTime, fmtValue, getPath, runDuration } from "../format.js";
import { StatusBadge } from "../components/status.js";
import { RunRef, rememberRuns } from "../components/run-ref.js";
import { Tags } from "../components/tags.js";
import { ColumnPicker } from "../components/column-picker.js";
import { ErrorBox, Loading } from "../components/message.js";

export const PAGE_SIZE = 100;
const STATUSES = ["running", "finished", "failed", "killed", "scheduled"];

function readQuery(query) {
  return {
    project: query.get("project") || "",
    sort: query.get("sort") || "created_at",
    descending: query.get("asc") !== "1",
    statuses: query.getAll("status"),
    tags: query.getAll("tag"),
    search: query.get("q") || "",
    cols: (query.get("cols") || "").split(",").filter(Boolean),
    cursor: query.get("cursor") || "",
    page: Number(query.get("page") || 1),
  };
}

function SortHeader({ label, sortKey, state, className }) {
  const active = state.sort === sortKey;
  const next = active ? { asc: state.descending ? "1" : null } : { sort: sortKey, asc: sortKey === "name" || sortKey === "display_id" ? "1" : null };
  const href = withQuery({ ...next, sort: sortKey === "created_at" ? null : sortKey, cursor: null, page: null });
  return html`<th class=${`sortable ${className || ""}${active ? " sorted" : ""}`} data-sort=${sortKey} aria-sort=${active ? (state.descending ? "descending" : "ascending") : "none"}>
    <a href=${href}>${label}<span class="sort-arrow">${active ? (state.descending ? "↓" : "↑") : ""}</span></a>
  </th>`;
}

function Filters({ state, total }) {
  const [text, setText] = useState(state.search);
  const typed = useDebounced(text, 250);
  useEffect(() => setText(state.search), [state.search]);
  useEffect(() => {
    if (typed !== state.search) navigate(withQuery({ q: typed, cursor: null, page: null }), { replace: true });
  }, [typed]);
  const [tag, setTag] = useState("");
  const toggleStatus = (status) => {
    const next = state.statuses.includes(status) ? state.statuses.filter((s) => s !== status) : [...state.statuses, status];
    navigate(withQuery({ status: next, cursor: null, page: null }));
  };
  const addTag = (event) => {
    event.preventDefault();
    const value = tag.trim();
    if (value && !state.tags.includes(value)) navigate(withQuery({ tag: [...state.tags, value], cursor: null, page: null }));
    setTag("");
  };
  return html`<div class="toolbar filters">
    <input class="input search" type="search" name="search" placeholder="Search id, name, alias, notes" value=${text} onInput=${(e) => setText(e.target.value)} />
    <div class="chips" role="group" aria-label="status">
      ${STATUSES.map((status) => html`<button class=${`chip chip-${status}${state.statuses.includes(status) ? " on" : ""}`} data-status=${status} onClick=${() => toggleStatus(status)}>${status}</button>`)}
    </div>
    <form class="tag-form" onSubmit=${addTag}>
      <input class="input input-sm" name="tag" placeholder="+ tag filter" value=${tag} onInput=${(e) => setTag(e.target.value)} />
    </form>
    ${state.tags.map((t) => html`<button class="tag on" title="remove this filter" onClick=${() => navigate(withQuery({ tag: state.tags.filter((x) => x !== t), cursor: null, page: null }))}>${t} ✕</button>`)}
    ${state.statuses.length || state.tags.length || state.search
      ? html`<a class="btn-link" href=${withQuery({ status: null, tag: null, q: null, cursor: null, page: null })}>clear filters</a>`
      : null}
    <div class="grow"></div>
    <span class="muted total" data-total=${total}>${total === undefined ? "" : `${fmtNumber(total)} ${total === 1 ? "run" : "runs"}`}</span>
  </div>`;
}

function BestCell({ run }) {
  if (!run.primary_metric) return html`<td class="num muted">—</td>`;
  return html`<td class="num best" title=${`${run.primary_metric} (${run.primary_mode}) at step ${run.best_step}`}>
    ${run.best_value === null ? "—" : fmtNumber(run.best_value, 4)}<span class="best-key">${run.primary_metric}</span>
  </td>`;
}

export function RunsView({ query }) {
  const state = readQuery(query);
  const [page, setPage] = useState(null);
  const [error, setError] = useState(null);
  const [selected, setSelected] = useState(() => new Map());
  const cursors = useRef([]); // cursors of the pages before this one, for "previous"
  const request = useMemo(
    () => ({
      project: state.project || undefined,
      sort: state.sort,
      descending: state.descending ? "true" : "false",
      status: state.statuses,
      tag: state.tags,
      search: state.search || undefined,
      limit: PAGE_SIZE,
      cursor: state.cursor || undefined,
    }),
    [query.toString()],
  );
  const key = JSON.stringify(request);

  const load = async (signal) => {
    const answer = await api.runs(request, { signal });
    rememberRuns(answer.items);
    setPage({ ...answer, key });
    setError(null);
  };
  useEffect(() => {
    const controller = new AbortController();
    load(controller.signal).catch((err) => err.name !== "AbortError" && setError(err));
    return () => controller.abort();
  }, [key]);
  const live = page && page.items.some((run) => run.status === "running" || run.status === "scheduled");
  usePoll(() => load(), 3000, Boolean(live));

  const available = useMemo(() => {
    const keys = new Set();
    for (const run of page ? page.items : []) {
      for (const [k] of flatten(run.config)) keys.add(`config.${k}`);
      for (const [k] of flatten(run.summary)) keys.add(`summary.${k}`);
    }
    for (const c of state.cols) keys.add(c);
    return [...keys].sort();
  }, [page]);

  if (error) return html`<${ErrorBox} error=${error} what="the runs" />`;
  const runs = page ? page.items : [];
  const offset = (state.page - 1) * PAGE_SIZE;
  const toggle = (run) => {
    const next = new Map(selected);
    if (next.has(run.id)) next.delete(run.id);
    else next.set(run.id, run.display_id);
    setSelected(next);
  };
  const allOnPage = runs.length > 0 && runs.every((run) => selected.has(run.id));
  const selectPage = () => {
    const next = new Map(selected);
    for (const run of runs) {
      if (allOnPage) next.delete(run.id);
      else next.set(run.id, run.display_id);
    }
    setSelected(next);
  };
  const goNext = () => {
    cursors.current.push(state.cursor);
    navigate(withQuery({ cursor: page.next, page: state.page + 1 }));
  };
  const goPrev = () => {
    const prev = cursors.current.pop();
    navigate(withQuery({ cursor: prev || null, page: state.page > 2 ? state.page - 1 : null }));
  };
  const compareHref = `/compare?runs=${[...selected.values()].map(encodeURIComponent).join(",")}`;

  return html`<div class="page runs-page">
    <div class="page-head">
      <h1>${state.project || "All runs"}</h1>
      ${state.project ? html`<span class="muted">project</span>` : null}
      <div class="grow"></div>
      ${selected.size
        ? html`<span class="muted">${selected.size} selected</span>
            <button class="btn-link" onClick=${() => setSelected(new Map())}>clear</button>
            <a class=${`btn primary${selected.size < 2 ? " disabled" : ""}`} href=${selected.size >= 1 ? compareHref : undefined} data-testid="compare">Compare ${selected.size}</a>`
        : html`<span class="muted">select runs to compare</span>`}
      <${ColumnPicker} available=${available} chosen=${state.cols} onChange=${(cols) => navigate(withQuery({ cols: cols.join(",") }), { replace: true })} />
    </div>
    <${Filters} state=${state} total=${page ? page.total : undefined} />
    <div class="card table-wrap">
      <table class="runs-table" data-loading=${page && page.key !== key ? "1" : "0"}>
        <thead><tr>
          <th class="sel"><input type="checkbox" aria-label="select page" checked=${allOnPage} onChange=${selectPage} /></th>
          <${SortHeader} label="status" sortKey="status" state=${state} />
          <${SortHeader} label="id" sortKey="display_id" state=${state} />
          <${SortHeader} label="name" sortKey="name" state=${state} />
          <th>tags</th>
          <${SortHeader} label="best" sortKey="best" state=${state} className="num" />
          <${SortHeader} label="duration" sortKey="duration" state=${state} className="num" />
          <${SortHeader} label="created" sortKey="created_at" state=${state} />
          <th>forked from</th>
          ${state.cols.map((col) => html`<${SortHeader} label=${col} sortKey=${col} state=${state} className="num extra" />`)}
        </tr></thead>
        <tbody>
          ${!page ? html`<tr><td colspan=${9 + state.cols.length}><${Loading} what="runs" /></td></tr>` : null}
          ${page && runs.length === 0
            ? html`<tr><td colspan=${9 + state.cols.length} class="empty-row">No runs match${state.search || state.statuses.length || state.tags.length ? " these filters" : " yet"}.</td></tr>`
            : null}
          ${runs.map(
            (run) => html`<tr key=${run.id} data-run=${run.display_id} class=${selected.has(run.id) ? "selected" : ""}>
              <td class="sel"><input type="checkbox" aria-label=${`select ${run.display_id}`} checked=${selected.has(run.id)} onChange=${() => toggle(run)} /></td>
              <td><${StatusBadge} run=${run} /></td>
              <td class="mono"><a href=${runHref(run)}>${run.display_id}</a></td>
              <td class="name-cell"><a href=${runHref(run)}>${run.name || html`<span class="muted">unnamed</span>`}</a>${run.alias ? html`<span class="alias">${run.alias}</span>` : null}</td>
              <td><${Tags} tags=${run.tags} href=${(t) => withQuery({ tag: [...new Set([...state.tags, t])], cursor: null, page: null })} /></td>
              <${BestCell} run=${run} />
              <td class="num">${fmtDuration(runDuration(run))}</td>
              <td title=${fmtTime(run.created_at)}>${fmtAgo(run.created_at)}</td>
              <td>${run.fork_run_id !== null ? html`<${RunRef} id=${run.fork_run_id} suffix=${` @ ${run.fork_step}`} />` : null}</td>
              ${state.cols.map((col) => {
                const source = col.startsWith("config.") ? run.config : run.summary;
                const value = getPath(source, col.slice(col.indexOf(".") + 1));
                return html`<td class=${`extra${typeof value === "number" ? " num" : ""}`}>${value === undefined ? "" : fmtValue(value)}</td>`;
              })}
            </tr>`,
          )}
        </tbody>
      </table>
    </div>
    ${page && page.total > 0
      ? html`<div class="pager">
          <span class="muted">${fmtNumber(offset + 1)}–${fmtNumber(offset + runs.length)} of ${fmtNumber(page.total)}</span>
          <div class="grow"></div>
          <button class="btn" disabled=${state.page <= 1 && !state.cursor} onClick=${goPrev}>← Previous</button>
          <span class="muted">page ${state.page} of ${Math.max(1, Math.ceil(page.total / PAGE_SIZE))}</span>
          <button class="btn" disabled=${!page.next} onClick=${goNext}>Next →</button>
        </div>`
      : null}
  </div>`;
}
