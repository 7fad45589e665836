"""Scene documents written back as TOML read back unchanged."""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from renderer.scene import SCHEMA
from renderer.toml_text import dumps

EXAMPLES = Path(__file__).resolve().parents[2] / "renderer" / "examples"


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.toml")))
def test_example_scenes_round_trip(name: str) -> None:
    doc = tomllib.loads((EXAMPLES / name).read_text())
    text = dumps(doc, table_order=tuple(SCHEMA))
    assert tomllib.loads(text) == doc
    # Tables in schema order, whatever the order in the document.
    heads = [line for line in text.splitlines() if line.startswith("[") and "=" not in line]
    assert heads == [f"[{t}]" for t in SCHEMA if t in doc]


def test_awkward_values_round_trip() -> None:
    doc = {"title": "top-level scalar", "cloud": {
        "quote\"key": 'a "quoted" \\ back\tslash\nnew line \x01 \x7f é ✓ 😀',
        "nested": {"deep": [1, 2.5, -0.0, 1e-300, float("inf")], "empty": {}},
        "when": dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC), "day": dt.date(2024, 1, 2),
        "flags": [True, False], "list of tables": [{"a": 1}, {"b": "x"}]}}
    assert tomllib.loads(dumps(doc)) == doc


scalars = (st.booleans() | st.integers(-2**63, 2**63 - 1) | st.text()
           | st.floats(allow_nan=False))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(min_size=1), inner, max_size=4), max_leaves=12)


def test_a_key_ending_in_a_newline_is_quoted() -> None:
    # Found by the property below: a regex `$` also matches before a final newline.
    doc = {"0": {}, "0\n": {"0\n": []}}
    assert '["0\\n"]' in dumps(doc)
    assert tomllib.loads(dumps(doc)) == doc


@given(st.dictionaries(st.text(min_size=1), st.dictionaries(st.text(min_size=1), values,
                                                           max_size=5), max_size=4))
def test_any_document_of_tables_round_trips(doc: dict) -> None:
    assert tomllib.loads(dumps(doc)) == doc
