"""Turning what users pass to ``log_image()`` into PNG bytes.

Accepted:

- a PIL image: modes ``1``, ``L``, ``LA``, ``P``, ``RGB``, ``RGBA``, ``I;16`` are stored as they are (PNG holds
  them); ``CMYK``, ``YCbCr``, ``LAB``, ``HSV`` are converted to RGB;
- a numpy array of shape (H, W) (grayscale) or (H, W, C) with C = 1 (grayscale), 3 (RGB) or 4 (RGBA);
- a torch tensor of shape (C, H, W) with C = 1, 3 or 4, or (H, W); on any device, detached;
- an encoded image file (PNG, JPEG, GIF, BMP, WebP, ... whatever PIL reads): its bytes, or its path as a
  ``str`` or ``os.PathLike``; decoded here, so a file that is not an image fails now, not in the UI.

Arrays and tensors hold ``uint8`` (stored as is) or floats in [0, 1], which become ``round(x * 255)``
(0.5 -> 128: round half to even, as numpy rounds). Anything else gets a ``TypeError`` (wrong kind or
dtype) or ``ValueError`` (wrong shape or values) naming what was expected, before anything is written.

PIL is imported here, on first use; numpy only when an array or tensor is passed (the caller has it).
"""

from __future__ import annotations

import io
import os
from typing import Any, NamedTuple

NATIVE_MODES = frozenset({"1", "L", "LA", "P", "RGB", "RGBA", "I;16"})
CONVERTED_MODES = frozenset({"CMYK", "YCbCr", "LAB", "HSV"})
CHANNELS = (1, 3, 4)


class EncodedImage(NamedTuple):
    png: bytes
    width: int
    height: int


def encode_png(image: Any) -> EncodedImage:
    """PNG bytes of ``image``; raises ``TypeError``/``ValueError`` for anything that is not an image."""
    module = type(image).__module__.split(".")[0]
    if isinstance(image, (bytes, bytearray, memoryview, str, os.PathLike)):
        picture = _from_pil(_decode_file(image))
    elif module == "PIL":
        picture = _from_pil(image)
    elif module == "numpy":
        picture = _from_array(_numpy_hwc(image), "numpy array")
    elif module == "torch":
        picture = _from_array(_torch_hwc(image), "torch tensor")
    else:
        raise TypeError(
            f"log_image takes a PIL image, a numpy array (H, W) or (H, W, C), a torch tensor (C, H, W), "
            f"or an image file's bytes or path, got {type(image).__name__}"
        )
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")  # no timestamp or other metadata: equal pixels give equal bytes
    return EncodedImage(buffer.getvalue(), picture.width, picture.height)


def _decode_file(source: bytes | bytearray | memoryview | str | os.PathLike[str]) -> Any:
    """A PIL image of an encoded image file given as its bytes or its path, fully read (the file may
    go away as soon as ``log_image`` returns)."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(source, (bytes, bytearray, memoryview)):
        stream: Any = io.BytesIO(bytes(source))
        what = f"the {len(source)} bytes given"
    else:
        stream = os.fspath(source)
        what = f"file {stream!r}"
    try:
        with Image.open(stream) as opened:
            opened.load()
            # A palette or grayscale image with transparency stays what it is; other modes PNG cannot
            # hold (CMYK JPEGs, 32-bit integer TIFFs) are converted as _from_pil says.
            return opened if opened.mode in NATIVE_MODES | CONVERTED_MODES else opened.convert("RGBA")
    except FileNotFoundError:
        raise FileNotFoundError(f"log_image: no image file at {stream!r}") from None
    except UnidentifiedImageError:
        raise ValueError(f"log_image: {what}: not an image file PIL can read") from None


def _from_pil(image: Any) -> Any:
    from PIL import Image

    if not isinstance(image, Image.Image):
        raise TypeError(f"log_image takes a PIL image, got {type(image).__name__}")
    if image.width == 0 or image.height == 0:
        raise ValueError(f"an image needs at least one pixel, got a {image.width}x{image.height} PIL image")
    if image.mode in NATIVE_MODES:
        return image
    if image.mode in CONVERTED_MODES:
        return image.convert("RGB")
    raise ValueError(
        f"PIL image mode {image.mode!r} cannot be stored; convert it to one of "
        f"{', '.join(sorted(NATIVE_MODES))} first (e.g. image.convert('RGB'))"
    )


def _numpy_hwc(array: Any) -> Any:
    import numpy as np

    if not isinstance(array, np.ndarray):
        raise TypeError(f"log_image takes a numpy array, got {type(array).__name__}")
    if array.ndim == 3 and array.shape[2] not in CHANNELS:
        raise ValueError(
            f"a numpy image must have shape (H, W) or (H, W, C) with C in {CHANNELS}, got shape {array.shape}"
            + (" (channels first? use array.transpose(1, 2, 0))" if array.shape[0] in CHANNELS else "")
        )
    if array.ndim not in (2, 3):
        raise ValueError(f"a numpy image must have shape (H, W) or (H, W, C) with C in {CHANNELS}, got {array.shape}")
    return array


def _torch_hwc(tensor: Any) -> Any:
    shape = tuple(tensor.shape)
    if len(shape) == 3 and shape[0] not in CHANNELS:
        raise ValueError(
            f"a torch image must have shape (C, H, W) with C in {CHANNELS}, or (H, W), got shape {shape}"
            + (" (channels last? use tensor.permute(2, 0, 1))" if shape[2] in CHANNELS else "")
        )
    if len(shape) not in (2, 3):
        raise ValueError(f"a torch image must have shape (C, H, W) with C in {CHANNELS}, or (H, W), got {shape}")
    if tensor.is_complex():
        raise TypeError(f"a torch image must hold uint8 or floats in [0, 1], got {tensor.dtype}")
    tensor = tensor.detach().cpu()
    if tensor.is_floating_point():
        tensor = tensor.double()  # bfloat16 and float16 have no exact numpy twin; float64 holds them exactly
    elif str(tensor.dtype) != "torch.uint8":
        raise TypeError(
            f"a torch image must hold uint8 or floats in [0, 1], got {tensor.dtype}; convert with .to(torch.uint8)"
        )
    array = tensor.numpy()
    return array.transpose(1, 2, 0) if array.ndim == 3 else array


def _from_array(array: Any, what: str) -> Any:
    import numpy as np
    from PIL import Image

    height, width = array.shape[:2]
    if height == 0 or width == 0:
        raise ValueError(f"an image needs at least one pixel, got a {what} of shape {array.shape}")
    kind = array.dtype.kind
    if kind == "f":
        if not np.isfinite(array).all():
            raise ValueError(f"a float {what} image must hold values in [0, 1], found NaN or infinity")
        low, high = float(array.min()), float(array.max())
        if low < 0.0 or high > 1.0:
            raise ValueError(
                f"a float {what} image must hold values in [0, 1], found values from {low:g} to {high:g}; "
                "scale it (e.g. x / 255) or pass uint8"
            )
        array = np.rint(array.astype(np.float64) * 255.0).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise TypeError(
            f"a {what} image must hold uint8 or floats in [0, 1], got dtype {array.dtype}; "
            "convert with .astype(np.uint8) (0-255) or scale floats to [0, 1]"
        )
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    return Image.fromarray(np.ascontiguousarray(array))
