// Turning what the server sends (buckets or raw points) into the columns a chart draws. Pure functions,
// no DOM: a bucket is drawn at its last step with its min/max as a band and its last value as the line.

/**
 * Columns of a bucketed series. x is the bucket's last step, or its wall time ("time"), or seconds since
 * the series began ("relative"); a bucket without a time cannot be placed on a time axis and is dropped.
 */
export function bucketColumns(buckets, xMode = "step") {
  const cols = { x: [], min: [], max: [], last: [], start: [], end: [], count: [], run: [], time: [] };
  const t0 = buckets.length && buckets[0].time != null ? buckets[0].time : 0;
  for (const b of buckets) {
    let x = b.end;
    if (xMode !== "step") {
      if (b.time === undefined || b.time === null) continue;
      x = xMode === "time" ? b.time : b.time - t0;
    }
    cols.x.push(x);
    cols.min.push(b.min === null || Number.isNaN(b.min) ? null : b.min);
    cols.max.push(b.max === null || Number.isNaN(b.max) ? null : b.max);
    cols.last.push(Number.isFinite(b.last) ? b.last : null);
    cols.start.push(b.start);
    cols.end.push(b.end);
    cols.count.push(b.count);
    cols.run.push(b.run_id);
    cols.time.push(b.time ?? null);
  }
  return cols;
}

/** Raw history columns (steps, values, times, run_ids) as one-point buckets, for live appends. */
export function pointsAsBuckets(history) {
  const out = [];
  for (let i = 0; i < history.steps.length; i += 1) {
    const v = history.values[i];
    out.push({
      start: history.steps[i],
      end: history.steps[i],
      min: Number.isNaN(v) ? null : v,
      max: Number.isNaN(v) ? null : v,
      last: v,
      count: 1,
      run_id: history.run_ids[i],
      time: history.times ? history.times[i] : null,
    });
  }
  return out;
}

/** Buckets with newer ones appended: a live point replaces a bucket ending at the same step. */
export function appendBuckets(buckets, extra) {
  if (!extra.length) return buckets;
  const firstNew = extra[0].start;
  const kept = buckets.filter((b) => b.end < firstNew);
  return kept.concat(extra);
}

/**
 * Exponential moving average with TensorBoard's debiasing, so the line starts at the first value rather
 * than at 0. weight 0 returns the values; null/NaN/Inf points are skipped and stay null.
 */
export function ema(values, weight) {
  if (!weight) return values;
  const out = new Array(values.length);
  let acc = 0;
  let n = 0;
  for (let i = 0; i < values.length; i += 1) {
    const v = values[i];
    if (v === null || !Number.isFinite(v)) {
      out[i] = null;
      continue;
    }
    acc = acc * weight + (1 - weight) * v;
    n += 1;
    out[i] = acc / (1 - weight ** n);
  }
  return out;
}

/**
 * The columns cut where the owning run changes: one layer per contiguous piece. Each piece after the first
 * starts with the previous piece's last point (its line only, not its band), so the series stays one
 * continuous line across a fork.
 */
export function splitByRun(cols) {
  const layers = [];
  let current = null;
  for (let i = 0; i < cols.x.length; i += 1) {
    const run = cols.run[i];
    if (!current || current.runId !== run) {
      current = { runId: run, x: [], min: [], max: [], last: [], start: [], end: [], count: [], time: [] };
      if (i > 0) {
        current.x.push(cols.x[i - 1]);
        current.min.push(null);
        current.max.push(null);
        current.last.push(cols.last[i - 1]);
        current.start.push(cols.start[i - 1]);
        current.end.push(cols.end[i - 1]);
        current.count.push(0);
        current.time.push(cols.time[i - 1]);
      }
      layers.push(current);
    }
    for (const name of ["x", "min", "max", "last", "start", "end", "count", "time"]) current[name].push(cols[name][i]);
  }
  return layers;
}

/** Steps at which the stage label changes, from raw history columns: [{step, stage}]. */
export function stageBoundaries(history) {
  const out = [];
  let prev;
  for (let i = 0; i < history.steps.length; i += 1) {
    const stage = history.stages[i];
    if (i > 0 && stage !== prev && stage !== null) out.push({ step: history.steps[i], stage });
    prev = stage;
  }
  return out;
}

/** Index of the largest value <= target in a sorted array (or 0). */
export function floorIndex(sorted, target) {
  let lo = 0;
  let hi = sorted.length - 1;
  if (hi < 0 || target < sorted[0]) return 0;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (sorted[mid] <= target) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Summary numbers of what a chart draws (exposed as data- attributes for tests and benchmarks). */
export function describe(layers) {
  let min = Infinity;
  let max = -Infinity;
  let first = Infinity;
  let last = -Infinity;
  let points = 0;
  const runs = new Set();
  const spans = [];
  for (const layer of layers) {
    let own = null;
    for (let i = 0; i < layer.x.length; i += 1) {
      if (layer.count[i] === 0) continue; // a join point belongs to the piece before
      runs.add(layer.runId);
      if (own === null) own = [layer.start[i], layer.end[i]];
      own[1] = layer.end[i];
      points += layer.count[i];
      if (layer.min[i] !== null && layer.min[i] < min) min = layer.min[i];
      if (layer.max[i] !== null && layer.max[i] > max) max = layer.max[i];
      if (layer.start[i] < first) first = layer.start[i];
      if (layer.end[i] > last) last = layer.end[i];
    }
    if (own !== null) spans.push(`${layer.runId}:${own[0]}-${own[1]}`);
  }
  return { min, max, first, last, points, runs: [...runs], spans };
}
