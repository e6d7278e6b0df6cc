"""The spec model: immutable declarations of losses and optimizers, each written once.

A :class:`LossSpec` holds a pure function over an Array API namespace ``xp`` that returns
unreduced loss values; reduction and weighting happen in :mod:`lossbridge.reduction`. An
:class:`OptimizerSpec` holds pure ``init``/``update`` functions for one parameter tensor.

Rules for the functions (they must run unchanged on array-api-strict, and trace under
``jax.jit``, ``tf.function(jit_compile=True)`` and ``torch.compile(fullgraph=True)``):

* only functions of the Array API standard, from the ``xp`` argument; no framework imports;
* no in-place mutation and no Python branching on array values (branching on shapes and on
  ``static`` parameters is fine);
* numerically stable forms (log-sum-exp, ``log1p``, softplus as ``logaddexp(0, x)``).

Loss functions take the inputs positionally in the order of ``LossSpec.inputs``, then ``xp`` and the
spec's parameters as keywords: ``fn(y_true, y_pred, /, *, xp, **params)``. The optional ``vjp``
takes the same inputs and the cotangent of the values:
``vjp(y_true, y_pred, cotangent, /, *, xp, **params)`` and returns a tuple with one gradient per
differentiable input, in declaration order.

Optimizer functions: ``init(param, /, *, xp, **hyper) -> dict`` of state slots, and
``update(param, grad, state, /, *, step, xp, **hyper) -> (delta, new_state)`` where the new
parameter is ``param + delta`` and ``step`` is the 1-based index of this update (an array of the
parameter's dtype). The adapter owns the step counter. (The design first had ``update`` return the
new parameter; it returns the increment so that Optax's ``update(grads, state, params=None)`` and
``optax.chain`` get updates directly, and no backend loses bits subtracting ``new - old``.)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from lossbridge.conventions import Convention
from lossbridge.errors import SpecError
from lossbridge.spec._domain import DOMAINS
from lossbridge.spec._params import (
    CLASS_WEIGHT_PARAM,
    DTYPE_PARAM,
    IGNORE_INDEX_PARAM,
    REDUCTION_PARAM,
    Param,
)

__all__ = ["TASKS", "Input", "LossSpec", "Masking", "OptimizerSpec", "ScheduleSpec"]

#: Task tags a loss spec may carry.
TASKS = frozenset(
    {
        "regression",
        "binary",
        "multiclass",
        "multilabel",
        "ranking",
        "metric_learning",
        "segmentation",
        "sequence",
        "probabilistic",
    }
)

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

#: What an optimizer's step may need beyond ``(param, grad, state)`` (see :class:`OptimizerSpec`).
NEEDS = frozenset({"value", "hessian_diag", "noise"})


@dataclass(frozen=True)
class Input:
    """One array a loss consumes.

    ``domain`` is a domain name (see :mod:`lossbridge.spec._domain`) or a function of the resolved
    parameters returning one (``y_pred`` is ``"logit"`` when ``from_logits`` else ``"probability"``).
    """

    name: str
    role: Literal["target", "prediction", "input"]
    domain: str | Callable[[Mapping[str, Any]], str]
    differentiable: bool = False
    doc: str = ""

    def domain_for(self, params: Mapping[str, Any]) -> str:
        """The domain name under the resolved ``params``."""
        return self.domain(params) if callable(self.domain) else self.domain


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class _SpecBase:
    name: str
    summary: str
    params: tuple[Param, ...] = ()
    aliases: tuple[str, ...] = ()
    formula: str = ""
    references: tuple[str, ...] = ()
    usage: str = ""
    conventions: Mapping[str, Convention] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "conventions", _frozen(self.conventions))
        object.__setattr__(self, "params", tuple(self.params))
        object.__setattr__(self, "aliases", tuple(self.aliases))

    def param(self, name: str) -> Param:
        """The declaration of parameter ``name``."""
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def all_params(self) -> tuple[Param, ...]:
        """Every parameter ``lossbridge.get`` accepts for this spec."""
        return self.params

    def _problems(self) -> list[str]:
        problems = []
        if not _NAME.match(self.name):
            problems.append(f"name {self.name!r} is not lower_snake_case")
        if not self.summary:
            problems.append("summary is empty")
        if not self.formula:
            problems.append("formula (LaTeX) is empty")
        if not self.references:
            problems.append("references are empty")
        names = [p.name for p in self.all_params()]
        if len(names) != len(set(names)):
            problems.append(f"duplicate parameter names in {names}")
        for fw, conv in self.conventions.items():
            if not isinstance(conv, Convention) or conv.framework != fw:
                problems.append(f"convention {fw!r} is not a Convention for framework {fw!r}")
                continue
            unknown = set(conv.params) - set(names)
            if unknown:
                problems.append(f"convention {fw!r} sets unknown parameter(s) {sorted(unknown)}")
            unknown = set(conv.rounded or ()) - set(names)
            if unknown:
                problems.append(f"convention {fw!r} rounds unknown parameter(s) {sorted(unknown)}")
        return problems

    def validate_declaration(self, *, plugin: str | None = None) -> None:
        """Raise :class:`SpecError` naming ``plugin`` if this declaration is malformed."""
        problems = self._problems()
        if problems:
            who = f" from plugin {plugin!r}" if plugin else ""
            raise SpecError(
                f"malformed spec {getattr(self, 'name', '?')!r}{who}: " + "; ".join(problems),
                plugin=plugin,
            )


#: How a masked element of an input counts for nothing (see :class:`Masking`).
MASK_FILLS = frozenset({"zero", "lowest"})


@dataclass(frozen=True)
class Masking:
    """How a mask of valid elements (Optax's ``where=``) applies to a spec's inputs.

    ``fill`` maps an input name to the value a masked element of that input takes so that it
    counts for nothing in the formula: ``"zero"`` (a zero label or coordinate adds nothing to a sum,
    a dot product or a norm), ``"lowest"`` (a logit or log-probability far below every other one,
    finite so that ``0 * it`` stays 0: probability 0), or ``"log:<param>"`` (``"lowest"`` when the
    boolean parameter ``<param>`` is true, else ``"zero"``). Inputs not named are left as they are.
    A value (one per row) whose row has no valid element is 0 and does not count in a mean.
    ``rows``: a mask one rank lower than the prediction masks whole rows (Optax's softmax
    cross-entropies read it as ``expand_dims(where, -1)``); otherwise it broadcasts against the
    trailing axes. ``item_weights``: the input that per-item weights (Optax's ranking ``weights=``,
    the prediction's shape) multiply; ``None``: weights are per value (``sample_weight``).
    Specs returning one value per element need no ``Masking``: their masked values are zeroed.
    """

    fill: Mapping[str, str] = field(default_factory=dict)
    rows: bool = False
    item_weights: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "fill", _frozen(self.fill))


@dataclass(frozen=True)
class LossSpec(_SpecBase):
    """A loss function, defined once.

    ``elementwise`` losses return one value per element of the prediction (MSE, BCE, hinge);
    the others consume the last axis and return one value per sample (cross-entropy, triplet).
    ``weighting`` lists the shared weighting features the spec supports beyond ``sample_weight``:
    ``"class_weight"`` and ``"ignore_index"`` (both need a ``class_index`` target).

    ``kinks(rng, inputs, params) -> inputs`` (optional, NumPy, used by the conformance kit only)
    takes float64 inputs sampled from the domains (a dict keyed by input name) and the resolved
    parameters, and returns a copy with some entries moved exactly onto the loss's
    non-differentiable points (a hinge margin of 0, a zero residual, a tie, a clip edge), so every
    backend's gradient is compared there. ``coupled`` losses mix samples (a batch-level Dice, an
    NT-Xent): an output value depends on other rows, so backends do not derive a forward-mode rule
    from the per-row gradient for them.
    """

    fn: Callable[..., Any] | None = None
    inputs: tuple[Input, ...] = ()
    tasks: frozenset[str] = frozenset()
    vjp: Callable[..., tuple[Any, ...]] | None = None
    elementwise: bool = True
    min_ndim: int = 1
    weighting: frozenset[str] = frozenset()
    kinks: Callable[..., dict[str, Any]] | None = None
    coupled: bool = False
    masking: Masking | None = None
    kind: Literal["loss"] = "loss"

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "tasks", frozenset(self.tasks))
        object.__setattr__(self, "weighting", frozenset(self.weighting))

    def all_params(self) -> tuple[Param, ...]:
        """The spec's parameters plus the shared ``reduction`` (and weighting) parameters."""
        shared = [REDUCTION_PARAM, DTYPE_PARAM]
        if "class_weight" in self.weighting:
            shared.append(CLASS_WEIGHT_PARAM)
        if "ignore_index" in self.weighting:
            shared.append(IGNORE_INDEX_PARAM)
        return self.params + tuple(shared)

    @property
    def target(self) -> Input | None:
        """The input with role ``"target"``, if any."""
        return next((i for i in self.inputs if i.role == "target"), None)

    @property
    def differentiable_inputs(self) -> tuple[Input, ...]:
        """The inputs a gradient is taken with respect to."""
        return tuple(i for i in self.inputs if i.differentiable)

    def _problems(self) -> list[str]:
        problems = super()._problems()
        if not callable(self.fn):
            problems.append("fn is not callable")
        if self.vjp is not None and not callable(self.vjp):
            problems.append("vjp is not callable")
        if not self.inputs:
            problems.append("inputs are empty")
        if not any(i.differentiable for i in self.inputs):
            problems.append("no input is differentiable")
        for i in self.inputs:
            if isinstance(i.domain, str) and i.domain not in DOMAINS:
                problems.append(f"input {i.name!r} has unknown domain {i.domain!r}")
        if not self.tasks or not self.tasks <= TASKS:
            problems.append(f"tasks {sorted(self.tasks)} must be a non-empty subset of {sorted(TASKS)}")
        unknown = self.weighting - {"class_weight", "ignore_index"}
        if unknown:
            problems.append(f"unknown weighting feature(s) {sorted(unknown)}")
        if self.masking is not None:
            names = {i.name for i in self.inputs}
            for name, rule in self.masking.fill.items():
                if name not in names:
                    problems.append(f"masking fills unknown input {name!r}")
                if rule not in MASK_FILLS and not rule.startswith("log:"):
                    problems.append(
                        f"masking rule {rule!r} of {name!r} is not one of {sorted(MASK_FILLS)} or 'log:<param>'"
                    )
            if self.masking.item_weights is not None and self.masking.item_weights not in names:
                problems.append(f"masking item_weights names unknown input {self.masking.item_weights!r}")
        return problems


@dataclass(frozen=True)
class OptimizerSpec(_SpecBase):
    """An optimizer, defined once, as pure functions over one parameter tensor.

    ``slots`` names every per-parameter state entry ``init`` may return (``("m", "v", "v_max")`` for
    Adam); a state entry not declared there is a :class:`~lossbridge.SpecError` when it appears.
    ``params`` must include the learning rate ``lr``.

    Global state (optimizers that need a sum over ALL parameter tensors, e.g. Prodigy, D-Adaptation)
    ------------------------------------------------------------------------------------------------
    ``global_slots`` names 0-d state entries shared by every tensor (``("d", "numerator")``). A spec
    that declares them also gives three functions, and a backend runs one step as:

    1. ``init_global(*, dtype, xp, **hyper) -> {slot: 0-d array}`` once, next to each tensor's ``init``;
    2. ``partials(param, grad, state, glob, /, *, step, xp, **hyper) -> {name: 0-d array}`` per tensor;
       the adapter SUMS each entry over all tensors in a fixed leaf order (the only cross-tensor
       operation: where a sharded setup would all-reduce);
    3. ``combine(sums, glob, /, *, step, xp, **hyper) -> new_glob`` (every global slot);
    4. ``update(param, grad, state, /, *, step, xp, glob, new_glob, **hyper) -> (delta, new_state)``
       per tensor, with the old and the new global state.

    The three functions are present exactly when ``global_slots`` is non-empty; a spec without
    global slots takes the per-tensor path unchanged. A backend that cannot run global state
    refuses such a spec with a :class:`~lossbridge.BackendError` naming ``global_slots``.

    Gradient transforms (``role="transform"``: clipping, centralization, an EMA of updates)
    ------------------------------------------------------------------------------------------
    A gradient transform is an OptimizerSpec with ``role="transform"``: the same ``init`` /
    ``update`` (and, for a sum over all tensors such as a global norm, the same ``global_slots`` /
    ``partials`` / ``combine``), but ``update`` returns the TRANSFORMED GRADIENT instead of a
    parameter increment: ``update(param, grad, state, /, *, step, xp, **hyper) -> (new_grad, new_state)``.
    It needs no ``lr``. Optax's ``update(grads, state, params) -> (updates, state)`` is exactly this
    contract, so the JAX adapter materializes a transform as an ``optax.GradientTransformation``
    through its optimizer path unchanged (it composes with ``optax.chain``); the torch adapter makes
    an object whose ``step()`` rewrites each ``p.grad`` (run before any optimizer); the NumPy
    adapter's ``update`` returns the transformed gradients. :func:`lossbridge.chain` composes
    transforms with an optimizer on each backend (see :mod:`lossbridge.chain`). ``param`` is
    ``None`` for a transform that does not read it when the caller has no parameters (Optax's
    ``update(grads, state)``).

    Per-parameter labels (a weight-decay mask, Keras's ``exclude_from_weight_decay``, Caffe's
    ``lr_mult``/``decay_mult``) are not part of a spec: the adapter runs the SAME spec with some
    hyperparameters replaced for the labelled tensors (torch param groups; Optax masks, see
    ``Convention.masks``; on Keras, ``weight_decay=0`` for the variables Keras's own
    ``_use_weight_decay`` excludes). A label that switches the formula is a static parameter of the
    spec: muon's ``use_adam`` (the Adam fallback whatever the shape), which the Keras adapter sets for
    the variables Keras Muon's ``exclude_layers`` (regexes searched in ``variable.path``) and
    ``exclude_embeddings`` (``"embedding"`` in the lower-cased path, default True) match: the keras
    convention's ``masks``. Caffe's per-blob ``lr_mult`` / ``decay_mult`` (``sgd_solver.cpp``:
    ``local_rate = rate * lr_mult``, ``local_decay = weight_decay * decay_mult``) scale ``lr`` and
    ``weight_decay`` under ``convention="caffe"``: keys of a torch param group
    (``{"params": [b], "lr_mult": 2, "decay_mult": 0}``), or on NumPy ``lr_mult=`` / ``decay_mult=``
    trees like the parameters, one number per array.

    Extra inputs (optimizers that need more than the gradient: Polyak SGD, Sophia, noisy SGD)
    ----------------------------------------------------------------------------------------
    ``needs`` names what else a step consumes beyond ``(param, grad, state)``. The adapter supplies
    each one as a keyword argument of that name to ``update`` (and to ``partials`` and ``combine``
    of a spec with global slots); the spec never computes or draws it (that would need autodiff or
    a random generator, which the Array API has not). The names (:data:`NEEDS`):

    * ``"value"``: the objective's value at the current parameters, a 0-d array (one for all tensors);
    * ``"hessian_diag"``: an estimate of the diagonal of the objective's Hessian at the current
      parameters, shaped like the parameter: Hutchinson's ``r * (H r)`` with a Rademacher
      vector :math:`r` over ALL parameters (Optax's ``hutchinson_estimator_diag_hessian``), computed
      by the adapter from the objective (JAX: ``obj_fn=`` as an extra argument of ``update``, a jvp
      of the gradient; torch: ``step(closure)``, ``torch.autograd.grad(create_graph=True)``; NumPy:
      an ``hvp=`` function given to ``update``);
    * ``"noise"``: a standard-normal sample shaped like the parameter, drawn by the adapter (JAX:
      a PRNG key in the state, split as Optax splits it, so numbers equal Optax's; the other
      backends: their own generator seeded with the spec's ``key``: the same distribution, not
      the same numbers).

    A spec whose needs are random (``hessian_diag``, ``noise``) has a static int parameter ``key``,
    the seed. ``needs_at(step, /, *, xp, **hyper) -> 0-d bool array`` (optional) tells at which
    steps ``update`` uses its needs (Sophia refreshes its Hessian estimate every
    ``update_interval`` steps); on the other steps the adapter passes zeros and neither computes
    nor draws anything, so a random stream advances only when used, as Optax's does. ``None``:
    every step. A backend that cannot supply a need refuses the spec with a
    :class:`~lossbridge.BackendError` naming it.

    Closure steps (the objective at trial points, all parameters as one vector: L-BFGS)
    -----------------------------------------------------------------------------------
    ``closure_step`` replaces ``update`` (which is then ``None``; no ``global_slots``, no ``needs``).
    The spec works on ``x``, the concatenation of ALL parameters as one 1-D vector (each tensor
    flattened, in the backend's fixed leaf order, complex tensors as real pairs, as torch and Optax
    do), and ``init(x, /, *, xp, **hyper)`` gives the state of that vector (declared in ``slots``,
    shared by all parameters). One step is::

        closure_step(x, grad, state, /, *, value, value_and_grad, loop, set_row, xp, **hyper)
            -> (new_x, delta, new_state)

    * ``grad``, ``value``: the gradient and the objective at ``x``, evaluated once by the caller
      (torch's ``closure()``, Optax's ``value=``/``grad=`` extra arguments, a NumPy closure);
    * ``value_and_grad(x_trial) -> (value, grad)``: the objective at a trial point (the torch
      closure run on parameters set to ``x_trial``; ``jax.value_and_grad(value_fn)`` on JAX);
    * ``loop(cond, body, carry) -> carry``: the backend's while loop over a dict of arrays (a host
      ``while bool(cond(carry))`` on NumPy, array-api-strict and torch, ``jax.lax.while_loop`` on
      JAX). Every value-dependent decision (a line search's bracket, a stopping test, a guarded
      evaluation) is data in the carry, so the spec never branches on values and traces under
      ``jax.jit``; host backends run the same loop eagerly, as ``torch.optim.LBFGS`` itself does;
    * ``set_row(mem, i, row) -> mem``: the backend's write of ONE row ``i`` (a 0-d integer array) of a
      state array ``mem`` (a memory of rows, L-BFGS's ring buffer of pairs): torch writes it in place
      (``mem[i] = row``; the optimizer owns its state tensors, clones a loaded state before the first
      write and copies them in ``state_dict()``), JAX ``mem.at[i].set(row)`` (a dynamic-update-slice,
      in place inside the compiled step), NumPy in place on the arrays its optimizer made. ``None``
      (array-api-strict, the conformance kit): the spec's pure Array API default, a select
      ``where(arange(m) == i, row, mem)``. Either way the spec uses only the returned array, so a
      functional and an in-place hook give the same numbers;
    * ``new_x`` is the new vector and ``delta`` the increment (exactly the step when the spec takes
      one iteration per call, Optax's updates); host backends write ``new_x``.

    A backend that cannot evaluate the objective refuses such a spec with a
    :class:`~lossbridge.BackendError` naming ``closure_step``.
    """

    init: Callable[..., dict[str, Any]] | None = None
    update: Callable[..., tuple[Any, dict[str, Any]]] | None = None
    slots: tuple[str, ...] = ()
    #: ``update`` is elementwise: no reduction over a tensor, no branch on shapes, and every slot of
    #: ``init`` is shaped like the parameter or 0-d (the same value for every tensor at one step).
    #: Then ``update`` of the concatenation of several tensors (0-d slots shared) is the concatenation
    #: of their updates, bit for bit, and a backend may run it once over a whole param group flattened
    #: (``tests/spec/test_elementwise_flag.py`` proves the flag for every spec that sets it).
    elementwise: bool = False
    global_slots: tuple[str, ...] = ()
    init_global: Callable[..., dict[str, Any]] | None = None
    partials: Callable[..., dict[str, Any]] | None = None
    combine: Callable[..., dict[str, Any]] | None = None
    role: Literal["optimizer", "transform"] = "optimizer"
    needs: tuple[str, ...] = ()
    needs_at: Callable[..., Any] | None = None
    closure_step: Callable[..., tuple[Any, Any, dict[str, Any]]] | None = None
    kind: Literal["optimizer"] = "optimizer"

    @property
    def gradient_driven(self) -> bool:
        """A step consumes only gradients from the caller (no ``closure_step``, no ``value`` or
        ``hessian_diag`` need; drawn ``noise`` is the adapter's own): the plain ``step(grads)`` /
        ``update(grads, state, params)`` loops of every backend drive it."""
        return self.closure_step is None and not set(self.needs) & {"value", "hessian_diag"}

    def _problems(self) -> list[str]:
        problems = super()._problems()
        if not callable(self.init):
            problems.append("init is not callable")
        if self.closure_step is not None:
            if not callable(self.closure_step):
                problems.append("closure_step is not callable")
            if self.update is not None or self.global_slots or self.needs:
                problems.append("a closure_step spec has no per-tensor update, global_slots or needs")
        elif not callable(self.update):
            problems.append("update is not callable")
        for name in ("init_global", "partials", "combine"):
            fn = getattr(self, name)
            if self.global_slots and not callable(fn):
                problems.append(f"{name} is not callable (required when global_slots is non-empty)")
            if not self.global_slots and fn is not None:
                problems.append(f"{name} is given but global_slots is empty")
        if self.role not in ("optimizer", "transform"):
            problems.append(f"role {self.role!r} is not 'optimizer' or 'transform'")
        if self.role == "optimizer" and "lr" not in {p.name for p in self.params}:
            problems.append("parameters must include the learning rate 'lr'")
        unknown = sorted(set(self.needs) - NEEDS)
        if unknown:
            problems.append(f"needs {unknown} are not among {sorted(NEEDS)}")
        if self.needs_at is not None and (not self.needs or not callable(self.needs_at)):
            problems.append("needs_at must be callable and is given only with needs")
        if set(self.needs) & {"hessian_diag", "noise"} and "key" not in {p.name for p in self.params}:
            problems.append("a spec with random needs (hessian_diag, noise) must have a 'key' (seed) parameter")
        if self.global_slots and set(self.needs) - {"value"}:
            problems.append("with global_slots only the shared need 'value' is supported (not per-tensor needs)")
        return problems


@dataclass(frozen=True)
class ScheduleSpec(_SpecBase):
    """A learning-rate (or any hyperparameter) schedule, defined once as a function of the step.

    ``fn(step, /, *, xp, **params) -> value``: ``step`` is the number of optimizer updates taken
    so far (0 for the first update, as Optax counts), an array of a floating dtype; the value has
    that dtype. Like loss functions, ``fn`` uses only the Array API and never branches on the step's
    value (use ``xp.where``), so it traces under ``jax.jit`` and ``tf.function``. A framework that
    counts differently (torch schedulers step per epoch, after ``optimizer.step()``) is a
    convention of the backend's materialization, not a second formula.
    """

    fn: Callable[..., Any] | None = None
    kind: Literal["schedule"] = "schedule"

    def _problems(self) -> list[str]:
        problems = super()._problems()
        if not callable(self.fn):
            problems.append("fn is not callable")
        return problems
