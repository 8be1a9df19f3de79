"""GPU metrics through NVML. No GPU is lent to the test machines, so NVML itself (a third-party library)
is stood in for by an object with the same functions; what is tested is runlane's mapping to keys."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from runlane.sdk.capture import gpu

GIB = 2**30


class TwoGpuNvml:
    """The subset of the ``pynvml`` module runlane calls, answering like a machine with two GPUs."""

    NVML_TEMPERATURE_GPU = 0

    def __init__(self) -> None:
        self.shutdown = False

    def nvmlInit(self) -> None:
        return None

    def nvmlShutdown(self) -> None:
        self.shutdown = True

    def nvmlDeviceGetCount(self) -> int:
        return 2

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlSystemGetDriverVersion(self) -> bytes:
        return b"550.54.15"  # old bindings answer bytes

    def nvmlDeviceGetName(self, handle: int) -> str:
        return "NVIDIA H200"

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> Any:
        return SimpleNamespace(gpu=87, memory=40)

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> Any:
        return SimpleNamespace(used=6 * GIB, total=24 * GIB, free=18 * GIB)

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        assert sensor == self.NVML_TEMPERATURE_GPU
        return 71

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        if handle == 1:
            raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")  # boards without a power sensor
        return 250_500  # milliwatts


def test_a_sample_maps_nvml_answers_to_sys_gpu_keys() -> None:
    nvml = TwoGpuNvml()
    handles = gpu.device_handles(nvml)
    assert handles == [0, 1]
    assert gpu.sample_device(nvml, 0, handles[0]) == {
        "sys/gpu0/util_percent": 87.0,
        "sys/gpu0/memory_used_mib": 6144.0,
        "sys/gpu0/memory_percent": 25.0,
        "sys/gpu0/temperature_c": 71.0,
        "sys/gpu0/power_w": 250.5,
    }
    # An unsupported query leaves its key out; the others are still recorded.
    assert set(gpu.sample_device(nvml, 1, handles[1])) == {
        "sys/gpu1/util_percent",
        "sys/gpu1/memory_used_mib",
        "sys/gpu1/memory_percent",
        "sys/gpu1/temperature_c",
    }
    gpu.close_nvml(nvml)
    assert nvml.shutdown


def test_without_an_nvidia_driver_there_are_no_gpus_and_no_error() -> None:
    # On a machine without NVML (the test machines), this is the path every run takes.
    nvml = gpu.open_nvml()
    try:
        if nvml is None:
            assert gpu.describe_gpus() == []
        else:  # a machine with NVIDIA GPUs: the description names each one
            assert all(isinstance(g["name"], str) for g in gpu.describe_gpus())
    finally:
        gpu.close_nvml(nvml)
