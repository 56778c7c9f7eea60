"""Argument checks shared by every public entry point.

Options are validated before the first model call, so a bad one never wastes
paid-for work. Integers must *be* integers: ``2.7`` or ``"3"`` is refused
rather than silently truncated (``operator.index`` semantics; ``True`` is not
a count either).
"""

from __future__ import annotations

import operator
from typing import Any

__all__ = ["check_int", "check_optional_int"]


def check_int(
    name: str, value: Any, minimum: int | None = None, maximum: int | None = None
) -> int:
    """Return ``value`` as an ``int`` if it is an integer within the bounds, else raise.

    Args:
        name: The argument's name, for the message.
        value: Anything ``operator.index`` accepts (``int``, numpy integers).
        minimum: Smallest accepted value (``None``: no bound).
        maximum: Largest accepted value (``None``: no bound).

    Raises:
        TypeError: ``value`` is not an integer (a float, a string, a bool).
        ValueError: ``value`` lies outside ``[minimum, maximum]``.

    Examples:
        >>> check_int("budget", 500, 1)
        500
        >>> check_int("max_order", 2.7, 1)
        Traceback (most recent call last):
        ...
        TypeError: max_order must be an integer, got 2.7 (float).
    """
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got {value!r} (bool).")
    try:
        number = operator.index(value)
    except TypeError:
        raise TypeError(
            f"{name} must be an integer, got {value!r} ({type(value).__name__})."
        ) from None
    if minimum is not None and number < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {number}.")
    if maximum is not None and number > maximum:
        raise ValueError(f"{name} must be at most {maximum}, got {number}.")
    return int(number)


def check_optional_int(
    name: str, value: Any, minimum: int | None = None, maximum: int | None = None
) -> int | None:
    """:func:`check_int`, with ``None`` passed through."""
    return None if value is None else check_int(name, value, minimum, maximum)
