// One chart: uPlot drawing layers (a run, or one run's piece of a stitched series) as a min/max band with
// the last value of each bucket as the line, plus HTML markers over the plot (fork steps, stage changes,
// the primary metric's best) so they stay crisp and can be inspected like any other element.
import uPlot from "uplot";
import { html, useEffect, useRef } from "../html.js";
import { alpha } from "../colors.js";
import { fmtDuration, fmtNumber } from "../format.js";
import { align } from "./align.js";
import { describe, floorIndex } from "./series.js";

const X_LABEL = { step: "step", time: "wall time", relative: "relative time" };

function axisValues(xMode) {
  // A log axis hands over null for the minor ticks it leaves unlabelled.
  if (xMode === "relative") return (_u, ticks) => ticks.map((t) => (t === null ? "" : fmtDuration(t)));
  if (xMode === "step") return (_u, ticks) => ticks.map((t) => (t === null ? "" : fmtNumber(t, 3)));
  return undefined; // uPlot formats a time scale itself
}

function buildOptions(props, width, state) {
  const { layers, xMode, logScale, height } = props;
  const series = [{ label: X_LABEL[xMode] }];
  const bands = [];
  layers.forEach((layer, i) => {
    const base = 1 + i * 3;
    series.push(
      { label: `${layer.label} min`, stroke: "transparent", width: 0, points: { show: false } },
      { label: `${layer.label} max`, stroke: "transparent", width: 0, points: { show: false } },
      {
        label: layer.label,
        stroke: layer.color,
        width: layer.dim ? 1.25 : 1.6,
        spanGaps: true,
        points: { show: layer.x.length <= 40, size: 5, fill: layer.color },
      },
    );
    bands.push({ series: [base + 1, base], fill: alpha(layer.color, layer.dim ? 0.12 : 0.2) });
  });
  return {
    width,
    height: height || 220,
    series,
    bands,
    legend: { show: false },
    padding: [10, 12, 0, 4],
    cursor: {
      drag: { x: true, y: false, setScale: false },
      points: { size: 6 },
      sync: props.syncKey ? { key: props.syncKey } : undefined,
    },
    scales: { x: { time: xMode === "time" }, y: logScale ? { distr: 3 } : {} },
    axes: [
      { values: axisValues(xMode), stroke: "#64748b", grid: { stroke: "#eef2f6" }, ticks: { stroke: "#e2e8f0" } },
      {
        values: (_u, ticks) => ticks.map((t) => (t === null ? "" : fmtNumber(t, 3))),
        stroke: "#64748b",
        grid: { stroke: "#eef2f6" },
        ticks: { stroke: "#e2e8f0" },
        size: 56,
      },
    ],
    hooks: {
      draw: [(u) => placeMarkers(u, state)],
      setSelect: [(u) => onSelect(u, state)],
      setCursor: [(u) => showTooltip(u, state)],
    },
  };
}

// Step -> x position: exact on a step axis; on a time axis, the x of the nearest bucket at or before it.
function stepToX(state, step) {
  if (state.props.xMode === "step") return step;
  const { steps, data } = state.aligned;
  const known = [];
  const xs = [];
  for (let i = 0; i < steps.length; i += 1) {
    if (steps[i] !== null) {
      known.push(steps[i]);
      xs.push(data[0][i]);
    }
  }
  if (!known.length) return null;
  return xs[floorIndex(known, step)];
}

