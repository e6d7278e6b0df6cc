"""Closure-step optimizers (``OptimizerSpec.closure_step``: L-BFGS) as ``torch.optim.Optimizer`` subclasses.

``lossbridge.get("LBFGS", backend="torch", convention="torch")`` is a class taking
``torch.optim.LBFGS``'s keyword arguments (``lr``, ``max_iter``, ``max_eval``, ``tolerance_grad``,
``tolerance_change``, ``history_size``, ``line_search_fn``); ``opt.step(closure)`` behaves as
torch's: ``closure()`` zeroes the gradients, computes the loss, calls ``backward()`` and returns the
loss; it is called once at the start (its result is returned) and at every trial point.

Like ``torch.optim.LBFGS``, it has ONE param group and works on all parameters as one flat vector
(complex parameters as real pairs); the spec's value-dependent loops run on the host (a Python
``while``), which is what torch's own implementation does, so no graph capture is attempted.

State: kept under the first parameter, as torch keeps it, but as the spec's slots over the flat
vector (``s_mem``, ``y_mem``, ``rho``: fixed ``(history_size, n)`` / ``(history_size,)`` tensors, a ring
buffer whose oldest row is ``head`` (an int64 0-d tensor), ``rho = 0`` for an empty row; ``h_diag``,
``d``, ``t``, ``prev_x``, ``prev_grad``, ``prev_value``, ``n_iter``, ``func_evals``, ``value``, ``grad``,
``stepsize``: all tensors of the parameters' dtype), where ``torch.optim.LBFGS`` keeps ``func_evals``,
``n_iter`` (Python ints), ``d``, ``t``, ``old_dirs``/``old_stps``/``ro`` (growing Python lists of tensors), ``H_diag``,
``prev_flat_grad``, ``prev_loss`` (a float) and ``al``. A stored pair is written into one row of the
memory in place (the spec's ``set_row`` hook; torch appends to its lists): the optimizer owns those
tensors (a loaded state's are cloned before the first write) and ``state_dict()`` returns copies of
them, so a state_dict taken earlier never changes. A ``state_dict()`` of ours loads into ours
(through ``torch.save``/``torch.load(weights_only=True)`` too) and continues exactly as if never
interrupted; a ``torch.optim.LBFGS`` state_dict is refused by ``load_state_dict`` (nothing is loaded),
as is one from another optimizer or for other parameters. A state_dict saved before the memory was a
ring buffer (rows oldest first, no ``head``) loads with ``head = 0``, which is that layout.

A Tensor ``lr`` (``torch.tensor(0.001)``, float32) acts as torch's does: torch multiplies its float64
vectors by the 0-d float32 tensor, i.e. by ``float(lr)`` (the float32-rounded value), which is what the
spec's arithmetic does with it here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import numpy as np
import torch

from lossbridge import InputError
from lossbridge.bound import BoundOptimizer, translate_kwargs

from ._namespace import namespace

__all__ = ["ClosureOptimizer", "closure_optimizer_class"]


#: the spec's ring-buffer memory (written one row in place) and its write position
_RING = ("s_mem", "y_mem", "rho")
_HEAD = "head"


#: NumPy dtypes of the torch dtypes whose zero arrays :class:`_CallocZeros` allocates
_NUMPY_DTYPES = {torch.float64: np.float64, torch.float32: np.float32, torch.float16: np.float16}


class _CallocZeros:
    """The torch namespace for the spec's ``init``, whose large CPU ``zeros`` (the ``history_size x n``
    memory) are NumPy's ``calloc``'d arrays: the same zeros, but a page is touched only when a pair is
    written into it (``torch.zeros`` writes every byte up front: 2 x 40 MB for 100 x 100k float32,
    more than a whole ``torch.optim.LBFGS`` step, whose lists grow with the pairs held)."""

    def __init__(self, xp: Any) -> None:
        self._xp = xp

    def __getattr__(self, name: str) -> Any:
        return getattr(self._xp, name)

    def zeros(self, shape: Any, *, dtype: Any = None, device: Any = None) -> Any:
        np_dtype = _NUMPY_DTYPES.get(dtype)
        size = 1
        for k in (shape if isinstance(shape, tuple) else (shape,)):
            size *= int(k)
        if np_dtype is None or size < 1 << 16 or (device is not None and torch.device(device).type != "cpu"):
            return self._xp.zeros(shape, dtype=dtype, device=device)
        return torch.from_numpy(np.zeros(shape, dtype=np_dtype))


def _host_loop(cond: Callable[[Any], Any], body: Callable[[Any], Any], carry: Any) -> Any:
    while bool(cond(carry)):
        carry = body(carry)
    return carry


def _get_row(mem: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
    """The spec's ``get_row`` hook: row ``i`` of ``mem`` as a view (torch reads its list entries, no copy)."""
    return mem[int(i)]


