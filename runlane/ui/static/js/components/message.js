// What a view shows instead of data: loading, an error the server named, or nothing to show yet.
import { html } from "../html.js";

export function Loading({ what }) {
  return html`<div class="msg msg-loading"><span class="spinner"></span> Loading ${what || ""}…</div>`;
}

export function ErrorBox({ error, what }) {
  const notFound = error && error.status === 404;
  return html`<div class="msg msg-error" role="alert" data-status=${error && error.status}>
    <div class="msg-title">${notFound ? `${what || "It"} was not found` : `Could not load ${what || "this"}`}</div>
    <div class="msg-body">${error ? error.message : "unknown error"}</div>
    ${notFound ? html`<a href="/" class="btn">Back to projects</a>` : null}
  </div>`;
}

export function Empty({ title, children }) {
  return html`<div class="msg msg-empty"><div class="msg-title">${title}</div>${children ? html`<div class="msg-body">${children}</div>` : null}</div>`;
}
