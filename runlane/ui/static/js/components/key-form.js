// Asked for when the server answers 401: this server has API keys (`runlane keys create NAME --store ...`).
import { auth } from "../api.js";
import { html, useState } from "../html.js";

export function KeyForm({ message }) {
  const [value, setValue] = useState("");
  const submit = (event) => {
    event.preventDefault();
    if (value.trim()) auth.set(value.trim());
  };
  return html`<form class="msg key-form" onSubmit=${submit} data-section="api-key">
    <div class="msg-title">This server needs an API key</div>
    <div class="msg-body">${message || "Paste a key made with runlane keys create."} It is kept in this browser only.</div>
    <input class="input" type="password" name="api-key" placeholder="API key" autocomplete="off" value=${value} onInput=${(e) => setValue(e.target.value)} />
    <button class="btn primary" type="submit">Sign in</button>
  </form>`;
}
