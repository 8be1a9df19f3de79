// Several layers (runs, or the pieces of a stitched series) on one shared x axis, as uPlot wants them:
// one sorted x column and, per layer, min/max/last columns with null where that layer has no point.

export function align(layers, logScale) {
  const xs = [];
  for (const layer of layers) for (const x of layer.x) xs.push(x);
  xs.sort((a, b) => a - b);
  const x = [];
  for (const v of xs) if (x.length === 0 || x[x.length - 1] !== v) x.push(v);
  const n = x.length;
  const data = [x];
  const steps = new Array(n).fill(null);
  const perLayer = [];
  const keep = (v) => (v === null || v === undefined || !Number.isFinite(v) || (logScale && v <= 0) ? null : v);
  for (const layer of layers) {
    const min = new Array(n).fill(null);
    const max = new Array(n).fill(null);
    const last = new Array(n).fill(null);
    const end = new Array(n).fill(null);
    const count = new Array(n).fill(0);
    let j = 0;
    for (let i = 0; i < layer.x.length; i += 1) {
      while (x[j] < layer.x[i]) j += 1;
      min[j] = keep(layer.min[i]);
      max[j] = keep(layer.max[i]);
      last[j] = keep(layer.last[i]);
      end[j] = layer.end[i];
      count[j] = layer.count[i];
      if (steps[j] === null || layer.count[i] > 0) steps[j] = layer.end[i];
    }
    data.push(min, max, last);
    perLayer.push({ end, count });
  }
  return { data, steps, perLayer };
}
