"""params.yaml as typed settings: one frozen dataclass per section, checked when it is built.

Each stage reads only its own section (the DVC get-started convention) through a `Section`
dataclass declared next to the code that uses it (`bort.extraction.bert.ExtractConfig`,
`bort.finetune.FinetuneSection`, ...). Building one checks every field against its annotation --
int, float (an int is accepted), bool, str, Optional, Literal choices, lists, string-keyed
mappings, nested sections -- then the section's own cross-field rules (`validate`), so a bad
value ends, before any work starts, in one line that names the dotted key:

    params.yaml: key finetune.heldout: expected one of 'auto', 'test', 'dev_half', got 'tset'

params.yaml must name every field of its section, and nothing else: a missing or unknown key is
an error, so a deleted line or a typo never silently falls back to a default. Defaults, where a
field has one, serve code that builds a section itself (tests, a derived configuration); they are
params.yaml's own values (a test keeps them equal).
"""
from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path
from typing import Any, Dict, Literal, Union

import yaml

from bort.errors import BortError

PARAMS_FILE = Path("params.yaml")


class ParamError(BortError):
    """A bad value at a dotted key; the loader adds the file name and the section's prefix."""

    def __init__(self, key: str, message: str):
        super().__init__(f"key {key}: {message}")
        self.key, self.message = key, message

    def under(self, prefix: str) -> "ParamError":
        return ParamError(f"{prefix}.{self.key}" if prefix else self.key, self.message)


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


def type_name(hint) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin is Union:
        return " or ".join(type_name(a) for a in args)
    if origin in (list, tuple):
        return f"a list of {type_name(args[0])}"
    if origin is dict:
        return f"a mapping of {type_name(args[1])}"
    if dataclasses.is_dataclass(hint):
        return "a section (mapping)"
    return "null" if hint is type(None) else hint.__name__


def convert(hint, value, key: str):
    """`value` checked against the annotation `hint` (and an int made a float where a float is
    expected); a mismatch is a ParamError at `key`."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        return hint.build(value, key)
    if origin is Literal:
        if value in args and type(value) in {type(a) for a in args}:
            return value
        raise ParamError(key, f"expected {type_name(hint)}, got {value!r}")
    if origin is Union:
        for option in args:
            try:
                return convert(option, value, key)
            except ParamError:
                continue
        raise _mismatch(hint, value, key)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise _mismatch(hint, value, key)
        items = [convert(args[0], v, f"{key}[{k}]") for k, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise _mismatch(hint, value, key)
        return {k: convert(args[1], v, f"{key}.{k}") for k, v in value.items()}
    if hint is type(None):
        if value is None:
            return None
        raise _mismatch(hint, value, key)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, hint) and not (isinstance(value, bool) and hint is not bool):
        return value
    raise _mismatch(hint, value, key)


def _mismatch(hint, value, key) -> ParamError:
    return ParamError(key, f"expected {type_name(hint)}, got {type(value).__name__} {value!r}")


class Section:
    """Base of the settings dataclasses (declare them `@dataclass(frozen=True)`): every field is
    checked against its annotation when the object is built, from params.yaml or in code."""

    def __post_init__(self):
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, convert(hints[f.name], getattr(self, f.name), f.name))
        self.validate()

    def validate(self) -> None:
        """Cross-field rules; raise ParamError(field, message)."""

    @classmethod
    def build(cls, data, where: str):
        """The section at dotted key `where` from its params.yaml mapping."""
        if not isinstance(data, dict):
            raise ParamError(where, f"expected a section (mapping), got {data!r}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ParamError(where, f"unknown key(s) {unknown}; expected {sorted(fields)}")
        hints = typing.get_type_hints(cls)
        for name in fields:
            if name not in data:
                raise ParamError(f"{where}.{name}", f"missing; expected {type_name(hints[name])}")
        try:
            return cls(**data)
        except ParamError as err:
            raise err.under(where) from None

    @classmethod
    def load(cls, name: str, path: Path = PARAMS_FILE):
        """Section `name` of params.yaml, checked; errors read `params.yaml: key name.x: ...`."""
        return checked(lambda: cls.build(load(path).get(name), name), path)


def value(name: str, hint, path: Path = PARAMS_FILE):
    """One params.yaml value that is not a section (e.g. the `tasks` list), checked; a dotted
    name reads one key of another stage's section (`finetune.heldout`) without that section's
    other keys."""
    data = load(path)
    for part in name.split("."):
        if not isinstance(data, dict) or part not in data:
            raise BortError(f"{path}: key {name}: missing; expected {type_name(hint)}")
        data = data[part]
    return checked(lambda: convert(hint, data, name), path)


def checked(build, path: Path = PARAMS_FILE):
    try:
        return build()
    except ParamError as err:
        raise BortError(f"{path}: {err}") from None


def positive(section: Section, *names: str) -> None:
    """A `validate` helper: each named integer field must be > 0."""
    for name in names:
        if getattr(section, name) <= 0:
            raise ParamError(name, f"expected a positive integer, got {getattr(section, name)}")


WORKERS_EXPECTED = ("a positive process count, a Dask scheduler address (tcp://host:8786) or a scheduler file "
                    "(a path ending in .json)")


def workers(section: Section, name: str = "workers") -> None:
    """A `validate` helper for `extract.workers` / `finetune.workers`: a count of local one-thread
    processes (bort.workers), or a Dask cluster (bort.cluster) by its scheduler's address or
    scheduler file. Only the form is checked: whether the scheduler answers is the stage's business."""
    value = getattr(section, name)
    if isinstance(value, int):
        ok = value > 0
    elif "://" in value:
        ok = re.match(r"^(tcp|tls)://[^\s/]+:\d+$", value.strip()) is not None
    else:
        ok = value.strip().endswith(".json") and not any(c.isspace() for c in value.strip())
    if not ok:
        raise ParamError(name, f"expected {WORKERS_EXPECTED}, got {value!r}")
