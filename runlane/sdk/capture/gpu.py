"""NVIDIA GPUs through NVML (the ``nvidia-ml-py`` package, imported as ``pynvml`` on first use).

No library, no driver or no GPU is not an error: ``open_nvml()`` returns None and callers record no GPU
keys. NVML holds device files open while initialized, so every ``open_nvml()`` is paired with ``close()``.
"""

from __future__ import annotations

from typing import Any

from ...diagnostics import log

_MIB = 2**20


def open_nvml() -> Any | None:
    """The ``pynvml`` module with NVML initialized, or None when there is no NVIDIA GPU to talk to."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception:  # NVMLError_LibraryNotFound, DriverNotLoaded, ...: a machine without NVIDIA GPUs
        return None
    return pynvml


def close_nvml(nvml: Any | None) -> None:
    if nvml is None:
        return
    try:
        nvml.nvmlShutdown()
    except Exception:
        log.debug("runlane: nvmlShutdown failed", exc_info=True)


def device_handles(nvml: Any) -> list[Any]:
    try:
        return [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]
    except Exception:
        log.debug("runlane: could not list GPUs through NVML", exc_info=True)
        return []


def text(value: Any) -> str:
    """NVML strings are bytes in old bindings and str in new ones."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def describe_gpus() -> list[dict[str, Any]]:
    """Model, memory and driver of every NVIDIA GPU (NVML index order), for the environment capture."""
    nvml = open_nvml()
    if nvml is None:
        return []
    try:
        gpus = []
        driver = query(nvml.nvmlSystemGetDriverVersion)
        for index, handle in enumerate(device_handles(nvml)):
            memory = query(nvml.nvmlDeviceGetMemoryInfo, handle)
            name = query(nvml.nvmlDeviceGetName, handle)
            gpus.append(
                {
                    "index": index,
                    "name": None if name is None else text(name),
                    "memory_total_mib": None if memory is None else round(memory.total / _MIB),
                    "driver_version": None if driver is None else text(driver),
                }
            )
        return gpus
    finally:
        close_nvml(nvml)


def query(fn: Any, *args: Any) -> Any | None:
    """``fn(*args)``, or None when NVML answers with an error."""
    try:
        return fn(*args)
    except Exception:  # a query this GPU or driver does not support
        return None


def sample_device(nvml: Any, index: int, handle: Any) -> dict[str, float]:
    """One system-monitor sample of GPU ``index``: ``sys/gpu{index}/...`` keys (see ``system.py``)."""
    # Each query on its own: a GPU or driver may not support one of them (power on some boards).
    prefix = f"sys/gpu{index}"
    values: dict[str, float] = {}
    utilization = query(nvml.nvmlDeviceGetUtilizationRates, handle)
    if utilization is not None:
        values[f"{prefix}/util_percent"] = float(utilization.gpu)
    memory = query(nvml.nvmlDeviceGetMemoryInfo, handle)
    if memory is not None:
        values[f"{prefix}/memory_used_mib"] = round(memory.used / _MIB, 2)
        if memory.total:
            values[f"{prefix}/memory_percent"] = round(100.0 * memory.used / memory.total, 2)
    temperature = query(nvml.nvmlDeviceGetTemperature, handle, nvml.NVML_TEMPERATURE_GPU)
    if temperature is not None:
        values[f"{prefix}/temperature_c"] = float(temperature)
    milliwatts = query(nvml.nvmlDeviceGetPowerUsage, handle)
    if milliwatts is not None:
        values[f"{prefix}/power_w"] = milliwatts / 1000.0
    return values
