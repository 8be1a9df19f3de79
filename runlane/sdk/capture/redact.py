"""Redacting secrets from what the environment capture records: variables, URLs, the command line.

Rules (the replacement is ``<redacted>``; the name or flag stays, so you can see that it was set):

- an environment variable whose name contains TOKEN, SECRET, PASS (PASSWORD, PASSWD, PASSPHRASE), PWD
  (MYSQL_PWD), PW as a word (DB_PW), KEY, CRED (CREDS, CREDENTIALS), AUTH, PRIVATE, SIGNATURE, COOKIE, SALT,
  BEARER, DSN, WEBHOOK or CONNECTION_STRING / CONN_STR (any case) has its whole value redacted, except
  the few ordinary variables in ``ORDINARY`` (``PWD`` and ``OLDPWD`` are the shell's working directories);
- in every recorded string: the password of a URL (``https://user:<redacted>@host``), the user part of a
  URL without a password (a token used as user name: ``https://<redacted>@github.com``; not for ssh
  logins), ``name=value`` pairs whose name looks like a secret, in query strings, libpq and ODBC
  connection strings (``?token=<redacted>``, ``password=<redacted>``, ``Pwd=<redacted>;``,
  ``AccountKey=<redacted>;``), and strings shaped like well-known tokens (GitHub, GitLab, Slack, Hugging
  Face, OpenAI-style ``sk-``, AWS access key ids, JWTs);
- on the command line, the value of a flag named like a secret (``--api-key X``, ``--password=X``,
  ``--pwd X``). ``-p`` is left alone: in most Python tools it is a port, a plugin or a path, and MySQL's
  ``-pSECRET`` is not a Python program's command line.

False positives (a harmless variable with KEY in its name) cost a value in the record; a false negative
would leak a credential into a shared store, so the rules lean towards redacting.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

REDACTED = "<redacted>"

_SECRET_NAME = re.compile(
    r"TOKEN|SECRET|PASS|PWD|(?<![A-Z])PW(?![A-Z])|KEY|CRED|AUTH|PRIVATE|SIGNATURE|COOKIE|SALT|BEARER|DSN"
    r"|WEBHOOK|CONN(?:ECTION)?[_-]?STR",
    re.IGNORECASE,
)
# Variables whose names match but whose values are never secrets, and worth keeping in the record.
ORDINARY = frozenset({"PWD", "OLDPWD", "TOKENIZERS_PARALLELISM"})
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^:/?#@\s]*)(?::[^/?#@\s]*)?@")
# name=value where the name looks like a secret: query parameters, libpq ("password=x dbname=y"), ODBC and
# Azure connection strings ("Pwd=x;", "AccountKey=x;"). The value ends at a separator of any of these.
_SECRET_ASSIGNMENT = re.compile(
    r"(?P<name>(?<![A-Za-z0-9_.\-])[A-Za-z0-9_.\-]*"
    r"(?:token|key|secret|pass|pwd|auth|signature|sig|credential|creds)[A-Za-z0-9_.\-]*=)[^&#;\s]*",
    re.IGNORECASE,
)
_TOKEN_SHAPES = re.compile(
    r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|glpat-[A-Za-z0-9_\-]{20,}"
    r"|xox[abprs]-[A-Za-z0-9\-]{10,}|hf_[A-Za-z0-9]{20,}|sk-[A-Za-z0-9_\-]{20,}|AKIA[0-9A-Z]{16}"
    r"|eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,})"
)
_LOGIN_SCHEMES = ("ssh://", "git+ssh://", "ssh+git://", "sftp://")


def is_secret_name(name: str) -> bool:
    return _SECRET_NAME.search(name) is not None


def _userinfo(match: re.Match[str]) -> str:
    scheme, user = match.group("scheme"), match.group("user")
    if ":" in match.group(0)[len(scheme) :]:  # user:password@
        return f"{scheme}{user}:{REDACTED}@"
    if scheme.lower() in _LOGIN_SCHEMES:  # ssh://git@host: a login name, not a secret
        return match.group(0)
    return f"{scheme}{REDACTED}@"


def redact_text(text: str) -> str:
    """``text`` with credentials in URLs and token-shaped strings replaced."""
    text = _URL_USERINFO.sub(_userinfo, text)
    text = _SECRET_ASSIGNMENT.sub(lambda m: m.group("name") + REDACTED, text)
    return _TOKEN_SHAPES.sub(REDACTED, text)


def redact_environ(environ: Mapping[str, str]) -> dict[str, str]:
    """Environment variables, sorted by name, with secret-looking names and values redacted."""
    return {
        name: REDACTED if is_secret_name(name) and name.upper() not in ORDINARY else redact_text(value)
        for name, value in sorted(environ.items())
    }


def redact_argv(argv: list[str]) -> list[str]:
    """The command line with values of secret-looking flags and credentials in URLs redacted."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append(REDACTED)
            hide_next = False
            continue
        flag, eq, _ = arg.partition("=")
        if arg.startswith("-") and is_secret_name(flag):
            if eq:
                out.append(f"{flag}={REDACTED}")
            else:
                out.append(arg)
                hide_next = True
            continue
        out.append(redact_text(arg))
    return out
