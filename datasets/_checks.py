"""Argument checks shared by the loaders: one-line errors in the caller's argument names."""

from __future__ import annotations

import operator
import os
from pathlib import Path
from typing import Any

import numpy as np


def is_int(value: Any) -> bool:
    """Whether ``value`` is an int as :func:`check_int` takes one: an int or a
    NumPy integer, not a bool (nor a float or a string)."""
    if isinstance(value, bool | np.bool_):
        return False
    try:
        operator.index(value)
    except TypeError:
        return False
    return True


def book_name(function: str, name: str, value: Any, default: Any, book: str,
              book_value: Any) -> Any:
    """The argument ``name`` of ``function``, which the book calls ``book``:
    ``book_value`` when that was given (and ``value`` left out, None), else
    ``value``, or ``default`` when neither was given. (A default of None,
    not the default's value: ``load_data("train", data_type="val")`` names
    the split twice, though "train" is the default.)"""
    if book_value is None:
        return default if value is None else value
    if value is not None:
        raise TypeError(f"{function}() got {name}={value!r} and {book}={book_value!r}: give one "
                        f"({book} is the book's name for {name})")
    return book_value


def check_int(value: Any, name: str, minimum: int, maximum: int | None = None) -> int:
    """``value`` as an int (NumPy integers accepted; bools, floats and strings refused)."""
    if isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if not is_int(value):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    value = operator.index(value)
    if value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"in {minimum} .. {maximum}"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def check_path(value: object, name: str, what: str = "a file path") -> Path:
    """``value`` (str, bytes or os.PathLike, not empty) as a Path."""
    if not isinstance(value, str | bytes | os.PathLike):
        raise TypeError(
            f"{name} must be {what} (str or os.PathLike), got {type(value).__name__}"
        )
    path = os.fsdecode(value)
    if not path:
        raise ValueError(f"{name} must be {what}, got an empty string")
    if "\0" in path:  # else open() fails with a bare "embedded null byte"
        raise ValueError(f"{name} must be {what}, got {path!r}, which holds a NUL character")
    return Path(path)


def check_choice(value: object, name: str, choices: str) -> str:
    """``value`` must be a str; ``choices`` says which ones, for the message."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be {choices}, got {type(value).__name__}")
    return value