def _set_row(mem: torch.Tensor, i: torch.Tensor, row: torch.Tensor) -> torch.Tensor:
    """The spec's ``set_row`` hook: row ``i`` of ``mem`` (a tensor this optimizer owns) written in place."""
    mem[int(i)] = row
    return mem


class ClosureOptimizer(torch.optim.Optimizer):
    """Base of the closure-step optimizer classes; see :func:`closure_optimizer_class`."""

    bound: ClassVar[BoundOptimizer]

    def __init__(self, params: Iterable[Any], **hyper: Any) -> None:
        framework = self.bound.convention.framework if self.bound.convention else None
        spec_hyper = translate_kwargs(self.bound.spec, framework, hyper)
        defaults = dict(self.bound.with_hyper(**spec_hyper).hyper)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError(f"{self.bound.spec.name} doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]
        self._owned: dict[str, torch.Tensor] = {}  # the memory tensors this optimizer writes in place

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add the (only) group; torch's names (``line_search_fn``) are accepted, values are validated."""
        framework = self.bound.convention.framework if self.bound.convention else None
        extra = {k: v for k, v in param_group.items() if k != "params"}
        group = {"params": param_group["params"], **translate_kwargs(self.bound.spec, framework, extra)}
        super().add_param_group(group)
        added = self.param_groups[-1]
        names = [p.name for p in self.bound.spec.params]
        added.update(self.bound.with_hyper(**{k: added[k] for k in names}).hyper)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load a state_dict saved by this optimizer; anything else (a ``torch.optim.LBFGS`` one: ``old_dirs``,
        ``old_stps``, ``ro``, ``line_search_fn``...) is refused before any change."""
        self._check_loadable(state_dict)
        super().load_state_dict(state_dict)
        state = self.state.get(self._params[0]) if self._params else None
        if state:  # torch casts every tensor to the parameters' dtype: the ring's head is an index again
            head = state.get(_HEAD)
            state[_HEAD] = torch.zeros((), dtype=torch.int64) if head is None else head.to(torch.int64)

    def state_dict(self) -> dict[str, Any]:
        """torch's state_dict, the memory tensors copied (they are written in place by later steps)."""
        out = super().state_dict()
        out["state"] = {k: {**v, **{r: v[r].clone() for r in _RING if r in v}} for k, v in out["state"].items()}
        return out

    def _check_loadable(self, state_dict: dict[str, Any]) -> None:
        name = self.bound.spec.name
        where = f"{name}: cannot load this state_dict (nothing was loaded)"
        groups = state_dict.get("param_groups") if isinstance(state_dict, dict) else None
        if not isinstance(groups, list) or not isinstance(state_dict.get("state"), dict):
            raise InputError(f"{where}: expected a dict with 'state' and 'param_groups'")
        saved_ids = [i for g in groups for i in g.get("params", [])]
        if len(groups) != 1 or len(saved_ids) != len(self._params):
            raise InputError(f"{where}: it has {len(groups)} param group(s) with {len(saved_ids)} parameter(s), "
                             f"this optimizer 1 with {len(self._params)}")
        hyper_names = {p.name for p in self.bound.spec.params}
        keys = set(groups[0]) - {"params"}
        missing = sorted(hyper_names - keys)
        unknown = sorted(keys - hyper_names - set(self.param_groups[0]) - {"initial_lr"})
        if missing or unknown:
            raise InputError(f"{where}: its param group lacks the spec's hyperparameters {missing} and has names "
                             f"this optimizer does not use {unknown} (a torch.optim state_dict? lossbridge "
                             "optimizers load only their own)")
        n = sum(v.numel() for v in self._views())
        expected = set(self.bound.spec.slots)
        for k, pid in enumerate(saved_ids):
            slots = state_dict["state"].get(pid)
            if not slots:
                continue
            have = set(slots)
            if k != 0 or have not in (expected, expected - {_HEAD}):  # no head: saved before the ring buffer
                hint = " (a torch.optim state_dict?)" if have - expected else ""
                raise InputError(f"{where}: parameter {k} has state slots {sorted(have)}; {name} keeps "
                                 f"{sorted(expected)} under the first parameter only{hint}")
            d = slots["d"]
            if not isinstance(d, torch.Tensor) or d.shape != (n,):
                raise InputError(f"{where}: its state is for {getattr(d, 'shape', None)} flat parameters, "
                                 f"this optimizer has {n}")

    def _views(self) -> list[torch.Tensor]:
        return [torch.view_as_real(p) if p.is_complex() else p for p in self._params]

    def _flat_grad(self) -> torch.Tensor:
        out = []
        for p in self._params:
            g = p.grad
            if g is None:
                out.append(p.new_zeros(p.numel() * (2 if p.is_complex() else 1)).real)
                continue
            g = g.to_dense() if g.is_sparse else g
            out.append((torch.view_as_real(g) if g.is_complex() else g).reshape(-1))
        return torch.cat(out)

    def _set(self, x: torch.Tensor) -> None:
        k = 0
        for v in self._views():
            n = v.numel()
            v.copy_(x[k : k + n].view_as(v))
            k += n

    @torch.no_grad()
    def step(self, closure: Callable[[], Any]) -> Any:  # type: ignore[override]
        """One step (up to ``max_iter`` iterations); returns the loss ``closure()`` gave at the start."""
        closure = torch.enable_grad()(closure)
        group = self.param_groups[0]
        hyper = {p.name: group[p.name] for p in self.bound.spec.params}
        xp = namespace()
        orig_loss = closure()
        x = torch.cat([v.reshape(-1) for v in self._views()]).clone()
        dtype = x.dtype

        def value_and_grad(trial: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            self._set(trial)
            value = closure()
            return torch.as_tensor(float(value), dtype=dtype), self._flat_grad()

        grad = self._flat_grad()
        state = self.state[self._params[0]]
        bound = self.bound.with_hyper(**hyper)
        if not state:
            state.update(bound.init(x, xp=_CallocZeros(xp) if x.device.type == "cpu" else xp))
            self._owned = {k: state[k] for k in _RING if k in state}
        for k in _RING:  # a memory this optimizer did not make (loaded, assigned) is cloned before a write
            if k in state and state[k] is not self._owned.get(k):
                state[k] = state[k].clone()
        self._owned = {k: state[k] for k in _RING if k in state}
        step = self.bound.spec.closure_step
        assert step is not None
        value = torch.as_tensor(float(orig_loss), dtype=dtype)
        new_x, _, new_state = step(x, grad, dict(state), value=value, value_and_grad=value_and_grad,
                                   loop=_host_loop, set_row=_set_row, get_row=_get_row, xp=xp,
                                   **dict(bound.hyper))
        self._set(new_x)
        state.update(new_state)
        return orig_loss


def closure_optimizer_class(bound: BoundOptimizer) -> type[ClosureOptimizer]:
    """A ``torch.optim.Optimizer`` subclass with ``step(closure)`` whose defaults are ``bound``'s."""
    name = "".join(part.upper() if part == "lbfgs" else part.capitalize() for part in bound.spec.name.split("_"))
    conv = bound.convention.framework if bound.convention else None
    doc = (
        f"{bound.spec.summary}\n\nlossbridge spec {bound.spec.name!r} (convention {conv!r}) as a "
        f"torch.optim.Optimizer with step(closure). Defaults: {dict(bound.hyper)}.\n\n{bound.spec.formula}"
    )
    return type(name, (ClosureOptimizer,), {"bound": bound, "__doc__": doc, "__module__": __name__})
