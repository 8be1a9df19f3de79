"""runlane.compat.runicorn against upstream Runicorn's own API (``runicorn/sdk.py``, ``enabled.py`` and the
logging handler), exercised with code written here from those sources and read back through ``runlane.Api``."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import runlane
import runlane.compat.runicorn as rn

from .conftest import run_script, script_env


@pytest.fixture(autouse=True)
def _enabled_again(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("RUNICORN_ON", raising=False)
    yield
    rn.reset_enabled()


def _lines(store: Path, uid: str) -> list[str]:
    with runlane.Api(store) as api:
        return [line.text for line in api.logs(uid)]


def test_the_logging_handler_writes_records_to_the_runs_log(store_dir: Path) -> None:
    run = rn.init(path="logs", storage=str(store_dir))
    logger = logging.getLogger("test_runicorn.train")
    logger.setLevel(logging.DEBUG)
    handler = run.get_logging_handler()
    assert isinstance(handler, logging.Handler)
    logger.addHandler(handler)
    try:
        logger.info("epoch %d done", 1)
        logger.debug("below the handler's level")  # the default level is INFO, as upstream's
        custom = run.get_logging_handler(level=logging.DEBUG, fmt="%(levelname)s:%(message)s")
        logger.addHandler(custom)
        logger.debug("now with a custom format")
        logger.removeHandler(custom)
        run.finish()
        logger.info("after finish: dropped, never raised")
    finally:
        logger.removeHandler(handler)
    assert run.id is not None
    lines = _lines(store_dir, run.id)
    assert len(lines) == 2
    time_part, level, name, message = lines[0].split(" | ")
    assert (level, name, message) == ("INFO", "test_runicorn.train", "epoch 1 done")
    assert len(time_part) == len("12:34:56")
    assert lines[1] == "DEBUG:now with a custom format"


def test_is_enabled_follows_set_enabled_and_runicorn_on(store_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert rn.is_enabled() is True
    rn.set_enabled(False)
    assert rn.is_enabled() is False
    assert isinstance(rn.init(path="off", storage=str(store_dir)), rn.NoOpRun)
    rn.reset_enabled()
    monkeypatch.setenv("RUNICORN_ON", "0")
    assert rn.is_enabled() is False
    disabled = rn.init(path="off", storage=str(store_dir))
    assert isinstance(disabled, rn.NoOpRun)
    disabled.log_dataset("d", "/nowhere")
    disabled.get_logging_handler().emit(logging.makeLogRecord({"msg": "x"}))
    with rn.enabled(True):
        assert rn.is_enabled() is True
    assert rn.is_enabled() is False
    monkeypatch.setenv("RUNICORN_ON", "yes")
    assert rn.is_enabled() is True
    rn.init(path="on", storage=str(store_dir)).finish()
    assert [p.name for p in runlane.Api(store_dir).projects()] == ["on"]


def test_a_script_with_runicorn_off_in_its_environment_records_nothing(store_dir: Path) -> None:
    code = "import runlane.compat.runicorn as rn\nrun = rn.init(path='x')\nrun.log({'a': 1})\nprint(rn.is_enabled())\n"
    result = run_script(code, store_dir, env=script_env(store_dir, RUNICORN_ON="off"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
    assert not store_dir.exists()


def test_log_image_from_a_file_path_or_bytes(store_dir: Path, tmp_path: Path) -> None:
    from PIL import Image

    png = tmp_path / "pred.png"
    Image.new("RGB", (4, 3), (10, 200, 30)).save(png)
    run = rn.init(path="media", storage=str(store_dir))
    run.log({"loss": 0.5})
    run.log_image("from_path", str(png))
    run.log_image("from_pathlike", png, 7, "explicit step and caption")  # upstream order: step, then caption
    run.log_image("from_bytes", png.read_bytes(), caption="bytes")
    run.log_image("from_array", np.zeros((2, 5, 3), dtype=np.uint8), format="jpg", quality=80)
    with pytest.raises(FileNotFoundError):
        run.log_image("missing", str(tmp_path / "nope.png"))
    run.finish()
    api = runlane.Api(store_dir)
    found = {i.key: (i.step, i.caption, i.width, i.height) for i in api.images(run.id or "")}
    assert found == {
        "from_path": (1, None, 4, 3),
        "from_pathlike": (7, "explicit step and caption", 4, 3),
        "from_bytes": (1, "bytes", 4, 3),
        "from_array": (1, None, 5, 2),
    }


def test_log_dataset_and_log_pretrained_are_metadata_records_readable_through_the_api(
    store_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    (data / "train").mkdir(parents=True)
    (data / "train" / "a.csv").write_text("x,y\n1,2\n")
    (data / "labels.txt").write_bytes(b"cat\ndog\n")
    weights = tmp_path / "resnet50.pt"
    weights.write_bytes(b"\x00weights" * 100)
    run = rn.init(path="assets", storage=str(store_dir))
    run.log_dataset("cifar-mini", str(data), context="train", description="two files")
    run.log_dataset("remote", "s3://bucket/imagenet", context="eval")
    run.log_dataset("spec", {"hf": "cifar10", "split": "test"})
    with caplog.at_level(logging.WARNING, logger="runlane"):
        run.log_pretrained("resnet50", path_or_uri=weights, source_type="torchvision", save=True)
    assert "not archived" in caplog.text
    run.log_pretrained("bert", source_type="huggingface", description="from the hub")
    with pytest.raises(ValueError, match="save=True requires path_or_uri"):
        run.log_pretrained("nothing", save=True)
    run.finish()
    summary = runlane.Api(store_dir).run(run.id or "").summary
    local, remote, spec = summary["datasets"]
    assert local["name"] == "cifar-mini"
    assert local["context"] == "train"
    assert local["uri"] == str(data)
    assert local["description"] == "two files"
    assert local["saved"] is False
    assert local["size_bytes"] == 8 + 8
    assert local["fingerprint"]["file_count"] == 2
    assert local["fingerprint"]["total_size_bytes"] == 16
    listing = hashlib.sha256()
    for relative, content in (("labels.txt", b"cat\ndog\n"), ("train/a.csv", b"x,y\n1,2\n")):
        listing.update(f"{relative}\0{len(content)}\0{hashlib.sha256(content).hexdigest()}\n".encode())
    assert local["sha256"] == listing.hexdigest()
    assert (remote["uri"], remote["sha256"], remote["size_bytes"], remote["fingerprint"]) == (
        "s3://bucket/imagenet",
        None,
        None,
        None,
    )
    assert spec["uri"] == {"hf": "cifar10", "split": "test"}
    resnet, bert = summary["pretrained"]
    assert resnet["name"] == "resnet50"
    assert resnet["source_type"] == "torchvision"
    assert resnet["path_or_uri"] == str(weights)
    assert resnet["saved"] is False
    assert resnet["size_bytes"] == 800
    assert resnet["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert (bert["path_or_uri"], bert["description"], bert["sha256"]) == (None, "from the hub", None)


def test_get_active_run_is_the_latest_run_started(store_dir: Path) -> None:
    first = rn.init(path="active", storage=str(store_dir))
    assert rn.get_active_run() is first
    second = rn.init(path="active", storage=str(store_dir))
    second.finish()
    assert rn.get_active_run() is second  # upstream keeps it after finish() too
    first.finish()
    rn.set_enabled(False)
    rn.init(path="active")
    assert rn.get_active_run() is None


def test_the_logging_docs_example_with_console_capture(store_dir: Path) -> None:
    code = """
import logging
import runlane.compat.runicorn as runicorn

run = runicorn.init(path="training/bert", capture_console=True)
logger = logging.getLogger(__name__)
logger.setLevel(logging.DEBUG)
logger.addHandler(run.get_logging_handler(level=logging.DEBUG))
logger.info("Model initialized")
logger.debug("Batch size: 32")
logger.warning("GPU memory low")
handler = run.get_logging_handler(level=logging.INFO, fmt="[%(levelname)s] %(message)s")
logger.addHandler(handler)
logger.info("Custom format")
print(run.id)
run.finish()
"""
    result = run_script(code, store_dir)
    assert result.returncode == 0, result.stderr
    uid = result.stdout.strip().splitlines()[-1]
    lines = [line for line in _lines(store_dir, uid) if " | " in line or line.startswith("[")]
    assert [line.split(" | ", 1)[1] for line in lines if " | " in line] == [
        "INFO | __main__ | Model initialized",
        "DEBUG | __main__ | Batch size: 32",
        "WARNING | __main__ | GPU memory low",
        "INFO | __main__ | Custom format",
    ]
    assert "[INFO] Custom format" in lines
