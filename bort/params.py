"""Typed access to one section of params.yaml: a wrong-typed or missing key is a one-line error.

Each stage reads only its own section (the DVC get-started convention). `section(name, schema)`
checks every key of the schema against the type it expects and names the dotted key on failure,
so `prepare.train_size: "many"` fails before any work starts, not deep inside a loop.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import yaml

from bort.errors import BortError

PARAMS_FILE = Path("params.yaml")


def _type_name(expected) -> str:
    if isinstance(expected, tuple):
        return " or ".join(_type_name(e) for e in expected)
    return "null" if expected is type(None) else expected.__name__


def load(path: Path = PARAMS_FILE) -> Dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise BortError(f"{path}: missing; expected the project's params.yaml") from None
    except yaml.YAMLError as err:
        raise BortError(f"{path}: invalid YAML ({err})") from None
    if not isinstance(data, dict):
        raise BortError(f"{path}: expected a mapping of stage sections")
    return data


def check(data, schema: Dict[str, Any], where: str, path: Path = PARAMS_FILE) -> Dict[str, Any]:
    """`data` (a params mapping at dotted key `where`) checked against `schema`."""
    if not isinstance(data, dict):
        raise BortError(f"{path}: key {where}: expected a section (mapping), got {data!r}")
    out = {}
    for key, expected in schema.items():
        if key not in data:
            raise BortError(f"{path}: key {where}.{key}: missing; expected {_type_name(expected)}")
        value = data[key]
        types = expected if isinstance(expected, tuple) else (expected,)
        ok = isinstance(value, types) and not (isinstance(value, bool) and bool not in types)
        if float in types and isinstance(value, int) and not isinstance(value, bool):
            ok, value = True, float(value)
        if not ok:
            raise BortError(f"{path}: key {where}.{key}: expected {_type_name(expected)}, "
                            f"got {type(value).__name__} {value!r}")
        out[key] = value
    unknown = sorted(set(data) - set(schema))
    if unknown:
        raise BortError(f"{path}: key {where}: unknown key(s) {unknown}; expected {sorted(schema)}")
    return out


def section(name: str, schema: Dict[str, Any], path: Path = PARAMS_FILE) -> Dict[str, Any]:
    """The `name` section, each key checked against `schema` (key -> type or tuple of types)."""
    return check(load(path).get(name), schema, name, path)
