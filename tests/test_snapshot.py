"""Code snapshots: git's file list or a walk, never the store, limits, determinism and one stored archive."""

from __future__ import annotations

import io
import os
import stat
import zipfile
from pathlib import Path

import pytest

import runlane
from runlane.blobs import BLOB_DIR
from runlane.sdk.capture.snapshot import MAX_BYTES, MAX_FILES

from .conftest import git, write


def _snapshot(store: Path, run_id: int) -> bytes:
    with runlane.Api(store) as api:
        data = api.code_snapshot(run_id)
    assert data is not None
    return data


def _names(data: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.namelist()


def _zips(store: Path) -> list[Path]:
    return sorted((store / BLOB_DIR).rglob("*.zip"))


def _snap(store: Path, **options: object) -> runlane.Run:
    run = runlane.init(project="code", dir=store, snapshot_code=True, system_metrics_interval=None, **options)  # type: ignore[arg-type]
    assert isinstance(run, runlane.Run)
    run.finish()
    return run


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    write(
        root,
        {
            ".gitignore": "*.log\ndata/\n",
            "train.py": "print('train')\n",
            "pkg/__init__.py": "",
            "pkg/model.py": "class Model: ...\n",
            "gone.py": "deleted from the work tree below\n",
            "run.sh": "#!/bin/sh\npython train.py\n",
        },
    )
    (root / "run.sh").chmod(0o775)
    os.symlink("train.py", root / "link.py")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "first")
    (root / "gone.py").unlink()
    write(root, {"new.py": "untracked, not ignored\n", "debug.log": "ignored\n", "data/big.bin": b"\0" * 100})
    return root


