// ANSI SGR colour codes (the ones progress bars and loggers write) into styled spans; anything else of
// an escape sequence is dropped, so raw bytes never show as garbage.
import { html } from "./html.js";

const BASIC = ["#1f2937", "#dc2626", "#16a34a", "#ca8a04", "#2563eb", "#c026d3", "#0891b2", "#d1d5db"];
const BRIGHT = ["#6b7280", "#f87171", "#4ade80", "#facc15", "#60a5fa", "#e879f9", "#22d3ee", "#f9fafb"];
const ESC = /\x1b\[([0-9;]*)([A-Za-z])|\x1b[()][0-9A-Za-z]|\x1b./g;

function cube(n) {
  if (n < 16) return (n < 8 ? BASIC : BRIGHT)[n % 8];
  if (n >= 232) {
    const v = 8 + (n - 232) * 10;
    return `rgb(${v},${v},${v})`;
  }
  const i = n - 16;
  const level = (x) => (x === 0 ? 0 : 55 + x * 40);
  return `rgb(${level(Math.floor(i / 36))},${level(Math.floor(i / 6) % 6)},${level(i % 6)})`;
}

function apply(state, params) {
  const codes = params === "" ? [0] : params.split(";").map(Number);
  for (let i = 0; i < codes.length; i += 1) {
    const c = codes[i];
    if (c === 0) Object.assign(state, { fg: null, bg: null, bold: false, dim: false, italic: false, underline: false });
    else if (c === 1) state.bold = true;
    else if (c === 2) state.dim = true;
    else if (c === 3) state.italic = true;
    else if (c === 4) state.underline = true;
    else if (c === 22) state.bold = state.dim = false;
    else if (c === 23) state.italic = false;
    else if (c === 24) state.underline = false;
    else if (c >= 30 && c <= 37) state.fg = BASIC[c - 30];
    else if (c === 39) state.fg = null;
    else if (c >= 40 && c <= 47) state.bg = BASIC[c - 40];
    else if (c === 49) state.bg = null;
    else if (c >= 90 && c <= 97) state.fg = BRIGHT[c - 90];
    else if (c >= 100 && c <= 107) state.bg = BRIGHT[c - 100];
    else if ((c === 38 || c === 48) && codes[i + 1] === 5) {
      state[c === 38 ? "fg" : "bg"] = cube(codes[i + 2] || 0);
      i += 2;
    } else if ((c === 38 || c === 48) && codes[i + 1] === 2) {
      state[c === 38 ? "fg" : "bg"] = `rgb(${codes[i + 2] || 0},${codes[i + 3] || 0},${codes[i + 4] || 0})`;
      i += 4;
    }
  }
}

function style(state) {
  const parts = [];
  if (state.fg) parts.push(`color:${state.fg}`);
  if (state.bg) parts.push(`background:${state.bg}`);
  if (state.bold) parts.push("font-weight:600");
  if (state.dim) parts.push("opacity:.7");
  if (state.italic) parts.push("font-style:italic");
  if (state.underline) parts.push("text-decoration:underline");
  return parts.join(";");
}

/** The text as Preact children: plain text when it has no escapes (the common, fast case). */
export function ansiToNodes(text) {
  if (!text.includes("\x1b")) return text;
  const out = [];
  const state = { fg: null, bg: null, bold: false, dim: false, italic: false, underline: false };
  let last = 0;
  ESC.lastIndex = 0;
  for (let m = ESC.exec(text); m; m = ESC.exec(text)) {
    if (m.index > last) {
      const chunk = text.slice(last, m.index);
      const css = style(state);
      out.push(css ? html`<span style=${css}>${chunk}</span>` : chunk);
    }
    if (m[2] === "m") apply(state, m[1]);
    last = ESC.lastIndex;
  }
  if (last < text.length) {
    const css = style(state);
    out.push(css ? html`<span style=${css}>${text.slice(last)}</span>` : text.slice(last));
  }
  return out;
}

export const stripAnsi = (text) => text.replace(ESC, "");
