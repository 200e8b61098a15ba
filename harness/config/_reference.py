"""The sweep-file reference, a Markdown table of every key, generated from the declarations (so
the docs cannot drift from what parse and validate accept)."""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any

from harness.config._declare import Setting, declared
from harness.config._settings import SweepConfig
from harness.config._space import Choice, hypers

_TYPES = {str: "string", int: "integer", float: "float", bool: "boolean"}
_HEADER = ["| key | type | default | allowed | help |", "| --- | --- | --- | --- | --- |"]
# what each key of a [space.<name>] table is, after the hyperparameter's own help
_CHOICE_KEYS = {"values": ("list of integers", "each >= 1", "the values to try"),
                "default": ("integer", "one of values", "the first trial's value")}
_RANGE_KEYS = {"min": ("float", "", "the lowest value"), "max": ("float", "", "the highest value"),
               "default": ("float", "within [min, max]", "the first trial's value"),
               "log": ("boolean", "", "sample on a log scale")}


def reference() -> str:
    """Every sweep-file key: its type, default, allowed values and help, as a Markdown table."""
    rows = _setting_rows(SweepConfig, "") + _space_rows()
    return "\n".join(_HEADER + ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]) + "\n"


def _setting_rows(cls: type, prefix: str) -> list[list[str]]:
    defaults = {f.name: f.default for f in fields(cls)}
    rows = []
    for name, s in declared(cls).items():
        key = prefix + name
        if s.table:
            if s.read is None:  # declared key by key (a table with its own reader lists its keys itself)
                rows += _setting_rows(s.kind, f"{key}.")
            continue
        default = "(none)" if defaults[name] is MISSING else _toml(defaults[name])
        rows.append([f"`{key}`", _type(s), default, _allowed(s), s.help])
    return rows


def _space_rows() -> list[list[str]]:
    rows = []
    for name, (base, spec) in hypers().items():
        keys = _CHOICE_KEYS if isinstance(base, Choice) else _RANGE_KEYS
        for sub, (kind, allowed, what) in keys.items():
            if sub == "min":
                allowed = "> 0" if spec.positive else ">= 0"
            elif sub == "max" and spec.upper != float("inf"):
                allowed = f"<= {spec.upper}"
            default = _toml(getattr(base, sub))
            rows.append([f"`space.{name}.{sub}`", kind, default, allowed, f"{spec.help}: {what}"])
    return rows


def _type(s: Setting) -> str:
    kinds = s.kind if isinstance(s.kind, tuple) else (s.kind,)
    one = " or ".join(_TYPES.get(k, k.__name__) for k in kinds)
    return f"{one}, or a list of them (searched)" if s.listable else one


def _allowed(s: Setting) -> str:
    if s.choices:
        return ", ".join(f"`{c}`" for c in s.choices)
    return s.rule.allowed if s.rule else ""


def _toml(value: Any) -> str:
    """A value as a sweep file writes it."""
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, (tuple, list)):
        return "`[" + ", ".join(_toml(v).strip("`") for v in value) + "]`"
    return f'`"{value}"`' if isinstance(value, str) else f"`{value}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")
