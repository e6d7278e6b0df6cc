"""Optimizers as ``torch.optim.Optimizer`` subclasses running the spec's ``update``.

One class per bound spec: ``lossbridge.get("adam", backend="torch")`` returns it, and
``Adam(model.parameters(), lr=...)`` makes an optimizer whose defaults are the bound
hyperparameters. Each step runs, per param group, one of three engines:

* a verified native kernel (:mod:`lossbridge_torch._native`), when the override registered one
  and the group's hyperparameters are ones it computes exactly (``fused=False`` turns it off);
* for a spec declaring ``OptimizerSpec.elementwise``, whole-group updates (:mod:`lossbridge_torch._flat`):
  the state slots in one flat buffer per group (``state[p][slot]`` are views into it); eagerly, the
  spec's update runs once per group and step for real while recorded, and the recording replays over
  cache-sized chunks of the group (the step's scalar work once, the elementwise calls in place into
  kept registers and the slots: no allocation, bit for bit the per-tensor values); compiled
  (``compile=True``) as one fused kernel per group or per batch of large tensors;
* the spec's update of one tensor compiled with ``torch.compile`` (``compile=True``; dynamic
  shapes, so one graph per parameter rank serves every tensor), falling back to eager if
  compilation fails;
* the spec's update, eagerly: one call over a whole run of small tensors (a list update: the spec
  gets :class:`~lossbridge_torch._foreach.TensorList` values and a namespace mapping each op onto
  ``torch._foreach_*``), and tensor by tensor for large tensors (recorded once per shape and
  replayed for the other tensors of that shape, see :meth:`SpecOptimizer._shape_step`), for
  ``differentiable=True`` and for a spec the list namespace cannot run. All give the same values.

This module imports torch at the top; the backend imports it lazily.
"""

from __future__ import annotations

import logging
import types
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import torch
from torch import Tensor

from lossbridge import InputError
from lossbridge.bound import BoundOptimizer, translate_kwargs
from lossbridge.spec import validate_params

from ._namespace import namespace

__all__ = ["SpecOptimizer", "optimizer_class"]

_log = logging.getLogger(__name__)
#: torch's implementation flags, kept per param group next to the hyperparameters (torch's meaning):
#: ``maximize`` negates the gradient (a spec-independent transform, applied here once for every spec);
#: ``foreach`` and ``capturable`` are speed / graph-capture hints that never change the result (every
#: engine here keeps the step count a tensor and syncs nothing); ``differentiable`` runs the step with
#: autograd on; ``fused`` chooses a verified native kernel; ``compile`` runs the update through
#: ``torch.compile``.
_OPTIONS = ("fused", "compile", "foreach", "maximize", "capturable", "differentiable")
_OPTION_DEFAULTS: dict[str, Any] = {
    "fused": None,
    "compile": False,
    "foreach": None,
    "maximize": False,
    "capturable": False,
    "differentiable": False,
}
_LOW_PRECISION = (torch.float16, torch.bfloat16)

Slots = dict[str, torch.Tensor]


