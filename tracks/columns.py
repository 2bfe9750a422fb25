"""Read-only numpy columns for the engine's frozen dataclasses, checked once in ``__post_init__``."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray


class ColumnError(ValueError):
    """A dataclass of columns was built with columns of different lengths or the wrong shape."""


_DTYPES: dict[str, type[np.generic]] = {
    "NDArray[np.int64]": np.int64,
    "NDArray[np.int32]": np.int32,
    "NDArray[np.int8]": np.int8,
    "NDArray[np.uint8]": np.uint8,
    "NDArray[np.float64]": np.float64,
    "NDArray[np.bool_]": np.bool_,
}


def column(values: ArrayLike, dtype: type[Any] | np.dtype[Any]) -> NDArray[Any]:
    """``values`` as a one-dimensional read-only array of ``dtype``; no copy when it already is one.

    The result is a read-only *view*: the engine never writes into its inputs, and a caller that
    keeps writing into its own array is not stopped (copying every column would cost the engine its
    throughput).
    """
    array = np.asarray(values, dtype=dtype)
    if array.ndim != 1:
        raise ColumnError(f"expected a one-dimensional column, got shape {array.shape}")
    view = array.view()
    view.flags.writeable = False
    return view


def freeze_columns(obj: object, *, same_length: bool = True) -> int:
    """Make every ``NDArray[...]`` field of a frozen dataclass a read-only column of the annotated
    dtype, check they have one length (unless ``same_length`` is False), and return it. Other fields
    are left alone."""
    length = -1
    annotations: dict[str, str] = {}
    for klass in reversed(type(obj).__mro__):
        annotations.update(getattr(klass, "__annotations__", {}))
    for name, annotation in annotations.items():
        dtype = _DTYPES.get(str(annotation))
        if dtype is None:
            continue
        value = column(getattr(obj, name), dtype)
        if length < 0:
            length = len(value)
        elif same_length and len(value) != length:
            raise ColumnError(
                f"{type(obj).__name__}.{name} has {len(value)} rows, expected {length} like the others"
            )
        object.__setattr__(obj, name, value)
    return max(length, 0)
