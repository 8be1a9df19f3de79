"""The system monitor: a thread that samples the machine and this process every ``interval`` seconds.

Each sample is one SYSTEM record ``{key: value}`` with keys under ``sys/``:

- ``sys/cpu_percent``: all CPUs, 0-100, busy share since the previous sample
- ``sys/memory_percent``, ``sys/memory_used_mib``: the machine's memory
- ``sys/disk_read_mib_s``, ``sys/disk_write_mib_s``, ``sys/net_recv_mib_s``, ``sys/net_sent_mib_s``: rates
  over the time since the previous sample (rates, not counters: they chart directly and do not depend on
  when the counters were last reset; a counter that went backwards yields no rate for that sample)
- ``sys/proc_rss_mib``, ``sys/proc_cpu_percent``: this process (CPU percent of one core, so up to 100 x cores)
- per NVIDIA GPU i (NVML): ``sys/gpu{i}/util_percent``, ``sys/gpu{i}/memory_used_mib``,
  ``sys/gpu{i}/memory_percent``, ``sys/gpu{i}/temperature_c``, ``sys/gpu{i}/power_w``

The first sample comes ``min(interval, 1 s)`` after start (CPU percent and rates need two readings, the
first taken half-way), the next ones ``interval`` after the previous one started, so samples are never
closer than ``interval``. psutil and NVML are loaded on the monitor thread, never on the caller's.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from ...diagnostics import log
from ...journal import System
from . import Emit

DEFAULT_INTERVAL_S = 10.0
MIN_INTERVAL_S = 0.05
FIRST_SAMPLE_MAX_S = 1.0
MIB = 2**20


class SystemMonitor:
    """Samples every ``interval`` seconds on its own thread until ``stop()``."""

    def __init__(self, emit: Emit, interval: float) -> None:
        self._emit = emit
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="runlane-system", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop sampling and wait for the thread; idempotent."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _main(self) -> None:
        first = min(self._interval, FIRST_SAMPLE_MAX_S)
        # psutil and NVML load half-way to the first sample, not at once: a run that ends right away (a
        # script that fails on its first line) never loads them, and the loading does not compete with the
        # caller's first moments. (An import still running in a thread when the interpreter exits after an
        # uncaught KeyboardInterrupt makes CPython exit with status 1 rather than by SIGINT.)
        if self._stop.wait(first / 2):
            return
        try:
            sampler = Sampler()
        except Exception:
            log.warning("runlane: system metrics are off: the sampler could not start", exc_info=True)
            return
        try:
            wait = first / 2
            while not self._stop.wait(wait):
                started, stamp = time.monotonic(), time.time()
                try:
                    values = sampler.sample()
                except Exception:
                    log.debug("runlane: a system metrics sample failed", exc_info=True)
                else:
                    self._emit([System.new(stamp, values)])
                # The next sample starts `interval` after this one started (a slow sample does not drift).
                wait = max(0.0, self._interval - (time.monotonic() - started))
        finally:
            sampler.close()


class Sampler:
    """Reads psutil and NVML; holds the previous counters that CPU percent and rates are computed from."""

    def __init__(self) -> None:
        import psutil

        from . import gpu

        self._psutil = psutil
        self._process = psutil.Process(os.getpid())
        self._process.cpu_percent(None)  # the first call only starts the measurement
        self._cpu = _busy_total(psutil.cpu_times())
        self._at = time.monotonic()
        self._disk = _counters(psutil.disk_io_counters)
        self._net = _counters(psutil.net_io_counters)
        self._gpu = gpu
        self._nvml = gpu.open_nvml()
        self._gpus = gpu.device_handles(self._nvml) if self._nvml is not None else []

    def close(self) -> None:
        self._gpu.close_nvml(self._nvml)
        self._nvml = None

    def sample(self) -> dict[str, float]:
        psutil = self._psutil
        now = time.monotonic()
        elapsed = max(now - self._at, 1e-9)
        self._at = now
        values: dict[str, float] = {}
        busy, total = cpu = _busy_total(psutil.cpu_times())
        if total > self._cpu[1]:
            values["sys/cpu_percent"] = round(100.0 * max(0.0, busy - self._cpu[0]) / (total - self._cpu[1]), 2)
        self._cpu = cpu
        memory = psutil.virtual_memory()
        values["sys/memory_percent"] = float(memory.percent)
        values["sys/memory_used_mib"] = round(memory.used / MIB, 2)
        disk = _counters(psutil.disk_io_counters)
        self._rates(values, "disk_read", "disk_write", self._disk, disk, elapsed)
        self._disk = disk
        net = _counters(psutil.net_io_counters)
        self._rates(values, "net_recv", "net_sent", self._net, net, elapsed)
        self._net = net
        try:
            with self._process.oneshot():
                values["sys/proc_rss_mib"] = round(self._process.memory_info().rss / MIB, 2)
                values["sys/proc_cpu_percent"] = float(self._process.cpu_percent(None))
        except psutil.Error:
            pass
        for index, handle in enumerate(self._gpus):
            values.update(self._gpu.sample_device(self._nvml, index, handle))
        return values

    @staticmethod
    def _rates(
        values: dict[str, float],
        first: str,
        second: str,
        before: tuple[int, int] | None,
        after: tuple[int, int] | None,
        elapsed: float,
    ) -> None:
        if before is None or after is None:
            return
        for name, old, new in ((first, before[0], after[0]), (second, before[1], after[1])):
            if new >= old:  # counters can wrap or be reset (a NIC going away)
                values[f"sys/{name}_mib_s"] = round((new - old) / MIB / elapsed, 4)


def _busy_total(times: Any) -> tuple[float, float]:
    # Computed from cpu_times() rather than psutil.cpu_percent(), whose state is one global per process:
    # two runs' monitors would reset each other's measurement window.
    total = sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)
    return total - times.idle - getattr(times, "iowait", 0.0), total


def _counters(read: Any) -> tuple[int, int] | None:
    """(read/received bytes, written/sent bytes), or None where the machine exposes no counters."""
    try:
        counters = read()
    except Exception:  # no permission, no /proc/diskstats in a container, ...
        return None
    if counters is None:
        return None
    if hasattr(counters, "read_bytes"):
        return int(counters.read_bytes), int(counters.write_bytes)
    return int(counters.bytes_recv), int(counters.bytes_sent)
