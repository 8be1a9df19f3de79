"""MLflow's tracking entities and errors as runlane shows them: plain frozen records, no IO.

Shared by ``runlane.compat.mlflow`` (the fluent API and ``MlflowClient``) and the tracking server's MLflow
REST routes, so both speak the same shapes. Times are integer milliseconds since the epoch, as in MLflow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import RunlaneError

# MLflow's error codes (databricks_pb2.ErrorCode names) and the HTTP status MLflow answers each with.
INVALID_PARAMETER_VALUE = "INVALID_PARAMETER_VALUE"
RESOURCE_DOES_NOT_EXIST = "RESOURCE_DOES_NOT_EXIST"
RESOURCE_ALREADY_EXISTS = "RESOURCE_ALREADY_EXISTS"
INVALID_STATE = "INVALID_STATE"
BAD_REQUEST = "BAD_REQUEST"
ENDPOINT_NOT_FOUND = "ENDPOINT_NOT_FOUND"
PERMISSION_DENIED = "PERMISSION_DENIED"
UNAUTHENTICATED = "UNAUTHENTICATED"
TEMPORARILY_UNAVAILABLE = "TEMPORARILY_UNAVAILABLE"
HTTP_STATUS: Mapping[str, int] = {
    INVALID_PARAMETER_VALUE: 400,
    RESOURCE_ALREADY_EXISTS: 400,
    INVALID_STATE: 400,
    BAD_REQUEST: 400,
    RESOURCE_DOES_NOT_EXIST: 404,
    ENDPOINT_NOT_FOUND: 404,
    UNAUTHENTICATED: 401,
    PERMISSION_DENIED: 403,
    TEMPORARILY_UNAVAILABLE: 503,
}


class MlflowException(RunlaneError, ValueError):
    """What MLflow raises for invalid requests (a ``ValueError`` too); ``error_code`` is MLflow's code."""

    def __init__(self, message: str, error_code: str = INVALID_PARAMETER_VALUE) -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code

    @classmethod
    def invalid_parameter_value(cls, message: str) -> MlflowException:
        return cls(message, INVALID_PARAMETER_VALUE)


class RunStatus:
    """MLflow's run statuses (names and MLflow's enum numbers) and their runlane names."""

    RUNNING = "RUNNING"
    SCHEDULED = "SCHEDULED"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    TO_RUNLANE: Mapping[str, str] = {
        "RUNNING": "running",
        "SCHEDULED": "scheduled",
        "FINISHED": "finished",
        "FAILED": "failed",
        "KILLED": "killed",
    }
    FROM_RUNLANE: Mapping[str, str] = {v: k for k, v in TO_RUNLANE.items()}
    _NUMBERS: Mapping[str, int] = {"RUNNING": 1, "SCHEDULED": 2, "FINISHED": 3, "FAILED": 4, "KILLED": 5}

    @staticmethod
    def is_terminated(status: str | int) -> bool:
        name = RunStatus.to_string(status) if isinstance(status, int) else status
        return name in (RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED)

    @staticmethod
    def to_string(status: int) -> str:
        for name, number in RunStatus._NUMBERS.items():
            if number == status:
                return name
        raise MlflowException(f"Could not get string corresponding to run status {status}")

    @staticmethod
    def from_string(status: str) -> int:
        if status not in RunStatus._NUMBERS:
            raise MlflowException(f"Could not get run status corresponding to string {status}. Valid run status "
                                  f"strings: {list(RunStatus._NUMBERS)}")  # fmt: skip
        return RunStatus._NUMBERS[status]

    @staticmethod
    def all_status() -> list[int]:
        return list(RunStatus._NUMBERS.values())


class ViewType:
    """Which lifecycle stages a search returns."""

    ACTIVE_ONLY = 1
    DELETED_ONLY = 2
    ALL = 3

    @staticmethod
    def from_string(view: str) -> int:
        names = {"ACTIVE_ONLY": 1, "DELETED_ONLY": 2, "ALL": 3}
        if view.upper() not in names:
            raise MlflowException(f"Unrecognized ViewType '{view}'; one of {list(names)}")
        return names[view.upper()]


class LifecycleStage:
    ACTIVE = "active"
    DELETED = "deleted"


@dataclass(frozen=True)
class Experiment:
    experiment_id: str
    name: str
    artifact_location: str
    lifecycle_stage: str = LifecycleStage.ACTIVE
    tags: dict[str, str] = field(default_factory=dict)
    creation_time: int | None = None
    last_update_time: int | None = None


@dataclass(frozen=True)
class Metric:
    key: str
    value: float
    timestamp: int
    step: int


@dataclass(frozen=True)
class Param:
    key: str
    value: str


@dataclass(frozen=True)
class RunTag:
    key: str
    value: str


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    experiment_id: str
    run_name: str
    status: str
    start_time: int
    end_time: int | None
    artifact_uri: str
    lifecycle_stage: str = LifecycleStage.ACTIVE
    user_id: str = ""

    @property
    def run_uuid(self) -> str:
        return self.run_id


@dataclass(frozen=True)
class RunData:
    metrics: dict[str, float]
    params: dict[str, str]
    tags: dict[str, str]


class Run:
    """A snapshot of a run: ``info`` and ``data``, as ``get_run`` returns it."""

    def __init__(self, info: RunInfo, data: RunData) -> None:
        self._info = info
        self._data = data

    @property
    def info(self) -> RunInfo:
        return self._info

    @property
    def data(self) -> RunData:
        return self._data

    def to_dictionary(self) -> dict[str, Any]:
        return {
            "info": dict(vars(self._info)),
            "data": {"metrics": dict(self._data.metrics), "params": dict(self._data.params),
                     "tags": dict(self._data.tags)},
        }  # fmt: skip

    def __repr__(self) -> str:
        return f"<Run: run_id={self.info.run_id!r}, status={self.info.status!r}>"
