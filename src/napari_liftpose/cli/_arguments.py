"""Argument types that refuse nonsense at parse time: one line naming the option, exit 2.

Each function is an argparse ``type=``: it gets the text the user typed and returns the value,
or raises :class:`argparse.ArgumentTypeError`, which the parser turns into
``error: napari-liftpose train: argument --width: expected an integer >= 1, got '0'``.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

__all__ = [
    "OrderedPair",
    "at_least",
    "finite_float",
    "fraction",
    "non_negative_float",
    "odd_width",
    "positive_float",
]


def _number(text: str, kind: type) -> float | int:
    try:
        value = kind(text)
    except ValueError:
        noun = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"expected {noun}, got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def at_least(minimum: int) -> Callable[[str], int]:
    """An integer type accepting ``minimum`` and above."""

    def parse(text: str) -> int:
        value = int(_number(text, int))
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {text!r}")
        return value

    parse.__name__ = f"integer >= {minimum}"  # argparse names the type in some messages
    return parse


def finite_float(text: str) -> float:
    """Any finite number (no ``nan``, no ``inf``)."""
    return float(_number(text, float))


def positive_float(text: str) -> float:
    """A finite number > 0."""
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """A finite number >= 0."""
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value


def fraction(low_open: bool, high_open: bool) -> Callable[[str], float]:
    """A number in the interval from 0 to 1, each end open or closed as asked."""
    interval = f"{'(' if low_open else '['}0, 1{')' if high_open else ']'}"

    def parse(text: str) -> float:
        value = finite_float(text)
        too_low = value <= 0 if low_open else value < 0
        too_high = value >= 1 if high_open else value > 1
        if too_low or too_high:
            raise argparse.ArgumentTypeError(f"expected a number in {interval}, got {text!r}")
        return value

    parse.__name__ = f"number in {interval}"
    return parse


def odd_width(text: str) -> int:
    """A temporal filter width: an odd integer >= 1."""
    value = int(_number(text, int))
    if value < 1 or value % 2 == 0:
        raise argparse.ArgumentTypeError(f"expected an odd integer >= 1, got {text!r}")
    return value


class OrderedPair(argparse.Action):
    """``--option MIN MAX``: refuses ``MIN > MAX`` (values are already converted by ``type``)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # noqa: D102
        low, high = values
        if low > high:
            raise argparse.ArgumentError(self, f"expected MIN <= MAX, got {low:g} {high:g}")
        setattr(namespace, self.dest, (low, high))
