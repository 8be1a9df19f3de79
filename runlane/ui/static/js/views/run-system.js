// System metrics (sys/cpu_percent, sys/gpu0/util_percent, ...) against time since the run started.
import { api } from "../api.js";
import { PALETTE } from "../colors.js";
import { html, useEffect, useRef, useState } from "../html.js";
import { usePoll } from "../hooks.js";
import { MetricChart } from "../chart/metric-chart.js";
import { Empty, Loading } from "../components/message.js";

const PAGE = 10000;

function toLayer(run, points, color) {
  const n = points.length;
  const layer = { runId: run.id, label: run.display_id, color, x: new Array(n), min: new Array(n), max: new Array(n), last: new Array(n), start: new Array(n), end: new Array(n), count: new Array(n).fill(1) };
  points.forEach(([time, value], i) => {
    layer.x[i] = time - run.started_at;
    layer.min[i] = layer.max[i] = layer.last[i] = value;
    layer.start[i] = layer.end[i] = i;
  });
  return layer;
}

export function SystemTab({ run }) {
  const [series, setSeries] = useState(null);
  const last = useRef(undefined);
  const add = (items) => {
    if (!items.length) return;
    last.current = items[items.length - 1].id;
    setSeries((prev) => {
      const next = new Map(prev || []);
      for (const s of items) {
        if (!next.has(s.key)) next.set(s.key, []);
        next.get(s.key).push([s.time, s.value]);
      }
      return next;
    });
  };
  useEffect(() => {
    const controller = new AbortController();
    (async () => {
      for (;;) {
        const answer = await api.system(run.id, { after: last.current, limit: PAGE }, { signal: controller.signal });
        add(answer.items);
        if (answer.items.length < PAGE) break;
      }
      setSeries((prev) => prev || new Map());
    })().catch(() => setSeries((prev) => prev || new Map()));
    return () => controller.abort();
  }, [run.id]);
  usePoll(async () => add((await api.system(run.id, { after: last.current, limit: PAGE })).items), 3000, run.status === "running" && series !== null);

  if (series === null) return html`<${Loading} what="system metrics" />`;
  if (series.size === 0) return html`<${Empty} title="No system metrics">runlane samples CPU, memory, disk, network and GPUs while a run's owner process runs (<code>init(system_metrics_interval=...)</code>).</${Empty}>`;
  const keys = [...series.keys()].sort();
  return html`<div class="chart-grid system-grid">${keys.map((key, i) => html`<${MetricChart} key=${key} title=${key} layers=${[toLayer(run, series.get(key), PALETTE[(i + 1) % PALETTE.length])]} markers=${[]} xMode="relative" logScale=${false} noSteps=${true} />`)}</div>`;
}
