"""Schema errors as `field.path: reason` lines, the way every layer reports them."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError


def field_path(loc: tuple[Any, ...], prefix: str = "") -> str:
    """pydantic's error location as a dotted path with [i] for list items, under `prefix`."""
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not str(part).startswith("function-"):  # validator frames are not fields
            out += ("." if out else "") + str(part)
    return out or "(document)"


def problems(err: ValidationError, prefix: str = "") -> list[str]:
    """One `field.path: reason` line per error; `prefix` names where the validated object sits (e.g. spec)."""
    return [f"{field_path(tuple(e['loc']), prefix)}: {e['msg']}" for e in err.errors(include_url=False)]
