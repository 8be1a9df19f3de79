"""runlane's own diagnostics (warnings about retries, recovery, capture) go to the ``runlane`` logger.

Not to be confused with a run's logs (``Run.log_text``, the captured console, ``Api.logs``): those are
data of the run, stored with it; these are messages about runlane itself, for whoever runs the process.

``logging`` takes a few milliseconds to import, a noticeable share of a first ``init()``; this proxy
imports it on the first message, which most runs never emit.
"""

from __future__ import annotations

from typing import Any


class _LazyLogger:
    """Forwards every attribute to ``logging.getLogger("runlane")``, importing logging on first use."""

    def __getattr__(self, name: str) -> Any:
        import logging

        return getattr(logging.getLogger("runlane"), name)


log: Any = _LazyLogger()
