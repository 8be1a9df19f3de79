"""The progress display of ``runlane sync`` on a terminal: tqdm's bar where tqdm is installed, else a plain
line redrawn in place. Off a terminal (a log file, a pipe) nothing is drawn; the summary says it all."""

from __future__ import annotations

from typing import Any, TextIO

from . import Progress


class _Quiet:
    def start(self, runs: int) -> None:
        pass

    def records(self, count: int) -> None:
        pass

    def run_done(self, label: str) -> None:
        pass

    def close(self) -> None:
        pass


class _Tqdm:
    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._bar: Any = None
        self._records = 0

    def start(self, runs: int) -> None:
        from tqdm import tqdm  # type: ignore[import-untyped]

        self._bar = tqdm(total=runs, unit="run", desc="sync", file=self._stream, dynamic_ncols=True)

    def records(self, count: int) -> None:
        self._records += count
        self._bar.set_postfix_str(f"{self._records:,} records", refresh=False)

    def run_done(self, label: str) -> None:
        self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class _Plain:
    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._runs = 0
        self._done = 0
        self._records = 0

    def start(self, runs: int) -> None:
        self._runs = runs
        self._draw()

    def records(self, count: int) -> None:
        self._records += count
        self._draw()

    def run_done(self, label: str) -> None:
        self._done += 1
        self._draw()

    def _draw(self) -> None:
        self._stream.write(f"\rsync: {self._done}/{self._runs} runs, {self._records:,} records")
        self._stream.flush()

    def close(self) -> None:
        self._stream.write("\n")
        self._stream.flush()


def progress_for(stream: TextIO) -> Progress:
    """The display for ``stream``: a bar on a terminal, nothing elsewhere."""
    if not stream.isatty():
        return _Quiet()
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return _Plain(stream)
    return _Tqdm(stream)
