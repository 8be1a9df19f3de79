// The lineage view: a run's whole fork tree, and each metric drawn as one continuous series through the
// tree, coloured by run (every run's own points, each fork starting from its parent's value at the fork).
import { api, runHref } from "../api.js";
import { colorAt } from "../colors.js";
import { html, useMemo, useState } from "../html.js";
import { useFetch } from "../hooks.js";
import { ChartToolbar, chartSettings } from "../chart/settings.js";
import { MetricChart } from "../chart/metric-chart.js";
import { bucketColumns, ema, floorIndex } from "../chart/series.js";
import { BUCKETS } from "../chart/use-buckets.js";
import { LineageTree } from "../components/lineage-tree.js";
import { ErrorBox, Loading } from "../components/message.js";
import { wholeTree } from "../lineage-data.js";
import { groupKeys } from "./run-charts.js";

function TreeChart({ tree, metricKey, settings, colorOf }) {
  const [range, setRange] = useState(null);
  const runs = tree.runs.filter((run) => run.metrics[metricKey]);
  const { data, error, loading } = useFetch(
    (signal) =>
      Promise.all(
        runs.map((run) =>
          api.history(run.id, { key: metricKey, buckets: BUCKETS, start: range ? range[0] : undefined, end: range ? range[1] : undefined, x: settings.xMode === "step" ? undefined : "time" }, { signal }),
        ),
      ),
    [runs.map((r) => r.id).join(","), metricKey, range, settings.xMode],
  );
  const layers = useMemo(() => {
    if (!data) return [];
    const byId = new Map();
    runs.forEach((run, i) => byId.set(run.id, bucketColumns(data[i].buckets, settings.xMode)));
    return runs.map((run) => {
      const cols = { ...byId.get(run.id) };
      const parent = run.fork_run_id !== null ? byId.get(run.fork_run_id) : null;
      if (parent && parent.end.length && cols.x.length) {
        // Start the fork's line at its parent's value at the fork step: one continuous series.
        const j = floorIndex(parent.end, run.fork_step);
        if (parent.end[j] <= run.fork_step) {
          for (const name of ["x", "min", "max", "last", "start", "end", "count", "run", "time"]) cols[name] = [parent[name][j], ...cols[name]];
          cols.min[0] = cols.max[0] = null;
          cols.count[0] = 0;
        }
      }
      cols.last = ema(cols.last, settings.smoothing);
      return { ...cols, runId: run.id, label: run.display_id, source: `${run.display_id}${run.name ? ` ${run.name}` : ""}`, color: colorOf(run.id) };
    });
  }, [data, settings.smoothing]);
  const markers = tree.runs
    .filter((run) => run.fork_run_id !== null && run.id !== tree.root.id)
    .map((run) => ({ kind: "fork", step: run.fork_step, label: `${run.display_id} forks at step ${run.fork_step}`, short: `fork ${run.display_id}` }));
  return html`<${MetricChart} title=${metricKey} legend=${true} layers=${layers} markers=${markers} xMode=${settings.xMode} logScale=${settings.logScale}
    loading=${loading} error=${error && error.message} zoomed=${range !== null} onZoom=${(a, b) => setRange([a, b])} onReset=${() => setRange(null)} syncKey="lineage" height=${260} />`;
}

export function LineageView({ params, query }) {
  const ref = decodeURIComponent(params.ref);
  const settings = chartSettings(query);
  const { data: tree, error } = useFetch((signal) => wholeTree(ref, signal), [ref]);
  if (error) return html`<${ErrorBox} error=${error} what=${`Run ${ref}`} />`;
  if (!tree) return html`<${Loading} what="lineage" />`;
  const index = new Map(tree.runs.map((run, i) => [run.id, i]));
  const colorOf = (id) => colorAt(index.get(id) || 0);
  const keys = [...new Set(tree.runs.flatMap((run) => Object.keys(run.metrics)))].filter((k) => !k.startsWith("sys/"));
  return html`<div class="page lineage-page">
    <div class="page-head">
      <h1>Lineage of <a href=${runHref(tree.root)} class="mono">${tree.root.display_id}</a></h1>
      <span class="muted">${tree.runs.length} runs${tree.truncated ? " (first 500)" : ""}</span>
      <div class="grow"></div>
      <a class="btn" href=${`/compare?runs=${tree.runs.map((r) => r.display_id).join(",")}`}>Compare them</a>
    </div>
    <section class="card" data-section="lineage"><${LineageTree} tree=${tree} current=${tree.run.id} colorOf=${colorOf} /></section>
    <${ChartToolbar} settings=${settings} showInherited=${false} />
    ${groupKeys(keys).map(
      ([group, members]) => html`<section class="chart-group" data-group=${group}>
        <h3 class="group-head">${group}<span class="count">${members.length}</span></h3>
        <div class="chart-grid wide">${members.map((key) => html`<${TreeChart} key=${key} tree=${tree} metricKey=${key} settings=${settings} colorOf=${colorOf} />`)}</div>
      </section>`,
    )}
  </div>`;
}
