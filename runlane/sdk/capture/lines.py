"""Splitting captured console text into log lines, with the three ``tqdm_mode`` treatments of progress bars.

Progress bars (tqdm, pip, wget, ...) redraw one terminal line by writing a carriage return and the new
state. A line of the log is what lies between two newlines; inside it, each ``\\r`` ends a *segment* that
the next one overwrites on a terminal. The modes:

- ``smart`` (default): a line that was redrawn keeps only its final state, the last non-blank segment
  (so a bar that erases itself at the end, tqdm's ``leave=False``, still leaves its last state).
- ``all``: every non-blank segment becomes a line of its own: every update is kept.
- ``none``: redrawn lines are dropped. Text written after a bar erased itself (a blank segment after
  content) is what the terminal shows on that line, so it is kept.

Lines that were never redrawn are the same in every mode. A ``\\r\\n`` is a newline, also when it arrives
split across two reads.
"""

from __future__ import annotations

import re
from typing import Literal

# Defined here, not in ``context``: the console tee process loads this module and nothing of the SDK.
TqdmMode = Literal["smart", "all", "none"]
TQDM_MODES: tuple[TqdmMode, ...] = ("smart", "all", "none")

MAX_LINE = 64 * 1024  # characters; a longer run of text without a newline is cut into lines this long

_BREAK = re.compile(r"(\r\n|\r|\n)")


class ConsoleLines:
    """Turns a stream of decoded console text into complete log lines, fed in arbitrary pieces."""

    def __init__(self, mode: TqdmMode = "smart") -> None:
        if mode not in TQDM_MODES:
            raise ValueError(f"tqdm_mode must be one of {', '.join(TQDM_MODES)}, got {mode!r}")
        self.mode = mode
        self._parts: list[str] = []  # the segment being written
        self._size = 0
        self._redrawn = False  # the current line had a carriage return
        self._last_state: str | None = None  # smart: the last non-blank segment ended by \r
        self._seen_content = False  # a non-blank segment ended by \r on this line
        self._erased = False  # the last segment ended by \r was blank after content (an erased bar)
        self._pending_cr = False  # a trailing \r held back in case the next piece starts with \n

    def feed(self, text: str) -> list[str]:
        """Add text; return the lines it completed."""
        out: list[str] = []
        if self._pending_cr:
            text = "\r" + text
            self._pending_cr = False
        if text.endswith("\r"):
            text = text[:-1]
            self._pending_cr = True
        for piece in _BREAK.split(text):
            if piece in ("\n", "\r\n"):
                self._end_line(out)
            elif piece == "\r":
                self._carriage_return(out)
            elif piece:
                self._add(piece, out)
        return out

    def flush(self) -> list[str]:
        """End the text: return the unfinished line (if any) as if a newline had come."""
        out: list[str] = []
        if self._pending_cr:
            self._pending_cr = False
            self._carriage_return(out)
        if self._parts or self._redrawn:
            self._end_line(out)
        return out

    def _add(self, piece: str, out: list[str]) -> None:
        self._parts.append(piece)
        self._size += len(piece)
        while self._size > MAX_LINE:
            # A runaway line (a huge JSON dump, a binary blob) is cut rather than held in memory.
            segment = self._take()
            out.append(segment[:MAX_LINE])
            self._reset_line()
            if len(segment) > MAX_LINE:
                self._parts, self._size = [segment[MAX_LINE:]], len(segment) - MAX_LINE

    def _take(self) -> str:
        segment = "".join(self._parts)
        self._parts, self._size = [], 0
        return segment

    def _carriage_return(self, out: list[str]) -> None:
        segment = self._take()
        self._redrawn = True
        if segment.strip():
            self._seen_content = True
            self._erased = False
            if self.mode == "smart":
                self._last_state = segment
            elif self.mode == "all":
                out.append(segment)
        elif self._seen_content:
            self._erased = True

    def _end_line(self, out: list[str]) -> None:
        segment = self._take()
        if not self._redrawn:
            out.append(segment)
        elif self.mode == "smart":
            final = segment if segment.strip() else self._last_state
            if final is not None:
                out.append(final)
        elif segment.strip() and (self.mode == "all" or self._erased):
            out.append(segment)
        self._reset_line()

    def _reset_line(self) -> None:
        self._redrawn = self._seen_content = self._erased = False
        self._last_state = None
