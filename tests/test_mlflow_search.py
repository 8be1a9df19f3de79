"""runlane.mlflow_search: MLflow's filter and order_by grammar, shared by the compat module and the server."""

from __future__ import annotations

import math

import pytest

from runlane import mlflow_search as search
from runlane.mlflow_search import Clause, OrderKey, Row, SearchError


def test_filters_parse_every_entity_with_aliases_and_quoted_keys() -> None:
    clauses = search.parse_filter(
        'metrics.`val/acc` > 0.9 and params.model = "tree" AND tags."mlflow.user" LIKE \'me%\''
        " and tag.mlflow.source.type = 'LOCAL' and status != 'FAILED' and run.created >= 17 and metric.x <= -1e3"
    )
    assert clauses == [
        Clause("metric", "val/acc", ">", 0.9),
        Clause("parameter", "model", "=", "tree"),
        Clause("tag", "mlflow.user", "LIKE", "me%"),
        Clause("tag", "mlflow.source.type", "=", "LOCAL"),
        Clause("attribute", "status", "!=", "FAILED"),
        Clause("attribute", "start_time", ">=", 17),
        Clause("metric", "x", "<=", -1000.0),
    ]
    assert search.parse_filter("attributes.run_id NOT IN ('a', 'b''c')") == [
        Clause("attribute", "run_id", "NOT IN", ("a", "b'c"))
    ]
    assert search.parse_filter(None) == search.parse_filter("  ") == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("metrics.loss < 'low'", "Expected numeric value type for metric"),
        ("params.lr = 0.1", "Expected a quoted string value"),
        ("metrics.loss LIKE '1%'", "Invalid comparator 'LIKE'"),
        ("attributes.status IN ('FINISHED')", "Invalid comparator 'IN'"),
        ("foo.bar = 'x'", "Invalid entity type 'foo'"),
        ("colour = 'red'", "Invalid attribute key 'colour'"),
        ("metrics.a < 1 OR metrics.b < 1", "no OR"),
        ("metrics.a <", "ends too early"),
        ("metrics.a < 1 and", "ends too early"),
        ("metrics.a ~ 1", "unexpected character"),
        ("attributes.start_time > 'yesterday'", "numeric attribute: start_time"),
    ],
)
def test_bad_filters_say_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(SearchError, match=problem):
        search.parse_filter(text)


def _rows() -> list[Row]:
    return [
        Row({"run_id": "a", "start_time": 3}, {"loss": 0.5}, {"model": "Tree"}, {"team": "cv"}),
        Row({"run_id": "b", "start_time": 2}, {"loss": math.nan}, {"model": "linear"}, {}),
        Row({"run_id": "c", "start_time": 1}, {}, {"model": "tree_2"}, {"team": "nlp"}),
        Row({"run_id": "d", "start_time": 4}, {"loss": 0.1}, {}, {"team": "cv"}),
    ]


def ids(rows: list[Row]) -> list[str]:
    return [row.attributes["run_id"] for row in rows]


def test_matching_follows_mlflow_missing_keys_never_match() -> None:
    def find(text: str) -> list[str]:
        return ids(search.filter_rows(_rows(), search.parse_filter(text)))

    assert find("metrics.loss < 1") == ["a", "d"]  # NaN compares false, c has no loss
    assert find("params.model != 'linear'") == ["a", "c"]  # d has no model: no match, even for !=
    assert find("params.model LIKE 'tree%'") == ["c"]
    assert find("params.model ILIKE 'tree%'") == ["a", "c"]
    assert find("params.model LIKE 'tree_2'") == ["c"]
    assert find("params.model LIKE 'tree.2'") == []  # only % and _ are wildcards
    assert find("tags.team = 'cv' and attributes.start_time > 3") == ["d"]


def test_sorting_puts_nan_then_missing_last_in_both_directions() -> None:
    default = [OrderKey("attribute", "start_time", False)]
    rows = _rows()
    assert ids(search.sort_rows(rows, search.parse_order_by(["metrics.loss"]), default)) == ["d", "a", "b", "c"]
    assert ids(search.sort_rows(rows, search.parse_order_by(["metrics.loss DESC"]), default)) == ["a", "d", "b", "c"]
    assert ids(search.sort_rows(rows, search.parse_order_by(["tags.team desc"]), default)) == ["c", "d", "a", "b"]
    assert ids(search.sort_rows(rows, [], default)) == ["d", "a", "b", "c"]
    with pytest.raises(SearchError, match=r"ASC\|DESC"):
        search.parse_order_by(["metrics.loss sideways"])
    with pytest.raises(SearchError, match="attributes sort on"):
        search.parse_order_by(["attributes.lifecycle_stage"])


def test_pages_walk_every_row_once_and_foreign_tokens_are_refused() -> None:
    rows = _rows()
    seen: list[str] = []
    token = None
    while True:
        chosen, token = search.page(rows, 3, token)
        seen += ids(chosen)
        if token is None:
            break
    assert seen == ids(rows)
    for bad in ("garbage!", "e30=", search.page_token(0)[:-2]):
        with pytest.raises(SearchError, match="Invalid page token"):
            search.page_offset(bad)


def test_experiment_searches_take_their_own_attributes() -> None:
    assert search.parse_filter("name LIKE 'cv/%' and creation_time > 5", search.EXPERIMENTS) == [
        Clause("attribute", "name", "LIKE", "cv/%"),
        Clause("attribute", "creation_time", ">", 5),
    ]
    with pytest.raises(SearchError, match="Invalid entity type"):
        search.parse_filter("metrics.loss < 1", search.EXPERIMENTS)
