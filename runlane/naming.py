"""Names users type: project paths, project display keys, run references and metric keys.

Pure functions with no IO, shared by the SDK, every store and the CLI so that one rule holds
everywhere (a path rejected by ``init`` is rejected the same way by the server).
"""

from __future__ import annotations

import re
from typing import Literal, NamedTuple

DEFAULT_PROJECT = "default"
MAX_PROJECT_LENGTH = 200
MAX_KEY_LENGTH = 256

_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")
_DISPLAY_ID = re.compile(r"([A-Z]{2,4})-([1-9][0-9]*)")
_MINTED_UID = re.compile(r"[0-9a-f]{32}")
_UID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def normalize_project(path: str | None) -> str:
    """Validate a project path and return its canonical form.

    ``None`` is the default project; backslashes become ``/``; leading and trailing slashes are
    dropped. Each segment holds letters, digits, ``-``, ``_`` and ``.``; empty, ``.`` and ``..``
    segments are refused, as is anything longer than 200 characters.
    """
    if path is None:
        return DEFAULT_PROJECT
    if not isinstance(path, str):
        raise ValueError(f"project must be a string path like 'cv/resnet50', got {type(path).__name__}")
    normalized = path.replace("\\", "/").strip("/")
    if not normalized:
        raise ValueError(f"project path {path!r} is empty; use a name like 'cv/resnet50'")
    if len(normalized) > MAX_PROJECT_LENGTH:
        raise ValueError(f"project path is {len(normalized)} characters long; at most {MAX_PROJECT_LENGTH} are allowed")
    for segment in normalized.split("/"):
        if segment == "":
            raise ValueError(f"project path {path!r} has an empty segment ('//')")
        if segment in (".", ".."):
            raise ValueError(f"project path {path!r} has a {segment!r} segment; traversal is not allowed")
        if not _SEGMENT.fullmatch(segment):
            bad = sorted({ch for ch in segment if not _SEGMENT.fullmatch(ch)})
            raise ValueError(
                f"project path {path!r} has invalid character(s) {''.join(bad)!r} in segment {segment!r}; "
                "segments may hold letters, digits, '-', '_' and '.'"
            )
    return normalized


def project_key_candidates(project: str) -> list[str]:
    """Display-key candidates for a project, best first: 2-4 capital letters derived from its name.

    ``my-ml-project`` -> ``MMP``, ``cv/resnet50/baseline`` -> ``CRB``, ``default`` -> ``DEF``.
    The store takes the first candidate not used by another project.
    """
    words = [w.upper() for w in re.findall(r"[A-Za-z]+", project)]
    letters = "".join(words)
    base = "".join(w[0] for w in words[:4]) if len(words) >= 2 else letters[:3]
    if len(base) < 2:
        base = base * 2 if base else "RUN"  # "x" -> "XX"; a name without letters -> "RUN"
    candidates = [base]
    if len(base) < 4:
        # Extend with later letters of the name first: they read as the same project.
        candidates += [base + ch for ch in dict.fromkeys(letters[len(base) :])]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    stem = base[:3]
    candidates += [stem + ch for ch in alphabet]
    candidates += [stem[:2] + a + b for a in alphabet for b in alphabet]
    return list(dict.fromkeys(c for c in candidates if 2 <= len(c) <= 4))


def check_project_key(key: object) -> str:
    """A display key chosen by a user: 2-4 capital ASCII letters."""
    if not isinstance(key, str) or not re.fullmatch(r"[A-Z]{2,4}", key):
        raise ValueError(f"project key must be 2-4 capital letters like 'MMP', got {key!r}")
    return key


class RunRef(NamedTuple):
    """A parsed run reference: which column it names and the value to look up."""

    kind: Literal["id", "display_id", "uid"]
    value: int | str

    def __str__(self) -> str:
        return str(self.value)


def parse_run_ref(ref: object) -> RunRef:
    """Parse a numeric id (``12`` or ``"12"``), a display id (``"MMP-42"``) or a uid.

    A uid is the 32-hex id runlane mints, or one a user chose (see ``check_uid``).
    """
    if isinstance(ref, bool):
        raise ValueError(f"run reference must be a numeric id, display id or uid, got {ref!r}")
    if isinstance(ref, int):
        if ref < 1:
            raise ValueError(f"run id must be a positive integer, got {ref}")
        return RunRef("id", ref)
    if isinstance(ref, str):
        text = ref.strip()
        if _MINTED_UID.fullmatch(text):  # before the digit test: a minted uid may happen to be all digits
            return RunRef("uid", text)
        if text.isdigit() and text.isascii():
            return parse_run_ref(int(text))
        if _DISPLAY_ID.fullmatch(text):
            return RunRef("display_id", text)
        if _UID.fullmatch(text):
            return RunRef("uid", text)
    raise ValueError(f"run reference {ref!r} is neither a numeric id (12), a display id (ABC-12) nor a uid")


def check_uid(uid: object) -> str:
    """A uid chosen by a user for a new run: 1-64 of letters, digits, ``.``, ``_``, ``-``, starting with a
    letter or digit, and not readable as a numeric id or a display id (so any reference finds it)."""
    if not isinstance(uid, str) or not _UID.fullmatch(uid):
        raise ValueError(
            f"run id {uid!r} must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    if uid.isdigit() or _DISPLAY_ID.fullmatch(uid):
        raise ValueError(f"run id {uid!r} would read as a numeric or display id; choose another")
    return uid


def split_display_id(display_id: str) -> tuple[str, int]:
    """``"MMP-42"`` -> ``("MMP", 42)``; the caller has parsed it with ``parse_run_ref``."""
    key, number = display_id.rsplit("-", 1)
    return key, int(number)


def check_metric_key(key: object) -> str:
    """Return ``key`` if it can name a metric, else raise ``TypeError``/``ValueError`` naming it."""
    if not isinstance(key, str):
        raise TypeError(f"metric names must be strings, got {type(key).__name__}: {key!r}")
    if not key:
        raise ValueError("metric name is empty")
    if len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"metric name {key[:40]!r}... is {len(key)} characters; at most {MAX_KEY_LENGTH}")
    if any(ord(ch) < 32 for ch in key):
        raise ValueError(f"metric name {key!r} contains a control character")
    return key