def test_snapshot_holds_gits_file_list_without_the_store(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = repo / "store"  # inside the repository and not ignored: must still never be snapshotted
    (repo / "pkg").mkdir(exist_ok=True)
    monkeypatch.chdir(repo / "pkg")  # the default root is the work tree's top, not the current directory
    run = _snap(store)
    names = _names(_snapshot(store, run.id))

    listed = git(repo, "ls-files", "--cached", "--others", "--exclude-standard", "-z").split("\0")
    expected = sorted(
        name
        for name in set(listed)
        if name and not name.startswith("store/") and (repo / name).exists() and not (repo / name).is_symlink()
    )
    assert names == expected
    assert names == [".gitignore", "new.py", "pkg/__init__.py", "pkg/model.py", "run.sh", "train.py"]
    assert any(name.startswith("store/") for name in listed)  # git would have listed the store
    with zipfile.ZipFile(io.BytesIO(_snapshot(store, run.id))) as archive:
        for info in archive.infolist():
            assert archive.read(info) == (repo / info.filename).read_bytes()
            assert info.date_time == (1980, 1, 1, 0, 0, 0)
            mode = stat.S_IMODE(info.external_attr >> 16)
            assert mode == (0o755 if info.filename == "run.sh" else 0o644), info.filename
    with runlane.Api(store) as api:
        files = api.run(run.id)
    assert files.status == "finished"


def test_two_runs_of_the_same_code_share_one_stored_archive(repo: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    first = _snap(store, workspace_root=repo)
    (repo / "train.py").touch()  # a new modification time, the same code
    second = _snap(store, workspace_root=repo)
    assert _snapshot(store, first.id) == _snapshot(store, second.id)
    assert [path.read_bytes() for path in _zips(store)] == [_snapshot(store, first.id)]

    (repo / "train.py").write_text("print('changed')\n")
    third = _snap(store, workspace_root=repo)
    assert _snapshot(store, third.id) != _snapshot(store, first.id)
    assert len(_zips(store)) == 2
    with zipfile.ZipFile(io.BytesIO(_snapshot(store, third.id))) as archive:
        assert archive.read("train.py") == b"print('changed')\n"


def test_outside_git_a_walk_with_sensible_excludes(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    write(
        root,
        {
            "train.py": "",
            "conf/base.yaml": "",
            "README": "",
            "__pycache__/train.cpython-311.pyc": "",
            "pkg/mod.pyc": "",
            ".venv/lib/site.py": "",
            "venv/lib/site.py": "",
            "node_modules/x/index.js": "",
            ".git/HEAD": "",
            ".runlane/runlane.db": "",
            ".mypy_cache/x.json": "",
            "pkg.egg-info/PKG-INFO": "",
            ".DS_Store": "",
        },
    )
    os.symlink(tmp_path, root / "outside")  # a link out of the workspace is never followed
    store = root / "my-store"
    run = _snap(store, workspace_root=root)
    assert _names(_snapshot(store, run.id)) == ["README", "conf/base.yaml", "train.py"]
    with runlane.Api(store) as api:
        assert api.run(run.id).status == "finished"


def test_the_file_count_limit_names_itself_and_force_snapshot_overrides_it(tmp_path: Path) -> None:
    root = tmp_path / "many"
    root.mkdir()
    for i in range(MAX_FILES + 1):
        (root / f"f{i:05d}.txt").write_text(str(i))
    store = tmp_path / "store"
    with pytest.raises(runlane.SnapshotTooLargeError, match=r"more than 5,000 files.*force_snapshot=True"):
        runlane.init(project="code", dir=store, snapshot_code=True, workspace_root=root)
    assert not store.exists()  # refused before any run was created
    run = _snap(store, workspace_root=root, force_snapshot=True)
    assert len(_names(_snapshot(store, run.id))) == MAX_FILES + 1


def test_the_size_limit_names_itself_and_force_snapshot_overrides_it(tmp_path: Path) -> None:
    root = tmp_path / "big"
    root.mkdir()
    (root / "train.py").write_text("")
    with open(root / "weights.bin", "wb") as weights:
        weights.truncate(MAX_BYTES + 1)  # sparse: cheap to create, counted at its full size
    store = tmp_path / "store"
    with pytest.raises(runlane.SnapshotTooLargeError, match=r"more than 50 MiB.*force_snapshot=True") as caught:
        runlane.init(project="code", dir=store, snapshot_code=True, workspace_root=root)
    assert isinstance(caught.value, ValueError)
    assert not store.exists()
    run = _snap(store, workspace_root=root, force_snapshot=True)
    with zipfile.ZipFile(io.BytesIO(_snapshot(store, run.id))) as archive:
        assert archive.getinfo("weights.bin").file_size == MAX_BYTES + 1


def test_bad_snapshot_options_are_refused_before_anything_is_created(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with pytest.raises(ValueError, match="snapshot_format must be 'zip'"):
        runlane.init(project="code", dir=store, snapshot_code=True, snapshot_format="tar")
    with pytest.raises(ValueError, match="is not a directory"):
        runlane.init(project="code", dir=store, snapshot_code=True, workspace_root=tmp_path / "nowhere")
    with pytest.raises(TypeError, match="workspace_root must be a path"):
        runlane.init(project="code", dir=store, snapshot_code=True, workspace_root=42)  # type: ignore[arg-type]
    assert not store.exists()
    (store / "code").mkdir(parents=True)
    with pytest.raises(ValueError, match="inside the runlane store"):
        runlane.init(project="code", dir=store, snapshot_code=True, workspace_root=store / "code")
    assert not (store / "runlane.db").exists()


def test_a_run_without_snapshot_has_none(store_dir: Path) -> None:
    run = runlane.init(project="code", dir=store_dir, system_metrics_interval=None)
    run.finish()
    with runlane.Api(store_dir) as api:
        assert api.code_snapshot(run.id) is None


def test_a_file_name_that_is_not_utf8_is_skipped_and_the_snapshot_still_recorded(tmp_path: Path) -> None:
    root = tmp_path / "names"
    write(root, {"train.py": "print('ok')\n"})
    (root / os.fsdecode(b"caf\xe9.py")).write_text("latin-1 name\n")  # not UTF-8: a zip entry cannot hold it
    store = tmp_path / "store"
    run = _snap(store, workspace_root=root)
    assert _names(_snapshot(store, run.id)) == ["train.py"]
