"""One declaration per sweep setting, as the metadata of its dataclass field, and the reading and
checking that follow from it: a setting's type, default, allowed values, help, CLI flag and
whether it is logged are written once, where the field is."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import MISSING, dataclass, field
from typing import Any, Callable

from harness.errors import HarnessError

_KEY = "harness.setting"  # the field-metadata key of a declaration


@dataclass(frozen=True)
class Rule:
    """A bound beyond the type: `allowed` for the reference, `ok` the test, `problem` the message
    after "key: " (formatted with `value`)."""

    allowed: str
    ok: Callable[[Any], bool]
    problem: str

    @staticmethod
    def at_least(low: float) -> Rule:
        return Rule(f">= {low}", lambda v: v >= low, f"must be >= {low}, got {{value}}")

    @staticmethod
    def within(low: float, high: float) -> Rule:
        return Rule(f"[{low}, {high}]", lambda v: math.isfinite(v) and low <= v <= high,
                    f"must lie within [{low}, {high}], got {{value}}")


@dataclass(frozen=True)
class Setting:
    """How one sweep-file key is typed, bounded, documented, overridden and logged."""

    kind: type | tuple[type, ...]  # of one value, as TOML types it (a tuple: any of them); a dataclass: a table
    help: str
    choices: tuple = ()
    rule: Rule | None = None
    listable: bool = False  # a list of values is searched like a hyperparameter
    flag: str | None = None  # the `harness sweep` option that overrides it
    param: bool | Callable[[Any], bool] = False  # logged as a fixed MLflow param (callable: when it says)
    read: Callable[[str, Any], Any] | None = None  # a table's own reader, where not declared key by key
    check: Callable[[str, Any], None] | None = None  # a table's own checks, likewise

    @property
    def table(self) -> bool:
        return dataclasses.is_dataclass(self.kind)

    @property
    def flag_kind(self) -> type:
        """The type a CLI flag's text is read as: str where the file takes several (int or name)."""
        return str if isinstance(self.kind, tuple) else self.kind

    def logs(self, cfg: Any) -> bool:
        """Whether `cfg` logs this setting as a param."""
        return self.param(cfg) if callable(self.param) else self.param


def setting(default: Any, kind: type, help: str, *, choices: tuple = (), at_least: float | None = None,
            within: tuple[float, float] | None = None, rule: Rule | None = None, listable: bool = False,
            flag: str | None = None, param: bool | Callable[[Any], bool] = False) -> Any:
    """A dataclass field declaring a setting; `default` MISSING: the field has none (it is required)."""
    if at_least is not None:
        rule = Rule.at_least(at_least)
    elif within is not None:
        rule = Rule.within(*within)
    declared = Setting(kind, help, tuple(choices), rule, listable, flag, param)
    if default is MISSING:
        return field(metadata={_KEY: declared})
    return field(default=default, metadata={_KEY: declared})


def table(kind: type, help: str, *, read: Callable | None = None, check: Callable | None = None,
          param: bool | Callable[[Any], bool] = False) -> Any:
    """A dataclass field declaring a nested table, its default `kind()`."""
    declared = Setting(kind, help, param=param, read=read, check=check)
    return field(default_factory=kind, metadata={_KEY: declared})


def declared(cls: type) -> dict[str, Setting]:
    """The declared settings of a dataclass, by field name, in field order."""
    return {f.name: f.metadata[_KEY] for f in dataclasses.fields(cls) if _KEY in f.metadata}


def flagged(cls: type) -> dict[str, Setting]:
    """The declared settings that a CLI flag overrides."""
    return {name: s for name, s in declared(cls).items() if s.flag}


def as_tuple(value: Any) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def typed(key: str, value: Any, kind: type | tuple[type, ...]) -> Any:
    # bool is an int in Python; TOML keeps them apart, so must we.
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(kind, tuple) and int in kind and isinstance(value, str) and value.isdigit():
        value = int(value)  # "2" from a CLI flag is the sweep file's 2
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise HarnessError(f"{key}: expected {kind_name(kind)}, got {type(value).__name__} {value!r}")
    return value


def kind_name(kind: type | tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in kind) if isinstance(kind, tuple) else kind.__name__


def one_or_list(key: str, value: Any, kind: type) -> Any:
    """A value, or a non-empty list of distinct values (kept as a tuple)."""
    if not isinstance(value, list):
        return typed(key, value, kind)
    values = tuple(typed(key, v, kind) for v in value)
    if not values or len(set(values)) != len(values):
        raise HarnessError(f"{key}: expected one {kind_name(kind)} or a non-empty list of distinct ones")
    return values[0] if len(values) == 1 else values


def reject_unknown(where: str, table: dict[str, Any], known: set[str]) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        prefix = f"{where}." if where else ""
        raise HarnessError(f"unknown key {prefix}{unknown[0]} (allowed: {', '.join(sorted(known))})")


def one_of(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise HarnessError(f"{key}: {value!r} is not one of {', '.join(allowed)}")


def read_fields(cls: type, table: dict[str, Any], where: str = "") -> dict[str, Any]:
    """The values `table` gives for `cls`'s declared keys, each read as declared; unknown keys
    are an error. Plain keys are read before tables, so a file's own lines are named first."""
    settings = declared(cls)
    reject_unknown(where, table, set(settings))
    prefix = f"{where}." if where else ""
    values = {}
    for name, s in sorted(settings.items(), key=lambda item: item[1].table):
        if name in table:
            values[name] = _read(prefix + name, table[name], s)
    return values


def _read(key: str, value: Any, s: Setting) -> Any:
    if not s.table:
        return (one_or_list if s.listable else typed)(key, value, s.kind)
    if not isinstance(value, dict):
        raise HarnessError(f"{key}: expected a table")
    return s.read(key, value) if s.read else s.kind(**read_fields(s.kind, value, key))


def check_fields(obj: Any, where: str = "") -> None:
    """Reject a value its declaration does not allow, naming the key (each one of a searched list)."""
    prefix = f"{where}." if where else ""
    for name, s in declared(type(obj)).items():
        value, key = getattr(obj, name), prefix + name
        if s.table:
            s.check(key, value) if s.check else check_fields(value, key)
            continue
        for one in as_tuple(value) if s.listable else (value,):
            if s.choices:
                one_of(key, one, s.choices)
            if s.rule and not s.rule.ok(one):
                raise HarnessError(f"{key}: {s.rule.problem.format(value=one)}")