class SpecOptimizer(torch.optim.Optimizer):
    """Base of the optimizer classes lossbridge makes; see :func:`optimizer_class`.

    Extra options next to the hyperparameters: ``fused`` (``None``/``True``: use a verified native
    kernel where one matches, ``False``: never) and ``compile`` (run the spec's update through
    ``torch.compile``). Both may differ per param group.
    """

    bound: ClassVar[BoundOptimizer]
    native: ClassVar[Any] = None
    _compiled: ClassVar[Callable[..., None] | None] = None
    #: how the eager spec path runs a group: "list" (one update over the group's tensors, see
    #: :meth:`_group_step`), "shape" (the same, split by shape: the spec branches on shapes), "off"
    #: (tensor by tensor: the list namespace could not run this spec)
    _group_mode: ClassVar[str] = "list"
    #: whether an elementwise spec (``OptimizerSpec.elementwise``) runs once per flat group
    #: (:mod:`lossbridge_torch._flat`); turned off for the class if its update fails there
    _flat_ok: ClassVar[bool] = True
    #: the compiled flat update (one per optimizer class), False once compiling it failed
    _flat_compiled: ClassVar[Any] = None

    def __init__(self, params: Iterable[Any], **hyper: Any) -> None:
        options = {k: hyper.pop(k, default) for k, default in _OPTION_DEFAULTS.items()}
        _check_options(self.bound.spec.name, options)
        spec_hyper = translate_kwargs(self.bound.spec, self._framework(), hyper)
        defaults = {**self.bound.with_hyper(**spec_hyper).hyper, **options}
        super().__init__(params, defaults)

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickling / loading an older state_dict: groups without the newer flags get the defaults."""
        super().__setstate__(state)
        for group in self.param_groups:
            for k, default in _OPTION_DEFAULTS.items():
                group.setdefault(k, self.defaults.get(k, default))

    @classmethod
    def __lossbridge_chain__(cls, parts: Any, accumulate: int) -> Any:
        """:func:`lossbridge.chain` on torch (see :mod:`lossbridge_torch._transforms`)."""
        from ._transforms import chain

        return chain(*parts, accumulate=accumulate)

    # -- param groups -------------------------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group; torch's names (``betas``) are accepted, values are validated.

        Under ``convention="caffe"`` a group may give Caffe's per-blob multipliers ``lr_mult`` and
        ``decay_mult`` (``ParamSpec``; Caffe's ``sgd_solver.cpp``: ``local_rate = rate * lr_mult``,
        ``local_decay = weight_decay * decay_mult``): the group's ``lr`` and ``weight_decay`` (its
        own or the defaults) are multiplied by them, and the multipliers are kept in the group.
        """
        extra = {k: v for k, v in param_group.items() if k != "params" and k not in _OPTIONS}
        mults = {k: float(extra.pop(k)) for k in ("lr_mult", "decay_mult") if k in extra}
        if mults and self._framework() != "caffe":
            raise InputError(f"{self.bound.spec.name}: lr_mult / decay_mult are Caffe's per-blob multipliers; "
                             "they are accepted in a param group under convention='caffe' only")
        if "decay_mult" in mults and "weight_decay" not in {p.name for p in self.bound.spec.params}:
            raise InputError(f"{self.bound.spec.name}: decay_mult given, but the spec has no weight_decay")
        group = {"params": param_group["params"], **translate_kwargs(self.bound.spec, self._framework(), extra)}
        group.update({k: param_group[k] for k in _OPTIONS if k in param_group})
        super().add_param_group(group)
        added = self.param_groups[-1]
        for key, target in (("lr_mult", "lr"), ("decay_mult", "weight_decay")):
            if key in mults:
                added[target] = added[target] * mults[key]
                added[key] = mults[key]
        _check_options(self.bound.spec.name, {k: added[k] for k in _OPTIONS})
        names = [p.name for p in self.bound.spec.params]
        given = {k: added[k] for k in names}
        checked = validate_params(self.bound.spec.params, given, owner=self.bound.spec.name)
        added.update(checked)
        for p in added["params"]:
            if not (torch.is_floating_point(p) or torch.is_complex(p)):
                raise InputError(
                    f"{self.bound.spec.name}: params: expected floating-point or complex tensors, got dtype {p.dtype}"
                )
        if added["fused"]:
            self._check_fused(added)

    def _check_fused(self, group: dict[str, Any]) -> None:
        """``fused=True`` is a promise of a native kernel, as in torch: refuse it where there is none."""
        from ._native import NATIVE_KERNELS

        name = self.bound.spec.name
        kernel = self.native or NATIVE_KERNELS.get(name)
        if kernel is None:
            raise RuntimeError(
                f"{name}: fused=True, but lossbridge has no verified fused kernel for {name!r}; "
                "leave fused unset (the spec's update runs; compile=True fuses it with torch.compile)"
            )
        if not kernel.accepts(self._hyper(group), list(group["params"])):
            raise RuntimeError(
                f"{name}: fused=True, but the fused kernel does not compute these hyperparameters or "
                f"parameters exactly ({self._hyper(group)}); leave fused unset to run the spec's update"
            )

    @classmethod
    def _framework(cls) -> str | None:
        """The convention's framework, whose keyword names (``betas``) the constructor takes."""
        return cls.bound.convention.framework if cls.bound.convention else None

    def _hyper(self, group: dict[str, Any]) -> dict[str, Any]:
        return {p.name: group[p.name] for p in self.bound.spec.params}

    # -- stepping -----------------------------------------------------------------------------------
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """One update of every parameter that has a gradient; returns ``closure()`` if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        with torch.no_grad():
            if self.bound.spec.global_slots:
                self._global_step()
                return loss
            for group in self.param_groups:
                self._step_group(group)
        return loss

    #: the key of a spec's global state (``OptimizerSpec.global_slots``) in ``self.state`` (kept by
    #: ``state_dict``/``load_state_dict``, which store non-parameter keys as they are)
    GLOBAL_STATE_KEY: ClassVar[str] = "global"

    def _global_step(self, **extra: Any) -> None:
        """One step of a spec with global state: its partial sums run over the tensors of ALL param
        groups (in group order), then every tensor updates with the old and new global state.
        ``extra``: a spec's shared needs (``value``), see :mod:`lossbridge_torch._oracle`."""
        name = self.bound.spec.name
        keys, params, grads, hypers = [], [], [], []
        for group in self.param_groups:
            if group["compile"] or group["differentiable"]:
                raise InputError(f"{name}: compile=True and differentiable=True are not supported for an "
                                 "optimizer with global state (global_slots)")
            k, ps, gs = self._collect(group)
            if not ps:
                continue
            if group["maximize"]:
                gs = [-g for g in gs]
            keys += k
            params += ps
            grads += gs
            hypers.append(self._hyper(group))
        if not params:
            return
        if any(h != hypers[0] for h in hypers[1:]):
            raise InputError(f"{name}: every param group must have the same hyperparameters (the global "
                             f"state is shared by all parameters), got {hypers}")
        xp = namespace()
        bound = self.bound.with_hyper(**hypers[0])
        glob = self.state.get(self.GLOBAL_STATE_KEY)
        if not glob:
            dtype = min((_step_dtype(p) for p in params), key=lambda d: d.itemsize)
            glob = bound.init_global(dtype=dtype, xp=xp)
        steps = []
        for key, p in zip(keys, params, strict=True):
            self.state[key]["step"] += 1
            steps.append(self.state[key]["step"].to(_step_dtype(p)))
        slots = [self._slots(key) for key in keys]
        deltas, news, new_glob = bound.update_all(params, grads, slots, glob, steps=steps, xp=xp, **extra)
        for key, p, delta, new in zip(keys, params, deltas, news, strict=True):
            p.add_(delta)
            self.state[key].update(new)
        self.state[self.GLOBAL_STATE_KEY] = {k: v.to(glob[k].dtype) for k, v in new_glob.items()}

    def _collect(self, group: dict[str, Any]) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
        """``(keys, params, grads)``: the state keys, and the tensors the update runs on.

        A complex parameter is updated through its real view (``torch.view_as_real``), as torch.optim
        does: real and imaginary parts are independent coordinates.
        """
        keys, params, grads = [], [], []
        xp = namespace()
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.is_sparse:
                raise InputError(
                    f"{self.bound.spec.name}: a parameter of shape {tuple(p.shape)} has a sparse gradient "
                    f"(layout {p.grad.layout}); lossbridge optimizers need dense gradients (use "
                    "sparse=False in nn.Embedding, or torch.optim.SparseAdam)"
                )
            work, grad = (torch.view_as_real(p), torch.view_as_real(p.grad)) if p.is_complex() else (p, p.grad)
            state = self.state[p]
            if not state:
                state["step"] = torch.zeros((), dtype=torch.float32)
                state.update(self.bound.with_hyper(**self._hyper(group)).init(work.detach(), xp=xp))
            keys.append(p)
            params.append(work)
            grads.append(grad)
        return keys, params, grads

    def _slots(self, p: torch.Tensor) -> Slots:
        return {k: v for k, v in self.state[p].items() if k != "step"}

    def _step_group(self, group: dict[str, Any]) -> None:
        keys, params, grads = self._collect(group)
        if not params:
            return
        real = all(k is p for k, p in zip(keys, params, strict=True))
        if group["maximize"]:  # torch's maximize: ascend, i.e. run the update on the negated gradient
            grads = list(torch._foreach_neg(grads))
        hyper = self._hyper(group)
        native = self.native
        if group["fused"]:
            native = native or _kernel(self.bound.spec.name)
        if group["differentiable"]:
            with torch.enable_grad():  # torch's differentiable=True: the step is part of the graph
                self._eager_step(keys, params, grads, hyper)
        elif real and native is not None and group["fused"] is not False and native.accepts(hyper, params):
            native.run(self, params, grads, hyper)
        elif group["compile"]:
            keys, params, grads = self._flat_step(keys, params, grads, hyper, compiled=True)
            if params:
                self._compiled_step(keys, params, grads, hyper)
        else:
            keys, params, grads = self._flat_step(keys, params, grads, hyper)
            if params:
                self._list_step(keys, params, grads, hyper)

    # -- whole-group updates of an elementwise spec (see :mod:`lossbridge_torch._flat`) --------------
    def _flat_step(
        self,
        keys: list[Tensor],
        params: list[Tensor],
        grads: list[Tensor],
        hyper: dict[str, Any],
        *,
        compiled: bool = False,
    ) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
        """The spec's update once per flat group of an elementwise spec; returns the tensors left to the
        other engines (all of them for a spec without ``elementwise``, none usually)."""
        cls = type(self)
        if not (self.bound.spec.elementwise and cls._flat_ok and cls._group_mode != "off"):
            return keys, params, grads
        from ._flat import build_groups

        states = [self.state[k] for k in keys]
        cache: dict[tuple[Any, ...], Any] = self.__dict__.setdefault("_flat_cache", {})
        cache_key = (compiled, *(id(k) for k in keys))
        entry = cache.get(cache_key)
        if entry is None or not all(
            fg.matches([keys[k] for k in idx], [params[k] for k in idx], [states[k] for k in idx])
            for fg, idx in entry[0]
        ):
            if len(cache) > 8:
                cache.clear()
            entry = cache[cache_key] = build_groups(keys, params, grads, states)
        groups, rest = entry
        for n, (fg, idx) in enumerate(groups):
            works, gs = [params[k] for k in idx], [grads[k] for k in idx]
            try:
                if compiled:
                    self._flat_compiled_update(fg, works, gs, hyper)
                else:
                    self._flat_eager_update(fg, works, gs, [states[k] for k in idx], hyper)
            except Exception as exc:  # nothing of this group was written: the other engines run it
                if compiled:
                    _log.warning("lossbridge: torch.compile of %s failed (%s); eager", self.bound.spec.name, exc)
                    cls._flat_compiled = False
                    self._flat_eager_update(fg, works, gs, [states[k] for k in idx], hyper)
                    continue
                _log.info("lossbridge: %s flat update failed (%r); per tensor", self.bound.spec.name, exc)
                cls._flat_ok = False
                cache.clear()
                left = sorted({k for _, i in groups[n:] for k in i} | set(rest))
                return [keys[k] for k in left], [params[k] for k in left], [grads[k] for k in left]
        return [keys[k] for k in rest], [params[k] for k in rest], [grads[k] for k in rest]

    def _flat_eager_update(
        self, fg: Any, works: list[Tensor], grads: list[Tensor], states: list[dict[str, Any]], hyper: dict[str, Any]
    ) -> None:
        fg.run_eager(self.bound.update, works, grads, hyper, namespace())

    def _flat_compiled_update(self, fg: Any, works: list[Tensor], grads: list[Tensor], hyper: dict[str, Any]) -> None:
        cls = type(self)
        if cls._flat_compiled is False:
            raise RuntimeError("torch.compile failed before for this optimizer")
        if cls._flat_compiled is None:  # compiled once per optimizer class (dynamic sizes)
            from ._flat import compiled_batch_update, compiled_flat_update

            xp = namespace()
            cls._flat_compiled = (compiled_flat_update(self.bound, xp), compiled_batch_update(self.bound, xp))
            if cls._compiled is None:  # the per-tensor one, for tensors a flat group cannot take (compiled lazily)
                cls._compiled = torch.compile(_fresh_tensor_update(self.bound), dynamic=True)
        flat_fn, batch_fn = cls._flat_compiled
        fg.run_compiled(flat_fn, batch_fn, works, grads, _as_tensors(self.bound, hyper, fg.dtype))

    # -- state_dict ---------------------------------------------------------------------------------
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state_dict saved by this optimizer; anything else is refused before any change.

        A ``torch.optim`` state_dict (``exp_avg``, ``betas``...) names other slots and hyperparameters
        than the spec's; loading it would leave state the next ``step()`` cannot read, so the
        differences are reported here and nothing is loaded.
        """
        self._check_loadable(state_dict)
        super().load_state_dict(state_dict)

    def _check_loadable(self, state_dict: dict[str, Any]) -> None:
        name = self.bound.spec.name
        where = f"{name}: cannot load this state_dict (nothing was loaded)"
        groups = state_dict.get("param_groups")
        if not isinstance(groups, list) or "state" not in state_dict:
            raise InputError(f"{where}: expected a dict with 'state' and 'param_groups'")
        hyper_names = {p.name for p in self.bound.spec.params}
        current = [p for g in self.param_groups for p in g["params"]]
        saved_ids = [i for g in groups for i in g.get("params", [])]
        if len(groups) != len(self.param_groups) or len(saved_ids) != len(current):
            raise InputError(
                f"{where}: it has {len(groups)} param group(s) with {len(saved_ids)} parameter(s), "
                f"this optimizer {len(self.param_groups)} with {len(current)}"
            )
        by_id = dict(zip(saved_ids, current, strict=True))
        for k, group in enumerate(groups):
            keys = set(group) - {"params"}
            missing = sorted(hyper_names - keys)
            unknown = sorted(keys - hyper_names - set(_OPTIONS) - set(self.param_groups[k]) - {"initial_lr"})
            if missing or unknown:
                raise InputError(
                    f"{where}: param group {k} lacks the spec's hyperparameters {missing} and has names "
                    f"this optimizer does not use {unknown} (a torch.optim state_dict? lossbridge "
                    "optimizers load only their own)"
                )
            hyper = {n: group[n] for n in hyper_names}
            bound = self.bound.with_hyper(**hyper)
            for pid in group.get("params", []):
                slots = state_dict["state"].get(pid)
                if slots is None:
                    continue
                p = by_id[pid]
                work = torch.view_as_real(p.detach()) if p.is_complex() else p.detach()
                init = bound.init(work, xp=namespace())
                expected = {"step", *init}
                have = set(slots)
                if have != expected:
                    raise InputError(
                        f"{where}: the state of parameter {pid} (shape {tuple(p.shape)}) has slots "
                        f"{sorted(have)}, {name} expects {sorted(expected)}"
                        + (" (a torch.optim state_dict?)" if have - expected else "")
                    )
                for slot, fresh in init.items():
                    got = getattr(slots[slot], "shape", None)
                    if got is not None and tuple(got) != tuple(fresh.shape):
                        raise InputError(
                            f"{where}: slot {slot!r} of parameter {pid} has shape {tuple(got)}, {name} expects "
                            f"{tuple(fresh.shape)} for a parameter of shape {tuple(p.shape)}"
                        )

    def _eager_step(
        self, keys: list[Tensor], params: list[Tensor], grads: list[Tensor], hyper: dict[str, Any]
    ) -> None:
        xp = namespace()
        for key, p, g in zip(keys, params, grads, strict=True):
            state = self.state[key]
            state["step"] += 1
            step = state["step"].to(_step_dtype(p))
            delta, new = self.bound.update(p, g, self._slots(key), step=step, xp=xp, **hyper)
            p.add_(delta)
            state.update(new)

    def _shape_step(
        self, keys: list[Tensor], params: list[Tensor], grads: list[Tensor], hyper: dict[str, Any]
    ) -> None:
        """The spec's update tensor by tensor, each recorded once per shape and replayed for the others.

        A :class:`lossbridge_torch._flat.Program` recorded on the first tensor of a shape (the update's
        whole computation, reductions included) runs every other tensor of that shape: the work that
        depends only on the step count once per step, the rest as the recorded torch calls writing
        into kept registers and into the slots in place. Checked bit for bit against the update when
        recorded and when specialized; an update the recording cannot repeat runs as it is.
        """
        if type(self)._group_mode == "off" or torch.compiler.is_compiling():  # tensor by tensor, plainly
            self._eager_step(keys, params, grads, hyper)
            return
        from ._flat import _hyper_key

        hkey = _hyper_key(hyper)
        if hkey is None:
            self._eager_step(keys, params, grads, hyper)
            return
        cache: dict[Any, Any] = self.__dict__.setdefault("_shape_programs", {})
        if len(cache) > 64:
            cache.clear()
        tensor_hyper = [v for v in hyper.values() if isinstance(v, Tensor)]
        scalars_by_step: dict[Any, Any] = {}
        used: set[Any] = set()
        try:
            self._shape_loop(keys, params, grads, hyper, hkey, cache, tensor_hyper, scalars_by_step, used)
        finally:
            for variant in used:
                variant.release_shaped()

    def _shape_loop(self, keys: list[Tensor], params: list[Tensor], grads: list[Tensor], hyper: dict[str, Any],
                    hkey: Any, cache: dict[Any, Any], tensor_hyper: list[Tensor], scalars_by_step: dict[Any, Any],
                    used: set[Any]) -> None:
        from ._flat import Program, _record, _same_bits

        xp = namespace()
        update = self.bound.update
        for key, p, g in zip(keys, params, grads, strict=True):
            state = self.state[key]
            names = [n for n in state if n != "step"]
            slots = [state[n] for n in names]
            state["step"] += 1
            step = state["step"].to(_step_dtype(p))
            if g.dtype != p.dtype or not all(isinstance(t, Tensor) for t in slots):
                delta, new = update(p, g, dict(zip(names, slots, strict=True)), step=step, xp=xp, **hyper)
                p.add_(delta)
                state.update(new)
                continue
            ck = (tuple(p.shape), p.dtype, p.device, tuple(names), tuple((t.shape, t.dtype) for t in slots), hkey)
            program = cache.get(ck)
            scalar_inputs = [step, *tensor_hyper]
            if program is None:
                delta, values, program = _record(update, p, g, dict(zip(names, slots, strict=True)), step, hyper,
                                                 xp, names, [], scalar_inputs)
                if isinstance(program, Program) and (program.matmul or not all(
                    isinstance(values[n], Tensor) and values[n].shape == t.shape and values[n].dtype == t.dtype
                    for n, t in zip(names, slots, strict=True)
                )):  # matrix products dominate (Muon's Newton-Schulz): measured slower replayed, so run as is
                    program = False
                if not isinstance(program, Program) or program.cacheable:
                    cache[ck] = program
                p.add_(delta)
                state.update(values)
                continue
            if program is False:
                delta, new = update(p, g, dict(zip(names, slots, strict=True)), step=step, xp=xp, **hyper)
                p.add_(delta)
                state.update(new)
                continue
            skey = (id(program), float(state["step"]))
            found = scalars_by_step.get(skey)
            if found is None:
                found = scalars_by_step[skey] = program.scalars(*scalar_inputs)
            scalars, vkey = found
            fresh = vkey not in program.variants
            variant = program.variant(vkey)
            used.add(variant)
            if fresh:  # a new specialization: checked once against the update itself, on copies
                copies = [t.clone() for t in slots]
                delta, values = update(p, g, dict(zip(names, copies, strict=True)), step=step, xp=xp, **hyper)
                again = variant.chunk(scalars, variant.registers(p.numel(), p, tuple(p.shape)), p, g,
                                      *[t.clone() for t in slots])
                if not all(_same_bits(x, y) for x, y in zip(again, [delta, *(values[n] for n in names)],
                                                             strict=True)):
                    cache[ck] = False
                    p.add_(delta)
                    state.update(values)
                    continue
            outs = variant.chunk(scalars, variant.registers(p.numel(), p, tuple(p.shape)), p, g, *slots)
            delta = outs[0]
            if isinstance(delta, Tensor) and delta.ndim and any(delta.data_ptr() == t.data_ptr() for t in slots):
                delta = delta.clone()
            targets = dict(zip(names, slots, strict=True))
            _copy_slots(targets, dict(zip(names, outs[1:], strict=True)))
            p.add_(delta)

    def _list_step(
        self, keys: list[Tensor], params: list[Tensor], grads: list[Tensor], hyper: dict[str, Any]
    ) -> None:
        """The eager spec path: small tensors through list updates, the others tensor by tensor.

        A list update (:mod:`lossbridge_torch._foreach`) saves Python work per operation and tensor,
        which dominates for small tensors; for large ones the per-tensor loop is faster on a CPU (its
        temporaries stay in cache between operations, a list operation streams the whole list), as
        torch's own single-tensor step is faster there than its foreach step.
        """
        small = [k for k, p in enumerate(params) if p.numel() <= _LIST_MAX_NUMEL]
        if len(small) < 2 or type(self)._group_mode == "off":
            self._shape_step(keys, params, grads, hyper)
            return
        if len(small) < len(params):
            large = sorted(set(range(len(params))) - set(small))
            self._shape_step([keys[k] for k in large], [params[k] for k in large], [grads[k] for k in large], hyper)
            keys, params, grads = ([xs[k] for k in small] for xs in (keys, params, grads))
        if not self._group_step(keys, params, grads, hyper):
            self._eager_step(keys, params, grads, hyper)
            # the per-tensor loop ran this spec where the list update could not: remember it (an error
            # of the update itself, such as an invalid hyperparameter, raised above and changes nothing)
            type(self)._group_mode = "off"

    def _group_step(
        self, keys: list[Tensor], params: list[Tensor], grads: list[Tensor], hyper: dict[str, Any]
    ) -> bool:
        """The spec's update over whole lists of tensors (see :mod:`lossbridge_torch._foreach`).

        The tensors are split by what one call must share: dtype, device, step count and slot names
        (and shape, for a spec that branches on shapes), then cut into runs of at most
        :data:`_CHUNK_ELEMENTS`. Every run is computed before anything is written, so a spec the list
        namespace cannot run leaves no trace: False is returned, and the per-tensor loop runs instead.
        """
        cls = type(self)
        if cls._group_mode == "off":
            return False
        from ._foreach import NonUniform, TensorList, foreach_namespace

        states = [self.state[k] for k in keys]
        steps = [s["step"] for s in states]
        torch._foreach_add_(steps, 1)
        try:
            results = self._group_updates(params, grads, states, steps, hyper, TensorList, foreach_namespace())
        except NonUniform:
            torch._foreach_sub_(steps, 1)
            if cls._group_mode == "shape":
                return False
            cls._group_mode = "shape"
            return self._group_step(keys, params, grads, hyper)
        except Exception as exc:  # an op the list namespace cannot run: the per-tensor loop may
            torch._foreach_sub_(steps, 1)
            _log.info("lossbridge: %s list update failed (%r); tensor by tensor", self.bound.spec.name, exc)
            return False
        inputs = {id(t) for t in params} | {id(t) for t in grads}
        for idx, delta, new in results:
            group_params = [params[k] for k in idx]
            if isinstance(delta, TensorList):
                torch._foreach_add_(group_params, delta.ts)
            else:
                for p in group_params:
                    p.add_(delta)
            for name, value in new.items():
                _write_state([states[k] for k in idx], name, value, inputs)
        return True

    def _group_updates(
        self,
        params: list[Tensor],
        grads: list[Tensor],
        states: list[dict[str, Any]],
        steps: list[Tensor],
        hyper: dict[str, Any],
        tensor_list: Any,
        xp: Any,
    ) -> list[tuple[list[int], Any, dict[str, Any]]]:
        """The spec's update of every split of the group: ``(indices, delta, new_state)``, nothing written."""
        counts = torch.stack(steps).tolist() if len({s.device for s in steps}) == 1 else [float(s) for s in steps]
        by_shape = type(self)._group_mode == "shape"
        splits: dict[tuple[Any, ...], list[int]] = {}
        for k, (p, state) in enumerate(zip(params, states, strict=True)):
            key = (p.dtype, p.device, counts[k], tuple(state), tuple(p.shape) if by_shape else None)
            splits.setdefault(key, []).append(k)
        results = []
        for (_, _, count, slot_names, _), idx in _chunks(splits, params):
            step = torch.tensor(count, dtype=_step_dtype(params[idx[0]]))
            slots = {name: tensor_list([states[k][name] for k in idx]) for name in slot_names if name != "step"}
            delta, new = self.bound.update(
                tensor_list([params[k] for k in idx]),
                tensor_list([grads[k] for k in idx]),
                slots,
                step=step,
                xp=xp,
                **hyper,
            )
            results.append((idx, delta, new))
        return results

    def _compiled_step(
        self, keys: list[Tensor], params: list[Tensor], grads: list[Tensor], hyper: dict[str, Any]
    ) -> None:
        cls = type(self)
        if cls._compiled is None:  # one compiled update per optimizer class, shared by its instances
            cls._compiled = torch.compile(_fresh_tensor_update(self.bound), dynamic=True)
        traced: dict[torch.dtype, dict[str, Any]] = {}
        for k, (key, p, g) in enumerate(zip(keys, params, grads, strict=True)):
            state = self.state[key]
            state["step"] += 1
            if p.dtype not in traced:
                traced[p.dtype] = _as_tensors(self.bound, hyper, p.dtype)
            try:
                cls._compiled(p, g, self._slots(key), state["step"], traced[p.dtype])
            except Exception as exc:  # compilation failed: the eager loop computes the same update
                _log.warning("lossbridge: torch.compile of %s failed (%s); eager", self.bound.spec.name, exc)
                state["step"] -= 1
                self._eager_step(keys[k:], params[k:], grads[k:], hyper)
                return


