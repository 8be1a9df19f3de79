"""log_image: every accepted input reads back pixel-identical; bad input is refused and stores nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import runlane
from runlane.blobs import BLOB_DIR

RNG = np.random.default_rng(7)
RGB = RNG.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
RGBA = RNG.integers(0, 256, size=(5, 7, 4), dtype=np.uint8)
GRAY = RNG.integers(0, 256, size=(5, 7), dtype=np.uint8)
UNIT = RNG.random(size=(5, 7, 3))  # floats in [0, 1)


@pytest.fixture
def run(store_dir: Path):  # type: ignore[no-untyped-def]
    run = runlane.init(project="images", dir=store_dir, system_metrics_interval=None)
    yield run
    run.finish()


def _stored(store: Path, run_id: int, key: str | None = None) -> list[runlane.ImageInfo]:
    with runlane.Api(store) as api:
        return api.images(run_id, key)


def _pixels(store: Path, item: runlane.ImageInfo) -> tuple[str, np.ndarray]:
    with runlane.Api(store) as api:
        image = api.open_image(item)
    assert image.format == "PNG"
    return image.mode, np.asarray(image)


def _scaled(floats: np.ndarray) -> np.ndarray:
    """The documented conversion of floats in [0, 1]: round(x * 255), half to even."""
    return np.rint(floats.astype(np.float64) * 255).astype(np.uint8)


UNIT32 = UNIT.astype(np.float32)
CMYK = Image.fromarray(RGB).convert("CMYK")
HALF = torch.tensor([[[0.0, 0.5, 1.0]]] * 3, dtype=torch.float16, requires_grad=True)

# name: (make the input, expected PIL mode, expected pixels)
ACCEPTED: dict[str, tuple[Callable[[], Any], str, np.ndarray]] = {
    "PIL RGB": (lambda: Image.fromarray(RGB), "RGB", RGB),
    "PIL RGBA": (lambda: Image.fromarray(RGBA), "RGBA", RGBA),
    "PIL L": (lambda: Image.fromarray(GRAY), "L", GRAY),
    "PIL CMYK -> RGB": (lambda: CMYK, "RGB", np.asarray(CMYK.convert("RGB"))),
    "numpy HW uint8": (lambda: GRAY, "L", GRAY),
    "numpy HWC1 uint8": (lambda: GRAY[:, :, None], "L", GRAY),
    "numpy HWC3 uint8": (lambda: RGB, "RGB", RGB),
    "numpy HWC4 uint8": (lambda: RGBA, "RGBA", RGBA),
    "numpy HWC3 float64": (lambda: UNIT, "RGB", _scaled(UNIT)),
    "numpy HW float32": (lambda: UNIT32[:, :, 0], "L", _scaled(UNIT32[:, :, 0])),
    "numpy non-contiguous": (lambda: RGB[:, ::-1], "RGB", RGB[:, ::-1]),
    "torch CHW3 uint8": (lambda: torch.from_numpy(RGB).permute(2, 0, 1), "RGB", RGB),
    "torch CHW4 uint8": (lambda: torch.from_numpy(RGBA).permute(2, 0, 1), "RGBA", RGBA),
    "torch CHW1 uint8": (lambda: torch.from_numpy(GRAY)[None], "L", GRAY),
    "torch HW uint8": (lambda: torch.from_numpy(GRAY), "L", GRAY),
    "torch CHW3 float32": (lambda: torch.from_numpy(UNIT32).permute(2, 0, 1), "RGB", _scaled(UNIT32)),
    "torch CHW3 float16, requires grad": (lambda: HALF, "RGB", np.array([[[0] * 3, [128] * 3, [255] * 3]], np.uint8)),
}


@pytest.mark.parametrize("case", list(ACCEPTED))
def test_each_accepted_input_reads_back_pixel_identical(run, store_dir: Path, case: str) -> None:  # type: ignore[no-untyped-def]
    make, mode, expected = ACCEPTED[case]
    run.log_image("sample", make(), caption=case)
    run.finish()
    (item,) = _stored(store_dir, run.id)
    assert (item.key, item.step, item.caption) == ("sample", 0, case)
    assert (item.height, item.width) == expected.shape[:2]
    stored_mode, pixels = _pixels(store_dir, item)
    assert stored_mode == mode
    np.testing.assert_array_equal(pixels, expected)


def test_float_conversion_is_documented_rounding(run, store_dir: Path) -> None:  # type: ignore[no-untyped-def]
    run.log_image("ramp", np.array([[0.0, 0.25, 0.5, 0.75, 1.0, 1 / 255, 0.5 / 255]]))
    run.finish()
    _, pixels = _pixels(store_dir, _stored(store_dir, run.id)[0])
    assert pixels.tolist() == [[0, 64, 128, 191, 255, 1, 0]]  # round(x * 255), half to even


BAD: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    ("4-D array", lambda: np.zeros((2, 4, 4, 3), dtype=np.uint8), ValueError, r"shape \(H, W\) or \(H, W, C\)"),
    ("1-D array", lambda: np.zeros(4, dtype=np.uint8), ValueError, r"shape \(H, W\) or \(H, W, C\)"),
    ("2 channels", lambda: np.zeros((4, 4, 2), dtype=np.uint8), ValueError, r"C in \(1, 3, 4\), got shape \(4, 4, 2\)"),
    ("channels first numpy", lambda: np.zeros((3, 8, 8), dtype=np.uint8), ValueError, r"transpose\(1, 2, 0\)"),
    ("float above 1", lambda: np.full((2, 2), 1.5), ValueError, r"values in \[0, 1\], found values from 1.5 to 1.5"),
    ("float below 0", lambda: np.full((2, 2), -0.1), ValueError, r"values in \[0, 1\]"),
    ("NaN", lambda: np.full((2, 2), np.nan), ValueError, "NaN or infinity"),
    ("complex", lambda: np.zeros((2, 2), dtype=complex), TypeError, "uint8 or floats in .0, 1., got dtype complex128"),
    ("strings", lambda: np.array([["a", "b"]]), TypeError, "uint8 or floats"),
    (
        "int64",
        lambda: np.zeros((2, 2), dtype=np.int64),
        TypeError,
        r"got dtype int64; convert with .astype\(np.uint8\)",
    ),
    ("bool", lambda: np.zeros((2, 2), dtype=bool), TypeError, "got dtype bool"),
    ("empty", lambda: np.zeros((0, 3), dtype=np.uint8), ValueError, "at least one pixel"),
    ("a missing file", lambda: "no-such-image.png", FileNotFoundError, "no image file at 'no-such-image.png'"),
    ("bytes of no image", lambda: b"GIF89a?", ValueError, "the 7 bytes given: not an image file"),
    ("a dict", lambda: {"path": "x.png"}, TypeError, "log_image takes a PIL image, a numpy array"),
    ("a list", lambda: [[0, 1], [2, 3]], TypeError, "got list"),
    ("None", lambda: None, TypeError, "got NoneType"),
    ("torch HWC", lambda: torch.zeros(8, 8, 3), ValueError, r"\(C, H, W\).*permute\(2, 0, 1\)"),
    ("torch 2 channels", lambda: torch.zeros(2, 8, 8), ValueError, r"C in \(1, 3, 4\)"),
    ("torch 4-D batch", lambda: torch.zeros(1, 3, 8, 8), ValueError, r"\(C, H, W\)"),
    ("torch int32", lambda: torch.zeros(3, 2, 2, dtype=torch.int32), TypeError, "got torch.int32"),
    ("torch complex", lambda: torch.zeros(3, 2, 2, dtype=torch.complex64), TypeError, "got torch.complex64"),
    ("torch float above 1", lambda: torch.full((3, 2, 2), 2.0), ValueError, r"values in \[0, 1\]"),
    ("PIL float mode", lambda: Image.new("F", (2, 2)), ValueError, "mode 'F' cannot be stored"),
    ("PIL empty", lambda: Image.new("RGB", (0, 3)), ValueError, "at least one pixel"),
]


@pytest.mark.parametrize(("case", "make", "error", "message"), BAD, ids=[case for case, *_ in BAD])
def test_bad_images_are_refused_naming_what_was_expected_and_store_nothing(
    run,
    store_dir: Path,
    case: str,
    make: Callable[[], Any],
    error: type[Exception],
    message: str,  # type: ignore[no-untyped-def]
) -> None:
    with pytest.raises(error, match=message):
        run.log_image("bad", make())
    run.finish()
    assert _stored(store_dir, run.id) == []
    assert not (store_dir / BLOB_DIR).exists()


def test_bad_keys_captions_and_steps_are_refused(run, store_dir: Path) -> None:  # type: ignore[no-untyped-def]
    image = np.zeros((2, 2), dtype=np.uint8)
    with pytest.raises(ValueError, match="metric name is empty"):
        run.log_image("", image)
    with pytest.raises(TypeError, match="metric names must be strings"):
        run.log_image(3, image)
    with pytest.raises(TypeError, match="caption must be a string, got int"):
        run.log_image("k", image, caption=5)
    with pytest.raises(ValueError, match="caption is 5000 characters"):
        run.log_image("k", image, caption="x" * 5000)
    with pytest.raises(ValueError, match="below the smallest step"):
        run.log_image("k", image, step=-(2**63) - 1)
    with pytest.raises(TypeError, match="step must be an integer"):
        run.log_image("k", image, step=1.5)
    run.finish()
    assert _stored(store_dir, run.id) == []


def test_default_step_is_that_of_the_latest_log_call(run, store_dir: Path) -> None:  # type: ignore[no-untyped-def]
    image = np.zeros((2, 2), dtype=np.uint8)
    run.log_image("a", image, caption="before any log")
    for loss in (0.3, 0.2, 0.1):
        run.log({"loss": loss})
    run.log_image("a", image, caption="after three")
    run.log({"loss": 0.0}, step=10)
    run.log_image("b", image, caption="after step 10")
    run.log_image("a", image, caption="explicit", step=7)
    run.finish()
    items = _stored(store_dir, run.id)
    assert [(i.key, i.step, i.caption) for i in items] == [
        ("a", 0, "before any log"),
        ("a", 2, "after three"),
        ("a", 7, "explicit"),
        ("b", 10, "after step 10"),
    ]
    assert [i.step for i in _stored(store_dir, run.id, "a")] == [0, 2, 7]
    assert _stored(store_dir, run.id, "c") == []


def test_identical_images_are_stored_once(run, store_dir: Path) -> None:  # type: ignore[no-untyped-def]
    run.log_image("a", RGB, step=0)
    run.log_image("b", Image.fromarray(RGB), step=1)  # the same pixels from another source
    run.log_image("c", GRAY, step=2)
    run.finish()
    first, second, third = _stored(store_dir, run.id)
    assert first.blob == second.blob != third.blob
    assert sorted(path.name for path in (store_dir / BLOB_DIR).rglob("*.png")) == sorted({first.blob, third.blob})


def test_log_image_after_finish_raises(store_dir: Path) -> None:
    run = runlane.init(project="images", dir=store_dir, system_metrics_interval=None)
    run.finish()
    with pytest.raises(runlane.RunClosedError):
        run.log_image("late", RGB)
    assert not (store_dir / BLOB_DIR).exists()


def test_a_disabled_run_accepts_log_image(store_dir: Path) -> None:
    runlane.set_enabled(False)
    run = runlane.init(project="images", dir=store_dir, capture_console=True, snapshot_code=True)
    assert isinstance(run, runlane.NoOpRun)
    run.log_image("x", RGB, caption="ignored", step=3)
    run.finish()
    assert not store_dir.exists()
