"""Blobs behind the store: content-addressed puts, validated names, entities that carry names, not paths."""

from __future__ import annotations

import hashlib
import io
import os
import re
import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pytest

import runlane
from runlane import wire
from runlane.blobs import BLOB_DIR
from runlane.config import Settings
from runlane.sdk.start import blob_sink
from runlane.store import open_store

from .conftest import write

BLOB_NAME = re.compile(r"[0-9a-f]{64}\.(json|png|zip)")


def test_put_blob_is_content_addressed_and_idempotent(store_dir: Path) -> None:
    with open_store(store_dir) as store:
        name = store.put_blob(b"\x89PNG fake", "png")
        assert name == hashlib.sha256(b"\x89PNG fake").hexdigest() + ".png"
        assert store.put_blob(b"\x89PNG fake", "png") == name
        assert store.put_blob(b"other", "png") != name
        with store.open_blob(name) as blob:
            assert blob.read() == b"\x89PNG fake"
        assert store.read_blob(name) == b"\x89PNG fake"
    stored = [path for path in (store_dir / BLOB_DIR).rglob("*") if path.is_file()]
    assert sorted(path.name for path in stored) == sorted([name, hashlib.sha256(b"other").hexdigest() + ".png"])


@pytest.mark.parametrize(
    "name",
    [
        "../runlane.db",
        "/etc/passwd",
        "0" * 64 + ".png/../../runlane.db",
        "0" * 64 + ".exe",
        "A" * 64 + ".png",
        "0" * 63 + ".png",
        "",
        None,
        42,
    ],
)
def test_open_blob_refuses_anything_but_a_blob_name(store_dir: Path, name: object) -> None:
    with open_store(store_dir) as store, pytest.raises(ValueError, match="not a blob name"):
        store.open_blob(name)  # type: ignore[arg-type]


def test_a_missing_blob_is_a_store_error_naming_it(store_dir: Path) -> None:
    name = "ab" * 32 + ".zip"
    with open_store(store_dir) as store, pytest.raises(runlane.StoreError, match=f"blob {name} is not in the store"):
        store.read_blob(name)


def test_put_blob_refuses_unknown_extensions_and_what_is_not_bytes(store_dir: Path) -> None:
    with open_store(store_dir) as store:
        with pytest.raises(ValueError, match="not a blob name"):
            store.put_blob(b"x", "exe")
        with pytest.raises(TypeError, match="a blob is bytes, got str"):
            store.put_blob("x", "json")  # type: ignore[arg-type]
    assert not (store_dir / BLOB_DIR).exists()


def test_a_blob_that_fails_half_way_leaves_nothing(store_dir: Path) -> None:
    sink = blob_sink(Settings.resolve(store_dir))

    def broken(out: BinaryIO) -> None:
        out.write(b"half a zip")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        sink.put_written(broken, "zip")
    assert [path for path in (store_dir / BLOB_DIR).rglob("*") if path.is_file()] == []


def test_what_the_sdk_puts_the_store_reads(store_dir: Path) -> None:
    # The seam: a run writes blobs only through blob_sink(); for the embedded store it is the store's own.
    sink = blob_sink(Settings.resolve(store_dir))
    small = sink.put_bytes(b'{"a":1}', "json")
    large = sink.put_written(lambda out: out.write(b"z" * 3_000_000), "zip")
    with open_store(store_dir) as store:
        assert store.read_blob(small) == b'{"a":1}'
        assert store.read_blob(large) == b"z" * 3_000_000
        assert store.put_blob(b"z" * 3_000_000, "zip") == large  # the same name from either side


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "code"
    write(root, {"train.py": "print('train')\n", "pkg/model.py": "class Model: ...\n", "run.sh": "#!/bin/sh\n"})
    (root / "run.sh").chmod(0o755)
    return root


def test_entities_carry_blob_names_not_paths(store_dir: Path, workspace: Path) -> None:
    image = np.arange(12, dtype=np.uint8).reshape(3, 4)
    with runlane.init(
        project="blobs",
        dir=store_dir,
        capture_env=True,
        snapshot_code=True,
        workspace_root=workspace,
        system_metrics_interval=None,
    ) as run:
        run.log_image("sample", image, caption="ramp")
    with runlane.Api(store_dir) as api:
        (info,) = api.images(run.id)
        assert BLOB_NAME.fullmatch(info.blob)
        assert not any(isinstance(field, os.PathLike) for field in info)
        assert wire.from_wire(runlane.ImageInfo, wire.loads(wire.dumps(wire.to_wire(info)))) == info
        png = api.image_bytes(info)
        assert png.startswith(b"\x89PNG")
        assert hashlib.sha256(png).hexdigest() + ".png" == info.blob
        np.testing.assert_array_equal(np.asarray(api.open_image(info)), image)
        with pytest.raises(TypeError, match="image_bytes takes an ImageInfo"):
            api.image_bytes(info.blob)  # type: ignore[arg-type]

        environment = api.environment(run.id)
        assert environment is not None
        assert environment["python"]
        snapshot = api.code_snapshot(run.id)
        assert snapshot is not None
        with zipfile.ZipFile(io.BytesIO(snapshot)) as archive:
            assert archive.namelist() == ["pkg/model.py", "run.sh", "train.py"]
    with open_store(store_dir) as store:
        for kind in ("environment", "code"):
            found = store.run_file(run.id, kind)
            assert found is not None
            assert BLOB_NAME.fullmatch(found.blob)
            assert not any(isinstance(field, os.PathLike) for field in found)
        code = store.run_file(run.id, "code")
        assert code is not None
        assert store.read_blob(code.blob) == snapshot


def test_code_snapshot_extracts_into_a_directory(store_dir: Path, workspace: Path, tmp_path: Path) -> None:
    with runlane.init(
        project="blobs", dir=store_dir, snapshot_code=True, workspace_root=workspace, system_metrics_interval=None
    ) as run:
        pass
    target = tmp_path / "restored" / "here"
    with runlane.Api(store_dir) as api:
        assert api.code_snapshot(run.id, extract_to=target) == target
        plain = runlane.init(project="blobs", dir=store_dir, system_metrics_interval=None)
        plain.finish()
        assert api.code_snapshot(plain.id, extract_to=tmp_path / "never") is None
    restored = sorted(path.relative_to(target).as_posix() for path in target.rglob("*") if path.is_file())
    assert restored == ["pkg/model.py", "run.sh", "train.py"]
    for name in restored:
        assert (target / name).read_bytes() == (workspace / name).read_bytes()
    assert os.access(target / "run.sh", os.X_OK)
    assert not os.access(target / "train.py", os.X_OK)
    assert not (tmp_path / "never").exists()
