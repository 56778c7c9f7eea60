"""Argument checks shared by every public entry point.

Options are validated before the first model call, so a bad one never wastes
paid-for work. Integers must *be* integers: ``2.7`` or ``"3"`` is refused
rather than silently truncated (``operator.index`` semantics; ``True`` is not
a count either).
"""

from __future__ import annotations

import math
import numbers
import operator
import os
from typing import Any

__all__ = [
    "check_feature_names",
    "check_int",
    "check_n_jobs",
    "check_optional_int",
    "check_real",
    "threads_for",
    "usable_cores",
]


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


def check_real(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Return ``value`` as a finite ``float`` within ``[low, high]`` (or open ends), else raise.

    Args:
        name: The argument's name, for the message.
        value: A real number (``int``, ``float``, numpy scalars); not a bool or a string.
        low: Smallest accepted value (``None``: no bound).
        high: Largest accepted value (``None``: no bound).
        low_open: Exclude ``low`` itself.
        high_open: Exclude ``high`` itself.

    Raises:
        TypeError: ``value`` is not a real number.
        ValueError: ``value`` is NaN, infinite or outside the interval.

    Examples:
        >>> check_real("energy", 0.95, 0.0, 1.0, low_open=True)
        0.95
        >>> check_real("energy", 0.0, 0.0, 1.0, low_open=True)
        Traceback (most recent call last):
        ...
        ValueError: energy must lie in (0.0, 1.0], got 0.0.
    """
    if isinstance(value, bool | str) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} ({type(value).__name__}).")
    number = float(value)
    interval = (
        f"{'(' if low_open else '['}{'-inf' if low is None else low}, "
        f"{'inf' if high is None else high}{')' if high_open else ']'}"
    )
    if (
        not math.isfinite(number)
        or (low is not None and (number < low or (low_open and number == low)))
        or (high is not None and (number > high or (high_open and number == high)))
    ):
        raise ValueError(f"{name} must lie in {interval}, got {value!r}.")
    return number


def check_feature_names(feature_names: Any, n_features: int) -> list[str] | None:
    """``feature_names`` as a list of ``n_features`` strings (``None`` stays), else raise.

    Examples:
        >>> check_feature_names(("not", 2), 2)
        ['not', '2']
    """
    if feature_names is None:
        return None
    if isinstance(feature_names, str | bytes):  # it would become one name per character
        raise TypeError(
            "feature_names must be a sequence of names, got the single string "
            f"{feature_names!r}: pass a list, e.g. text.split()."
        )
    names = [str(name) for name in feature_names]
    if len(names) != n_features:
        raise ValueError(f"Got {len(names)} feature names for {n_features} features.")
    return names


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one).

    What ``n_jobs="auto"`` and the executors' default worker count resolve to.
    """
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def check_n_jobs(n_jobs: Any) -> int | str | None:
    """``n_jobs`` as the estimators take it (see :func:`threads_for`), checked.

    Args:
        n_jobs: ``"auto"``, ``None`` or an integer.

    Returns:
        ``n_jobs`` unchanged.

    Raises:
        ValueError: A string other than ``"auto"``.
        TypeError: Neither ``None``, a string nor an integer.
    """
    if n_jobs != "auto" and n_jobs is not None:
        if isinstance(n_jobs, str):
            raise ValueError(f"n_jobs must be 'auto', None or an integer, got {n_jobs!r}.")
        check_int("n_jobs", n_jobs)  # <= 0: every usable core
    return n_jobs


def threads_for(n_jobs: int | str | None) -> int:
    """The threads a checked ``n_jobs`` asks for.

    Args:
        n_jobs: ``None`` (one), ``"auto"`` or an int ``<= 0`` (one per usable
            core, :func:`usable_cores`), or a positive count.

    Returns:
        The number of threads, at least 1.

    >>> threads_for(None), threads_for(3)
    (1, 3)
    """
    if n_jobs is None:
        return 1
    if n_jobs == "auto" or int(n_jobs) <= 0:
        return usable_cores()
    return int(n_jobs)
