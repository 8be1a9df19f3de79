import { html } from "../html.js";

export function Tags({ tags, href }) {
  if (!tags || !tags.length) return null;
  return html`<span class="tags">${tags.map((tag) => (href ? html`<a class="tag" href=${href(tag)}>${tag}</a>` : html`<span class="tag">${tag}</span>`))}</span>`;
}
