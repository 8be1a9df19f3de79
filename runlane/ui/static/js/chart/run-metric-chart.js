// A chart of one metric of one run on the run page: stitched through its fork ancestors unless the
// "show inherited datapoints" toggle is off, fork steps dashed, stage changes and the best step marked.
import { api } from "../api.js";
import { INHERITED, PALETTE } from "../colors.js";
import { html, useEffect, useMemo, useState } from "../html.js";
import { fmtNumber } from "../format.js";
import { MetricChart } from "./metric-chart.js";
import { bucketColumns, ema, splitByRun, stageBoundaries } from "./series.js";
import { useBuckets } from "./use-buckets.js";

// Stage labels come with raw points only; a series this short is read raw once to find where they change.
const STAGE_SCAN_LIMIT = 20000;

function useStages(ref, key, stitched, summary, ready) {
  const [stages, setStages] = useState([]);
  // Read once the chart is drawn, so the scan never delays the buckets every chart waits for.
  const small = ready && summary && summary.count <= STAGE_SCAN_LIMIT;
  useEffect(() => {
    if (!small) return undefined;
    const controller = new AbortController();
    api.history(ref, { key, stitched: stitched ? "true" : "false" }, { signal: controller.signal }).then(
      (history) => setStages(stageBoundaries(history)),
      () => {},
    );
    return () => controller.abort();
  }, [ref, key, stitched, small]);
  return small ? stages : [];
}

export function RunMetricChart({ run, lineage, metricKey, settings, syncKey, height }) {
  const [range, setRange] = useState(null);
  const stitched = settings.inherited && run.fork_run_id !== null;
  const summary = run.metrics[metricKey];
  const { buckets, loading, error } = useBuckets({
    ref: run.id,
    key: metricKey,
    stitched,
    range,
    xMode: settings.xMode,
    lastStep: summary ? summary.last_step : null,
  });
  // A key only ancestors logged has no summary of this run's own: size the stage scan by theirs.
  const sized = summary || (stitched && lineage ? lineage.ancestors.map((a) => a.metrics && a.metrics[metricKey]).find(Boolean) : null);
  const stages = useStages(run.id, metricKey, stitched, sized, !loading && buckets.length > 0);
  useEffect(() => setRange(null), [stitched, settings.xMode]);

  const names = useMemo(() => {
    const map = new Map();
    if (lineage) for (const r of [...lineage.ancestors, lineage.run, ...lineage.children]) map.set(r.id, r.display_id);
    map.set(run.id, run.display_id);
    return map;
  }, [lineage, run]);

  const layers = useMemo(() => {
    const cols = bucketColumns(buckets, settings.xMode);
    cols.last = ema(cols.last, settings.smoothing);
    return splitByRun(cols).map((layer) => {
      const own = layer.runId === run.id;
      const label = names.get(layer.runId) || `#${layer.runId}`;
      return { ...layer, label, source: own ? label : `${label} (inherited)`, color: own ? PALETTE[0] : INHERITED, dim: !own };
    });
  }, [buckets, settings.xMode, settings.smoothing, names]);

  const markers = useMemo(() => {
    const out = [];
    if (lineage && stitched) {
      const chain = [...lineage.ancestors, lineage.run];
      for (let i = 1; i < chain.length; i += 1) {
        const r = chain[i];
        out.push({ kind: "fork", step: r.fork_step, label: `${r.display_id} forked from ${chain[i - 1].display_id} at step ${r.fork_step}`, short: `fork ${r.display_id}` });
      }
    }
    if (lineage) {
      for (const child of lineage.children) {
        out.push({ kind: "child", step: child.fork_step, label: `${child.display_id} forks from here at step ${child.fork_step}`, short: `↳ ${child.display_id}` });
      }
    }
    for (const stage of stages) out.push({ kind: "stage", step: stage.step, label: `stage ${stage.stage} from step ${stage.step}`, short: stage.stage });
    if (run.primary_metric === metricKey && run.best_step !== null && Number.isFinite(run.best_value)) {
      out.push({ kind: "best", step: run.best_step, value: run.best_value, label: `best ${fmtNumber(run.best_value, 5)} at step ${run.best_step} (${run.primary_mode})` });
    }
    return out;
  }, [lineage, stitched, stages, run.best_step, run.best_value]);

  return html`<${MetricChart}
    title=${metricKey}
    legend=${true}
    layers=${layers}
    markers=${markers}
    xMode=${settings.xMode}
    logScale=${settings.logScale}
    height=${height}
    syncKey=${syncKey}
    loading=${loading}
    error=${error}
    zoomed=${range !== null}
    onZoom=${(start, end) => setRange([start, end])}
    onReset=${() => setRange(null)}
  />`;
}
