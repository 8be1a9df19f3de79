"""Downsampling a series into step buckets that keep min, max and last, so a single spike survives.

Pure numpy over the columns a store reads; used for plain and stitched series alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .entities import Bucket
from .steps import STEP_MAX

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    Piece = tuple[NDArray[np.int64], NDArray[np.float64], int]


def buckets(pieces: Sequence[Piece], count: int, start: int | None = None, end: int | None = None) -> list[Bucket]:
    """At most ``count`` buckets of equal step width over ``[start, end]`` (default: the data's range).

    ``pieces`` are (steps, values, run_id) in step order, each with sorted steps: one piece for a plain
    series, one per lineage segment for a stitched one. Empty buckets are left out. ``min``/``max`` skip
    NaN (``fmin``/``fmax``), so a NaN never hides the rest of its bucket and never becomes 0; a bucket of
    only NaN has ``min``/``max`` None. ``last`` is the value at the bucket's highest step, as logged.
    """
    import numpy as np

    filled = [piece for piece in pieces if len(piece[0])]
    if not filled:
        return []
    steps = np.concatenate([piece[0] for piece in filled])
    values = np.concatenate([piece[1] for piece in filled])
    owners = np.concatenate([np.full(len(piece[0]), piece[2], dtype=np.int64) for piece in filled])
    low = int(steps[0]) if start is None else start
    high = int(steps[-1]) if end is None else end
    width = max(1, -(-(high - low + 1) // count))  # ceiling division: count buckets cover the range
    index = _bucket_index(steps, low, high, width)
    starts = np.concatenate(([0], np.flatnonzero(index[1:] != index[:-1]) + 1))
    ends = np.append(starts[1:], len(steps)) - 1
    lows = np.fmin.reduceat(values, starts)
    highs = np.fmax.reduceat(values, starts)
    return [
        Bucket(
            start=first,
            end=last_step,
            min=None if math.isnan(lo) else lo,  # NaN only when every value of the bucket is NaN
            max=None if math.isnan(hi) else hi,
            last=last_value,
            count=last_index - first_index + 1,
            run_id=owner,
        )
        for first, last_step, lo, hi, last_value, first_index, last_index, owner in zip(
            steps[starts].tolist(),
            steps[ends].tolist(),
            lows.tolist(),
            highs.tolist(),
            values[ends].tolist(),
            starts.tolist(),
            ends.tolist(),
            owners[ends].tolist(),
            strict=True,
        )
    ]


def _bucket_index(steps: NDArray[np.int64], low: int, high: int, width: int) -> NDArray[Any]:
    """Each step's bucket number, ``(step - low) // width``, exact over the whole int64 range."""
    import numpy as np

    if high - low <= STEP_MAX:
        index: NDArray[np.int64] = (steps - low) // width
        return index
    # A range wider than int64 holds (negative steps to large positive ones): the offsets fit in uint64,
    # where the subtraction wraps to the exact unsigned difference because every step is >= low.
    if width >= 2**64:  # one bucket for a range of 2**64 steps
        return np.zeros(len(steps), dtype=np.uint64)
    offsets: NDArray[np.uint64] = steps.view(np.uint64) - np.uint64(low % 2**64)
    wide: NDArray[np.uint64] = offsets // np.uint64(width)
    return wide
