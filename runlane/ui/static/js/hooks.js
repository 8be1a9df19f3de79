// Small data hooks shared by the views: a fetch tied to a component's life, and polling while it matters.
import { useEffect, useRef, useState } from "./html.js";

/**
 * Runs `load(signal)` whenever `deps` change; an older answer that arrives late is ignored (the request is
 * aborted). Returns {data, error, loading, reload}.
 */
export function useFetch(load, deps) {
  const [state, setState] = useState({ data: undefined, error: null, loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const controller = new AbortController();
    setState((prev) => ({ ...prev, loading: true }));
    load(controller.signal).then(
      (data) => {
        if (!controller.signal.aborted) setState({ data, error: null, loading: false });
      },
      (error) => {
        if (!controller.signal.aborted && error.name !== "AbortError") setState({ data: undefined, error, loading: false });
      },
    );
    return () => controller.abort();
  }, [...deps, tick]);
  return { ...state, reload: () => setTick((t) => t + 1) };
}

/** Calls `fn` every `ms` while `active`; an answer still in flight delays the next call (no pile-up). */
export function usePoll(fn, ms, active) {
  const latest = useRef(fn);
  latest.current = fn;
  useEffect(() => {
    if (!active) return undefined;
    let stopped = false;
    let timer = null;
    const tick = async () => {
      try {
        await latest.current();
      } catch {
        // a failed poll is retried on the next tick; the view shows the last good state meanwhile
      }
      if (!stopped) timer = setTimeout(tick, ms);
    };
    timer = setTimeout(tick, ms);
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [active, ms]);
}

export function useDebounced(value, ms) {
  const [out, setOut] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => setOut(value), ms);
    return () => clearTimeout(timer);
  }, [value, ms]);
  return out;
}
