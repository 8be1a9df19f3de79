"""Fuzzing the OpenAPI document (schemathesis): whatever a client sends, a live server answers without a 5xx
and with a body its document describes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import httpx
import msgpack
import numpy as np
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    allow_header_conformance,
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

import runlane
from runlane import journal

from .servers import Server, running_server

#: Cases per operation; RUNLANE_FUZZ_EXAMPLES raises it for a longer hunt.
EXAMPLES = int(os.environ.get("RUNLANE_FUZZ_EXAMPLES", "200"))


@schemathesis.serializer("application/msgpack")
def _msgpack(context: Any, payload: Any) -> bytes:
    # The document says "binary": arbitrary bytes, which is the point (the server must refuse garbage).
    return payload if isinstance(payload, bytes) else bytes(msgpack.packb(payload, use_bin_type=True))


@pytest.fixture(scope="module")
def fuzzed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("fuzz")
    store = root / "store"
    run = runlane.init(project="fuzz", dir=store, config={"x": float("nan")}, capture_env=True)
    for step in range(50):
        run.log({"loss": 1.0 / (step + 1)}, step=step)
    run.log_text("a line")
    run.log_image("img", np.zeros((2, 2, 3), dtype=np.uint8))
    run.finish()
    with running_server(store, root / "server.log") as server:
        yield server
        assert "Traceback" not in server.stderr()


@pytest.fixture(scope="module")
def api_schema(fuzzed_server: Server) -> Any:
    return schemathesis.openapi.from_url(f"{fuzzed_server.url}/api/v1/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.mark.slow
@pytest.mark.timeout(1800)  # every operation runs as a subtest of this one test: ~30 operations x EXAMPLES
@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_request_gets_a_server_error_or_an_undocumented_answer(case: Any) -> None:
    # What the issue asks of every answer: no 5xx, a documented status, content type, headers and body.
    # Not schemathesis's positive/negative data checks: the document does not spell out every rule a
    # value must follow (a project path's segments, a fork step within the parent's range), and such a
    # request is a 400 naming the field, which is what it should be.
    case.call_and_validate(
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_headers_conformance,
            response_schema_conformance,
            allow_header_conformance,
        ]
    )


def _values() -> st.SearchStrategy[Any]:
    leaves = (
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**63), max_value=2**64 - 1)
        | st.floats(allow_nan=True, allow_infinity=True)
        | st.text(max_size=20)
        | st.binary(max_size=8)
        | st.sampled_from(["stdout", "log", "running", "finished", "max", "code", BLOB])
    )
    return st.recursive(
        leaves,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=12,
    )


def _record() -> st.SearchStrategy[list[Any]]:
    def shaped(kind: int) -> st.SearchStrategy[list[Any]]:
        arity = len(journal.SHAPES[kind]._fields) if kind in journal.SHAPES else 3
        size = st.sampled_from([arity, arity, arity, arity - 1, arity + 1])
        return size.flatmap(lambda n: st.lists(_values(), min_size=max(n - 1, 0), max_size=max(n - 1, 0))).map(
            lambda rest: [kind, *rest]
        )

    return st.integers(min_value=-1, max_value=11).flatmap(shaped)


BLOB = "ab" * 32 + ".png"


def _good_record() -> st.SearchStrategy[list[Any]]:
    """Records a client may send: the fuzz must also reach the store, not only the checks in front of it."""
    now = st.floats(min_value=0, max_value=2e9)
    number = st.floats(allow_nan=True, allow_infinity=True) | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    key = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FFF), min_size=1, max_size=12)
    plain = st.recursive(
        st.none()
        | st.booleans()
        | st.integers(min_value=-(2**63), max_value=2**63 - 1)
        | st.floats()
        | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
        max_leaves=8,
    )
    step = st.integers(min_value=-(2**63), max_value=2**64 - 1)
    return st.one_of(
        st.tuples(st.just(journal.METRICS), now, step, st.none() | st.text(max_size=5),
                  st.dictionaries(key, number, max_size=4)),
        st.tuples(st.just(journal.TEXT), now, st.sampled_from(["stdout", "stderr", "log"]), st.text(max_size=40)),
        st.tuples(st.just(journal.SUMMARY), now, st.dictionaries(st.text(max_size=6), plain, max_size=3)),
        st.tuples(st.just(journal.CONFIG), now, st.dictionaries(st.text(max_size=6), plain, max_size=3)),
        st.tuples(st.just(journal.TAGS), now, st.lists(st.text(min_size=1, max_size=5), max_size=2),
                  st.lists(st.text(min_size=1, max_size=5), max_size=2)),
        st.tuples(st.just(journal.PRIMARY), now, key, st.sampled_from(["max", "min"])),
        st.tuples(st.just(journal.SYSTEM), now, st.dictionaries(key, number, max_size=3)),
    ).map(list)  # fmt: skip


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_journal_batches_of_any_shape_are_applied_or_refused_never_a_server_error(fuzzed_server: Server) -> None:
    """The batch body is msgpack, beyond what the document can describe: records of every type with
    values of every kind, well-formed or one field off, go to a live server."""
    client = httpx.Client(base_url=f"{fuzzed_server.url}/api/v1", timeout=60)
    writer = {"id": "fuzz-writer", "host": "h", "pid": 1, "journal": "j"}
    created = client.post("/runs", json={"run": {"uid": "fuzz-batches", "project": "fuzz"}, "writer": writer})
    run_id = created.json()["id"]
    offset = [0]
    answers: dict[int, int] = {}

    @given(st.lists(_good_record() | _good_record() | _record(), min_size=1, max_size=3))
    @settings(max_examples=EXAMPLES * 2, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    def offer(records: list[list[Any]]) -> None:
        body = msgpack.packb(records, use_bin_type=True)
        start, end = offset[0], offset[0] + len(body)
        response = client.post("/writers/fuzz-writer/batches", params={"run_id": run_id, "start": start, "end": end},
                               content=body)  # fmt: skip
        answers[response.status_code] = answers.get(response.status_code, 0) + 1
        assert response.status_code in (200, 400, 409), response.text
        assert response.json()["error" if response.status_code != 200 else "applied"] is not None
        if response.status_code == 200:
            offset[0] = end

    try:
        offer()
    finally:
        client.close()
    assert answers.get(200, 0) > 0  # some batches were good enough to apply: the fuzz reached the store
    assert answers.get(400, 0) > 0
