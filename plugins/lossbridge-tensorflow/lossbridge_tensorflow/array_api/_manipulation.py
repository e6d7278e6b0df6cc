"""Manipulation and indexing: reshape, broadcast, expand/squeeze, permute, concat/stack, take ..."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from . import _dtypes as d
from ._helpers import as_tensor, axis_tuple, cast, promote

__all__ = [
    "broadcast_arrays",
    "broadcast_shapes",
    "broadcast_to",
    "concat",
    "expand_dims",
    "flip",
    "moveaxis",
    "permute_dims",
    "repeat",
    "reshape",
    "roll",
    "squeeze",
    "stack",
    "take",
    "take_along_axis",
    "tile",
    "unstack",
]


def reshape(x: Any, /, shape: Sequence[int | None], *, copy: bool | None = None) -> tf.Tensor:
    """``x`` with a new shape (one entry may be -1; inside ``tf.function`` one may be None, unknown)."""
    t = as_tensor(x)
    dims = [-1 if s is None else int(s) for s in shape]
    if dims.count(-1) > 1:
        raise ValueError(f"reshape: at most one unknown (-1 or None) size allowed, got shape {tuple(shape)}")
    return tf.reshape(t, dims)


def broadcast_shapes(*shapes: Sequence[int | None]) -> tuple[int | None, ...]:
    """The broadcast of several shapes (raises ValueError naming them when incompatible)."""
    out = tf.TensorShape([])
    for s in shapes:
        try:
            out = tf.broadcast_static_shape(out, tf.TensorShape(s))
        except ValueError as err:
            raise ValueError(f"broadcast: shapes {[tuple(x) for x in shapes]} are not compatible") from err
    return tuple(out.as_list())


def broadcast_to(x: Any, /, shape: Sequence[int | None]) -> tf.Tensor:
    """``x`` broadcast to ``shape`` (None sizes, unknown inside ``tf.function``, come from ``x``)."""
    t = as_tensor(x)
    shape = tuple(None if s is None else int(s) for s in shape)
    if broadcast_shapes(t.shape, shape) != shape:
        raise ValueError(f"broadcast_to: cannot broadcast shape {tuple(t.shape)} to {shape}")
    if tuple(t.shape) == shape and None not in shape:
        return t
    return tf.broadcast_to(t, _dynamic_target(t, shape))


def _dynamic_target(t: tf.Tensor, shape: tuple[int | None, ...]) -> Any:
    if None not in shape:
        return shape
    offset = len(shape) - t.shape.rank
    dims = []
    for i, s in enumerate(shape):
        if s is None and i < offset:
            raise ValueError(f"broadcast_to: size {i} of {shape} is unknown and not given by x")
        dims.append(tf.shape(t)[i - offset] if s is None else s)
    return tf.stack(dims)


def broadcast_arrays(*arrays: Any) -> list[tf.Tensor]:
    """The arrays broadcast against each other (dtypes kept)."""
    ts = [as_tensor(a) for a in arrays]
    shape = broadcast_shapes(*(t.shape for t in ts))
    return [t if tuple(t.shape) == shape else tf.broadcast_to(t, shape) for t in ts]


def expand_dims(x: Any, /, axis: int | Sequence[int] = 0) -> tf.Tensor:
    """``x`` with size-1 axes inserted at ``axis`` (negative counts from the end of the result)."""
    t = as_tensor(x)
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    for a in sorted(axis_tuple(axes, t.shape.rank + len(axes))):
        t = tf.expand_dims(t, a)
    return t


def squeeze(x: Any, /, axis: int | Sequence[int]) -> tf.Tensor:
    """``x`` without the size-1 axes ``axis`` (ValueError naming the axis if its size is not 1)."""
    t = as_tensor(x)
    axes = axis_tuple(axis, t.shape.rank)
    for a in axes:
        if t.shape[a] is not None and t.shape[a] != 1:
            raise ValueError(f"squeeze: axis {a} has size {t.shape[a]}, expected 1")
    return tf.squeeze(t, axis=list(axes)) if axes else t


def permute_dims(x: Any, /, axes: Sequence[int]) -> tf.Tensor:
    """``x`` with its axes reordered as ``axes``."""
    return tf.transpose(as_tensor(x), perm=list(axes))


def moveaxis(x: Any, source: int | Sequence[int], destination: int | Sequence[int], /) -> tf.Tensor:
    """``x`` with axes ``source`` moved to positions ``destination``."""
    t = as_tensor(x)
    n = t.shape.rank
    src = [s % n for s in ((source,) if isinstance(source, int) else source)]
    dst = [s % n for s in ((destination,) if isinstance(destination, int) else destination)]
    if len(src) != len(dst):
        raise ValueError(f"moveaxis: source {source!r} and destination {destination!r} differ in length")
    order = [a for a in range(n) if a not in src]
    for s_, d_ in sorted(zip(dst, src, strict=True)):
        order.insert(s_, d_)
    return t if order == list(range(n)) else tf.transpose(t, perm=order)  # no Transpose op for no move


def concat(arrays: Sequence[Any], /, *, axis: int | None = 0) -> tf.Tensor:
    """Join arrays along ``axis`` (flattened first when ``axis`` is None); dtypes promote."""
    ts = promote(*arrays)
    if axis is None:
        return tf.concat([tf.reshape(t, [-1]) for t in ts], axis=0)
    return tf.concat(ts, axis=axis)


def stack(arrays: Sequence[Any], /, *, axis: int = 0) -> tf.Tensor:
    """Join same-shaped arrays along a new axis; dtypes promote."""
    return tf.stack(promote(*arrays), axis=axis)


def unstack(x: Any, /, *, axis: int = 0) -> tuple[tf.Tensor, ...]:
    """The slices of ``x`` along ``axis``."""
    return tuple(tf.unstack(as_tensor(x), axis=axis))


def flip(x: Any, /, *, axis: int | Sequence[int] | None = None) -> tf.Tensor:
    """``x`` with the order of elements reversed along ``axis`` (all axes by default)."""
    t = as_tensor(x)
    axes = axis_tuple(axis, t.shape.rank)
    return tf.reverse(t, axis=list(axes)) if axes else t


def roll(x: Any, /, shift: int | Sequence[int], *, axis: int | Sequence[int] | None = None) -> tf.Tensor:
    """``x`` with elements shifted along ``axis`` (the flattened array when None)."""
    t = as_tensor(x)
    if axis is None:
        return tf.reshape(tf.roll(tf.reshape(t, [-1]), shift=shift, axis=0), tf.shape(t))
    return tf.roll(t, shift=shift, axis=axis)


def tile(x: Any, repetitions: Sequence[int], /) -> tf.Tensor:
    """``x`` repeated ``repetitions[i]`` times along each axis (leading 1s pad the shorter one)."""
    t = as_tensor(x)
    reps = tuple(repetitions)
    extra = len(reps) - t.shape.rank
    if extra > 0:
        t = tf.reshape(t, (1,) * extra + tuple(t.shape))
    reps = (1,) * max(0, -extra) + reps
    return tf.tile(t, reps)


def repeat(x: Any, repeats: int | Any, /, *, axis: int | None = None) -> tf.Tensor:
    """Each element of ``x`` repeated ``repeats`` times along ``axis`` (flattened when None)."""
    t = as_tensor(x)
    if axis is None:
        t, axis = tf.reshape(t, [-1]), 0
    reps = repeats if isinstance(repeats, int) else cast(as_tensor(repeats, "repeats"), d.int64)
    return tf.repeat(t, reps, axis=axis)


def _size(t: tf.Tensor, axis: int) -> Any:
    """The size of ``axis``: a Python int when known, else a scalar tensor."""
    return t.shape[axis] if t.shape[axis] is not None else tf.shape(t)[axis]


def _index(indices: Any, n: Any, name: str = "indices") -> tf.Tensor:
    idx = as_tensor(indices, name)
    if not d.is_int(idx.dtype):
        raise TypeError(f"{name}: expected an integer array, got dtype {idx.dtype.name}")
    if idx.dtype.is_unsigned:
        return idx
    return tf.where(idx < 0, idx + tf.cast(n, idx.dtype), idx)


def take(x: Any, indices: Any, /, *, axis: int | None = None) -> tf.Tensor:
    """Elements of ``x`` at integer ``indices`` along ``axis`` (negative indices count from the end)."""
    t = as_tensor(x)
    if axis is None:
        if t.shape.rank != 1:
            raise ValueError(f"take: axis is required for a {t.shape.rank}-D array")
        axis = 0
    (ax,) = axis_tuple(axis, t.shape.rank)
    return tf.gather(t, _index(indices, _size(t, ax)), axis=ax)


def take_along_axis(x: Any, indices: Any, /, *, axis: int = -1) -> tf.Tensor:
    """Elements of ``x`` picked along ``axis`` by ``indices`` of the same rank (other axes broadcast)."""
    t = as_tensor(x)
    (ax,) = axis_tuple(axis, t.shape.rank)
    idx = _index(indices, _size(t, ax))
    if idx.shape.rank != t.shape.rank:
        raise ValueError(f"take_along_axis: indices must have rank {t.shape.rank}, got {idx.shape.rank}")
    tm, im = moveaxis(t, ax, -1), moveaxis(idx, ax, -1)
    if tm.shape[:-1] != im.shape[:-1] or not tm.shape[:-1].is_fully_defined():  # broadcast the other axes
        batch = tf.broadcast_dynamic_shape(tf.shape(tm)[:-1], tf.shape(im)[:-1])
        tm = tf.broadcast_to(tm, tf.concat([batch, tf.shape(tm)[-1:]], axis=0))
        im = tf.broadcast_to(im, tf.concat([batch, tf.shape(im)[-1:]], axis=0))
    out = tf.gather(tm, im, batch_dims=t.shape.rank - 1, axis=-1)
    return moveaxis(out, -1, ax)