def _check_options(name: str, options: dict[str, Any]) -> None:
    """torch's rules for its implementation flags."""
    if options["fused"] and options["foreach"]:
        raise RuntimeError(f"{name}: `fused` and `foreach` cannot be `True` together.")
    if options["fused"] and options["differentiable"]:
        raise RuntimeError(f"{name}: `fused` does not support `differentiable`")


#: elements of one list update: the group is cut into runs of tensors this large (one tensor at
#: least), so the arrays an operation touches stay in cache until the next one reads them (a CPU
#: runs a whole-group list update slower than tensor by tensor once the group outgrows the cache).
_CHUNK_ELEMENTS = 1 << 18
#: tensors up to this size run through list updates; larger ones tensor by tensor (measured on a
#: 2-core EPYC: list updates win below ~10k elements per tensor, lose above; see benchmarks/bench_torch.py)
_LIST_MAX_NUMEL = 1 << 13


def _chunks(splits: dict[tuple[Any, ...], list[int]], params: list[Tensor]) -> Iterable[tuple[Any, list[int]]]:
    """Each split cut into consecutive runs of at most :data:`_CHUNK_ELEMENTS` elements."""
    for key, idx in splits.items():
        run: list[int] = []
        size = 0
        for k in idx:
            n = params[k].numel()
            if run and size + n > _CHUNK_ELEMENTS:
                yield key, run
                run, size = [], 0
            run.append(k)
            size += n
        yield key, run


