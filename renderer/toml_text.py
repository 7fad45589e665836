"""Scene documents back to TOML text (tomllib only reads): the subset scene files are made of.

Tables of scalars, arrays and inline tables. Floats are written with repr, which reads back as the
same double, so a document survives a round trip through tomllib unchanged.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")  # fullmatch: `$` would let "key\n" pass
# TOML's short escapes; every other control character (and DEL) is written as \\uXXXX.
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f",
            "\r": "\\r"}


def dumps(doc: Mapping[str, Any], *, table_order: Sequence[str] = ()) -> str:
    """TOML text for a document of tables (top-level scalars first, as TOML requires).

    Tables named in table_order come first, in that order; the rest follow as they are in doc.
    """
    scalars = [(k, v) for k, v in doc.items() if not isinstance(v, Mapping)]
    names = [n for n in table_order if isinstance(doc.get(n), Mapping)]
    names += [k for k, v in doc.items() if isinstance(v, Mapping) and k not in names]
    lines = [f"{_key(k)} = {value(v)}" for k, v in scalars]
    for name in names:
        if lines:
            lines.append("")
        lines.append(f"[{_key(name)}]")
        lines += [f"{_key(k)} = {_table_value(v)}" for k, v in doc[name].items()]
    return "\n".join(lines) + "\n"


def value(v: Any) -> str:
    """One TOML value, inline."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return _string(v)
    if isinstance(v, dt.datetime | dt.date | dt.time):
        return v.isoformat()
    if isinstance(v, Mapping):
        if not v:
            return "{}"
        return "{ " + ", ".join(f"{_key(k)} = {value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(value(x) for x in v) + "]"
    raise TypeError(f"no TOML form for {type(v).__name__}")


def _table_value(v: Any) -> str:
    """Like value, but an array of tables (keyframes) gets one table per line, for reading."""
    if isinstance(v, list | tuple) and v and all(isinstance(x, Mapping) for x in v):
        return "[\n" + "".join(f"  {value(x)},\n" for x in v) + "]"
    return value(v)


def _key(k: str) -> str:
    return k if _BARE_KEY.fullmatch(k) else _string(k)


def _string(s: str) -> str:
    out = []
    for ch in s:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'
