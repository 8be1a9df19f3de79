// The compare view: the selected runs overlaid on one chart per metric, each with only its own points (no
// lineage stitching here, as in Pluto), a legend with their colours, and a config/summary diff.
import { api, runHref } from "../api.js";
import { colorAt } from "../colors.js";
import { html, useMemo, useState } from "../html.js";
import { useFetch } from "../hooks.js";
import { navigate, withQuery } from "../router.js";
import { flatten, fmtValue } from "../format.js";
import { ChartToolbar, chartSettings } from "../chart/settings.js";
import { MetricChart } from "../chart/metric-chart.js";
import { bucketColumns, ema } from "../chart/series.js";
import { BUCKETS } from "../chart/use-buckets.js";
import { StatusBadge } from "../components/status.js";
import { Empty, ErrorBox, Loading } from "../components/message.js";
import { groupKeys } from "./run-charts.js";

function CompareChart({ runs, metricKey, settings }) {
  const [range, setRange] = useState(null);
  const having = runs.filter((run) => run.metrics[metricKey]);
  const { data, error, loading } = useFetch(
    (signal) =>
      Promise.all(
        having.map((run) =>
          api.history(run.id, { key: metricKey, buckets: BUCKETS, stitched: "false", start: range ? range[0] : undefined, end: range ? range[1] : undefined, x: settings.xMode === "step" ? undefined : "time" }, { signal }),
        ),
      ),
    [having.map((r) => r.id).join(","), metricKey, range, settings.xMode],
  );
  const layers = useMemo(() => {
    if (!data) return [];
    return data.map((answer, i) => {
      const run = having[i];
      const cols = bucketColumns(answer.buckets, settings.xMode);
      cols.last = ema(cols.last, settings.smoothing);
      return { ...cols, runId: run.id, label: run.display_id, source: `${run.display_id}${run.name ? ` ${run.name}` : ""}`, color: colorAt(runs.indexOf(run)) };
    });
  }, [data, settings.smoothing]);
  return html`<${MetricChart} title=${metricKey} legend=${true} layers=${layers} markers=${[]} xMode=${settings.xMode} logScale=${settings.logScale}
    loading=${loading} error=${error && error.message} zoomed=${range !== null} onZoom=${(a, b) => setRange([a, b])} onReset=${() => setRange(null)} syncKey="compare" />`;
}

function DiffTable({ runs }) {
  const [onlyDiff, setOnlyDiff] = useState(true);
  const rows = useMemo(() => {
    const keys = new Map();
    runs.forEach((run) => {
      for (const [k, v] of flatten(run.config)) keys.set(`config.${k}`, (keys.get(`config.${k}`) || new Map()).set(run.id, v));
      for (const [k, v] of flatten(run.summary)) keys.set(`summary.${k}`, (keys.get(`summary.${k}`) || new Map()).set(run.id, v));
    });
    return [...keys.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([key, values]) => {
      const shown = runs.map((run) => (values.has(run.id) ? fmtValue(values.get(run.id)) : undefined));
      return { key, shown, differs: new Set(shown.map(String)).size > 1 };
    });
  }, [runs]);
  const visible = onlyDiff ? rows.filter((row) => row.differs) : rows;
  return html`<section class="card diff" data-section="diff">
    <div class="card-head"><h3>Config and summary</h3>
      <span class="muted">${rows.filter((r) => r.differs).length} of ${rows.length} fields differ</span>
      <div class="grow"></div>
      <label class="tb-item"><input type="checkbox" name="only-diff" checked=${onlyDiff} onChange=${(e) => setOnlyDiff(e.target.checked)} /> only differences</label>
    </div>
    <div class="table-wrap"><table class="diff-table">
      <thead><tr><th>field</th>${runs.map((run, i) => html`<th><i class="swatch" style=${`background:${colorAt(i)}`}></i>${run.display_id}</th>`)}</tr></thead>
      <tbody>${visible.map(
        (row) => html`<tr class=${row.differs ? "differs" : ""} data-field=${row.key}><th>${row.key}</th>${row.shown.map((v) => html`<td class=${v === undefined ? "muted" : ""}>${v === undefined ? "—" : v}</td>`)}</tr>`,
      )}</tbody>
    </table></div>
  </section>`;
}

export function CompareView({ query }) {
  const refs = (query.get("runs") || "").split(",").map((r) => r.trim()).filter(Boolean);
  const settings = chartSettings(query);
  const { data: runs, error } = useFetch((signal) => Promise.all(refs.map((ref) => api.run(ref, { signal }))), [refs.join(",")]);
  if (refs.length === 0) return html`<${Empty} title="Nothing to compare">Select runs in a <a href="/runs">runs table</a> and press Compare.</${Empty}>`;
  if (error) return html`<${ErrorBox} error=${error} what="a run to compare" />`;
  if (!runs) return html`<${Loading} what="runs" />`;
  const keys = [...new Set(runs.flatMap((run) => Object.keys(run.metrics)))].filter((k) => !k.startsWith("sys/"));
  const remove = (run) => navigate(withQuery({ runs: runs.filter((r) => r.id !== run.id).map((r) => r.display_id).join(",") }));
  return html`<div class="page compare-page">
    <div class="page-head"><h1>Compare</h1><span class="muted">${runs.length} runs · each with only its own points</span></div>
    <div class="legend card" data-section="legend">
      ${runs.map(
        (run, i) => html`<span class="legend-item" data-run=${run.display_id}>
          <i class="swatch" style=${`background:${colorAt(i)}`}></i><a href=${runHref(run, "charts")} class="mono">${run.display_id}</a>
          <span>${run.name || ""}</span><${StatusBadge} run=${run} />
          ${runs.length > 1 ? html`<button class="btn-link" title="remove from the comparison" onClick=${() => remove(run)}>✕</button>` : null}
        </span>`,
      )}
    </div>
    <${ChartToolbar} settings=${settings} showInherited=${false} />
    ${groupKeys(keys).map(
      ([group, members]) => html`<section class="chart-group" data-group=${group}>
        <h3 class="group-head">${group}<span class="count">${members.length}</span></h3>
        <div class="chart-grid">${members.map((key) => html`<${CompareChart} key=${key} runs=${runs} metricKey=${key} settings=${settings} />`)}</div>
      </section>`,
    )}
    <${DiffTable} runs=${runs} />
  </div>`;
}
