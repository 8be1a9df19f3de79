"""Run context capture: console output, system metrics, environment, code snapshot.

Everything here runs off the caller's thread and hands what it captured to the run as journal records
through an ``Emit`` callable (``Run._record``); nothing here touches the store. Each piece is started by
``init()`` through ``context.RunCapture`` and stopped by ``Run._end`` before the journal is drained.

Import rule: may import ``runlane.journal``, ``blobs``, ``errors``, ``wire`` and the standard library;
psutil, pynvml and zipfile-sized work are imported lazily, on the thread that needs them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Emit = Callable[[list[tuple[Any, ...]]], None]
"""Appends journal records to the run; never raises (capture threads must not die on a full disk)."""
