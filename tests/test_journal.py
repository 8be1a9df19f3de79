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
    texts = [r[3] for batch in journal.read_all(path, resumed_at) for r in batch.records]
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
        info = api.run(run_id)
        assert [p.value for p in api.history(run_id, "x")] == [1.0]
    assert info.status == "failed"
    assert f"journal damaged at byte {size}" in (info.status_reason or "")


def test_journals_are_private_to_their_user(store_dir: Path) -> None:
    run = runlane.init(project="p", dir=store_dir)
    [path] = list((store_dir / "journals").iterdir())
    assert os.stat(path).st_mode & 0o077 == 0
    run.finish()
