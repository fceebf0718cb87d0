"""How docs/protocol.md describes a msgspec Struct: a table of its fields, types and presence.

Shared by the frame, body and bus-message parts of ``python -m server.protocol_doc``.
"""

from __future__ import annotations

import inspect
from typing import Any

import msgspec
import msgspec.inspect as mi

from server.http import schemas as rest

_POWERS = {2**31 - 1: "2^31-1", 2**53 - 1: "2^53-1", 2**63 - 1: "2^63-1"}
_NO_NUL = rest.NO_NUL


def _number(value: int | float) -> str:
    if isinstance(value, int) and value in _POWERS:
        return _POWERS[value]
    if isinstance(value, int) and abs(value) >= 10**6 and str(abs(value)).strip("0") == "1":
        return f"{'-' if value < 0 else ''}10^{len(str(abs(value))) - 1}"
    return f"{value:_}".replace("_", ",") if isinstance(value, int) else f"{value:g}"


def _range(low: Any, high: Any) -> str:
    if low is None and high is None:
        return ""
    if low is None:
        return f" ≤ {_number(high)}"
    if high is None:
        return f" ≥ {_number(low)}"
    return f" {_number(low)}..{_number(high)}"


def describe(kind: mi.Type) -> str:
    """A type as the reference tables show it: ``string, 1..64 chars``, ``UUID``, ..."""
    if isinstance(kind, mi.UnionType):
        # Raw beside its decoded type: the server's copy encoded once, the same JSON on the wire.
        typed = [t for t in kind.types if not isinstance(t, mi.RawType)]
        others = [t for t in typed if not isinstance(t, mi.NoneType)]
        shown = " or ".join(describe(t) for t in others)
        return f"{shown} or null" if len(others) < len(typed) else shown
    if isinstance(kind, mi.StrType):
        text = "string"
        if kind.min_length is not None or kind.max_length is not None:
            low = kind.min_length if kind.min_length not in (None, 0) else None
            text += f",{_range(low, kind.max_length)} chars"
        if kind.pattern == _NO_NUL:
            text += ", no U+0000"
        elif kind.pattern is not None:
            text += f", matching `{kind.pattern}`"
        return text
    if isinstance(kind, mi.IntType):
        return "integer" + _range(kind.ge, kind.le)
    if isinstance(kind, mi.FloatType):
        return "number" + _range(kind.ge, kind.le)
    if isinstance(kind, mi.LiteralType):
        return " \\| ".join(f"`{value}`" for value in kind.values)
    if isinstance(kind, mi.DictType):
        if isinstance(kind.value_type, mi.StructType):
            return f"object of `{kind.value_type.cls.__name__}`"
        return "object"
    if isinstance(kind, mi.ListType):
        return f"list of {describe(kind.item_type)}"
    if isinstance(kind, mi.StructType):
        return f"`{kind.cls.__name__}`"
    simple: dict[type[mi.Type], str] = {
        mi.UUIDType: "UUID",
        mi.BoolType: "boolean",
        mi.DateTimeType: "RFC 3339 time",
        mi.AnyType: "any JSON",
        mi.RawType: "JSON (already encoded)",
        mi.NoneType: "null",
    }
    for cls, text in simple.items():
        if isinstance(kind, cls):
            return text
    raise ValueError(f"no description for {kind!r}")


def _presence(field: mi.Field, omit_defaults: bool) -> str:
    if field.required:
        return "required"
    if omit_defaults:
        return "left out when null" if field.default is None else "left out when default"
    if field.default is msgspec.UNSET:
        return "optional"
    if field.default_factory is not msgspec.NODEFAULT:
        return f"optional (default `{msgspec.json.encode(field.default_factory()).decode()}`)"
    if field.default is msgspec.NODEFAULT:
        return "optional"
    return f"optional (default `{msgspec.json.encode(field.default).decode()}`)"


def summary(obj: Any) -> str:
    doc = inspect.getdoc(obj) or ""
    return " ".join(doc.split("\n\n", 1)[0].split()).replace("``", "`")


def struct_table(cls: type[msgspec.Struct]) -> list[str]:
    """One Struct: its summary line, then a field table."""
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    omit = bool(cls.__struct_config__.omit_defaults)
    lines = []
    if cls.__doc__ and cls.__doc__ not in {b.__doc__ for b in cls.__mro__[1:]}:
        lines += [summary(cls), ""]
    if not info.fields:
        return [*lines, "No fields besides `type`." if info.tag else "No fields.", ""]
    lines += ["| field | type | presence |", "|---|---|---|"]
    for field in info.fields:
        lines.append(
            f"| `{field.encode_name}` | {describe(field.type)} | {_presence(field, omit)} |"
        )
    return [*lines, ""]
