"""Names users type: project names, project display keys, run references and metric keys.

Pure functions with no IO, shared by the SDK, every store and the CLI so that one rule holds
everywhere (a path rejected by ``init`` is rejected the same way by the server).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal, NamedTuple

DEFAULT_PROJECT = "default"
MAX_PROJECT_LENGTH = 200
MAX_KEY_LENGTH = 256

_DISPLAY_ID = re.compile(r"([A-Z]{2,4})-([1-9][0-9]*)")
_MINTED_UID = re.compile(r"[0-9a-f]{32}")
_UID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def normalize_project(path: str | None) -> str:
    """Validate a project name and return its canonical form.

    A name is free text split into segments by ``/`` (MLflow experiment names such as
    ``Social NLP Experiments`` or ``/Users/me/exp`` are projects and come back exactly). ``None`` is the
    default project; backslashes become ``/`` (Runicorn); trailing slashes are dropped. A leading ``/`` is
    kept as part of the name, so ``/Users/me/exp`` and ``Users/me/exp`` are two projects that share the
    folders ``project_segments`` gives for the tree. A segment may hold any printable character of any
    script, but no control character (see ``_is_control``); empty, ``.`` and ``..`` segments are refused,
    as are segments with leading or trailing whitespace and names longer than 200 characters. The name
    is only ever a value in the store: it never becomes a filesystem path.
    """
    if path is None:
        return DEFAULT_PROJECT
    if not isinstance(path, str):
        raise ValueError(f"project must be a string like 'cv/resnet50', got {type(path).__name__}")
    normalized = path.replace("\\", "/").rstrip("/")
    body = normalized[1:] if normalized.startswith("/") else normalized
    if not body:
        raise ValueError(f"project name {path!r} is empty; use a name like 'cv/resnet50'")
    if len(normalized) > MAX_PROJECT_LENGTH:
        raise ValueError(f"project name is {len(normalized)} characters long; at most {MAX_PROJECT_LENGTH} are allowed")
    bad = sorted({ch for ch in normalized if _is_control(ch)})
    if bad:
        shown = ", ".join(f"U+{ord(ch):04X}" for ch in bad)
        raise ValueError(f"project name {path!r} contains control character(s) {shown}")
    for segment in body.split("/"):
        if segment == "":
            raise ValueError(f"project name {path!r} has an empty segment ('//')")
        if segment in (".", ".."):
            raise ValueError(f"project name {path!r} has a {segment!r} segment; traversal is not allowed")
        if segment != segment.strip():
            raise ValueError(f"project name {path!r} has a segment with leading or trailing spaces: {segment!r}")
    return normalized


def project_segments(name: str) -> list[str]:
    """The folders and leaf of a canonical project name, for a tree: ``"/Users/me/exp"`` ->
    ``["Users", "me", "exp"]`` (a leading ``/`` does not make an empty folder)."""
    return name.removeprefix("/").split("/")


# Bidirectional embeddings, overrides and isolates reorder how the rest of a line is shown, so a name
# holding them can display as another name (CVE-2021-42574); they are format characters (Cf), unlike
# the zero-width joiners some scripts and emoji need, which stay allowed.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _is_control(ch: str) -> bool:
    """C0, DEL and C1 controls (Cc), lone surrogates (Cs: not encodable), line and paragraph separators
    (Zl, Zp: they break a name over lines) and bidi controls."""
    return unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp") or ch in _BIDI_CONTROLS


def _latin_initial(ch: str) -> str:
    """The capital Latin letter a letter reads as: itself, its base letter (``é`` -> ``E``), or the
    first letter of its Unicode name's last word (Cyrillic ``э`` 'CYRILLIC SMALL LETTER E' -> ``E``,
    Greek ``β`` 'GREEK SMALL LETTER BETA' -> ``B``); ``""`` when it has none (CJK ideographs)."""
    base = unicodedata.normalize("NFKD", ch)[:1].upper()
    if "A" <= base <= "Z":
        return base
    name = unicodedata.name(ch, "")
    if " LETTER " not in name:
        return ""
    initial = name.rsplit(" ", 1)[-1][:1]
    return initial if "A" <= initial <= "Z" else ""


def project_key_candidates(project: str) -> list[str]:
    """Display-key candidates for a project, best first: 2-4 capital letters derived from its name.

    ``my-ml-project`` -> ``MMP``, ``cv/resnet50/baseline`` -> ``CRB``, ``default`` -> ``DEF``. Letters
    of any script count, read as Latin letters (``_latin_initial``). The store takes the first candidate
    not used by another project.
    """
    words = ["".join(_latin_initial(ch) for ch in word) for word in re.findall(r"[^\W\d_]+", project)]
    words = [w for w in words if w]
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
