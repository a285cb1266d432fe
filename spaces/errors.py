"""Turn validation errors into the one line a user should read."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from pydantic import ValidationError

T = TypeVar("T")


def check_choice(what: str, value: T, allowed: Iterable[object]) -> T:
    """``value`` if it is one of ``allowed``, else the one-line error every option of attnas
    gives: ``unknown <what> 'x'; allowed: a, b, c``."""
    options = list(allowed)
    if value not in options:
        raise ValueError(f"unknown {what} {value!r}; allowed: {', '.join(map(str, options))}")
    return value


def describe(exc: BaseException) -> str:
    """One line naming the field, the bad value and the allowed values."""
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        msg = str(err.get("msg", "")).removeprefix("Value error, ")
        loc = ".".join(str(p) for p in err.get("loc", ()))
        if err.get("type") == "extra_forbidden":
            return f"unknown key {loc!r}"
        if err.get("type") == "missing":
            return f"missing key {loc!r}"
        if err.get("type") != "value_error" and "input" in err and "got" not in msg:
            msg = f"{msg}, got {err['input']!r}"
        if loc and not msg.startswith(loc.split(".")[0]):
            return f"{loc}: {msg}"
        return msg
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