def _write_state(states: list[dict[str, Any]], name: str, value: Any, inputs: set[int]) -> None:
    """Store a new slot value of a run, as the per-tensor path does (rebinding), copied first when it
    is a param or grad itself, or one tensor standing for the whole run."""
    from ._foreach import TensorList

    news = value.ts if isinstance(value, TensorList) else [value] * len(states)
    for state, new in zip(states, news, strict=True):
        if isinstance(new, Tensor) and (id(new) in inputs or not isinstance(value, TensorList)):
            new = new.clone()
        state[name] = new


def _copy_slots(targets: dict[str, Tensor], values: dict[str, Any]) -> None:
    """``targets[name][...] = values[name]`` as if all at once (see :func:`lossbridge_torch._flat._copy_all`)."""
    from ._flat import _copy_all

    _copy_all(targets, values)


def _kernel(name: str) -> Any:
    from ._native import NATIVE_KERNELS

    return NATIVE_KERNELS.get(name)


def _step_dtype(p: torch.Tensor) -> torch.dtype:
    """The dtype of the step count handed to the spec: the parameter's, float32 for low precision."""
    return torch.float32 if p.dtype in _LOW_PRECISION else p.dtype


def _as_tensors(bound: BoundOptimizer, hyper: dict[str, Any], dtype: torch.dtype) -> dict[str, Any]:
    """Non-static float hyperparameters as 0-d tensors, so a changed lr does not recompile.

    Exact zeros stay Python floats: specs skip work for a literal 0 (``is_zero``).
    """
    out = {}
    for name, value in hyper.items():
        param = bound.spec.param(name)
        if not param.static and isinstance(value, float) and value != 0.0:
            value = torch.tensor(value, dtype=dtype)
        out[name] = value
    return out


