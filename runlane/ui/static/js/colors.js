// Run colours: a fixed palette picked for contrast on white, assigned in a stable order so a run keeps
// its colour across the charts, the legend and the diff table of one view.
export const PALETTE = [
  "#2563eb", "#e8590c", "#16a34a", "#c026d3", "#dc2626", "#0891b2",
  "#ca8a04", "#7c3aed", "#db2777", "#059669", "#4b5563", "#9333ea",
];

export const colorAt = (index) => PALETTE[index % PALETTE.length];

/** The colour with an alpha, for bands: "#2563eb" -> "rgba(37,99,235,a)". */
export function alpha(hex, a) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${a})`;
}

export const INHERITED = "#94a3b8";
