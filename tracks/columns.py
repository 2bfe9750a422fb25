"""Read-only numpy columns for the engine's frozen dataclasses, checked once in ``__post_init__``, and
which of them hold row numbers of another table (``spec(index=Rows.…)``), so that joining and cutting
tables of columns (``stack``, ``take``) derive what to offset from the declaration."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import field, fields, is_dataclass
from enum import StrEnum
from typing import Any, TypeVar

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


# --- what a column's values number ---------------------------------------------------------------


class Rows(StrEnum):
    """The table a column of row numbers points into. When tables are joined (vehicle blocks) or cut
    (one vehicle), such a column moves with its table's rows; a plain column never does."""

    INPUT = "input"  # rows of the engine's input track
    KEPT = "kept"  # rows of the fixes the cleaner kept (VehicleResult.kept)
    SEGMENT = "segment"  # rows of Segments
    TRIP = "trip"  # rows of Trips
    STOP = "stop"  # rows of Stops
    ORDER = "order"  # rows of the Context's orders (shared by every block: offset 0)


_INDEX = "fleetwatch.index"


def spec(*, index: Rows | None = None) -> Any:
    """A dataclass field holding a column; ``index``: the table whose row numbers it holds.

    ``first_row: NDArray[np.int64] = spec(index=Rows.KEPT)`` — ``stack`` and ``take`` derive from this
    which columns to offset, so a new index column is declared where it is defined, nowhere else.
    """
    return field(metadata={_INDEX: index})


def index_columns(kind: type[Any]) -> dict[str, Rows]:
    """The columns of a dataclass of columns that hold row numbers, and of which table."""
    return {f.name: f.metadata[_INDEX] for f in fields(kind) if f.metadata.get(_INDEX) is not None}


T = TypeVar("T")


def stack(items: Sequence[T], offsets: Mapping[Rows, Sequence[int]]) -> T:
    """Concatenate dataclasses of columns (fields that are dataclasses are stacked in turn); item k's
    index columns of table ``r`` get ``offsets[r][k]`` added (its table's rows before it)."""
    if not items:
        raise ValueError("nothing to stack")
    kind: Any = type(items[0])
    if len(items) == 1 and not any(any(by) for by in offsets.values()):
        return items[0]
    columns: dict[str, Any] = {}
    for f in fields(kind):
        values = [getattr(item, f.name) for item in items]
        if is_dataclass(values[0]):
            columns[f.name] = stack(values, offsets)
            continue
        rows = f.metadata.get(_INDEX)
        if rows is None:
            columns[f.name] = np.concatenate(values)
        else:
            by = _offsets(offsets, rows, kind, f.name)
            columns[f.name] = np.concatenate([v + by[k] for k, v in enumerate(values)])
    stacked: T = kind(**columns)
    return stacked


def take(obj: T, rows: NDArray[np.integer[Any]] | slice, offsets: Mapping[Rows, int]) -> T:
    """A dataclass of columns restricted to ``rows``; index columns of table ``r`` get ``offsets[r]``
    added (negative when the table is cut to a part that starts later)."""
    kind: Any = type(obj)
    columns: dict[str, Any] = {}
    for f in fields(kind):
        values = getattr(obj, f.name)[rows]
        index = f.metadata.get(_INDEX)
        columns[f.name] = values if index is None else values + _offsets(offsets, index, kind, f.name)
    taken: T = kind(**columns)
    return taken


def _offsets(offsets: Mapping[Rows, Any], rows: Rows, kind: type[Any], name: str) -> Any:
    try:
        return offsets[rows]
    except KeyError:
        raise ColumnError(
            f"{kind.__name__}.{name} holds {rows.value} rows, but no offset for them was given"
        ) from None