def _tensor_update(
    p: Tensor, g: Tensor, state: Slots, step: Tensor, hyper: dict[str, Any], bound: Any = None
) -> None:
    """The spec's update of one tensor, written back in place (what ``torch.compile`` fuses)."""
    delta, new = bound.update(p, g, state, step=step.to(_step_dtype(p)), xp=namespace(), **hyper)
    p.add_(delta)
    for key, value in new.items():
        state[key].copy_(value)


def _fresh_tensor_update(bound: BoundOptimizer) -> Callable[..., None]:
    """:func:`_tensor_update` with ``bound`` as its default, as a plain function with its own code object.

    Dynamo caches compiled graphs and counts recompilations per code object; a fresh one per
    optimizer class keeps one optimizer's graphs (one per parameter rank and dtype, shapes are
    dynamic) from counting toward another's limit. (A ``functools.partial`` would be compiled
    through Dynamo's shared wrapper, whose limit every compiled partial shares.)
    """
    code = _tensor_update.__code__.replace(co_name=f"_tensor_update_{bound.spec.name}")
    return types.FunctionType(code, _tensor_update.__globals__, code.co_name, (bound,))


def optimizer_class(bound: BoundOptimizer, native: Any = None) -> type[SpecOptimizer]:
    """A ``torch.optim.Optimizer`` subclass whose defaults are ``bound``'s hyperparameters."""
    if bound.spec.role == "transform":  # a gradient transform: step() rewrites p.grad (see _transforms)
        from ._transforms import transform_class

        return transform_class(bound)  # type: ignore[return-value]
    if bound.spec.closure_step is not None:  # L-BFGS: step(closure) over all parameters as one vector
        from ._lbfgs import closure_optimizer_class

        return closure_optimizer_class(bound)  # type: ignore[return-value]
    name = "".join(part.capitalize() for part in bound.spec.name.split("_"))
    conv = bound.convention.framework if bound.convention else None
    doc = (
        f"{bound.spec.summary}\n\nlossbridge spec {bound.spec.name!r} (convention {conv!r}) as a "
        f"torch.optim.Optimizer. Defaults: {dict(bound.hyper)}.\n\n{bound.spec.formula}"
    )
    attrs = {"bound": bound, "native": native, "__doc__": doc, "__module__": __name__}
    base: type[SpecOptimizer] = SpecOptimizer
    if getattr(bound.spec, "needs", ()):  # the loss value / Hessian estimate / noise: lossbridge_torch._oracle
        from ._oracle import OracleOptimizer

        base = OracleOptimizer
    return type(name, (base,), attrs)

