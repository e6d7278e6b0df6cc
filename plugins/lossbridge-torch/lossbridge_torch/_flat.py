"""Whole-group updates of an elementwise spec: one ``update`` call over a param group flattened.

A spec that declares ``OptimizerSpec.elementwise`` promises that its update of a concatenation of
tensors is the concatenation of their updates, bit for bit, with 0-d slots shared
(``tests/spec/test_elementwise_flag.py`` proves it per spec). So instead of one ``update`` per tensor,
the optimizer runs it ONCE per group of tensors sharing dtype, device and step count:

* each state slot lives in one flat buffer per group; ``state[p][slot]`` is a view into it (torch's
  per-parameter layout, so ``state_dict()`` / ``load_state_dict`` and portable state see ordinary
  per-parameter tensors); a 0-d slot (NAdam's ``mu_product``) is one 0-d tensor every parameter's
  state holds;
* eagerly, the group runs in chunks of the flat range (:data:`_CHUNK_BYTES` per array; a tensor of
  at least 1/8 of a chunk runs alone, cut into near-equal parts at multiples of 64 elements, smaller
  ones are packed together): a chunk's params and grads are views when it lies in one tensor and
  gathered into a reused buffer otherwise, its slots are views of the flat buffers. The spec's update
  runs ONCE per group and step for real, on the first chunk, while every torch call it makes is
  recorded (:class:`_Recorder`); the recording becomes a :class:`Program`: the calls that depend only
  on the step count and the shared 0-d slots (bias corrections...) run once per step, the calls on
  the chunk's values are replayed for every other chunk, each writing into a register (a buffer kept
  from step to step, in place where it reads its argument for the last time) or straight into the
  slot it computes. The same torch functions on the same values in the same order: the replay is
  checked bit for bit against the real run when it is recorded, and a spec whose update reads a
  chunk's values in Python (or anything else the recording cannot repeat) runs its update per chunk;
* compiled (``compile=True``): a group of small tensors is gathered into reused flat buffers and
  ``torch.compile`` sees the flat update with the slot write-back as one graph (one fused kernel
  per group; the delta is added back with one ``torch._foreach_add_`` over views); a group of
  large tensors (mean size from :data:`_LARGE_MEAN_NUMEL`) is not gathered: one compiled call per
  :data:`_BATCH` tensors runs each tensor's update as one in-place fused kernel on views of the
  params and of the slot buffers. Dynamic shapes: one graph per dtype and batch size serves every
  group.

Speed, measured (``python -m benchmarks``, 2-core EPYC, one thread): per ``update`` call the spec
costs 10-170 us of Python and 0-d tensor work (NAdam's momentum schedule is ~50 calls on 0-d
tensors), which the per-tensor loop paid once per tensor and per step; the program pays it once per
group and step, and each chunk costs one torch call per elementwise operation of the formula (about
2 us each on top of the kernel). Fresh temporaries (``mmap``'d above glibc's threshold: page faults on
every call) are gone: registers are allocated once. What remains above torch's own single-tensor step
is the operation count: the spec computes out of place what torch fuses into ``addcmul_`` /
``addcdiv_`` / ``lerp_`` (different rounding, so not an option for a bit-exact replay).

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
from torch.overrides import TorchFunctionMode

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


#: bytes of one array in one eager chunk (registers are chunk-sized). Measured (python -m benchmarks,
#: 2-core EPYC, 1 MB L2 per core): 512 KB beats 64-256 KB, the per-chunk cost (one torch call per
#: operation, ~2 us each) outweighing what a smaller working set saves
_CHUNK_BYTES = 1 << 19
#: a tensor of at least 1/_OWN_CHUNK_DIV of a chunk runs in chunks of its own (gathering it into a
#: packed chunk costs two copies and a scattered add, more than the calls of a chunk of its own)
_OWN_CHUNK_DIV = 8


class NotFlat(Exception):
    """The state of a group cannot be flattened (a slot neither parameter-shaped nor a shared 0-d value)."""


class FlatGroup:
    """The tensors of one param group sharing dtype, device, step count and slot names, flattened."""

    __slots__ = ("_states", "chunk_views", "chunks", "count", "dtype", "flat_views", "keys", "numel", "programs",
                 "scratch", "shapes", "shared", "sizes", "slots", "step_buf", "step_version", "steps", "views")

    def __init__(self, keys: list[Tensor], works: list[Tensor], states: list[dict[str, Any]], count: int) -> None:
        self.keys = keys
        self._states = states
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
        self.programs: dict[Any, Program | bool] = {}
        self.chunk_views: tuple[Any, list[Any]] = ((), [])
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
        self.step_version = self.step_buf._version

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
        if buf._version == self.step_version:  # written by nothing but advance()
            return True
        return bool(torch.all(buf == self.count)) if len(buf) else True

    # -- one step -----------------------------------------------------------------------------------
    def next_step(self) -> Tensor:
        """The step count of the coming update, as the spec takes it (an array of the param's dtype)."""
        return torch.tensor(float(self.count + 1), dtype=_step_dtype(self.dtype))

    def advance(self) -> None:
        """Count the step taken: every parameter's ``step`` tensor (torch's layout) and the group's count."""
        self.step_buf.add_(1)
        self.count += 1
        self.step_version = self.step_buf._version

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
        """One step, chunk by chunk (see the module docstring); the first chunk fails before any write.

        The update runs once for real, recorded (:class:`Program`); then every chunk replays the
        recorded calls (the step's scalar work once per step). A spec the recording cannot capture
        runs its update per chunk.
        """
        step = self.next_step()
        names = [name for name in self.slots if name not in self.shared]
        shared_names = [name for name in self.slots if name in self.shared]
        scalar_inputs = [step, *(self.slots[name] for name in shared_names),
                         *(v for v in hyper.values() if isinstance(v, Tensor))]
        key = _hyper_key(hyper)
        # under Dynamo (a compiled optimizer step) the update is traced as it is, not recorded
        program = False if torch.compiler.is_compiling() else self.programs.get(key) if key is not None else None
        start, shared_values = 0, None
        if program is None:
            program, shared_values = self._record_first(update, works, grads, hyper, xp, step, names, shared_names,
                                                        scalar_inputs)
            if key is not None and (not isinstance(program, Program) or program.cacheable):
                self.programs[key] = program
            start = 1
        shared_new = None
        if isinstance(program, Program):
            shared_new = self._replay(program, update, works, grads, hyper, xp, step, names, shared_names,
                                      scalar_inputs, start)
            if shared_new is None and key is not None:
                self.programs[key] = False
        if shared_new is None:
            shared_new = self._direct(update, works, grads, hyper, xp, step, names, shared_names, start)
        if shared_values is not None:
            shared_new = shared_values
        # the shared 0-d slots change after every chunk read the old values
        self._set_shared(shared_new)
        self.advance()

    def _set_shared(self, values: dict[str, Any]) -> None:
        """The new shared 0-d slots: copied into their tensors, or, when the update returns another dtype
        (a float32 product for a bfloat16 parameter), that value itself in every parameter's state, as
        the per-tensor path rebinds it."""
        same = {name: v for name, v in values.items()
                if not isinstance(v, Tensor) or (v.dtype == self.slots[name].dtype and v.ndim == 0)}
        _copy_all({name: self.slots[name] for name in same}, same)
        for name, value in values.items():
            if name in same:
                continue
            fresh = value.detach().clone()
            self.slots[name] = fresh
            self.views[name] = [fresh] * len(self.keys)
            self.flat_views[name] = [fresh] * len(self.keys)
            self.programs.clear()  # the programs were recorded with the old slot's dtype
            for state in self._states:
                state[name] = fresh

    def _chunk_inputs(self, works: list[Tensor], grads: list[Tensor], c: int, names: list[str]) -> tuple[Any, ...]:
        """``(p, g, p_views, slot_views)`` of chunk ``c`` (params and grads gathered when it spans tensors).

        The views of the params and slots are made once (again when a parameter's storage changed).
        """
        if c == 0:
            key = tuple(w.data_ptr() for w in works)
            if self.chunk_views[0] != key:
                self.chunk_views = (key, [self._views_of(works, k, names) for k in range(len(self.chunks))])
        p, p_views, views = self.chunk_views[1][c]
        lo, hi, pieces = self.chunks[c]
        if p is not None:
            k, a, b = pieces[0]
            return p, grads[k].reshape(-1)[a:b], p_views, views
        p = torch.cat(p_views, out=self._chunk_buffer("p", hi - lo))
        g = torch.cat([grads[k].reshape(-1)[a:b] for k, a, b in pieces], out=self._chunk_buffer("g", hi - lo))
        return p, g, p_views, views

    def _views_of(self, works: list[Tensor], c: int, names: list[str]) -> tuple[Any, ...]:
        lo, hi, pieces = self.chunks[c]
        p_views = [works[k].view(-1)[a:b] for k, a, b in pieces]
        return (p_views[0] if len(pieces) == 1 else None), p_views, [self.slots[name][lo:hi] for name in names]

    def _write(self, c: int, p_views: list[Tensor], views: list[Tensor], delta: Any, values: list[Any],
               simple: bool) -> None:
        """The new slots into their buffers (before the params change: a slot may keep the param's old
        value), then ``p += delta``."""
        if simple:
            for view, value in zip(views, values, strict=True):
                if value is not view:
                    view.copy_(value) if isinstance(value, Tensor) else view.fill_(value)
        else:
            targets = dict(enumerate(views))
            if isinstance(delta, Tensor) and delta.ndim and any(delta.data_ptr() == t.data_ptr() for t in views):
                delta = delta.clone()
            _copy_all(targets, dict(enumerate(values)))
        if len(p_views) == 1:
            p_views[0].add_(delta)
        elif not isinstance(delta, Tensor) or delta.ndim == 0:
            torch._foreach_add_(p_views, delta)
        else:
            torch._foreach_add_(p_views, torch.split(delta, [b - a for _, a, b in self.chunks[c][2]]))

    def _record_first(self, update: Callable[..., Any], works: list[Tensor], grads: list[Tensor],
                      hyper: dict[str, Any], xp: Any, step: Tensor, names: list[str], shared_names: list[str],
                      scalar_inputs: list[Tensor]) -> tuple[Program | bool, dict[str, Any]]:
        """Chunk 0 through the update, recorded, and written: ``(program or False, new shared slots)``."""
        p, g, p_views, views = self._chunk_inputs(works, grads, 0, names)
        slots = {**dict(zip(names, views, strict=True)), **{name: self.slots[name] for name in shared_names}}
        delta, values, program = _record(update, p, g, slots, step, hyper, xp, names, shared_names, scalar_inputs)
        self._write(0, p_views, views, delta, [values[name] for name in names], False)
        return program, {name: values[name] for name in shared_names}

    def _replay(self, program: Program, update: Callable[..., Any], works: list[Tensor], grads: list[Tensor],
                hyper: dict[str, Any], xp: Any, step: Tensor, names: list[str], shared_names: list[str],
                scalar_inputs: list[Tensor], start: int) -> dict[str, Any] | None:
        """The chunks from ``start`` on through the program; returns the new shared slots, or None (and
        nothing written) when a new specialization of the program does not reproduce the update."""
        scalars, key = program.scalars(*scalar_inputs)
        fresh = key not in program.variants
        variant = program.variant(key)
        n_slots = len(names)
        if fresh and start < len(self.chunks):  # checked once against the update itself, on copies
            p, g, _, views = self._chunk_inputs(works, grads, start, names)
            copies = [t.clone() for t in (p, g, *views)]
            slots = {**dict(zip(names, copies[2:], strict=True)), **{n: self.slots[n] for n in shared_names}}
            delta, values = update(copies[0], copies[1], slots, step=step, xp=xp, **hyper)
            copies = [t.clone() for t in (p, g, *views)]
            shape = None if p.ndim == 1 else tuple(p.shape)
            again = variant.chunk(scalars, variant.registers(p.numel(), p, shape), *copies)
            expected = [delta, *(values[name] for name in [*names, *shared_names])]
            if not all(_same_bits(x, y) for x, y in zip(again, expected, strict=True)):
                return None
        shared_new: dict[str, Any] = {}
        for c in range(start, len(self.chunks)):
            p, g, p_views, views = self._chunk_inputs(works, grads, c, names)
            n = p.numel()
            if program.shape_dep and n != program.length:  # a program that read the recorded chunk's length
                shared_new = self._direct(update, works, grads, hyper, xp, step, names, shared_names, c, c + 1)
                continue
            outs = variant.chunk(scalars, variant.registers(n, p), p, g, *views)
            self._write(c, p_views, views, outs[0], list(outs[1: 1 + n_slots]), variant.simple)
            shared_new = dict(zip(shared_names, outs[1 + n_slots:], strict=True))
        return shared_new

    def _direct(self, update: Callable[..., Any], works: list[Tensor], grads: list[Tensor], hyper: dict[str, Any],
                xp: Any, step: Tensor, names: list[str], shared_names: list[str], start: int,
                stop: int | None = None) -> dict[str, Any]:
        """The update itself per chunk, chunks ``start`` to ``stop``; returns the new shared slots."""
        shared_new: dict[str, Any] = {}
        for c in range(start, len(self.chunks) if stop is None else stop):
            p, g, p_views, views = self._chunk_inputs(works, grads, c, names)
            slots = {**dict(zip(names, views, strict=True)), **{name: self.slots[name] for name in shared_names}}
            delta, values = update(p, g, slots, step=step, xp=xp, **hyper)
            self._write(c, p_views, views, delta, [values[name] for name in names], False)
            for name in shared_names:
                shared_new.setdefault(name, values[name])
        return shared_new

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
        if buf is None or buf.numel() < n:
            size = max((hi - lo for lo, hi, pieces in self.chunks if len(pieces) > 1), default=n)
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
            target.copy_(value) if isinstance(value, Tensor) else target.fill_(value)


def _plan(sizes: list[int], chunk: int) -> list[tuple[int, int, list[tuple[int, int, int]]]]:
    """The flat range cut into runs of at most ``chunk`` elements: ``(lo, hi, [(tensor, a, b), ...])``
    with ``[a, b)`` the part of each tensor's flat range in the run.

    A tensor of at least 1/8 of a chunk runs on its own (views, nothing gathered), cut into near-equal
    parts starting at multiples of 64 elements; smaller tensors are packed together.
    """
    chunks: list[tuple[int, int, list[tuple[int, int, int]]]] = []
    lo, pieces, size, offset = 0, [], 0, 0
    for k, n in enumerate(sizes):
        if n >= chunk // _OWN_CHUNK_DIV:
            if pieces:
                chunks.append((lo, lo + size, pieces))
                pieces, size = [], 0
            parts = -(-n // chunk)
            part = (n + parts - 1) // parts
            part = (part + 63) // 64 * 64
            for a in range(0, n, part):
                b = min(n, a + part)
                chunks.append((offset + a, offset + b, [(k, a, b)]))
            lo = offset + n
        else:
            if pieces and size + n > chunk:
                chunks.append((lo, lo + size, pieces))
                lo, pieces, size = lo + size, [], 0
            pieces.append((k, 0, n))
            size += n
        offset += n
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


# -- eager: the update recorded once, replayed per chunk ---------------------------------------------
class NotReplayable(Exception):
    """The spec's update did something a recorded program cannot repeat (it reads a chunk's values)."""


_CONST, _SCALAR, _CHUNK = 0, 1, 2
#: calls that turn a tensor's values into Python values (a branch on them cannot be replayed)
_VALUE_READS = frozenset({"item", "tolist", "__bool__", "__float__", "__int__", "__index__", "__complex__",
                          "numpy", "__array__", "__format__", "__repr__", "__str__"})
_UNARY_OUT = {"sqrt": "sqrt", "exp": "exp", "log": "log", "log1p": "log1p", "expm1": "expm1", "abs": "abs",
              "__abs__": "abs", "neg": "neg", "negative": "neg", "__neg__": "neg", "sign": "sign",
              "reciprocal": "reciprocal", "rsqrt": "rsqrt", "tanh": "tanh", "sigmoid": "sigmoid",
              "square": "square", "floor": "floor", "ceil": "ceil", "trunc": "trunc", "sin": "sin", "cos": "cos"}
_COMMUTATIVE_OUT = {"add": "add", "__add__": "add", "__radd__": "add", "mul": "mul", "__mul__": "mul",
                    "__rmul__": "mul", "multiply": "mul", "maximum": "maximum", "minimum": "minimum"}
_BINARY_OUT = {"sub": "sub", "__sub__": "sub", "subtract": "sub", "div": "div", "__truediv__": "div",
               "divide": "div", "true_divide": "div", "pow": "pow", "__pow__": "pow"}
_REFLECTED_OUT = {"__rsub__": "sub", "__rtruediv__": "div"}
#: casts that return the tensor itself when it already has the dtype/device asked for
_IDENTITY = frozenset({"to", "type", "type_as"})
_MATMUL = frozenset({"matmul", "__matmul__", "__rmatmul__", "mm", "bmm", "tensordot", "einsum", "vecdot"})


def _func_name(func: Any) -> str:
    name = getattr(func, "__name__", "")
    if name == "__get__":  # a property of Tensor (``x.shape``): the descriptor's name
        name = getattr(getattr(func, "__self__", None), "__name__", name)
    return name


def _mutates(name: str, kwargs: dict[str, Any]) -> bool:
    return "out" in kwargs or name == "__setitem__" or (name.endswith("_") and not name.endswith("__")) or (
        name.startswith("__i") and name.endswith("__") and name[3:-2] in ("add", "sub", "mul", "truediv", "pow")
    )


def _owned(t: Tensor, known: set[int]) -> bool:
    """Whether ``t`` is a fresh contiguous buffer of its own (not a view, not anything seen before)."""
    storage = t.untyped_storage()
    return (storage.data_ptr() not in known and t.storage_offset() == 0 and t.is_contiguous()
            and storage.nbytes() == t.numel() * t.element_size())


class _Recorder(TorchFunctionMode):
    """Runs the update once for real and records every torch call that depends on its inputs.

    Values: ``step`` and the shared 0-d slots (and tensor hyperparameters) are *scalar* inputs, the
    chunk's param, grad and slots *chunk* inputs; a call depending on a chunk input is a chunk op, one
    depending only on scalar inputs a scalar op (replayed once per step), anything else a constant.
    """

    def __init__(self, scalars: list[Tensor], chunk: list[Tensor]) -> None:
        super().__init__()
        self.keep: list[Any] = []
        self.index: dict[int, int] = {}
        self.phase: list[int] = []
        self.meta: list[tuple[Any, ...]] = []  # per node: (shape, dtype, owned) or None
        #: (phase, fn, name, argument templates, keyword templates, node)
        self.ops: list[tuple[int, Any, str, tuple[Any, ...], dict[str, Any], int]] = []
        self.known: set[int] = set()
        self.length = chunk[0].numel() if chunk else 0
        self.shape = tuple(chunk[0].shape) if chunk else ()
        self.shape_dep = False
        self.cacheable = True
        self.mutating = False
        for t in scalars:
            self._input(t, _SCALAR)
        for t in chunk:
            self._input(t, _CHUNK)
        self.n_inputs = len(self.phase)

    def _input(self, t: Tensor, phase: int) -> int:
        self.keep.append(t)
        self.index.setdefault(id(t), len(self.phase))
        self.phase.append(phase)
        self.meta.append((tuple(t.shape), t.dtype, False))  # an input is never written
        self.known.add(t.untyped_storage().data_ptr())
        return len(self.phase) - 1

    def _template(self, a: Any) -> tuple[Any, int]:
        if isinstance(a, Tensor):
            k = self.index.get(id(a))
            if k is not None:
                return (1, k), self.phase[k]
            self.known.add(a.untyped_storage().data_ptr())
            self.keep.append(a)
            return (0, a), _CONST
        if isinstance(a, (list, tuple)) and not isinstance(a, torch.Size):
            items = [self._template(x) for x in a]
            phase = max((p for _, p in items), default=_CONST)
            if phase == _CONST:
                return (0, a), _CONST
            return (2, type(a), tuple(t for t, _ in items)), phase
        if isinstance(a, torch.Size) or (type(a) is int and self.length > 1 and a == self.length):
            self.shape_dep = True
        return (0, a), _CONST

    def __torch_function__(self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = _func_name(func)
        targs = [self._template(a) for a in args]
        tkw = {k: self._template(v) for k, v in kwargs.items()}
        phase = max([p for _, p in targs] + [p for _, p in tkw.values()] + [_CONST])
        if phase == _CONST:
            return out
        if _mutates(name, kwargs):
            written = targs[0][1] if targs else phase
            if written != phase or (targs and targs[0][0][0] == 1 and targs[0][0][1] < self.n_inputs):
                raise NotReplayable(f"{name} writes into a value of another kind or into an input")
            self.mutating = True
        elif name in _IDENTITY and args and out is args[0] and not kwargs.get("copy", False):
            # a cast to the dtype the tensor has (array_api_compat's promotion fix before every binary op
            # with a 0-d operand): the same tensor back, so no call to replay and no buffer pinned; a
            # replay runs on tensors of the recorded dtype and device (programs are keyed by them)
            return out
        if not isinstance(out, (Tensor, list, tuple)) or isinstance(out, torch.Size):
            if name in _VALUE_READS:
                if phase == _CHUNK:
                    raise NotReplayable(f"{name} reads the values of a chunk")
                self.cacheable = False
            if out is not None:
                return out
        node = len(self.phase)
        self.ops.append((phase, func, name, tuple(t for t, _ in targs), {k: t for k, (t, _) in tkw.items()}, node))
        self._register(out, phase)
        if isinstance(out, (list, tuple)) and not isinstance(out, torch.Size):
            for k, item in enumerate(out):
                if isinstance(item, Tensor):
                    self.ops.append((phase, _ITEM[k] if k < len(_ITEM) else _item(k), "getitem", ((1, node),), {},
                                     len(self.phase)))
                    self._register(item, phase)
        return out

    def keep_meta(self, node: int) -> tuple[Any, ...] | None:
        """``(shape, dtype, owned, device type)`` of a node, or None."""
        meta = self.meta[node]
        return None if meta is None or len(meta) < 4 else meta

    def _register(self, out: Any, phase: int) -> None:
        self.keep.append(out)
        if isinstance(out, Tensor):
            self.meta.append((tuple(out.shape), out.dtype, _owned(out, self.known), out.device.type))
            self.known.add(out.untyped_storage().data_ptr())
        else:
            self.meta.append(None)
        self.index[id(out)] = len(self.phase)
        self.phase.append(phase)


def _item(k: int) -> Callable[[Any], Any]:
    def get(seq: Any) -> Any:
        return seq[k]

    return get


_ITEM = [_item(k) for k in range(8)]


class Program:
    """An elementwise spec's update as recorded torch calls: scalar ops once per step, chunk ops per chunk.

    Both are generated Python functions calling the recorded functions in order (no interpretation
    per call). Where a chunk call is elementwise and has an ``out=`` form, it writes into a register
    (a buffer the program keeps, of the chunk's length; an argument's register when this call reads
    it for the last time, so the call runs in place) or straight into the slot it computes the new
    value of, once the old value is read no more: the same kernels and values as the recorded calls,
    with no allocation and a working set that stays in cache.

    A cast to the dtype a tensor already has (``x.to(x.dtype)``: array_api_compat's promotion fix before a
    binary op with a 0-d operand) returns the tensor itself and is not recorded, so it pins no buffer. A
    ``minimum(maximum(x, low), high)`` with constant bounds runs as one ``clamp(x, low, high)`` where a probe
    of the special values gives the same numbers (:func:`_fuse_clamps`).

    A ``where`` whose condition is a 0-d value of the step (``step == 1``, RAdam's rectification test,
    ASGD's averaging switch) selects one whole branch: the chunk function is specialized per step on
    the condition's value (:meth:`variant`), the other branch's calls are not made at all.
    """

    def __init__(self, rec: _Recorder, n_scalar: int, n_chunk: int, outs: list[tuple[Any, ...]],
                 slot_inputs: list[int]) -> None:
        self.length = rec.length
        self.shape_dep = rec.shape_dep
        self.cacheable = rec.cacheable
        self.rec = rec
        self.n_scalar, self.n_chunk = n_scalar, n_chunk
        self.outs, self.slot_inputs = outs, slot_inputs
        self.scalar_ops = [(fn, name, a, kw, node) for phase, fn, name, a, kw, node in rec.ops if phase == _SCALAR]
        self.chunk_ops = [(fn, name, a, kw, node) for phase, fn, name, a, kw, node in rec.ops if phase == _CHUNK]
        # the selecting wheres: condition a 0-d bool CPU value of the step, branches of the result's shape/dtype
        self.selects: list[tuple[int, int]] = []  # (node of the where, node of its condition)
        if not rec.mutating:
            for _, name, a, kw, node in self.chunk_ops:
                if name != "where" or kw or len(a) != 3 or a[0][0] != 1 or rec.phase[a[0][1]] != _SCALAR:
                    continue
                cond, out = rec.keep_meta(a[0][1]), rec.meta[node]
                if (cond is None or cond[:2] != ((), torch.bool) or cond[3] != "cpu" or out is None
                        or any(b[0] != 1 or rec.meta[b[1]] is None or rec.meta[b[1]][:2] != out[:2] for b in a[1:])):
                    continue
                self.selects.append((node, a[0][1]))
        self.variants: dict[tuple[bool, ...], Any] = {}
        #: whether the chunk calls include matrix products (the per-tensor replay gains nothing on them)
        self.matmul = any(name in _MATMUL for _, name, *_ in self.chunk_ops)
        env: dict[str, Any] = {"torch": torch}
        self._env = env
        chunk_inputs = range(n_scalar, n_scalar + n_chunk)
        used = _used_nodes(self.chunk_ops, outs)
        scalar_nodes = {node for *_, node in self.scalar_ops}
        self.carried = sorted(n for n in used if n < n_scalar or n in scalar_nodes)
        src = f"def scalars({', '.join(f'v{k}' for k in range(n_scalar))}):\n"
        src += "".join(self._call(fn, name, a, kw, node, {}) for fn, name, a, kw, node in self.scalar_ops)
        key = "".join(f"bool(v{cond}), " for _, cond in self.selects)
        src += f"    return ({''.join(f'v{k}, ' for k in self.carried)}), ({key})\n"
        self.source = src
        exec(compile(src, "<lossbridge flat program>", "exec"), env)  # source generated from the recorded calls
        self.scalars: Callable[..., tuple[Any, ...]] = env["scalars"]
        self.chunk_inputs = chunk_inputs

    # -- code generation ----------------------------------------------------------------------------
    def _const(self, value: Any) -> str:
        name = f"c{len(self._env)}"
        self._env[name] = value
        return name

    def _expr(self, t: tuple[Any, ...]) -> str:
        if t[0] == 1:
            return f"v{t[1]}"
        if t[0] == 0:
            value = t[1]
            if value is None or type(value) in (bool, int) or (
                type(value) is float and value == value and abs(value) != float("inf")
            ):
                return repr(value)
            return self._const(value)
        items = ", ".join(self._expr(x) for x in t[2])
        if t[1] is list:
            return f"[{items}]"
        if t[1] is tuple:
            return f"({items},)"
        return f"{self._const(t[1])}(({items},))"

    def _call(self, fn: Any, name: str, a: tuple[Any, ...], kw: dict[str, Any], node: int,
              plan: dict[int, tuple[str, int]]) -> str:
        where = plan.get(node)
        if where is not None:
            out = f"r{where[1]}" if where[0] == "r" else f"v{where[1]}"
            form = _out_form(name, a, kw, self.rec.meta[node][1], [self._expr(x) for x in a], out, self._const)
            if form is not None:
                return f"    v{node} = {form}\n"
        args = [self._expr(x) for x in a] + [f"{k}={self._expr(v)}" for k, v in kw.items()]
        return f"    v{node} = {self._const(fn)}({', '.join(args)})\n"

    def variant(self, key: tuple[bool, ...]) -> Any:
        """The chunk function for one value of the selecting conditions (built once per value)."""
        found = self.variants.get(key)
        if found is not None:
            return found
        alias: dict[int, tuple[Any, ...]] = {}
        for (node, _), choice in zip(self.selects, key, strict=True):
            a = next(op[2] for op in self.chunk_ops if op[4] == node)
            alias[node] = a[1] if choice else a[2]

        def sub(t: tuple[Any, ...]) -> tuple[Any, ...]:
            if t[0] == 1:
                while t[0] == 1 and t[1] in alias:
                    t = alias[t[1]]
                return t
            if t[0] == 2:
                return (2, t[1], tuple(sub(x) for x in t[2]))
            return t

        ops = [(fn, name, tuple(sub(x) for x in a), {k: sub(v) for k, v in kw.items()}, node)
               for fn, name, a, kw, node in self.chunk_ops if node not in alias]
        outs = [sub(t) for t in self.outs]
        needed = _used_nodes([], outs)
        kept = []
        for op in reversed(ops):  # only the calls an output depends on (every chunk call is pure)
            if op[4] in needed or self.rec.mutating:
                kept.append(op)
                needed |= _used_nodes([op], [])
        ops = _fuse_clamps(kept[::-1], outs, self.rec) if not self.rec.mutating else kept[::-1]
        plan, reg_dtypes = ({}, []) if self.rec.mutating else _plan_registers(self.rec, ops, outs, self.slot_inputs)
        src = f"def chunk(S, R, {', '.join(f'v{k}' for k in self.chunk_inputs)}):\n"
        if self.carried:
            src += f"    {''.join(f'v{k}, ' for k in self.carried)}= S\n"
        if reg_dtypes:
            src += f"    {''.join(f'r{k}, ' for k in range(len(reg_dtypes)))}= R\n"
        src += "".join(self._call(fn, name, a, kw, node, plan) for fn, name, a, kw, node in ops)
        src += f"    return ({''.join(self._expr(t) + ', ' for t in outs)})\n"
        env: dict[str, Any] = {}
        exec(compile(src, "<lossbridge flat program>", "exec"), self._env, env)  # generated from the recording
        found = self.variants[key] = _Variant(env["chunk"], reg_dtypes, _simple(outs, self.n_scalar,
                                                                               self.slot_inputs), src)
        return found


class _Variant:
    """One specialization of a program's chunk function, with its registers."""

    __slots__ = ("_registers", "_views", "chunk", "reg_dtypes", "simple", "source")

    def __init__(self, chunk: Callable[..., tuple[Any, ...]], reg_dtypes: list[torch.dtype], simple: bool,
                 source: str) -> None:
        self.chunk, self.reg_dtypes, self.simple, self.source = chunk, reg_dtypes, simple, source
        self._registers: list[Tensor] = []
        self._views: dict[int, list[Tensor]] = {}

    def registers(self, n: int, like: Tensor, shape: tuple[int, ...] | None = None) -> list[Tensor]:
        """The registers for a chunk of ``n`` elements (allocated once, the longest chunk's length), or
        for a whole tensor of ``shape``."""
        key = n if shape is None else shape
        views = self._views.get(key)
        if views is None:
            if shape is not None:
                views = [torch.empty(shape, dtype=d, device=like.device) for d in self.reg_dtypes]
            else:
                if not self._registers or self._registers[0].numel() < n:
                    self._registers = [torch.empty(n, dtype=d, device=like.device) for d in self.reg_dtypes]
                    self._views = {k: v for k, v in self._views.items() if isinstance(k, tuple)}
                views = [r[:n] for r in self._registers]
            self._views[key] = views
        return views

    def release_shaped(self) -> None:
        """Drop the registers made for whole tensors (kept for one step only: no state-sized memory held)."""
        self._views = {k: v for k, v in self._views.items() if not isinstance(k, tuple)}


def _bound_value(t: tuple[Any, ...], rec: _Recorder) -> float | None:
    """A constant clamp bound (a Python number or a 0-d floating CPU tensor) as a Python float, or None.

    ``clamp`` takes it as a Python number: with 0-d tensor bounds it runs a broadcasting three-input loop
    (measured 157 us against 26 us on 100K float32 elements); the number is cast to the result's dtype as
    the tensor bound was (exactly: a float of the bound's own value), and the probe checks the pair anyway.
    """
    if t[0] != 0:
        return None
    value = t[1]
    if type(value) in (int, float):
        return float(value)
    if isinstance(value, Tensor) and value.ndim == 0 and value.device.type == "cpu" and value.dtype.is_floating_point:
        return float(value)
    return None


#: (dtype, low, high) -> whether ``clamp`` gives the bits of ``minimum(maximum(x, low), high)`` (probed once)
_CLAMP_OK: dict[tuple[Any, ...], bool] = {}


def _clamp_same(dtype: torch.dtype, low: Any, high: Any, lo: float, hi: float) -> bool:
    """Probe ``torch.clamp(x, lo, hi)`` (Python numbers) against ``minimum(maximum(x, low), high)`` (the
    recorded bounds) bit for bit on the values where they could differ (signed zeros, the bounds themselves
    and their neighbours, infinities, NaN, subnormals), in vectorized and scalar tail positions; a NaN is
    NaN in both (its sign bit may differ)."""
    key = (dtype, lo, hi, getattr(low, "dtype", type(low)), getattr(high, "dtype", type(high)))
    found = _CLAMP_OK.get(key)
    if found is None:
        try:
            special = torch.tensor([0.0, -0.0, lo, -lo, hi, -hi, float("inf"), -float("inf"), float("nan"), 1e-40,
                                    -1e-40, 1e30, -1e30, 0.5, -0.5, 3.0, -3.0], dtype=torch.float64).to(dtype)
            near = torch.cat([torch.nextafter(special, special.new_full((), float("inf"))),
                              torch.nextafter(special, special.new_full((), -float("inf")))])
            x = torch.cat([special, near, torch.randn(67, dtype=torch.float64).to(dtype), special.flip(0)])
            want = torch.minimum(torch.maximum(x, low), high)
            got = torch.clamp(x, lo, hi)
            tail = (torch.minimum(torch.maximum(x[:5], low), high), torch.clamp(x[:5], lo, hi))
            found = all(_same_number_bits(a, b) for a, b in ((want, got), tail))
        except Exception:  # a bound or dtype clamp does not take: keep the two calls
            found = False
        _CLAMP_OK[key] = found
    return found


def _same_number_bits(a: Tensor, b: Tensor) -> bool:
    """The same bits everywhere but at NaNs, which must be NaN in both (a NaN's sign and payload may differ:
    ``maximum`` and ``clamp`` pass a NaN operand on differently, it is the same number)."""
    nan = torch.isnan(a)
    return bool(torch.equal(nan, torch.isnan(b))) and _same_bits(torch.where(nan, 0.0, a), torch.where(nan, 0.0, b))


def _fuse_clamps(ops: list[Any], outs: list[tuple[Any, ...]], rec: _Recorder) -> list[Any]:
    """``minimum(maximum(x, low), high)`` with constant 0-d bounds as one ``clamp(x, low, high)`` call (one pass
    instead of two), where a probe shows the same bits for that dtype and those bounds (:func:`_clamp_same`);
    the variant built from it is checked against the update like any other."""
    uses: dict[int, int] = {}
    for _, _, a, kw, _ in ops:
        for n in _used_nodes([(None, None, a, kw, None)], []):
            uses[n] = uses.get(n, 0) + 1
    out_nodes = _used_nodes([], outs)
    producer = {op[4]: op for op in ops}
    fused: dict[int, Any] = {}
    dropped: set[int] = set()
    for _fn, name, a, kw, node in ops:
        if name not in ("minimum", "clamp_max") or kw or len(a) != 2 or a[0][0] != 1:
            continue
        inner = producer.get(a[0][1])
        if (inner is None or inner[1] not in ("maximum", "clamp_min") or inner[3] or len(inner[2]) != 2
                or uses.get(inner[4], 0) != 1 or inner[4] in out_nodes or inner[2][0][0] != 1):
            continue
        low, high = _bound_value(inner[2][1], rec), _bound_value(a[1], rec)
        meta = rec.meta[node]
        if low is None or high is None or meta is None or not meta[1].is_floating_point:
            continue
        # the probe compares the recorded calls (with the recorded bounds) against clamp with the numbers
        if not _clamp_same(meta[1], inner[2][1][1], a[1][1], low, high):
            continue
        fused[node] = (torch.clamp, "clamp", (inner[2][0], (0, low), (0, high)), {}, node)
        dropped.add(inner[4])
    if not fused:
        return ops
    return [fused.get(op[4], op) for op in ops if op[4] not in dropped]


def _used_nodes(ops: list[Any], outs: list[tuple[Any, ...]]) -> set[int]:
    used: set[int] = set()

    def walk(t: tuple[Any, ...]) -> None:
        if t[0] == 1:
            used.add(t[1])
        elif t[0] == 2:
            for x in t[2]:
                walk(x)

    for _, _, a, kw, _ in ops:
        for t in (*a, *kw.values()):
            walk(t)
    for t in outs:
        walk(t)
    return used


def _simple(outs: list[tuple[Any, ...]], n_scalar: int, slot_inputs: list[int]) -> bool:
    """Whether the write-back may copy slot by slot: no output is another slot's old value and the delta
    is no slot's old value (the param and grad may be: the slots are written before the param)."""
    own = {slot: k for k, slot in enumerate(slot_inputs)}
    for k, t in enumerate(outs[: 1 + len(slot_inputs)]):
        if t[0] == 1 and t[1] in own and own[t[1]] != k - 1:
            return False
    return True


def _out_form(name: str, a: tuple[Any, ...], kw: dict[str, Any], dtype: torch.dtype, args: list[str], out: str,
              const: Callable[[Any], str]) -> str | None:
    """The recorded call writing into ``out`` (source text), or None when it has no such form."""
    if kw or not a or a[0][0] != 1:  # keyword arguments (alpha=, rounding_mode=) or a constant first: as recorded
        return None
    if name in _UNARY_OUT and len(a) == 1:
        return f"torch.{_UNARY_OUT[name]}({args[0]}, out={out})"
    if name == "clamp" and len(a) == 3:
        return f"torch.clamp({args[0]}, {args[1]}, {args[2]}, out={out})"
    if name == "where" and len(a) == 3:
        return f"torch.where({args[0]}, {args[1]}, {args[2]}, out={out})"
    if len(a) != 2:
        return None
    if name in _COMMUTATIVE_OUT or name in _BINARY_OUT:
        return f"torch.{_COMMUTATIVE_OUT.get(name) or _BINARY_OUT[name]}({args[0]}, {args[1]}, out={out})"
    if name in _REFLECTED_OUT and dtype in (torch.float32, torch.float64):
        other = a[1]
        if other[0] == 1:
            return f"torch.{_REFLECTED_OUT[name]}({args[1]}, {args[0]}, out={out})"
        if other[0] == 0 and type(other[1]) in (int, float):
            # a Python number is cast to the result's dtype by the recorded call too
            return f"torch.{_REFLECTED_OUT[name]}({const(torch.tensor(other[1], dtype=dtype))}, {args[0]}, out={out})"
    return None


def _plan_registers(rec: _Recorder, chunk_ops: list[Any], outs: list[tuple[Any, ...]],
                    slot_inputs: list[int]) -> tuple[dict[int, tuple[str, int]], list[torch.dtype]]:
    """Where each chunk call writes: ``{node: ("r", register) or ("s", slot input)}``, and the registers' dtypes.

    A register is freed when no later call reads its node (a view of it pins it); a new slot value goes
    into its slot when the old value (and no view of it) is read after the call producing it.
    """
    last: dict[int, int] = {}
    pinned: set[int] = set()

    def args_of(a: tuple[Any, ...], kw: dict[str, Any]) -> list[int]:
        found: list[int] = []

        def walk(t: tuple[Any, ...]) -> None:
            if t[0] == 1:
                found.append(t[1])
            elif t[0] == 2:
                for x in t[2]:
                    walk(x)

        for t in (*a, *kw.values()):
            walk(t)
        return found

    for k, (_, _, a, kw, node) in enumerate(chunk_ops):
        nodes = args_of(a, kw)
        for n in nodes:
            last[n] = k
        meta = rec.meta[node]
        if meta is None or not meta[2]:  # a view or a pass-through shares its arguments' buffers
            pinned.update(nodes)
            pinned.add(node)
    out_list = [t[1] for t in outs if t[0] == 1]
    out_nodes = set(out_list)
    producer = {node: k for k, (_, _, _, _, node) in enumerate(chunk_ops)}
    length = rec.shape

    def eligible(k: int) -> bool:
        _, name, a, kw, node = chunk_ops[k]
        meta = rec.meta[node]
        return (meta is not None and meta[2] and meta[0] == length and meta[1].is_floating_point
                and _out_form(name, a, kw, meta[1], ["x"] * len(a), "o", lambda v: "c") is not None)

    into_slot: dict[int, int] = {}
    for slot_out, slot_in in zip(outs[1: 1 + len(slot_inputs)], slot_inputs, strict=True):
        node = slot_out[1] if slot_out[0] == 1 else None
        if node is None or node not in producer or out_list.count(node) != 1 or node in pinned:
            continue
        like = rec.keep[slot_in]
        if (not eligible(producer[node]) or slot_in in out_nodes or slot_in in pinned
                or last.get(slot_in, -1) > producer[node] or rec.meta[node][:2] != (tuple(like.shape), like.dtype)
                or not like.is_contiguous()):
            continue
        into_slot[node] = slot_in
    plan: dict[int, tuple[str, int]] = {}
    reg_of: dict[int, int] = {}
    dtypes: list[torch.dtype] = []
    free: list[int] = []
    for k, (_, _, a, kw, node) in enumerate(chunk_ops):
        dying = [n for n in dict.fromkeys(args_of(a, kw))
                 if last[n] == k and n in reg_of and n not in pinned and n not in out_nodes]
        if node in into_slot:
            plan[node] = ("s", into_slot[node])
        elif eligible(k):
            dtype = rec.meta[node][1]
            reg = next((reg_of[n] for n in dying if dtypes[reg_of[n]] == dtype), None)
            if reg is not None:
                dying = [n for n in dying if reg_of[n] != reg]
            else:
                reg = next((r for r in free if dtypes[r] == dtype), None)
                if reg is not None:
                    free.remove(reg)
                else:
                    reg = len(dtypes)
                    dtypes.append(dtype)
            plan[node] = ("r", reg)
            reg_of[node] = reg
        free.extend(reg_of[n] for n in dying)
    return plan, dtypes


def _hyper_key(hyper: dict[str, Any]) -> Any:
    """A key of the hyperparameters a recorded program bakes in (tensors by identity), or None."""
    try:
        key = tuple((k, ("tensor", id(v)) if isinstance(v, Tensor) else v) for k, v in hyper.items())
        hash(key)
    except TypeError:
        return None
    return key


def _same_bits(a: Any, b: Any) -> bool:
    if not (isinstance(a, Tensor) and isinstance(b, Tensor)):
        return type(a) is type(b) and (a == b or (a != a and b != b))
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype.is_floating_point and a.element_size() in (2, 4, 8):
        ints = {2: torch.int16, 4: torch.int32, 8: torch.int64}[a.element_size()]
        return torch.equal(a.contiguous().view(ints), b.contiguous().view(ints))
    return torch.equal(a, b)


def _record(
    update: Callable[..., Any], p: Tensor, g: Tensor, slots: dict[str, Tensor], step: Tensor, hyper: dict[str, Any],
    xp: Any, names: list[str], shared_names: list[str], scalar_inputs: list[Tensor],
) -> tuple[Any, dict[str, Any], Program | bool]:
    """The update of one chunk, run for real while recorded: ``(delta, new_slots, program)``.

    The program is False when the update cannot be replayed, or when replaying it on copies of the
    chunk does not give the same bits (then every chunk runs the update itself).
    """
    chunk = [p, g, *(slots[name] for name in names)]
    rec = _Recorder(scalar_inputs, chunk)
    try:
        with rec:
            delta, values = update(p, g, slots, step=step, xp=xp, **hyper)
    except NotReplayable:
        delta, values = update(p, g, slots, step=step, xp=xp, **hyper)
        return delta, values, False
    program: Program | bool = False
    if set(values) == set(names) | set(shared_names):
        try:
            outs = [rec._template(delta)[0], *(rec._template(values[name])[0] for name in [*names, *shared_names])]
            program = Program(rec, len(scalar_inputs), len(chunk), outs,
                              [len(scalar_inputs) + 2 + k for k in range(len(names))])
            copies = [t.clone() for t in chunk]
            scalars, key = program.scalars(*scalar_inputs)
            variant = program.variant(key)
            shape = None if p.ndim == 1 else tuple(p.shape)
            again = variant.chunk(scalars, variant.registers(p.numel(), p, shape), *copies)
            expected = [delta, *(values[name] for name in [*names, *shared_names])]
            if not all(_same_bits(x, y) for x, y in zip(again, expected, strict=True)):
                program = False
        except Exception:  # anything the replay cannot do: the update runs as it is
            program = False
    return delta, values, program