// Markers are kept across redraws (only moved), so a redraw never swaps the elements under a reader.
function placeMarkers(u, state) {
  const chart = u.root.closest(".chart");
  if (chart) chart.dataset.yMax = String(u.scales.y.max); // the drawn y range: a spike must fit in it
  const layer = state.overlay;
  const height = u.over.clientHeight;
  const width = u.over.clientWidth;
  const kept = state.markerEls || (state.markerEls = new Map());
  const seen = new Set();
  for (const marker of state.props.markers || []) {
    const xv = stepToX(state, marker.step);
    if (xv === null) continue;
    const left = u.valToPos(xv, "x");
    if (!(left >= -1 && left <= width + 1)) continue;
    const top = marker.kind === "best" ? u.valToPos(marker.value, "y") : 0;
    if (!Number.isFinite(top)) continue;
    const id = `${marker.kind}:${marker.step}:${marker.label}`;
    seen.add(id);
    let el = kept.get(id);
    if (!el) {
      el = document.createElement("div");
      el.className = `mk mk-${marker.kind}`;
      el.dataset.step = String(marker.step);
      el.title = marker.label;
      if (marker.kind !== "best") {
        const tag = document.createElement("span");
        tag.className = "mk-tag";
        tag.textContent = marker.short || marker.label;
        el.appendChild(tag);
      }
      kept.set(id, el);
      layer.appendChild(el);
    }
    el.style.left = `${left}px`;
    if (marker.kind === "best") el.style.top = `${top}px`;
    else el.style.height = `${height}px`;
  }
  for (const [id, el] of kept) {
    if (!seen.has(id)) {
      el.remove();
      kept.delete(id);
    }
  }
}

function onSelect(u, state) {
  const sel = u.select;
  if (sel.width < 3 || !state.props.onZoom) return;
  const lo = u.posToVal(sel.left, "x");
  const hi = u.posToVal(sel.left + sel.width, "x");
  u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
  let start;
  let end;
  if (state.props.xMode === "step") {
    start = Math.ceil(lo);
    end = Math.floor(hi);
  } else {
    const { data, steps } = state.aligned;
    for (let i = 0; i < data[0].length; i += 1) {
      if (data[0][i] >= lo && data[0][i] <= hi && steps[i] !== null) {
        start = start === undefined ? steps[i] : Math.min(start, steps[i]);
        end = end === undefined ? steps[i] : Math.max(end, steps[i]);
      }
    }
  }
  if (start === undefined || end === undefined || end < start) return;
  performance.mark("runlane:zoom-start");
  state.props.onZoom(start, end);
}

function showTooltip(u, state) {
  const tip = state.tooltip;
  const idx = u.cursor.idx;
  if (idx === null || idx === undefined || u.cursor.left < 0) {
    tip.style.display = "none";
    return;
  }
  const { data, steps, perLayer } = state.aligned;
  const rows = [];
  state.props.layers.forEach((layer, i) => {
    const last = data[1 + i * 3 + 2][idx];
    const count = perLayer[i].count[idx];
    if (last === null || count === 0) return;
    const lo = data[1 + i * 3][idx];
    const hi = data[1 + i * 3 + 1][idx];
    const range = count > 1 && lo !== null && hi !== null ? ` <span class="tt-range">[${fmtNumber(lo)} … ${fmtNumber(hi)}]</span>` : "";
    rows.push(
      `<div class="tt-row"><i style="background:${layer.color}"></i><b>${fmtNumber(last, 5)}</b>${range} <span class="tt-run">${layer.source || layer.label}</span></div>`,
    );
  });
  if (!rows.length) {
    tip.style.display = "none";
    return;
  }
  const step = steps[idx];
  const x = data[0][idx];
  const xText = state.props.xMode === "time" ? new Date(x * 1000).toLocaleTimeString() : state.props.xMode === "relative" ? fmtDuration(x) : null;
  const head = state.props.noSteps ? xText : `step ${fmtNumber(step)}${xText ? ` · ${xText}` : ""}`;
  tip.innerHTML = `<div class="tt-head">${head}</div>${rows.join("")}`;
  tip.style.display = "block";
  const left = u.cursor.left;
  const flip = left > u.over.clientWidth / 2;
  tip.style.left = flip ? "" : `${left + 12}px`;
  tip.style.right = flip ? `${u.over.clientWidth - left + 12}px` : "";
  tip.style.top = `${Math.max(0, u.cursor.top - 10)}px`;
}

/**
 * Props: title, layers [{runId, label, source, color, dim, x, min, max, last, start, end, count}], markers
 * [{kind: fork|child|stage|best, step, value, label, short}], xMode, logScale, height, syncKey, onZoom(start,
 * end), onReset, zoomed, loading, error, empty message, toolbar (extra header content).
 */
