// Chart settings live in the URL (?smooth=0.6&log=1&x=relative&inherited=0), so a shared link shows the
// same charts and the back button undoes a change.
import { html } from "../html.js";
import { navigate, withQuery } from "../router.js";

export function chartSettings(query) {
  const smooth = Number(query.get("smooth") || 0);
  const x = query.get("x");
  return {
    smoothing: Number.isFinite(smooth) ? Math.min(0.99, Math.max(0, smooth)) : 0,
    logScale: query.get("log") === "1",
    xMode: x === "time" || x === "relative" ? x : "step",
    inherited: query.get("inherited") !== "0",
  };
}

export function ChartToolbar({ settings, showInherited, children }) {
  // A switch is a history entry (back undoes it); dragging the smoothing slider replaces the current one.
  const set = (changes) => navigate(withQuery(changes));
  const slide = (changes) => navigate(withQuery(changes), { replace: true });
  return html`<div class="toolbar chart-toolbar">
    <label class="tb-item" title="exponential moving average of the line (the band keeps the raw range)">
      smoothing
      <input type="range" min="0" max="0.99" step="0.01" value=${settings.smoothing}
        onInput=${(e) => slide({ smooth: Number(e.target.value) ? e.target.value : null })} />
      <span class="mono tb-value">${settings.smoothing.toFixed(2)}</span>
    </label>
    <label class="tb-item"><input type="checkbox" name="log" checked=${settings.logScale} onChange=${(e) => set({ log: e.target.checked ? "1" : null })} /> log scale</label>
    <label class="tb-item">x
      <select name="x" value=${settings.xMode} onChange=${(e) => set({ x: e.target.value === "step" ? null : e.target.value })}>
        <option value="step">step</option>
        <option value="time">wall time</option>
        <option value="relative">relative time</option>
      </select>
    </label>
    ${showInherited
      ? html`<label class="tb-item toggle" title="continue the charts back through the runs this run was forked from">
          <input type="checkbox" name="inherited" checked=${settings.inherited} onChange=${(e) => set({ inherited: e.target.checked ? null : "0" })} />
          <svg viewBox="0 0 16 16" width="14" height="14" aria-hidden="true"><path d="M5 2v5a3 3 0 0 0 3 3h3M5 7v7M11 8l2 2-2 2" fill="none" stroke="currentColor" stroke-width="1.6"/></svg>
          show inherited datapoints
        </label>`
      : null}
    ${children}
  </div>`;
}
