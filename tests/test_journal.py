"""The journal file: records survive being read while half-written, torn tails and damage."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import runlane
from runlane import journal
from runlane.journal import JournalCorruptError, JournalFile, JournalReader

from .conftest import run_script, script_env


def _record(text: str) -> bytes:
    return journal.new_packer().pack((journal.TEXT, 1.0, "log", text))  # type: ignore[no-any-return]


def test_reader_waits_for_the_rest_of_a_half_written_record(tmp_path: Path) -> None:
    path = tmp_path / "j.rlj"
    first, big = _record("small"), _record("é" * 500_000)
    with open(path, "ab", buffering=0) as out:
        out.write(first + big[:1000])
        reader = JournalReader(path)
        batch = reader.read()
        assert [r[3] for r in batch.records] == ["small"]
        assert batch.end == len(first)
        assert reader.read().records == []  # nothing new: the partial record must not be dropped
        assert reader.offset == len(first)
        out.write(big[1000:300_000])
        assert reader.read().records == []
        out.write(big[300_000:])
        batch = reader.read()
        assert [len(r[3]) for r in batch.records] == [500_000]
        assert (batch.start, batch.end) == (len(first), len(first) + len(big))
        assert reader.at_end()
        reader.close()


def test_offsets_resume_exactly_after_the_last_complete_record(tmp_path: Path) -> None:
    path = tmp_path / "j.rlj"
    records = [_record(f"line {i}") for i in range(100)]
    path.write_bytes(b"".join(records))
    reader = JournalReader(path)
    reader.read(max_bytes=len(records[0]) * 10 + 3)
    resumed_at = reader.offset
    reader.close()
    assert resumed_at == sum(len(r) for r in records[:10])
    again = JournalReader(path, resumed_at)
    texts = [r[3] for r in again.read().records]
    again.close()
    assert texts[0] == "line 10"
    assert texts[-1] == "line 99"


def test_damage_in_the_middle_keeps_what_came_before(tmp_path: Path) -> None:
    path = tmp_path / "j.rlj"
    good = _record("good")
    path.write_bytes(good + journal.new_packer().pack(("not", "a", "record")) + _record("after"))
    reader = JournalReader(path)
    assert [r[3] for r in reader.read().records] == ["good"]
    with pytest.raises(JournalCorruptError, match=f"at byte {len(good)}"):
        reader.read()
    reader.close()


def test_a_failed_append_leaves_no_torn_record(tmp_path: Path) -> None:
    file = JournalFile(tmp_path / "j.rlj")
    file.append(_record("kept"))
    file.close()
    with pytest.raises(runlane.JournalWriteError, match="closed"):
        file.append(_record("lost"))
    reader = JournalReader(tmp_path / "j.rlj")
    assert [r[3] for r in reader.read().records] == ["kept"]
    reader.close()


def test_a_torn_tail_left_by_a_dead_process_is_ignored_and_the_rest_replayed(store_dir: Path) -> None:
    # The child logs, then dies without any cleanup; we append half a record to its journal, as a
    # process killed inside write() could have left it.
    code = """
        import os, runlane
        run = runlane.init(project="torn")
        for i in range(50):
            run.log({"x": float(i)})
        print(run.id, flush=True)
        os._exit(1)
    """
    # A drain thread dies with its process, like a drain process killed along with it (kill -9 of the
    # whole group, a container stopped): the journal is left for the next process that opens the store.
    result = run_script(code, store_dir, env=script_env(store_dir, RUNLANE_DRAIN="thread"))
    assert result.returncode == 1, result.stderr
    run_id = int(result.stdout)
    [journal_path] = list((store_dir / "journals").iterdir())
    with open(journal_path, "ab") as out:
        out.write(_record("torn")[:-3])
    with runlane.Api(store_dir) as api:
        api.recover()  # what the dead process left (its drain, if any, may be first)
        info = api.run(run_id)
        assert [p.value for p in api.history(run_id, "x")] == [float(i) for i in range(50)]
        assert api.logs(run_id) == []
    assert info.status == "failed"
    assert not journal_path.exists()


def test_damage_in_a_dead_journal_is_noted_in_the_reason(store_dir: Path) -> None:
    code = """
        import os, runlane
        run = runlane.init(project="damaged")
        run.log({"x": 1.0})
        print(run.id, flush=True)
        os._exit(1)
    """
    result = run_script(code, store_dir, env=script_env(store_dir, RUNLANE_DRAIN="thread"))
    run_id = int(result.stdout)
    [journal_path] = list((store_dir / "journals").iterdir())
    size = journal_path.stat().st_size
    with open(journal_path, "ab") as out:
        out.write(b"\xc1garbage")  # 0xc1 is never valid msgpack
        out.write(_record("unreachable"))
    with runlane.Api(store_dir) as api:
        api.recover()  # what the dead process left (its drain, if any, may be first)
        info = api.run(run_id)
        assert [p.value for p in api.history(run_id, "x")] == [1.0]
    assert info.status == "failed"
    assert f"journal damaged at byte {size}" in (info.status_reason or "")


def test_journals_are_private_to_their_user(store_dir: Path) -> None:
    run = runlane.init(project="p", dir=store_dir)
    [path] = list((store_dir / "journals").iterdir())
    assert os.stat(path).st_mode & 0o077 == 0
    run.finish()


# Each record as older runlane code wrote it (plain tuples, positions by hand) and through its shape.
PNG, ZIP = "0" * 64 + ".png", "0" * 64 + ".zip"
METRICS = {"loss": 0.25, "n": 7}
AS_WRITTEN_BEFORE: list[tuple[tuple[object, ...], journal.Record]] = [
    ((journal.METRICS, 1.5, 3, "train", METRICS), journal.Metrics.new(1.5, 3, "train", METRICS)),
    ((journal.TEXT, 1.5, "log", "hi\n"), journal.Text.new(1.5, "log", "hi\n")),
    ((journal.SUMMARY, 1.5, {"a": [1, None]}), journal.Summary.new(1.5, {"a": [1, None]})),
    ((journal.CONFIG, 1.5, {"lr": 0.1}), journal.Config.new(1.5, {"lr": 0.1})),
    ((journal.TAGS, 1.5, ["a"], ["b"]), journal.Tags.new(1.5, ["a"], ["b"])),
    ((journal.PRIMARY, 1.5, "acc", "max"), journal.Primary.new(1.5, "acc", "max")),
    ((journal.IMAGE, 1.5, "img", 2, None, PNG, 4, 3), journal.Image.new(1.5, "img", 2, None, PNG, 4, 3)),
    ((journal.SYSTEM, 1.5, {"sys/cpu_percent": 50.0}), journal.System.new(1.5, {"sys/cpu_percent": 50.0})),
    ((journal.FILE, 1.5, "code", ZIP, {"files": 2}), journal.File.new(1.5, "code", ZIP, {"files": 2})),
    ((journal.END, 1.5, "finished", None), journal.End.new(1.5, "finished", None)),
]  # fmt: skip


def test_record_shapes_write_the_bytes_journals_already_hold() -> None:
    packer = journal.new_packer()
    assert {shape.kind for _, shape in AS_WRITTEN_BEFORE} == journal.RECORD_TYPES
    for plain, shaped in AS_WRITTEN_BEFORE:
        assert packer.pack(shaped) == packer.pack(plain), type(shaped).__name__
        assert tuple(shaped) == plain
        assert type(shaped)._fields[:2] == ("kind", "time")  # what record_time relies on
    # log()'s encoder writes a Metrics record without building one; pinned to the bytes on disk.
    encoded = journal.metrics_encoder(packer)(1.5, 3, "train", {"loss": 0.25, "n": 7})
    assert encoded == packer.pack(AS_WRITTEN_BEFORE[0][1])
    assert encoded.hex() == "9500cb3ff800000000000003a5747261696e82a46c6f7373cb3fd0000000000000a16e07"


def test_a_journal_written_before_the_shapes_replays_by_field_name(tmp_path: Path) -> None:
    path = tmp_path / "old.rlj"
    packer = journal.new_packer()
    path.write_bytes(b"".join(packer.pack(plain) for plain, _ in AS_WRITTEN_BEFORE))
    reader = JournalReader(path)
    records = reader.read().records
    reader.close()
    assert [tuple(record) for record in records] == [tuple(shaped) for _, shaped in AS_WRITTEN_BEFORE]
    step, values = journal.fields(journal.Metrics, "step", "values")(records[0])
    assert (step, values) == (3, {"loss": 0.25, "n": 7})
    assert journal.fields(journal.File, "file_kind")(records[journal.FILE]) == "code"  # listed in type order
    assert {journal.record_time(record) for record in records} == {1.5}
    assert not journal.is_record([journal.TEXT, 1.0, "log"])  # one element short
    assert not journal.is_record([99, 1.0])
    assert not journal.is_record([True, 1.0, {}])  # a bool is not a record type
