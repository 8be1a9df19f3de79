"""runlane's own messages (warnings about retries, recovery, capture) go to the ``runlane`` logger.

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
