// Every metric of the run as a chart, grouped by its prefix (train/, val/, ...); sys/* is the System tab.
import { html, useState } from "../html.js";
import { ChartToolbar, chartSettings } from "../chart/settings.js";
import { RunMetricChart } from "../chart/run-metric-chart.js";
import { Empty } from "../components/message.js";

export function groupKeys(keys) {
  const groups = new Map();
  for (const key of [...keys].sort()) {
    const slash = key.indexOf("/");
    const group = slash > 0 ? key.slice(0, slash) : "metrics";
    if (!groups.has(group)) groups.set(group, []);
    groups.get(group).push(key);
  }
  return [...groups.entries()].sort(([a], [b]) => (a === "metrics" ? -1 : b === "metrics" ? 1 : a.localeCompare(b)));
}

export function ChartsTab({ run, lineage, query }) {
  const settings = chartSettings(query);
  const [filter, setFilter] = useState("");
  const [collapsed, setCollapsed] = useState(() => new Set());
  // With inherited points shown, a key only an ancestor logged still has a (stitched) chart here.
  const owned = Object.keys(run.metrics);
  const inherited = settings.inherited ? lineage.ancestors.flatMap((a) => Object.keys(a.metrics || {})) : [];
  const keys = [...new Set([...owned, ...inherited])].filter((k) => !k.startsWith("sys/") && k.toLowerCase().includes(filter.toLowerCase()));
  const groups = groupKeys(keys);
  const toggle = (group) => {
    const next = new Set(collapsed);
    if (next.has(group)) next.delete(group);
    else next.add(group);
    setCollapsed(next);
  };
  return html`<div class="charts-tab">
    <${ChartToolbar} settings=${settings} showInherited=${run.fork_run_id !== null}>
      <input class="input input-sm" type="search" placeholder="filter metrics" value=${filter} onInput=${(e) => setFilter(e.target.value)} />
      <span class="muted hint">drag to zoom · double-click to reset</span>
    </${ChartToolbar}>
    ${groups.length === 0 ? html`<${Empty} title="No metrics">${filter ? "No metric matches the filter." : "This run has not logged any metric yet."}</${Empty}>` : null}
    ${groups.map(
      ([group, members]) => html`<section class="chart-group" data-group=${group}>
        <h3 class="group-head" onClick=${() => toggle(group)}><span class="caret">${collapsed.has(group) ? "▸" : "▾"}</span>${group}<span class="count">${members.length}</span></h3>
        ${collapsed.has(group)
          ? null
          : html`<div class="chart-grid">${members.map(
              (key) => html`<${RunMetricChart} key=${key} run=${run} lineage=${lineage} metricKey=${key} settings=${settings} syncKey=${`run-${run.id}`} />`,
            )}</div>`}
      </section>`,
    )}
  </div>`;
}
