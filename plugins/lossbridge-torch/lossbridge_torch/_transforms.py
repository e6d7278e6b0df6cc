"""Gradient transforms on torch: objects that rewrite ``p.grad``, and chains before any optimizer.

``lossbridge.get("clip_by_global_norm", backend="torch", convention="torch")`` returns a class (as
for optimizers); ``ClipByGlobalNorm(model.parameters(), max_norm=1.0)`` makes a
:class:`SpecTransform`, a ``torch.optim.Optimizer`` whose ``step()`` replaces every ``p.grad`` (in
place) by the transformed gradient and leaves the parameters alone. Run it before any optimizer's
``step()``, torch's or lossbridge's::

    clip = lossbridge.get("clip_grad_norm_", backend="torch", convention="torch", max_norm=1.0)
    opt = lossbridge.chain(clip, torch.optim.AdamW(model.parameters(), lr=1e-3))
    loss.backward(); opt.step(); opt.zero_grad()

:func:`lossbridge.chain` makes a :class:`TransformChain` (this module's): transform classes are built over the
optimizer's parameters; ``accumulate=k`` averages the gradients of k ``step()`` calls and runs the
transforms and the optimizer on every k-th (Optax's ``MultiSteps``, Keras's
``gradient_accumulation_steps``; call ``zero_grad()`` after every ``step()`` as usual). Param
groups, ``state_dict``/``load_state_dict`` and (with ``chain.optimizer``) LR schedulers work as for
the optimizer. A complex parameter's gradient is transformed as a complex tensor (norms of
:math:`|g|^2`).

Speed (eager): a transform's ``update`` is recorded once per parameter shape and replayed for the other
tensors of that shape (:class:`_Replayed`, on :mod:`lossbridge_torch._flat`'s recorder), the new gradient
written into ``p.grad`` by the program's last call (clip: one ``clamp`` per tensor, as
``clip_grad_value_``); a global transform (clip_by_global_norm) replays its per-tensor ``partials`` too and
adds them in leaf order as ``BoundOptimizer.update_all`` does. The step counters are views of one buffer
per run of parameters (one addition per step). Bit for bit the values of the update run tensor by tensor
(``tests/test_transform_replay.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from lossbridge import InputError, ParameterError
from lossbridge.bound import BoundOptimizer, translate_kwargs
from lossbridge.spec import validate_params

from ._namespace import namespace

__all__ = ["SpecTransform", "TransformChain", "chain", "transform_class"]

#: accepted and ignored: torch's speed hints (clip_grad_norm_'s ``foreach``) and the implementation flags
#: lossbridge's torch optimizers take, so code that passes them to any lossbridge class keeps working
_HINTS = ("foreach", "fused", "compile", "capturable", "differentiable")


class SpecTransform(torch.optim.Optimizer):
    """Base of the transform classes lossbridge makes; see :func:`transform_class`.

    ``step()`` rewrites the gradients of the parameters it was built over; the parameters are not
    touched. The per-parameter state (an EMA's slot) and the global state (a global norm, under
    ``self.state["global"]``) are saved by ``state_dict()``.
    """

    bound: ClassVar[BoundOptimizer]
    GLOBAL_STATE_KEY: ClassVar[str] = "global"

    def __init__(self, params: Iterable[Any], **hyper: Any) -> None:
        for hint in _HINTS:
            hyper.pop(hint, None)
        spec_hyper = translate_kwargs(self.bound.spec, self._framework(), hyper)
        super().__init__(params, dict(self.bound.with_hyper(**spec_hyper).hyper))

    @classmethod
    def _framework(cls) -> str | None:
        return cls.bound.convention.framework if cls.bound.convention else None

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group; the framework's keyword names are accepted, values are validated."""
        extra = {k: v for k, v in param_group.items() if k != "params" and k not in _HINTS}
        group = {"params": param_group["params"], **translate_kwargs(self.bound.spec, self._framework(), extra)}
        super().add_param_group(group)
        added = self.param_groups[-1]
        names = [p.name for p in self.bound.spec.params]
        added.update(validate_params(self.bound.spec.params, {k: added[k] for k in names}, owner=self.bound.spec.name))

    def _hyper(self, group: dict[str, Any]) -> dict[str, Any]:
        return {p.name: group[p.name] for p in self.bound.spec.params}

    def _collect(self, group: dict[str, Any]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        params, grads = [], []
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise InputError(f"{self.bound.spec.name}: sparse gradients are not supported")
            state = self.state[p]
            if not state:
                state["step"] = torch.zeros((), dtype=torch.float32)
                state.update(self.bound.with_hyper(**self._hyper(group)).init(p.detach(), xp=namespace()))
            params.append(p)
            grads.append(p.grad)
        return params, grads

    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """Replace every ``p.grad`` by the transformed gradient; returns ``closure()`` if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        with torch.no_grad():
            if self.bound.spec.global_slots:
                self._global_step()
            else:
                for group in self.param_groups:
                    self._group_step(group)
        return loss

    def _slots(self, p: torch.Tensor) -> dict[str, Any]:
        return {k: v for k, v in self.state[p].items() if k != "step"}

    def _steps(self, params: list[torch.Tensor]) -> list[torch.Tensor]:
        """Count the step of every parameter; the step count each one's update takes (its real dtype).

        The counters are views of one buffer per run of parameters (torch's layout: a 0-d float32 tensor
        per parameter, as before), so counting is one call; one step tensor per count and dtype."""
        counters = self._counters(params)
        if counters is None:
            for p in params:
                self.state[p]["step"] += 1
            counts = [float(self.state[p]["step"]) for p in params]
        else:
            buf, count = counters
            buf.add_(1)
            bufs = self.__dict__["_step_bufs"]
            bufs[id(buf)] = (buf, count + 1, buf._version, bufs[id(buf)][3])
            counts = [count + 1.0] * len(params)
        # a float32 count is the counter itself (what ``step.to(float32)`` gave): no tensor made per step
        first = self.state[params[0]]["step"]
        made: dict[tuple[float, torch.dtype], torch.Tensor] = {(counts[0], torch.float32): first} if (
            counters is not None) else {}
        real = {dtype: _real_of(dtype) for dtype in {p.dtype for p in params}}
        if counters is not None and len(real) == 1:  # one count, one dtype: one step tensor for all
            (dtype,) = real.values()
            key = (counts[0], dtype)
            if key not in made:
                made[key] = torch.tensor(counts[0], dtype=dtype)
            return [made[key]] * len(params)
        steps = []
        for p, count in zip(params, counts, strict=True):
            key = (count, real[p.dtype])
            if key not in made:
                made[key] = torch.tensor(count, dtype=key[1])
            steps.append(made[key])
        return steps

    def _counters(self, params: list[torch.Tensor]) -> tuple[torch.Tensor, float] | None:
        """The step buffer whose views are the parameters' ``step`` entries, and its count; rebuilt from the
        per-parameter state (the truth) when it is not what this method left (a load_state_dict, a counter
        written by hand). None when the counts differ or a counter is not torch's 0-d float32 CPU tensor."""
        bufs: dict[int, tuple[torch.Tensor, float, int, tuple[torch.Tensor, ...]]] = self.__dict__.setdefault(
            "_step_bufs", {})
        states = [self.state[p] for p in params]
        steps = [s["step"] for s in states]
        base = steps[0]._base if isinstance(steps[0], torch.Tensor) else None
        found = bufs.get(id(base)) if base is not None else None
        if (found is not None and found[0] is base and base._version == found[2] and len(found[3]) == len(steps)
                and all(a is b for a, b in zip(steps, found[3], strict=True))):
            return base, found[1]
        if not all(isinstance(t, torch.Tensor) and t.ndim == 0 and t.dtype == torch.float32
                   and t.device.type == "cpu" for t in steps):
            return None
        counts = torch.stack(steps).tolist()
        if len(set(counts)) != 1 or not float(counts[0]).is_integer():
            return None
        if len(bufs) > 8:
            bufs.clear()
        buf = torch.full((len(steps),), counts[0], dtype=torch.float32)
        views = buf.unbind()
        for state, view in zip(states, views, strict=True):
            state["step"] = view
        bufs[id(buf)] = (buf, counts[0], buf._version, views)
        return buf, counts[0]

    def _group_step(self, group: dict[str, Any]) -> None:
        params, grads = self._collect(group)
        if not params:
            return
        bound = self._bound(self._hyper(group))
        runner = self.__dict__.setdefault("_runner", _Replayed())
        states = [self.state[p] for p in params]
        slots = [{k: v for k, v in state.items() if k != "step"} if len(state) > 1 else {} for state in states]
        runner.run(bound, [p.detach() for p in params], grads, slots, states, self._steps(params), namespace(), {})

    def _bound(self, hyper: dict[str, Any]) -> BoundOptimizer:
        """``self.bound`` with a group's hyperparameters (kept: validating them again each step costs ~50 us)."""
        cache: dict[Any, BoundOptimizer] = self.__dict__.setdefault("_bounds", {})
        try:
            key = tuple(sorted(hyper.items()))
            hash(key)
        except TypeError:
            return self.bound.with_hyper(**hyper)
        found = cache.get(key)
        if found is None:
            if len(cache) > 16:
                cache.clear()
            found = cache[key] = self.bound.with_hyper(**hyper)
        return found

    def _global_step(self) -> None:
        name = self.bound.spec.name
        params, grads, hypers = [], [], []
        for group in self.param_groups:
            ps, gs = self._collect(group)
            if ps:
                params += ps
                grads += gs
                hypers.append(self._hyper(group))
        if not params:
            return
        if any(h != hypers[0] for h in hypers[1:]):
            raise InputError(f"{name}: every param group must have the same hyperparameters (one global "
                             f"state for all parameters), got {hypers}")
        xp = namespace()
        bound = self._bound(hypers[0])
        glob = self.state.get(self.GLOBAL_STATE_KEY)
        if not glob:
            dtype = min((_real_dtype(p) for p in params), key=lambda d: d.itemsize)
            glob = bound.init_global(dtype=dtype, xp=xp)
        steps = self._steps(params)
        slots = [self._slots(p) for p in params]
        detached = [p.detach() for p in params]
        spec = bound.spec
        if spec.needs or (bound.convention is not None and bound.convention.hyper_dtype is not None):
            # rounded hyperparameters (Keras's float32) or needs: BoundOptimizer.update_all as it is
            outs, news, new_glob = bound.update_all(detached, grads, slots, glob, steps=steps, xp=xp)
            for p, g, out, new in zip(params, grads, outs, news, strict=True):
                g.copy_(out)
                self.state[p].update(new)
            self.state[self.GLOBAL_STATE_KEY] = {k: v.to(glob[k].dtype) for k, v in new_glob.items()}
            return
        assert spec.partials is not None and spec.combine is not None and spec.update is not None
        values = dict(bound.hyper)
        runner = self.__dict__.setdefault("_runner", _Replayed())
        # BoundOptimizer.update_all's order: every tensor's partials, summed in leaf order, combine, the updates
        glob = dict(glob)
        sums = runner.partials(spec.partials, detached, grads, slots, steps, values, xp, glob)
        new_glob = dict(spec.combine(sums, glob, step=steps[0], xp=xp, **values))
        if set(new_glob) != set(spec.global_slots):
            raise InputError(f"{name}: combine returned {sorted(new_glob)}; declared global_slots: "
                             f"{list(spec.global_slots)}")
        runner.run(bound, detached, grads, slots, [self.state[p] for p in params], steps, xp,
                   {"glob": glob, "new_glob": new_glob})
        self.state[self.GLOBAL_STATE_KEY] = {k: v.to(glob[k].dtype) for k, v in new_glob.items()}

    @classmethod
    def __lossbridge_chain__(cls, parts: Sequence[Any], accumulate: int) -> TransformChain:
        return chain(*parts, accumulate=accumulate)


#: bytes of whole-tensor registers a transform keeps from step to step (one per shape its programs need)
_KEEP_BYTES = 8 << 20
#: the key under which the transformed gradient is a "slot" of a recorded program: the program writes the new
#: gradient straight into ``p.grad`` (its last call's ``out=``) where the old one is read no more
_GRAD = "\x00grad"


class _Replayed:
    """A transform's ``update`` (and a global transform's ``partials``) run per tensor, recorded once per shape
    and replayed (:class:`lossbridge_torch._flat.Program`).

    The recorded program runs the step's 0-d work (the scale of a global norm clip) once per step, and every
    tensor's elementwise calls write into kept registers and, for the last one, into the gradient itself: the
    gradient is handed to the program as a state slot, so the new gradient is written in place where the old
    one is read no more (clip: one ``clamp`` call into ``p.grad``; torch's ``clip_grad_value_`` is one in-place
    clamp too). The same torch calls as the update (a ``maximum`` then ``minimum`` with constant bounds becomes
    one ``clamp`` where a probe shows the same bits): checked bit for bit against the update when recorded and
    when specialized; an update the recording cannot repeat runs as it is, its result copied into ``p.grad``.
    """

    def __init__(self) -> None:
        self.programs: dict[Any, Any] = {}
        self.used: set[Any] = set()
        self.partial_names: list[str] = []

    def run(self, bound: BoundOptimizer, params: list[torch.Tensor], grads: list[torch.Tensor],
            slots: list[dict[str, Any]], states: list[dict[str, Any]], steps: list[torch.Tensor], xp: Any,
            extra: dict[str, dict[str, Any]]) -> None:
        """``p.grad`` replaced by ``bound.update``'s new gradient (in place), the new slots into ``states``."""
        from ._flat import _copy_all, _hyper_key

        def as_slot(p: Any, g: Any, state: dict[str, Any], *, step: Any, xp: Any) -> Any:
            inner = {k: v for k, v in state.items() if k != _GRAD}
            new_grad, new = bound.update(p, state[_GRAD], inner, step=step, xp=xp, **extra)
            return 0.0, {**new, _GRAD: new_grad}

        scalars = [t for d in extra.values() for t in d.values()]
        hkey = _hyper_key(dict(bound.hyper))
        fast: dict[Any, Any] = {}
        try:
            for p, g, slot, state, step in zip(params, grads, slots, states, steps, strict=True):
                targets = {**slot, _GRAD: g}
                sig = _signature(p, g, slot, step)
                hit = fast.get(sig)
                if hit is not None:  # a tensor of a shape already run this step: its program, straight
                    variant, scalar_values, registers = hit
                    outs = variant.chunk(scalar_values, registers, p, p, *targets.values())
                    if len(outs) != 2 or outs[1] is not g:
                        _copy_all(targets, dict(zip(targets, outs[1:], strict=True)))
                    continue
                values, replayed = self._one("update", as_slot, p, targets, step, [step, *scalars], {}, hkey, xp,
                                             fast=fast, sig=sig)
                if replayed:  # the program's outputs are its registers: copied into the slots
                    _copy_all(targets, values)
                    continue
                new_grad = values.pop(_GRAD)
                if new_grad is not g:
                    g.copy_(new_grad)
                state.update(values)
        finally:
            self.release()

    def release(self) -> None:
        """Drop the registers made for whole tensors once they hold more than :data:`_KEEP_BYTES` (kept from
        step to step below that: a fresh gradient-sized buffer per step is mmap'd and page-faulted again)."""
        held = sum(t.numel() * t.element_size() for variant in self.used
                   for k, views in variant._views.items() if isinstance(k, tuple) for t in views)
        if held > _KEEP_BYTES:
            for variant in self.used:
                variant.release_shaped()
            self.used.clear()

    def partials(self, partials: Any, params: list[torch.Tensor], grads: list[torch.Tensor],
                 slots: list[dict[str, Any]], steps: list[torch.Tensor], hyper: dict[str, Any], xp: Any,
                 glob: dict[str, Any]) -> dict[str, Any]:
        """Every tensor's ``partials``, summed in leaf order (``BoundOptimizer.update_all``'s sums)."""
        from ._flat import _hyper_key

        hkey = _hyper_key(hyper)
        sums: dict[str, list[Any]] = {}
        names = self.partial_names  # the entries' names (one transform object, one spec: kept from step to step)

        def one(p: Any, g: Any, state: dict[str, Any], *, step: Any, xp: Any, **kw: Any) -> Any:
            out = partials(p, state[_GRAD], {k: v for k, v in state.items() if k != _GRAD}, glob, step=step,
                           xp=xp, **kw)
            names[:] = list(out)
            if len(out) != 1:  # one 0-d value is what a program returns
                raise _Several(out)
            return next(iter(out.values())), {_GRAD: state[_GRAD]}

        fast: dict[Any, Any] = {}
        try:
            for p, g, slot, step in zip(params, grads, slots, steps, strict=True):
                targets = {**slot, _GRAD: g}
                sig = _signature(p, g, slot, step)
                hit = fast.get(sig)
                try:
                    if hit is not None:
                        variant, scalar_values, registers = hit
                        value = variant.chunk(scalar_values, registers, p, p, *targets.values())[0]
                    else:
                        value, _ = self._one("partials", one, p, targets, step, [step, *glob.values()], hyper,
                                             hkey, xp, delta=True, fast=fast, sig=sig)
                    found = {names[0]: value}
                except _Several as several:
                    found = several.args[0]
                for name, v in found.items():
                    sums.setdefault(name, []).append(v)
        finally:
            self.release()
        return {name: _leaf_sum(values) for name, values in sums.items()}

    def _one(self, kind: str, fn: Any, p: torch.Tensor, slots: dict[str, Any], step: torch.Tensor,
             scalar_inputs: list[Any], hyper: dict[str, Any], hkey: Any, xp: Any, delta: bool = False,
             fast: dict[Any, Any] | None = None, sig: Any = None) -> Any:
        """One tensor through the program of its shape (recorded on the first): ``(the new slots, or the
        update's first output with delta=True; whether a program computed them)``. A program that ran is
        kept in ``fast[sig]`` with its step values and registers for the other tensors of the step."""
        from ._flat import Program, _record, _same_bits

        names = list(slots)
        tensors = [slots[n] for n in names]
        plain = (hkey is None or torch.compiler.is_compiling()
                 or not all(isinstance(t, torch.Tensor) for t in [*tensors, *scalar_inputs]))
        key = None if plain else (kind, tuple(p.shape), p.dtype, p.device, tuple(names),
                                  tuple((t.shape, t.dtype) for t in tensors),
                                  tuple((t.shape, t.dtype) for t in scalar_inputs), hkey)
        program = None if key is None else self.programs.get(key)
        if key is None or program is False:
            out, values = fn(p, p, dict(slots), step=step, xp=xp, **hyper)
            return (out if delta else values), False
        if program is None:
            out, values, program = _record(fn, p, p, dict(slots), step, hyper, xp, names, [], scalar_inputs)
            if isinstance(program, Program) and not all(
                isinstance(values[n], torch.Tensor) and values[n].shape == t.shape and values[n].dtype == t.dtype
                for n, t in zip(names, tensors, strict=True)
            ):
                program = False
            if len(self.programs) > 64:
                self.programs.clear()
            if not isinstance(program, Program) or program.cacheable:
                self.programs[key] = program
            return (out if delta else values), False
        scalars, vkey = program.scalars(*scalar_inputs)
        fresh = vkey not in program.variants
        variant = program.variant(vkey)
        shape = tuple(p.shape)
        self.used.add(variant)
        if fresh:  # a new specialization: checked once against the update itself, on copies
            out, values = fn(p, p, {n: t.clone() for n, t in zip(names, tensors, strict=True)}, step=step,
                             xp=xp, **hyper)
            again = variant.chunk(scalars, variant.registers(p.numel(), p, shape), p, p,
                                  *[t.clone() for t in tensors])
            if not all(_same_bits(x, y) for x, y in zip(again, [out, *(values[n] for n in names)], strict=True)):
                self.programs[key] = False
                return (out if delta else values), False
        registers = variant.registers(p.numel(), p, shape)
        outs = variant.chunk(scalars, registers, p, p, *tensors)
        if fast is not None:
            fast[sig] = (variant, scalars, registers)
        if delta:
            return outs[0], True
        return dict(zip(names, outs[1:], strict=True)), True


def _signature(p: torch.Tensor, g: torch.Tensor, slot: dict[str, Any], step: torch.Tensor) -> tuple[Any, ...]:
    """What a tensor's run shares with the tensors whose program it may reuse within one step."""
    if not slot:
        return id(step), p.shape, p.dtype, p.device, g.shape, g.dtype
    return (id(step), p.shape, p.dtype, p.device, g.shape, g.dtype, tuple(slot),
            *[(t.shape, t.dtype) if isinstance(t, torch.Tensor) else None for t in slot.values()])


def _sequential(values: list[Any]) -> Any:
    """``((v0 + v1) + v2) + ...``: the adapter's sum in leaf order (``BoundOptimizer.update_all``)."""
    total = values[0]
    for v in values[1:]:
        total = total + v
    return total


#: dtype -> numpy scalar type whose additions give torch's 0-d additions bit for bit (probed once per dtype)
_SCALAR_SUM: dict[torch.dtype, Any] = {}


def _scalar_type(dtype: torch.dtype) -> Any:
    """The numpy scalar type adding like torch's 0-d CPU tensors of ``dtype`` (IEEE round to nearest in that
    format), or None. Probed once per dtype against torch's own additions on values where they could differ
    (subnormals: a flush-to-zero mode, overflow, signed zeros, cancellation)."""
    found = _SCALAR_SUM.get(dtype)
    if found is None:
        found = False
        kind = {torch.float32: np.float32, torch.float64: np.float64}.get(dtype)
        if kind is not None:
            info = torch.finfo(dtype)
            probe = [1.0, info.tiny / 4, info.tiny / 8, -0.0, 0.0, info.max, info.max, -info.max, 1e-3, -1.0,
                     info.eps / 3, 7.0, -7.0, info.tiny, -info.tiny / 2, 0.1, 0.2, 0.3]
            tensors = [torch.tensor(x, dtype=dtype) for x in probe]
            for start in range(len(tensors) - 1):
                want = _sequential(tensors[start:])
                got = torch.tensor(float(_numpy_sum([float(t) for t in tensors[start:]], kind)), dtype=dtype)
                if not (torch.isnan(want) and torch.isnan(got)) and not bool(
                        torch.equal(want.view(torch.int32 if dtype == torch.float32 else torch.int64),
                                    got.view(torch.int32 if dtype == torch.float32 else torch.int64))):
                    break
            else:
                found = kind
        _SCALAR_SUM[dtype] = found
    return found or None


def _numpy_sum(numbers: list[float], kind: Any) -> Any:
    with np.errstate(all="ignore"):
        total = kind(numbers[0])
        for x in numbers[1:]:
            total = total + kind(x)
    return total


def _leaf_sum(values: list[Any]) -> Any:
    """The partial sums of every tensor added in leaf order, as ``BoundOptimizer.update_all`` adds them.

    Many 0-d float32/float64 CPU tensors are added as numpy scalars of the same format (one ``stack`` and
    ``tolist`` instead of one 0-d torch addition per tensor, ~3-5 us each): IEEE additions in the same
    format and order give the same bits (probed per dtype, :func:`_scalar_type`)."""
    first = values[0]
    if (len(values) < 4 or not isinstance(first, torch.Tensor) or first.ndim != 0 or first.device.type != "cpu"
            or torch.is_grad_enabled()):
        return _sequential(values)
    kind = _scalar_type(first.dtype)
    if kind is None or not all(isinstance(v, torch.Tensor) and v.ndim == 0 and v.dtype == first.dtype
                               and v.device == first.device for v in values):
        return _sequential(values)
    return torch.tensor(float(_numpy_sum(torch.stack(values).tolist(), kind)), dtype=first.dtype)


class _Several(Exception):
    """A global transform's partials with more than one entry: run as they are."""


def _real_of(dtype: torch.dtype) -> torch.dtype:
    """:func:`_real_dtype` from a parameter's dtype."""
    real = dtype.to_real() if dtype.is_complex else dtype
    return torch.float32 if real in (torch.float16, torch.bfloat16) else real


def _real_dtype(p: torch.Tensor) -> torch.dtype:
    dtype = p.real.dtype if p.is_complex() else p.dtype
    return torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype


def transform_class(bound: BoundOptimizer) -> type[SpecTransform]:
    """A :class:`SpecTransform` subclass whose defaults are ``bound``'s hyperparameters."""
    name = "".join(part.capitalize() for part in bound.spec.name.split("_"))
    conv = bound.convention.framework if bound.convention else None
    doc = (
        f"{bound.spec.summary}\n\nlossbridge gradient transform {bound.spec.name!r} (convention {conv!r}): "
        f"step() rewrites p.grad. Defaults: {dict(bound.hyper)}.\n\n{bound.spec.formula}"
    )
    return type(name, (SpecTransform,), {"bound": bound, "__doc__": doc, "__module__": __name__})


class TransformChain:
    """Transforms, then an optimizer, on the same parameters; see :func:`lossbridge.chain`.

    ``transforms`` are :class:`SpecTransform` instances, ``optimizer`` any ``torch.optim.Optimizer``
    (or ``None``: the chain only rewrites gradients). ``accumulate=k``: see the module docstring.
    """

    def __init__(
        self, transforms: Sequence[SpecTransform], optimizer: torch.optim.Optimizer | None, *, accumulate: int = 1
    ) -> None:
        self.transforms = tuple(transforms)
        self.optimizer = optimizer
        self.accumulate = accumulate
        self._acc: dict[torch.Tensor, torch.Tensor] = {}
        self._mini_step = 0

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        """The optimizer's param groups (the first transform's without an optimizer)."""
        owner = self.optimizer if self.optimizer is not None else self.transforms[0]
        return owner.param_groups

    def _params(self) -> list[torch.Tensor]:
        return [p for g in self.param_groups for p in g["params"]]

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Accumulate (``accumulate > 1``), transform the gradients, step the optimizer; ``closure()``'s value."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if self.accumulate > 1 and not self._accumulated():
            return loss
        for t in self.transforms:
            t.step()
        if self.optimizer is not None:
            self.optimizer.step()
        return loss

    @torch.no_grad()
    def _accumulated(self) -> bool:
        """Add the gradients to the running mean; on the k-th call put the mean in ``.grad`` (True)."""
        n = self._mini_step
        params = [p for p in self._params() if p.grad is not None]
        for p in params:
            acc = self._acc.get(p)
            if acc is None:
                acc = self._acc[p] = torch.zeros_like(p.grad)
            acc.add_((p.grad - acc) / (n + 1))
        if n + 1 < self.accumulate:
            self._mini_step = n + 1
            return False
        for p in params:
            p.grad.copy_(self._acc[p])
            self._acc[p].zero_()
        self._mini_step = 0
        return True

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients (the optimizer's ``zero_grad``)."""
        owner = self.optimizer if self.optimizer is not None else self.transforms[0]
        owner.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        """The transforms', the optimizer's and the accumulator's state."""
        index = {p: k for k, p in enumerate(self._params())}
        return {
            "transforms": [t.state_dict() for t in self.transforms],
            "optimizer": None if self.optimizer is None else self.optimizer.state_dict(),
            "accumulate": {"mini_step": self._mini_step,
                           "acc": {index[p]: a.clone() for p, a in self._acc.items() if p in index}},
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load what :meth:`state_dict` saved."""
        saved = state_dict.get("transforms", [])
        if len(saved) != len(self.transforms):
            raise InputError(f"chain: the state_dict has {len(saved)} transform(s), this chain {len(self.transforms)}")
        for t, s in zip(self.transforms, saved, strict=True):
            t.load_state_dict(s)
        if self.optimizer is not None:
            self.optimizer.load_state_dict(state_dict["optimizer"])
        acc = state_dict.get("accumulate", {})
        params = self._params()
        self._mini_step = int(acc.get("mini_step", 0))
        self._acc = {params[int(k)]: v.clone() for k, v in acc.get("acc", {}).items()}

    def __lossbridge_chain__(self, parts: Sequence[Any], accumulate: int) -> TransformChain:
        return chain(*parts, accumulate=accumulate)

    def __repr__(self) -> str:
        names = [t.bound.spec.name for t in self.transforms]
        opt = type(self.optimizer).__name__ if self.optimizer is not None else None
        return f"<lossbridge torch chain transforms={names} optimizer={opt} accumulate={self.accumulate}>"


def chain(*parts: Any, accumulate: int = 1) -> Any:
    """``lossbridge.chain`` on torch: transforms (classes or instances), then at most one optimizer, last.

    With an optimizer CLASS last (``lossbridge.get("adam", backend="torch")`` or ``torch.optim.Adam``)
    the result is a factory like an optimizer class: ``chained(params, **optimizer_kwargs)`` builds the
    optimizer and the transforms over ``params`` and returns the :class:`TransformChain`.
    """
    *head, last = parts
    if isinstance(last, type) and issubclass(last, torch.optim.Optimizer) and not issubclass(last, SpecTransform):
        return _chain_factory(tuple(head), last, accumulate)
    optimizer = None if _is_transform(last) else last
    if optimizer is not None and not isinstance(optimizer, torch.optim.Optimizer):
        raise ParameterError(f"chain: the last part must be a torch.optim.Optimizer instance or a transform, "
                             f"got {type(last).__name__}")
    transforms_in = list(head) if optimizer is not None else list(parts)
    params: list[Any] | None = None
    if optimizer is not None:
        params = [p for g in optimizer.param_groups for p in g["params"]]
    transforms = []
    for k, t in enumerate(transforms_in):
        if isinstance(t, TransformChain):
            if t.optimizer is not None or t.accumulate > 1:
                raise ParameterError("chain: an inner chain may hold transforms only, without accumulate")
            transforms.extend(t.transforms)
        elif isinstance(t, type) and issubclass(t, SpecTransform):
            if params is None:
                raise ParameterError(f"chain: part {k} is a transform class; without an optimizer build it "
                                     "over the parameters first (Clip(model.parameters()))")
            transforms.append(t(params))
        elif isinstance(t, SpecTransform):
            transforms.append(t)
        else:
            raise ParameterError(f"chain: part {k} ({type(t).__name__}) is not a lossbridge torch transform "
                                 "(lossbridge.get(<transform>, backend='torch')); only the last part may be an "
                                 "optimizer")
    if not transforms and optimizer is None:
        raise ParameterError("chain: expected at least one transform or an optimizer")
    return TransformChain(transforms, optimizer, accumulate=accumulate)


def _chain_factory(head: tuple[Any, ...], optimizer_class: type, accumulate: int) -> Callable[..., TransformChain]:
    def chained(params: Iterable[Any], **kwargs: Any) -> TransformChain:
        optimizer = optimizer_class(list(params), **kwargs)
        return chain(*head, optimizer, accumulate=accumulate)

    names = [getattr(getattr(h, "bound", None), "spec", None) for h in head]
    chained.__name__ = "chain_" + "_".join([*(n.name for n in names if n is not None), optimizer_class.__name__])
    chained.__doc__ = f"Build {optimizer_class.__name__}(params, **kwargs) with the transforms before it."
    return chained


def _is_transform(part: Any) -> bool:
    return isinstance(part, (SpecTransform, TransformChain)) or (
        isinstance(part, type) and issubclass(part, SpecTransform)
    )
