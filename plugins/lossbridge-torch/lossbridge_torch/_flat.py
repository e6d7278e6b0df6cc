"""Whole-group updates of an elementwise spec: one ``update`` call over a param group flattened.

A spec that declares ``OptimizerSpec.elementwise`` promises that its update of a concatenation of
tensors is the concatenation of their updates, bit for bit, with 0-d slots shared
(``tests/spec/test_elementwise_flag.py`` proves it per spec). So instead of one ``update`` per tensor,
the optimizer runs it ONCE per group of tensors sharing dtype, device and step count:

* each state slot lives in one flat buffer per group; ``state[p][slot]`` is a view into it (torch's
  per-parameter layout, so ``state_dict()`` / ``load_state_dict`` and portable state see ordinary
  per-parameter tensors); a 0-d slot (NAdam's ``mu_product``) is one 0-d tensor every parameter's
  state holds;
* eagerly (the optimizer sends only tensors of at most ``_FLAT_MAX_NUMEL`` elements here), the group
  runs in chunks of the flat range (:data:`_CHUNK_BYTES` per array, cutting through tensors where
  needed): a chunk's params and grads are views when it lies in one tensor and gathered into a
  reused buffer otherwise, its slots are views of the flat buffers; the spec's update runs on them
  with the plain namespace, the new slots are copied into the buffers and the delta added to the
  params' views. One ``update`` call per chunk instead of one per tensor;
* compiled (``compile=True``): a group of small tensors is gathered into reused flat buffers and
  ``torch.compile`` sees the flat update with the slot write-back as one graph (one fused kernel
  per group; the delta is added back with one ``torch._foreach_add_`` over views); a group of
  large tensors (mean size from :data:`_LARGE_MEAN_NUMEL`) is not gathered: one compiled call per
  :data:`_BATCH` tensors runs each tensor's update as one in-place fused kernel on views of the
  params and of the slot buffers. Dynamic shapes: one graph per dtype and batch size serves every
  group.

Speed, measured (``benchmarks/bench_torch.py``, 2-core EPYC, one thread): the flat eager path wins
where the per-tensor Python work dominates (100k parameters in 1000 tensors: about half torch.optim's
default step); for large tensors it does not (each ``update`` call costs ~80 us of Python, so chunks
must be large to amortize it, and then every temporary is a fresh ``mmap``'d allocation whose page
faults cost more than the arithmetic: with ``mallopt(M_MMAP_THRESHOLD, 64 MB)`` one Adam update on
100k float32 elements drops from 1.4 ms to 0.33 ms), hence the per-tensor loop there.

The slot buffers are written in place and never replaced, so the views in the state stay valid.
Whenever the state is not what this module left (the first step, ``load_state_dict``, a step by
another engine, a slot replaced by hand), the group is rebuilt from the per-parameter state: the
per-parameter tensors are the truth, the flat buffers a cache of them.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

__all__ = ["FlatGroup", "build_groups", "compiled_batch_update", "compiled_flat_update"]

#: tensors per call of the compiled batch update, and the mean size from which a group takes it
_BATCH = 8
_LARGE_MEAN_NUMEL = 1 << 15


def _batches(n: int) -> list[int]:
    """``n`` tensors as calls of :data:`_BATCH` tensors and the rest in powers of two (few graphs)."""
    sizes = [_BATCH] * (n // _BATCH)
    rest = n % _BATCH
    bit = _BATCH // 2
    while rest:
        if rest >= bit:
            sizes.append(bit)
            rest -= bit
        bit //= 2
    return sizes


#: bytes of one array in one eager chunk (the spec's temporaries are chunk-sized; 256 KB measured
#: best on a 2-core EPYC with 1 MB L2 per core, benchmarks/bench_torch.py)
_CHUNK_BYTES = 1 << 18


class NotFlat(Exception):
    """The state of a group cannot be flattened (a slot neither parameter-shaped nor a shared 0-d value)."""


class FlatGroup:
    """The tensors of one param group sharing dtype, device, step count and slot names, flattened."""

    __slots__ = ("chunks", "count", "dtype", "flat_views", "keys", "numel", "scratch", "shapes", "shared", "sizes",
                 "slots", "step_buf", "steps", "views")

    def __init__(self, keys: list[Tensor], works: list[Tensor], states: list[dict[str, Any]], count: int) -> None:
        self.keys = keys
        self.shapes = [tuple(w.shape) for w in works]
        self.sizes = [w.numel() for w in works]
        self.numel = sum(self.sizes)
        self.dtype = works[0].dtype
        self.count = count
        # every parameter's ``step`` (torch's layout: a 0-d float32 tensor each) is a view of one buffer,
        # so counting a step is one operation
        first = states[0]["step"]
        self.step_buf = torch.full((len(states),), float(count), dtype=first.dtype, device=first.device)
        self.steps = list(self.step_buf.unbind())
        for state, step in zip(states, self.steps, strict=True):
            state["step"] = step
        self.slots: dict[str, Tensor] = {}
        self.shared: set[str] = set()
        self.views: dict[str, list[Tensor]] = {}
        self.flat_views: dict[str, list[Tensor]] = {}
        self.scratch: dict[str, Tensor] = {}
        if not all(w.is_contiguous() for w in works):
            raise NotFlat("a parameter is not contiguous")
        for name in states[0]:
            if name == "step":
                continue
            values = [s[name] for s in states]
            if not all(isinstance(v, Tensor) for v in values) or len({v.dtype for v in values}) != 1:
                raise NotFlat(f"slot {name!r}: not tensors of one dtype")
            if all(tuple(v.shape) == shape for v, shape in zip(values, self.shapes, strict=True)):
                self.slots[name] = torch.cat([v.reshape(-1) for v in values])
            elif all(v.ndim == 0 for v in values):
                first = values[0]
                if len(values) > 1 and not bool(torch.all(torch.stack(values) == first)):
                    raise NotFlat(f"slot {name!r}: 0-d values differ between tensors")
                self.slots[name] = first.clone()
                self.shared.add(name)
            else:
                raise NotFlat(f"slot {name!r}: neither parameter-shaped nor 0-d")
        for name in self.slots:
            self._place(name, states)
        self.chunks = _plan(self.sizes, max(_CHUNK_BYTES // works[0].element_size(), 1))

    # -- the per-parameter layout -------------------------------------------------------------------
    def _place(self, name: str, states: list[dict[str, Any]]) -> None:
        """``state[p][name]`` as views of the flat buffer (or the shared 0-d value)."""
        buf = self.slots[name]
        if name in self.shared:
            views = [buf] * len(states)
        else:
            views = [v.view(shape) for v, shape in zip(torch.split(buf, self.sizes), self.shapes, strict=True)]
        for state, view in zip(states, views, strict=True):
            state[name] = view
        self.views[name] = views
        self.flat_views[name] = [buf] * len(states) if name in self.shared else list(torch.split(buf, self.sizes))

    def matches(self, keys: list[Tensor], works: list[Tensor], states: list[dict[str, Any]]) -> bool:
        """Whether the per-parameter state is still exactly what this group left there."""
        if len(keys) != len(self.keys) or any(a is not b for a, b in zip(keys, self.keys, strict=True)):
            return False
        if any(w.dtype != self.dtype or tuple(w.shape) != s for w, s in zip(works, self.shapes, strict=True)):
            return False
        names = len(self.slots) + 1
        slot_views = list(self.views.items())
        for state, step, k in zip(states, self.steps, range(len(states)), strict=True):
            if len(state) != names or state.get("step") is not step:
                return False
            for name, views in slot_views:
                if state.get(name) is not views[k]:
                    return False
        # a step counted from outside (``state["step"] += 1`` by another engine) changed the buffer
        buf = self.step_buf
        return bool(torch.all(buf == self.count)) if len(buf) else True

    # -- one step -----------------------------------------------------------------------------------
    def next_step(self) -> Tensor:
        """The step count of the coming update, as the spec takes it (an array of the param's dtype)."""
        return torch.tensor(float(self.count + 1), dtype=_step_dtype(self.dtype))

    def advance(self) -> None:
        """Count the step taken: every parameter's ``step`` tensor (torch's layout) and the group's count."""
        self.step_buf.add_(1)
        self.count += 1

    def gather(self, tensors: list[Tensor], which: str) -> Tensor:
        """The tensors concatenated into one vector (a buffer reused from step to step)."""
        buf = self.scratch.get(which)
        if buf is None or buf.dtype != tensors[0].dtype or buf.device != tensors[0].device:
            buf = self.scratch[which] = torch.empty(self.numel, dtype=tensors[0].dtype, device=tensors[0].device)
        if len(tensors) == 1:
            return tensors[0].reshape(-1)
        return torch.cat([t.reshape(-1) for t in tensors], out=buf)

    def add_delta(self, works: list[Tensor], delta: Tensor) -> None:
        """``p += delta`` for every tensor, from the flat (or 0-d) delta."""
        if delta.ndim == 0:
            torch._foreach_add_(works, delta)
            return
        views = [d.view(shape) for d, shape in zip(torch.split(delta, self.sizes), self.shapes, strict=True)]
        torch._foreach_add_(works, views)

    def run_eager(
        self, update: Callable[..., Any], works: list[Tensor], grads: list[Tensor], hyper: dict[str, Any], xp: Any
    ) -> None:
        """One step, chunk by chunk (see the module docstring); the first chunk fails before any write."""
        step = self.next_step()
        pflat = [w.view(-1) for w in works]
        gflat = [g.reshape(-1) for g in grads]
        sizes = self.sizes
        shared_new: dict[str, Any] = {}
        for lo, hi, pieces in self.chunks:
            if len(pieces) == 1:
                k, a, b = pieces[0]
                p_views, p = [pflat[k][a:b]], pflat[k][a:b]
                g = gflat[k][a:b]
            else:  # whole tensors as they are, the cut ones sliced
                p_views = [pflat[k] if b - a == sizes[k] else pflat[k][a:b] for k, a, b in pieces]
                p = torch.cat(p_views, out=self._chunk_buffer("p", hi - lo))
                g_views = [gflat[k] if b - a == sizes[k] else gflat[k][a:b] for k, a, b in pieces]
                g = torch.cat(g_views, out=self._chunk_buffer("g", hi - lo))
            slots = {name: buf if name in self.shared else buf[lo:hi] for name, buf in self.slots.items()}
            delta, values = update(p, g, slots, step=step, xp=xp, **hyper)
            targets = {}
            for name, value in values.items():
                if name in self.shared:
                    shared_new.setdefault(name, value)
                else:
                    targets[name] = self.slots[name][lo:hi]
            if delta.ndim and any(delta.data_ptr() == t.data_ptr() for t in targets.values()):
                delta = delta.clone()
            _copy_all(targets, values)  # before the params change: a slot may keep the param's old value
            if len(p_views) == 1:
                p_views[0].add_(delta)
            elif delta.ndim == 0:
                torch._foreach_add_(p_views, delta)
            else:
                torch._foreach_add_(p_views, torch.split(delta, [b - a for _, a, b in pieces]))
        self.advance()
        _copy_all({name: self.slots[name] for name in shared_new}, shared_new)

    def run_compiled(self, flat_fn: Callable[..., Tensor], batch_fn: Callable[..., None], works: list[Tensor],
                     grads: list[Tensor], hyper: dict[str, Any]) -> None:
        """One step through the compiled updates: for large tensors, batches of :data:`_BATCH` tensors
        per call, each tensor's update fused in place (no gathering); for small ones, the whole group
        gathered into one vector and updated by one fused kernel."""
        step = self.next_step()
        if self.numel >= _LARGE_MEAN_NUMEL * len(self.sizes):
            ps = [w.view(-1) for w in works]
            gs = [g.reshape(-1) for g in grads]
            out = {name: self.slots[name] for name in self.shared}
            old = {name: value.clone() for name, value in out.items()}  # every batch reads the old value
            start = 0
            for size in _batches(len(ps)):
                end = start + size
                views = {name: v[start:end] for name, v in self.flat_views.items() if name not in self.shared}
                batch_fn(ps[start:end], gs[start:end], views, old, out, step, hyper)
                start = end
        else:
            delta = flat_fn(self.gather(works, "p"), self.gather(grads, "g"), self.slots, step, hyper)
            self.add_delta(works, delta)
        self.advance()

    def _chunk_buffer(self, which: str, n: int) -> Tensor:
        buf = self.scratch.get("chunk_" + which)
        if buf is None:
            size = self.chunks[0][1] - self.chunks[0][0] if self.chunks else n
            buf = self.scratch["chunk_" + which] = torch.empty(max(size, n), dtype=self.dtype,
                                                               device=self.slots_device())
        return buf[:n]

    def slots_device(self) -> torch.device:
        return self.steps[0].device if not self.slots else next(iter(self.slots.values())).device


def _copy_all(targets: dict[str, Tensor], values: dict[str, Any]) -> None:
    """``targets[name][...] = values[name]`` for every name, as if all at once: a value that aliases
    another target is copied first."""
    pending = []
    for name, target in targets.items():
        value = values[name]
        if isinstance(value, Tensor) and value is not target and any(
            value.data_ptr() == t.data_ptr() for n, t in targets.items() if n != name
        ):
            value = value.clone()
        pending.append((target, value))
    for target, value in pending:
        if value is not target:
            target.copy_(value)


def _plan(sizes: list[int], chunk: int) -> list[tuple[int, int, list[tuple[int, int, int]]]]:
    """The flat range cut into runs of at most ``chunk`` elements: ``(lo, hi, [(tensor, a, b), ...])``
    with ``[a, b)`` the part of each tensor's flat range in the run."""
    chunks = []
    lo, pieces, size = 0, [], 0
    for k, n in enumerate(sizes):
        a = 0
        while a < n:
            b = min(n, a + chunk - size)
            pieces.append((k, a, b))
            size += b - a
            a = b
            if size == chunk:
                chunks.append((lo, lo + size, pieces))
                lo, pieces, size = lo + size, [], 0
    if pieces:
        chunks.append((lo, lo + size, pieces))
    return chunks


def _step_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def build_groups(
    keys: list[Tensor], works: list[Tensor], grads: list[Tensor], states: list[dict[str, Any]]
) -> tuple[list[tuple[FlatGroup, list[int]]], list[int]]:
    """The flat groups of a param group's tensors, and the indices that cannot be flattened.

    Tensors are split by dtype, device, step count and slot names; a split whose slots are not
    parameter-shaped or shared 0-d values (or whose grads have another dtype) stays per tensor.
    """
    steps = [s["step"] for s in states]
    counts = torch.stack(steps).tolist() if len({s.device for s in steps}) == 1 else [float(s) for s in steps]
    splits: dict[tuple[Any, ...], list[int]] = {}
    rest: list[int] = []
    for k, (w, g, state) in enumerate(zip(works, grads, states, strict=True)):
        if g.dtype != w.dtype or g.device != w.device or not float(counts[k]).is_integer():
            rest.append(k)
            continue
        splits.setdefault((w.dtype, w.device, counts[k], tuple(state)), []).append(k)
    groups = []
    for (_, _, count, _), idx in splits.items():
        try:
            group = FlatGroup([keys[k] for k in idx], [works[k] for k in idx], [states[k] for k in idx], int(count))
        except NotFlat:
            rest += idx
            continue
        groups.append((group, idx))
    return groups, sorted(rest)


# -- compiled ---------------------------------------------------------------------------------------
def _flat_update(
    param: Tensor, grad: Tensor, slots: dict[str, Tensor], step: Tensor, hyper: dict[str, Any],
    bound: Any = None, xp: Any = None,
) -> Tensor:
    """The spec's update of a flat group with the new slots written into the buffers (what
    ``torch.compile`` fuses into one kernel); returns the flat delta."""
    delta, new = bound.update(param, grad, slots, step=step, xp=xp, **hyper)
    for name, value in new.items():
        slots[name].copy_(value)
    return delta


def compiled_flat_update(bound: Any, xp: Any) -> Callable[..., Tensor]:
    """:func:`_flat_update` for ``bound``, compiled, with its own code object (its own Dynamo cache)."""
    code = _flat_update.__code__.replace(co_name=f"_flat_update_{bound.spec.name}")
    fn = types.FunctionType(code, _flat_update.__globals__, code.co_name, (bound, xp))
    return torch.compile(fn, dynamic=True)


def _batch_update(
    params: list[Tensor], grads: list[Tensor], slots: dict[str, list[Tensor]], shared: dict[str, Tensor],
    shared_out: dict[str, Tensor], step: Tensor, hyper: dict[str, Any], bound: Any = None, xp: Any = None,
) -> None:
    """The spec's update of each tensor of a batch, written in place: params, slot views, and the
    shared 0-d slots (read from ``shared``, the new value into ``shared_out``). ``torch.compile`` makes
    one in-place fused kernel per tensor, all launched by one call."""
    news: dict[str, Tensor] = {}
    for k in range(len(params)):
        state = {name: views[k] for name, views in slots.items()}
        state.update(shared)
        delta, new = bound.update(params[k], grads[k], state, step=step, xp=xp, **hyper)
        for name, value in new.items():
            if name in shared:
                news.setdefault(name, value)
            else:
                slots[name][k].copy_(value)
        params[k].add_(delta)
    for name, value in news.items():
        shared_out[name].copy_(value)


def compiled_batch_update(bound: Any, xp: Any) -> Callable[..., None]:
    """:func:`_batch_update` for ``bound``, compiled, with its own code object (its own Dynamo cache)."""
    code = _batch_update.__code__.replace(co_name=f"_batch_update_{bound.spec.name}")
    fn = types.FunctionType(code, _batch_update.__globals__, code.co_name, (bound, xp))
    return torch.compile(fn, dynamic=True)