export function MetricChart(props) {
  const host = useRef(null);
  const plot = useRef(null);
  const state = useRef({ props, aligned: null, overlay: null, tooltip: null, shape: "" });
  state.current.props = props;
  const { layers, xMode, logScale } = props;
  const info = describe(layers || []);
  const hasData = info.points > 0;

  useEffect(() => {
    if (!hasData || !host.current) return undefined;
    const s = state.current;
    s.aligned = align(layers, logScale);
    const shape = JSON.stringify([xMode, logScale, props.height, layers.map((l) => [l.color, l.label, l.dim, l.x.length <= 40])]);
    const width = Math.max(200, host.current.clientWidth);
    if (plot.current && s.shape === shape) {
      plot.current.setData(s.aligned.data);
    } else {
      if (plot.current) plot.current.destroy();
      host.current.textContent = "";
      plot.current = new uPlot(buildOptions(props, width, s), s.aligned.data, host.current);
      s.shape = shape;
      s.markerEls = new Map();
      s.overlay = document.createElement("div");
      s.overlay.className = "mk-layer";
      s.tooltip = document.createElement("div");
      s.tooltip.className = "tooltip";
      plot.current.over.append(s.overlay, s.tooltip);
      plot.current.over.addEventListener("dblclick", () => s.props.onReset && s.props.onReset());
      plot.current.over.addEventListener("mouseleave", () => (s.tooltip.style.display = "none"));
      placeMarkers(plot.current, s);
    }
    host.current.closest(".chart").dataset.state = "drawn";
    // Marks for benchmarks: only when new data was drawn (not a marker or style change).
    if (s.drawnLayers !== layers) {
      performance.mark("runlane:chart-drawn", { detail: props.title });
      if (props.zoomed) performance.mark("runlane:zoom-drawn", { detail: props.title });
      s.drawnLayers = layers;
    }
    return undefined;
  }, [layers, props.markers, xMode, logScale, hasData]);

  useEffect(() => {
    if (!host.current) return undefined;
    const observer = new ResizeObserver(() => {
      if (plot.current && host.current) {
        const width = Math.max(200, host.current.clientWidth);
        if (Math.abs(width - plot.current.width) > 2) plot.current.setSize({ width, height: props.height || 220 });
      }
    });
    observer.observe(host.current);
    return () => observer.disconnect();
  }, []);

  useEffect(
    () => () => {
      if (plot.current) plot.current.destroy();
      plot.current = null;
    },
    [],
  );

  const stateName = props.error ? "error" : props.loading && !hasData ? "loading" : hasData ? "drawing" : "empty";
  return html`
    <div
      class="chart"
      data-key=${props.title}
      data-state=${stateName === "drawing" && plot.current ? "drawn" : stateName}
      data-points=${info.points}
      data-first-step=${hasData ? info.first : ""}
      data-last-step=${hasData ? info.last : ""}
      data-min=${hasData ? info.min : ""}
      data-max=${hasData ? info.max : ""}
      data-runs=${info.runs.join(",")}
      data-layers=${info.spans.join(",")}
      data-forks=${(props.markers || []).filter((m) => m.kind === "fork").map((m) => m.step).join(",")}
    >
      <div class="chart-head">
        <span class="chart-title" title=${props.title}>${props.title}</span>
        ${props.loading && hasData ? html`<span class="spinner" title="loading"></span>` : null}
        ${props.legend && layers && layers.length > 1
          ? html`<span class="chart-legend">${[...new Map(layers.map((l) => [l.source || l.label, l.color])).entries()].map(([name, color]) => html`<span><i class="swatch" style=${`background:${color}`}></i>${name}</span>`)}</span>`
          : null}
        ${props.zoomed ? html`<button class="btn-link zoom-reset" onClick=${props.onReset}>reset zoom</button>` : null}
        ${props.toolbar}
      </div>
      ${props.error
        ? html`<div class="chart-msg error">${props.error}</div>`
        : !hasData
          ? html`<div class="chart-msg">${props.loading ? "loading…" : props.empty || "no points"}</div>`
          : null}
      <div class="chart-plot" ref=${host} style=${hasData ? "" : "display:none"}></div>
    </div>
  `;
}
