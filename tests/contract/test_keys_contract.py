"""API keys in every store that keeps them (not the HTTP store: keys are managed on the server's store)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from runlane.store.base import Store
from runlane.store.keys import hash_secret, new_secret

from .conftest import FACTORIES

KEEPERS = tuple(name for name in FACTORIES if name != "http")


@pytest.fixture(params=KEEPERS)
def keeper(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    opened = FACTORIES[request.param](tmp_path)
    try:
        yield opened
    finally:
        opened.close()


def test_keys_are_found_by_their_hash_until_revoked(keeper: Store) -> None:
    assert not keeper.has_api_keys()
    secret = new_secret()
    made = keeper.create_api_key("ci", hash_secret(secret), read_only=True)
    assert (made.name, made.read_only, made.revoked_at) == ("ci", True, None)
    assert keeper.has_api_keys()
    assert keeper.api_key(hash_secret(secret)) == made
    assert keeper.api_key(hash_secret(new_secret())) is None
    revoked = keeper.revoke_api_key("ci")
    assert revoked.revoked_at is not None
    assert keeper.api_key(hash_secret(secret)) is None
    assert not keeper.has_api_keys()
    assert keeper.api_keys() == [revoked]


def test_a_name_is_unique_among_valid_keys_only(keeper: Store) -> None:
    keeper.create_api_key("ci", hash_secret(new_secret()), read_only=False)
    with pytest.raises(ValueError, match="exists already"):
        keeper.create_api_key("ci", hash_secret(new_secret()), read_only=False)
    keeper.revoke_api_key("ci")
    again = keeper.create_api_key("ci", hash_secret(new_secret()), read_only=False)
    assert [key.revoked_at is None for key in keeper.api_keys()] == [False, True]
    assert again.read_only is False
    with pytest.raises(ValueError, match="no valid API key"):
        keeper.revoke_api_key("nobody")
    with pytest.raises(ValueError, match="key name"):
        keeper.create_api_key("a/b", hash_secret(new_secret()), read_only=False)
