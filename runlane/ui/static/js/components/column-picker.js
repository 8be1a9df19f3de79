// Choosing config and summary fields as extra runs-table columns, from the fields the listed runs have.
import { html, useState } from "../html.js";

export function ColumnPicker({ available, chosen, onChange }) {
  const [open, setOpen] = useState(false);
  const [filter, setFilter] = useState("");
  const shown = available.filter((key) => key.toLowerCase().includes(filter.toLowerCase()));
  const toggle = (key) => onChange(chosen.includes(key) ? chosen.filter((k) => k !== key) : [...chosen, key]);
  return html`<div class="picker">
    <button class="btn" aria-expanded=${open} onClick=${() => setOpen(!open)}>Columns${chosen.length ? ` (${chosen.length})` : ""} ▾</button>
    ${open
      ? html`<div class="picker-pop card" onMouseLeave=${() => setOpen(false)}>
          <input class="input input-sm" placeholder="config or summary field" value=${filter} onInput=${(e) => setFilter(e.target.value)} />
          <div class="picker-list">
            ${shown.length === 0 ? html`<div class="muted pad">no fields</div>` : null}
            ${shown.map(
              (key) => html`<label class="picker-item"><input type="checkbox" checked=${chosen.includes(key)} onChange=${() => toggle(key)} />
                <span class=${`src src-${key.split(".")[0]}`}>${key.split(".")[0]}</span> ${key.slice(key.indexOf(".") + 1)}</label>`,
            )}
          </div>
        </div>`
      : null}
  </div>`;
}
