"""A stored run as a journal: the deterministic record stream ``runlane sync`` applies to another store.

Copying a run through the same ``Store.ingest`` that the SDK's journals go through gives the copy every
guarantee of the journal path for free: a batch carries its offset range, the target commits data and
offset together, so a copy interrupted at any moment (SIGKILL included) and started again applies each
batch exactly once. That needs offsets that mean the same thing on every attempt, hence a stream that is
a pure function of what the source holds: the same records in the same order, batched at the same byte
boundaries (the offsets are those of the records encoded back to back, as in a journal file).

What the stream holds (config and tags go with ``create_run``; times, steps and stages are kept exactly):
the primary metric, the summary, every metric point (keys sorted, steps ascending), system samples, log
lines and images in the order they were stored, the environment and code files, and last, alone in its
batch, the END record with the run's status, reason and end time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from .. import journal
from ..entities import RunInfo
from ..store.base import Store

#: Bytes of encoded records per batch: the drain's figure, so memory stays flat and one request stays small.
BATCH_BYTES = 1024 * 1024
#: Points read from the source per history call, log lines and system samples per page.
READ_WINDOW = 50_000

_IMAGE_BLOB = journal.fields(journal.Image, "blob")
_FILE_BLOB = journal.fields(journal.File, "blob")


class Batch(NamedTuple):
    """Records ``[start, end)`` of a run's stream and the blobs they name (put before the batch)."""

    records: list[list[Any]]
    start: int
    end: int
    blobs: tuple[str, ...]


def data_records(store: Store, run: RunInfo) -> Iterator[list[Any]]:
    """Everything ``run`` holds in ``store`` beyond its config and tags, as journal records (no END)."""
    at = run.created_at
    if run.primary_metric is not None:
        yield list(journal.Primary.new(at, run.primary_metric, run.primary_mode or "max"))
    if run.summary:
        yield list(journal.Summary.new(at, run.summary))
    for key in sorted(run.metrics):
        yield from _metric_records(store, run.id, key)
    after: int | None = None
    while True:
        samples = store.system_samples(run.id, after=after, limit=READ_WINDOW)
        for sample in samples:
            yield list(journal.System.new(sample.time, {sample.key: sample.value}))
        if len(samples) < READ_WINDOW:
            break
        after = samples[-1].id
    after = None
    while True:
        lines = store.logs(run.id, after=after, limit=READ_WINDOW)
        for line in lines:
            yield list(journal.Text.new(line.time, line.stream, line.text))
        if len(lines) < READ_WINDOW:
            break
        after = lines[-1].id
    for image in store.images(run.id):
        yield list(
            journal.Image.new(image.time, image.key, image.step, image.caption, image.blob, image.width, image.height)
        )
    for kind in ("environment", "code"):
        found = store.run_file(run.id, kind)
        if found is not None:
            yield list(journal.File.new(found.time, found.kind, found.blob, found.meta))


def _metric_records(store: Store, run_id: int, key: str) -> Iterator[list[Any]]:
    # A long series is read in windows of points (cut at the steps the series actually holds), so a copy of
    # a run of any length holds one window in memory, not the whole history as Python objects.
    steps, _ = store.point_arrays(run_id, key)
    for first in range(0, len(steps), READ_WINDOW):
        last = min(first + READ_WINDOW, len(steps)) - 1
        history = store.history(run_id, key, int(steps[first]), int(steps[last]))
        metrics = journal.METRICS
        for step, value, time, stage in zip(history.steps, history.values, history.times, history.stages, strict=True):
            yield [metrics, time, step, stage, {key: value}]


def end_record(run: RunInfo) -> list[Any]:
    """The END record that closes the copy with the run's status, reason and end time."""
    ended = run.ended_at if run.ended_at is not None else run.started_at
    return list(journal.End.new(ended, run.status, run.status_reason))


def batches(store: Store, run: RunInfo, max_bytes: int = BATCH_BYTES) -> Iterator[Batch]:
    """The run's stream cut into batches of about ``max_bytes``; the last batch is the END record alone,
    so its offsets say where the whole stream ends (``runlane.sync.copy`` uses that to find, in one call,
    how much of an earlier copy the target holds)."""
    pack = journal.new_packer().pack
    start = 0  # offset of the first record of the batch being filled
    size = 0
    records: list[list[Any]] = []
    blobs: list[str] = []
    for record in data_records(store, run):
        size += len(pack(record))
        records.append(record)
        kind = record[0]
        if kind == journal.IMAGE:
            blobs.append(_IMAGE_BLOB(record))
        elif kind == journal.FILE:
            blobs.append(_FILE_BLOB(record))
        if size >= max_bytes:
            yield Batch(records, start, start + size, tuple(dict.fromkeys(blobs)))
            start, size, records, blobs = start + size, 0, [], []
    if records:
        yield Batch(records, start, start + size, tuple(dict.fromkeys(blobs)))
        start += size
    end = end_record(run)
    yield Batch([end], start, start + len(pack(end)), ())
