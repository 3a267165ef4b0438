"""Environment overrides decoded by the type of the field they set (one implementation, unit and bridge)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field

from edge_app.env_overrides import OverrideError, apply_env


class Inner(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "x"
    port: int = 1
    on: bool = False
    where: Path | None = None
    mode: Literal["a", "b"] = "a"
    tags: list[str] = Field(default_factory=list)


class Other(BaseModel):
    kind: Literal["other"] = "other"
    level: float = 0.0


class Root(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ident: str = "id"
    count: int | None = None
    inner: Inner = Field(default_factory=Inner)
    either: Inner | Other | None = None
    free: dict[str, Any] = Field(default_factory=dict)
    scores: dict[str, float] = Field(default_factory=dict)


def merged(environ: dict[str, str], data: dict[str, Any] | None = None, skip: bool = False) -> dict[str, Any]:
    return apply_env(Root, data or {}, environ, "APP_", skip_unknown=skip)


@pytest.mark.parametrize(("name", "raw", "expected"), [
    ("IDENT", "1234", {"ident": "1234"}),  # a text field takes the text, digits or not
    ("IDENT", "true", {"ident": "true"}),
    ("IDENT", '"q"', {"ident": '"q"'}),
    ("IDENT", "null", {"ident": "null"}),  # no None for a field that cannot be empty
    ("COUNT", "null", {"count": None}),
    ("COUNT", "7", {"count": "7"}),  # the model's validation parses numbers
    ("INNER__PORT", "1884", {"inner": {"port": "1884"}}),
    ("INNER__WHERE", "123", {"inner": {"where": "123"}}),
    ("INNER__MODE", "b", {"inner": {"mode": "b"}}),
    ("INNER__TAGS", '["a", "b"]', {"inner": {"tags": ["a", "b"]}}),  # a list: JSON
    ("INNER", '{"port": 2}', {"inner": {"port": 2}}),  # a section: JSON
    ("EITHER__LEVEL", "0.5", {"either": {"level": "0.5"}}),  # a field of one of the union's sections
    ("FREE__A__B", "1234", {"free": {"a": {"b": 1234}}}),  # nothing known: JSON if it parses
    ("FREE__A", "text", {"free": {"a": "text"}}),
    ("SCORES__PHONE", "0.25", {"scores": {"phone": "0.25"}}),  # a mapping's values have a type
])
def test_values_are_decoded_by_the_field_type(name: str, raw: str, expected: dict[str, Any]) -> None:
    assert merged({f"APP_{name}": raw}) == expected


def test_the_decoded_values_validate_as_the_field_says() -> None:
    root = Root.model_validate(merged({"APP_IDENT": "1234", "APP_COUNT": "7", "APP_INNER__ON": "true",
                                       "APP_INNER__NAME": "0042", "APP_SCORES__A": "1e-3"}))
    assert (root.ident, root.count, root.inner.on, root.inner.name, root.scores) == ("1234", 7, True, "0042",
                                                                                      {"a": 0.001})


def test_overrides_merge_into_the_file_and_leave_it_untouched() -> None:
    data = {"inner": {"name": "file", "port": 5}, "ident": "file"}
    assert merged({"APP_INNER__PORT": "6"}, data) == {"inner": {"name": "file", "port": "6"}, "ident": "file"}
    assert data == {"inner": {"name": "file", "port": 5}, "ident": "file"}


def test_unknown_names_are_kept_for_validation_or_skipped() -> None:
    assert merged({"APP_NOPE": "1", "OTHER_X": "2", "APP_": "3"}) == {"nope": 1}
    assert merged({"APP_NOPE": "1"}, skip=True) == {}
    assert merged({"APP_INNER__NOPE": "x"}, skip=True) == {"inner": {"nope": "x"}}  # extra="forbid" names it


@pytest.mark.parametrize(("environ", "data", "message"), [
    ({"APP_IDENT__X": "1"}, {}, "APP_IDENT__X: ident is not a section"),
    ({"APP_INNER__PORT__X": "1"}, {}, "APP_INNER__PORT__X: port is not a section"),
    ({"APP_FREE__A__B": "1"}, {"free": {"a": 3}}, "APP_FREE__A__B: a is not a section"),
    ({"APP_INNER": "port=2"}, {}, "APP_INNER: expected JSON"),
    ({"APP_INNER__TAGS": "a,b"}, {}, "APP_INNER__TAGS: expected JSON"),
])
def test_impossible_overrides_name_the_variable(environ: dict[str, str], data: dict[str, Any],
                                                message: str) -> None:
    with pytest.raises(OverrideError, match=message):
        merged(environ, data)
