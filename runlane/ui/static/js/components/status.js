// A run's status as a coloured badge; a running run whose owner heartbeat is recent pulses ("live").
import { html } from "../html.js";

const LIVE_SECONDS = 60;

export function isLive(run, now = Date.now() / 1000) {
  if (run.status !== "running") return false;
  const beats = (run.writers || []).map((w) => (w.closed_at ? 0 : w.heartbeat_at));
  // A runs-table row carries no writers: trust the status there, the table refreshes it while live.
  return beats.length === 0 || Math.max(...beats) > now - LIVE_SECONDS;
}

export function StatusBadge({ run, withReason }) {
  const live = isLive(run);
  return html`<span class=${`status status-${run.status}${live ? " live" : ""}`} title=${run.status_reason || run.status} data-status=${run.status}>
    ${live ? html`<span class="live-dot" aria-label="live"></span>` : null}${run.status}
  </span>${withReason && run.status_reason ? html`<span class="status-reason">${run.status_reason}</span>` : null}`;
}
