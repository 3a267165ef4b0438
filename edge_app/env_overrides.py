"""``INVIGIL_*`` environment overrides of a TOML config, decoded by the type of the field each one sets.

One implementation for the unit (``INVIGIL_<FIELD>``) and the bridge (``INVIGIL_BRIDGE__<FIELD>``). A
variable names a field with double underscores between levels (``INVIGIL_LINK__BROKER__PORT=8883``); its
text is read as that field's type needs it:

- a text, number, boolean, path or choice field takes the text as it is, and the model's own validation
  parses it: ``INVIGIL_DEVICE_ID=1234`` is the id "1234", a numeric MQTT user name stays text;
- a section, list or mapping takes JSON: ``INVIGIL_RULES='{"preset": "strict"}'``;
- ``null`` empties a field that may be empty (``INVIGIL_AUDIO=null``);
- where the type says nothing (a value inside a free mapping), JSON if it parses, else the text.

A variable below a field that has no fields (``INVIGIL_BRIDGE__PAIRING_TTL__X``) is an error naming it.
"""

from __future__ import annotations

import enum
import json
import types
from collections.abc import Mapping
from pathlib import PurePath
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

CONTAINERS = (list, tuple, set, frozenset, dict)
ANY: list[Any] = [Any]  # a field whose type says nothing


class OverrideError(ValueError):
    """An override that cannot be applied; the message starts with the variable's name."""


def _types(annotation: Any) -> list[Any]:
    """The types a value of ``annotation`` may have: unions, ``Optional`` and ``Annotated`` opened."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _types(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return [t for arg in get_args(annotation) for t in _types(arg)]
    return [annotation]


def _is_model(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, BaseModel)


def _is_mapping(kind: Any) -> bool:
    base = get_origin(kind) or kind
    return isinstance(base, type) and issubclass(base, (dict, Mapping))


def _is_scalar(kind: Any) -> bool:
    """Text the model's validation parses itself (text, numbers, booleans, paths, choices)."""
    if get_origin(kind) is Literal:
        return True
    return isinstance(kind, type) and issubclass(kind, (str, int, float, bool, bytes, PurePath, enum.Enum))


def _below(kinds: list[Any], key: str) -> list[Any] | None:
    """The types of ``key`` inside a value of ``kinds``: ANY inside a free mapping or an unknown field (the
    model's ``extra="forbid"`` names it), None when no type of ``kinds`` has fields at all."""
    found: list[Any] = []
    sections = False
    for kind in kinds:
        if kind is Any:
            return ANY
        if _is_model(kind):
            sections = True
            if key in kind.model_fields:
                found += _types(kind.model_fields[key].annotation)
        elif _is_mapping(kind):
            sections = True
            args = get_args(kind)
            found += _types(args[1]) if len(args) == 2 else ANY
    if not sections:
        return None
    return found or ANY


def decode(name: str, raw: str, kinds: list[Any]) -> Any:
    """The value ``raw`` (the text of variable ``name``) stands for in a field of types ``kinds``."""
    if raw == "null" and type(None) in kinds:
        return None
    present = [kind for kind in kinds if kind is not type(None)]
    if Any in present or not present:
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    if all(_is_scalar(kind) for kind in present):
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        if any(_is_scalar(kind) for kind in present):
            return raw
        raise OverrideError(f"{name}: expected JSON (a section, list or mapping): {exc}") from None


def apply_env(model: type[BaseModel], data: dict[str, Any], environ: Mapping[str, str], prefix: str,
              skip_unknown: bool = False) -> dict[str, Any]:
    """A copy of ``data`` with every ``<prefix>A__B=value`` of ``environ`` set at ``a.b``, decoded by the type
    of ``model``'s field there. ``skip_unknown``: a variable whose first part names no field of ``model`` is
    not an override (another tool's ``INVIGIL_*`` setting); else it is kept, for validation to refuse."""
    merged: dict[str, Any] = json.loads(json.dumps(data, default=str))
    for name, raw in sorted(environ.items()):
        if not name.startswith(prefix) or len(name) == len(prefix):
            continue
        path = name[len(prefix):].lower().split("__")
        if skip_unknown and path[0] not in model.model_fields:
            continue
        kinds: list[Any] = [model]
        holder = merged
        for depth, key in enumerate(path):
            below = _below(kinds, key)
            if below is None:
                raise OverrideError(f"{name}: {path[depth - 1]} is not a section")
            kinds = below
            if depth == len(path) - 1:
                holder[key] = decode(name, raw, kinds)
                break
            nested = holder.setdefault(key, {})
            if not isinstance(nested, dict):
                raise OverrideError(f"{name}: {key} is not a section")
            holder = nested
    return merged
