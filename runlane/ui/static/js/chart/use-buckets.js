// A metric's buckets for one chart: fetched for the chart's width and zoom range, re-fetched when those
// change, and extended in place with the new raw points of a live run (never a whole-series refetch).
import { api } from "../api.js";
import { useEffect, useRef, useState } from "../html.js";
import { appendBuckets, pointsAsBuckets } from "./series.js";

export const BUCKETS = 600;

/**
 * {ref, key, stitched, range: [start, end] | null, xMode, lastStep (the run's last step of this key, for
 * live appends)} -> {buckets, loading, error}
 */
export function useBuckets({ ref, key, stitched, range, xMode, lastStep, count = BUCKETS }) {
  const [state, setState] = useState({ buckets: [], loading: true, error: null });
  const known = useRef({ last: null, params: "" });
  const [generation, setGeneration] = useState(0); // bumped to downsample a grown live series again
  const params = JSON.stringify([ref, key, stitched, range, xMode, count, generation]);

  useEffect(() => {
    const controller = new AbortController();
    setState((prev) => ({ ...prev, loading: true, error: null }));
    const query = { key, stitched: stitched ? "true" : "false", buckets: count, x: xMode === "step" ? undefined : "time" };
    if (range) {
      query.start = range[0];
      query.end = range[1];
    }
    api.history(ref, query, { signal: controller.signal }).then(
      (answer) => {
        const buckets = answer.buckets || [];
        known.current = { last: buckets.length ? buckets[buckets.length - 1].end : null, params };
        setState({ buckets, loading: false, error: null });
      },
      (error) => {
        if (error.name !== "AbortError") setState({ buckets: [], loading: false, error: error.message });
      },
    );
    return () => controller.abort();
  }, [params]);

  useEffect(() => {
    // Live: the run's summary says this key has points past what the chart holds; fetch only those.
    const have = known.current.last;
    if (range || lastStep === null || lastStep === undefined || have === null || lastStep <= have) return undefined;
    if (known.current.params !== params) return undefined;
    const controller = new AbortController();
    const query = { key, start: have + 1, x: xMode === "step" ? undefined : "time" };
    api.history(ref, query, { signal: controller.signal }).then(
      (history) => {
        if (known.current.params !== params || !history.steps.length) return;
        known.current.last = history.steps[history.steps.length - 1];
        setState((prev) => {
          const merged = appendBuckets(prev.buckets, pointsAsBuckets(history));
          // Past a few times the bucket budget, downsample again on the server rather than grow forever.
          if (merged.length > count * 3) setGeneration((g) => g + 1);
          return { ...prev, buckets: merged };
        });
      },
      () => {},
    );
    return () => controller.abort();
  }, [lastStep]);

  return state;
}
