// A config or summary as dotted paths and values, with a filter box for long ones.
import { html, useState } from "../html.js";
import { flatten, fmtTime, fmtValue } from "../format.js";

// A field named like a timestamp holding seconds since the epoch reads as a date.
const display = (key, value) =>
  typeof value === "number" && /(_at|_time|^time)$/.test(key) && value > 1e9 && value < 1e11 ? fmtTime(value) : fmtValue(value);

export function KeyValues({ data, title, empty }) {
  const [filter, setFilter] = useState("");
  const rows = flatten(data || {});
  const shown = filter ? rows.filter(([k, v]) => `${k} ${fmtValue(v)}`.toLowerCase().includes(filter.toLowerCase())) : rows;
  return html`<section class="card kv" data-section=${title.toLowerCase()}>
    <div class="card-head">
      <h3>${title}</h3>
      <span class="muted">${rows.length} ${rows.length === 1 ? "field" : "fields"}</span>
      ${rows.length > 8 ? html`<input class="input input-sm" placeholder="filter" value=${filter} onInput=${(e) => setFilter(e.target.value)} />` : null}
    </div>
    ${rows.length === 0
      ? html`<div class="muted pad">${empty || "nothing recorded"}</div>`
      : html`<div class="kv-body"><table class="kv-table"><tbody>
          ${shown.map(([key, value]) => html`<tr><th title=${key}>${key}</th><td>${display(key, value)}</td></tr>`)}
        </tbody></table></div>`}
  </section>`;
}
