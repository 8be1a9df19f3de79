// A fork tree as nested rows: each run links to its page, says where it forked, and the current run is marked.
import { html } from "../html.js";
import { runHref } from "../api.js";
import { StatusBadge } from "./status.js";

function Node({ run, childrenOf, current, colorOf, depth }) {
  const kids = childrenOf.get(run.id) || [];
  const here = current && run.id === current;
  return html`<li class=${`tree-node${here ? " current" : ""}`} data-run=${run.display_id}>
    <div class="tree-row">
      ${colorOf ? html`<i class="swatch" style=${`background:${colorOf(run.id)}`}></i>` : null}
      <a href=${runHref(run)} class="mono">${run.display_id}</a>
      <span class="tree-name">${run.name || run.alias || ""}</span>
      <${StatusBadge} run=${run} />
      ${run.fork_step !== null && run.fork_step !== undefined && depth > 0 ? html`<span class="muted fork-at">forked at step ${run.fork_step}</span>` : null}
      ${here ? html`<span class="pill">this run</span>` : null}
    </div>
    ${kids.length ? html`<ul>${kids.map((kid) => html`<${Node} run=${kid} childrenOf=${childrenOf} current=${current} colorOf=${colorOf} depth=${depth + 1} />`)}</ul>` : null}
  </li>`;
}

export function LineageTree({ tree, current, colorOf }) {
  return html`<ul class="tree lineage-tree"><${Node} run=${tree.root} childrenOf=${tree.childrenOf} current=${current} colorOf=${colorOf} depth=${0} /></ul>`;
}
