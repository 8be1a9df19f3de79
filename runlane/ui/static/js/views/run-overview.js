// The run's overview: config, summary, per-metric aggregates and its place in the fork tree.
import { html } from "../html.js";
import { fmtNumber } from "../format.js";
import { KeyValues } from "../components/kv-table.js";
import { LineageTree } from "../components/lineage-tree.js";
import { chainTree } from "../lineage-data.js";

function MetricsTable({ run }) {
  const keys = Object.keys(run.metrics).sort();
  return html`<section class="card" data-section="metrics">
    <div class="card-head"><h3>Metrics</h3><span class="muted">${keys.length}</span></div>
    ${keys.length === 0
      ? html`<div class="muted pad">no metrics logged</div>`
      : html`<table class="kv-table metrics-table">
          <thead><tr><th>key</th><th class="num">last</th><th class="num">min</th><th class="num">max</th><th class="num">points</th><th class="num">steps</th></tr></thead>
          <tbody>${keys.map((key) => {
            const m = run.metrics[key];
            return html`<tr><th>${key}${run.primary_metric === key ? html` <span class="pill">primary</span>` : null}</th>
              <td class="num">${fmtNumber(m.last_value, 5)}</td><td class="num">${fmtNumber(m.min, 5)}</td><td class="num">${fmtNumber(m.max, 5)}</td>
              <td class="num">${fmtNumber(m.count)}</td><td class="num">${fmtNumber(m.first_step)}–${fmtNumber(m.last_step)}</td></tr>`;
          })}</tbody>
        </table>`}
  </section>`;
}

export function OverviewTab({ run, lineage }) {
  const tree = chainTree(lineage);
  const forked = lineage.ancestors.length > 0 || lineage.children.length > 0;
  return html`<div class="overview-grid">
    <div class="col">
      <${KeyValues} title="Config" data=${run.config} empty="no config" />
      <${KeyValues} title="Summary" data=${run.summary} empty="no summary yet" />
    </div>
    <div class="col">
      <section class="card" data-section="lineage">
        <div class="card-head"><h3>Lineage</h3>
          <span class="muted">${forked ? `${lineage.ancestors.length} ancestors · ${lineage.children.length} forks` : "not forked"}</span>
          <div class="grow"></div>
          <a class="btn-link" href=${`/lineage/${encodeURIComponent(run.display_id)}`}>whole tree →</a>
        </div>
        <${LineageTree} tree=${tree} current=${run.id} />
      </section>
      <${MetricsTable} run=${run} />
    </div>
  </div>`;
}
