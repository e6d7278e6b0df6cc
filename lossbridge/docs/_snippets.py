"""Usage snippets per backend, generated from a spec and executed while the site is built.

Each backend's snippet uses that framework's own name for the spec under its convention (the
drop-in form, ``lossbridge.get("MSELoss", backend="torch", convention="torch")``) when the spec has
one, and lossbridge's name otherwise. Loss inputs are sampled from the spec's declared domains and
written out as literals, in the backend's own argument order. A snippet runs when its backend is
installed; its printed output is shown under it.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from lossbridge.bound import BoundLoss, bind
from lossbridge.docs._plots import sample_inputs, schedule_lr
from lossbridge.registry import default_registry
from lossbridge.spec import LossSpec, OptimizerSpec, ScheduleSpec, domain

__all__ = ["BACKENDS", "Snippet", "composite", "framework_name", "run_snippet", "snippets"]

#: backend -> (tab title, convention whose names it uses, import lines, array constructor)
BACKENDS: dict[str, tuple[str, str | None, str, str]] = {
    "numpy": ("NumPy", None, "import numpy as np", "np.asarray"),
    "torch": ("PyTorch", "torch", "import numpy as np\nimport torch", "torch.asarray"),
    "tensorflow": ("TensorFlow / Keras", "keras", "import numpy as np\nimport tensorflow as tf", "tf.constant"),
    "jax": (
        "JAX / Optax",
        "optax",
        "import numpy as np\nimport jax\nimport jax.numpy as jnp\nimport optax",
        "jnp.asarray",
    ),
}


@dataclass
class Snippet:
    """One backend's snippet: its code, and after :func:`run_snippet` its output or error."""

    backend: str
    title: str
    code: str
    output: str | None = None
    error: str | None = None
    skipped: bool = False
    fallback: str | None = None


def _native_last(native: str) -> str | None:
    first = native.split()[0] if native else ""
    last = first.split(".")[-1]
    return last if "." in first and last.isidentifier() else None


def framework_name(spec: Any, framework: str) -> tuple[str, dict[str, Any]]:
    """The framework's own name for ``spec`` (one with no preset if it has one) and its preset."""
    conv = spec.conventions[framework]
    names = dict(conv.names)
    last = _native_last(conv.native)
    if last is not None:
        names.setdefault(last, {})
    plain = sorted(n for n, preset in names.items() if not preset)
    if plain:
        return plain[0], {}
    if names:
        first = sorted(names)[0]
        return first, dict(names[first])
    return spec.name, {}


def _literal(x: np.ndarray, integer: bool) -> str:
    if integer:
        return f"np.array({np.asarray(x).astype(np.int64).tolist()!r})"
    values = np.round(np.asarray(x, dtype=np.float64), 3).tolist()
    return f"np.array({values!r}, dtype=np.float32)"


def _call_name(spec: Any, backend: str) -> tuple[str, str | None, dict[str, Any]]:
    conv = BACKENDS[backend][1]
    if conv is not None and conv in spec.conventions:
        name, preset = framework_name(spec, conv)
        return name, conv, preset
    return spec.name, None, {}


def _get_line(var: str, name: str, backend: str, conv: str | None, extra: str = "") -> str:
    args = [f'"{name}"']
    if backend != "numpy":
        args.append(f'backend="{backend}"')
    if conv is not None:
        args.append(f'convention="{conv}"')
    if extra:
        args.append(extra)
    return f"{var} = lossbridge.get({', '.join(args)})"


def _loss_snippet(spec: LossSpec, backend: str, *, native: bool = True) -> str:
    name, conv, preset = _call_name(spec, backend) if native else (spec.name, None, {})
    bound = bind(spec, convention=conv, params=preset)
    assert isinstance(bound, BoundLoss)
    inputs = sample_inputs(spec, dict(bound.params))
    order = default_registry().backend(backend).argument_order(spec) if backend != "numpy" else range(len(spec.inputs))
    names = [spec.inputs[k].name for k in order]
    lines = [BACKENDS[backend][2], "import lossbridge", ""]
    for decl in spec.inputs:
        integer = domain(decl.domain_for(dict(bound.params))).integer
        lines.append(f"{decl.name} = {_literal(inputs[decl.name], integer)}")
    lines.append(_get_line("loss", name, backend, conv))
    k = next(i.name for i in spec.inputs if i.differentiable)
    make = BACKENDS[backend][3]
    if backend == "numpy":
        lines += [f"value, grad = loss.value_and_grad({', '.join(names)})", "print(value)", "print(grad)"]
    elif backend == "torch":
        args = ", ".join(f"{n}_t" for n in names)
        lines += [f"{n}_t = {make}({n})" for n in names]
        lines += [f"{k}_t.requires_grad_(True)", f"value = loss({args})", "value.backward()"]
        lines += ["print(value.item())", f"print({k}_t.grad)"]
    elif backend == "tensorflow":
        lines += [f"value = loss({', '.join(f'{make}({n})' for n in names)})", "print(float(value))"]
    else:
        lines.append(f"value = jax.jit(loss)({', '.join(f'{make}({n})' for n in names)})")
        lines.append("print(value)" + ("  # Optax reduces nothing: one value per sample" if conv == "optax" else ""))
    return "\n".join(lines)


_OPT_BODY = {
    "numpy": """params = [np.array([1.0, -2.0])]
for _ in range(3):
    grads = [2 * params[0]]  # the gradient of sum(x ** 2)
    opt.step(params, grads)  # in place
print(params[0])""",
    "torch": """w = torch.tensor([1.0, -2.0], requires_grad=True)
opt = Optimizer([w])
for _ in range(3):
    opt.zero_grad()
    (w ** 2).sum().backward()
    opt.step()
print(w.detach())""",
    "tensorflow": """w = tf.Variable([1.0, -2.0])
for _ in range(3):
    with tf.GradientTape() as tape:
        value = tf.reduce_sum(w ** 2)
    opt.apply_gradients([(tape.gradient(value, w), w)])
print(w.numpy())""",
    "jax": """params = jnp.array([1.0, -2.0])
state = opt.init(params)
update = jax.jit(opt.update)
for _ in range(3):
    grads = 2 * params  # the gradient of sum(p ** 2)
    updates, state = update(grads, state, params)
    params = optax.apply_updates(params, updates)
print(params)""",
}


#: Bodies for optimizers that consume more than gradients (``OptimizerSpec.closure_step``, ``needs``):
#: the objective is sum(x ** 2) everywhere. Keras has none of them (its ``apply_gradients`` sees no loss).
_CLOSURE_BODY = {
    "numpy": """params = [np.array([1.0, -2.0])]
for _ in range(3):
    opt.step(params, lambda p: (float(np.sum(p[0] ** 2)), [2 * p[0]]))  # closure: (value, grads)
print(params[0])""",
    "torch": """w = torch.tensor([1.0, -2.0], requires_grad=True)
opt = Optimizer([w])
def closure():
    opt.zero_grad()
    loss = (w ** 2).sum()
    loss.backward()
    return loss
for _ in range(3):
    opt.step(closure)
print(w.detach())""",
    "jax": """f = lambda p: jnp.sum(p ** 2)
params = jnp.array([1.0, -2.0])
state = opt.init(params)
value_and_grad = optax.value_and_grad_from_state(f)
for _ in range(3):
    value, grad = value_and_grad(params, state=state)
    updates, state = opt.update(grad, state, params, value=value, grad=grad, value_fn=f)
    params = optax.apply_updates(params, updates)
print(params)""",
}
_VALUE_BODY = {
    "numpy": """params = [np.array([1.0, -2.0])]
for _ in range(3):
    opt.step(params, [2 * params[0]], value=float(np.sum(params[0] ** 2)))  # the loss at params
print(params[0])""",
    "torch": _CLOSURE_BODY["torch"],
    "jax": """f = lambda p: jnp.sum(p ** 2)
params = jnp.array([1.0, -2.0])
state = opt.init(params)
for _ in range(3):
    value, grads = jax.value_and_grad(f)(params)
    updates, state = opt.update(grads, state, params, value=value)
    params = optax.apply_updates(params, updates)
print(params)""",
}
_HESSIAN_BODY = {
    "numpy": """params = [np.array([1.0, -2.0])]
for _ in range(3):
    # hvp: the Hessian of sum(x ** 2) (2 I) times a tree like params
    opt.step(params, [2 * params[0]], hvp=lambda v: [2 * v[0]])
print(params[0])""",
    "torch": """w = torch.tensor([1.0, -2.0], requires_grad=True)
opt = Optimizer([w])
for _ in range(3):
    opt.zero_grad()
    opt.step(lambda: (w ** 2).sum())  # the closure returns the loss; the optimizer differentiates it twice
print(w.detach())""",
    "jax": """f = lambda p: jnp.sum(p ** 2)
params = jnp.array([1.0, -2.0])
state = opt.init(params)
for _ in range(3):
    grads = jax.grad(f)(params)
    updates, state = opt.update(grads, state, params, obj_fn=f)
    params = optax.apply_updates(params, updates)
print(params)""",
}
_NOT_ON_KERAS = """# Keras optimizers see gradients only (apply_gradients has no loss or closure), so lossbridge
# refuses {name!r} on the tensorflow backend with a BackendError; use it on numpy, torch or jax."""
_KERAS_TRANSFORM = """# Keras's own base-optimizer options are its gradient transforms (clipnorm, clipvalue,
# global_clipnorm, use_ema, gradient_accumulation_steps), accepted by every lossbridge Keras optimizer:
opt = lossbridge.get("adam", backend="tensorflow", convention="keras", learning_rate=0.1, global_clipnorm=1.0)
"""


def _optimizer_snippet(spec: OptimizerSpec, backend: str) -> str:
    name, conv, _ = _call_name(spec, backend)
    var = "Optimizer" if backend == "torch" else "opt"
    lines = [BACKENDS[backend][2], "import lossbridge", ""]
    needs = set(getattr(spec, "needs", ()))
    special = getattr(spec, "closure_step", None) is not None or bool(needs)
    if backend == "tensorflow" and special:
        return "\n".join([*lines, _NOT_ON_KERAS.format(name=spec.name)])
    if getattr(spec, "role", "optimizer") == "transform":
        if backend == "tensorflow":
            return "\n".join([*lines, _KERAS_TRANSFORM + _OPT_BODY[backend]])
        where = "" if backend == "numpy" else f'backend="{backend}", '
        lines.append(_get_line("transform", name, backend, conv))
        lines.append(f'{var} = lossbridge.chain(transform, lossbridge.get("sgd", {where}lr=0.1))  # clip, then SGD')
        return "\n".join([*lines, _OPT_BODY[backend]])
    lines.append(_get_line(var, name, backend, conv))
    if getattr(spec, "closure_step", None) is not None:
        body = _CLOSURE_BODY[backend]
    elif "hessian_diag" in needs:
        body = _HESSIAN_BODY[backend]
    elif "value" in needs:
        body = _VALUE_BODY[backend]
    else:
        body = _OPT_BODY[backend]
    return "\n".join([*lines, body])


#: Children of a composite schedule (a spec with a ``schedules`` parameter) in the snippets.
_CHILDREN = """warm = lossbridge.get("polynomial_decay", {backend}lr=1.0, init_value=0.0, end_value=0.5, decay_steps=10)
decay = lossbridge.get("exponential_decay", {backend}lr=0.5, decay_rate=0.9, decay_steps=1)"""


def composite(spec: ScheduleSpec) -> bool:
    """Whether the schedule is built from other schedules (``join_schedules``, ``chained_schedules``)."""
    return any(p.name == "schedules" for p in spec.params)


def _torch_scheduler(name: str, conv: str | None) -> list[str]:
    return [
        _get_line("Scheduler", name, "torch", conv),
        "w = torch.zeros(1, requires_grad=True)",
        "opt = torch.optim.SGD([w], lr=0.1)",
        "scheduler = Scheduler(opt)",
        "for _ in range(3):",
        "    opt.step()",
        "    scheduler.step()",
        "print(scheduler.get_last_lr())",
    ]


def _torch_composite(spec: ScheduleSpec, name: str, conv: str | None) -> list[str]:
    sequential = "boundaries" in {p.name for p in spec.params}
    build = "Scheduler(opt, children, milestones=[10])" if sequential else "Scheduler(children)"
    return [
        'Warm = lossbridge.get("LinearLR", backend="torch", convention="torch", start_factor=0.1, total_iters=10)',
        'Decay = lossbridge.get("ExponentialLR", backend="torch", convention="torch", gamma=0.9)',
        _get_line("Scheduler", name, "torch", conv),
        "w = torch.zeros(1, requires_grad=True)",
        "opt = torch.optim.SGD([w], lr=0.1)",
        "children = [Warm(opt), Decay(opt)]",
        f"scheduler = {build}",
        "for _ in range(3):",
        "    opt.step()",
        "    scheduler.step()",
        "print(scheduler.get_last_lr())",
    ]


def _schedule_snippet(spec: ScheduleSpec, backend: str) -> str:
    name, conv, _ = _call_name(spec, backend)
    lines = [BACKENDS[backend][2], "import lossbridge", ""]
    if composite(spec) and backend == "torch":  # torch's constructors: children are scheduler instances
        return "\n".join(lines + _torch_composite(spec, name, conv))
    if composite(spec):  # lossbridge's own children run on every backend, under lossbridge's convention
        where = "" if backend == "numpy" else f"backend={backend!r}, "
        lines.append(_CHILDREN.format(backend=where))
        joined = "boundaries" in {p.name for p in spec.params}
        extra = "schedules=[warm, decay]" + (", boundaries=[10]" if joined else "")
        lines.append(_get_line("schedule", spec.name, backend, None, extra))
    elif backend == "torch":
        lines += _torch_scheduler(name, conv)
        return "\n".join(lines)
    else:
        lr = schedule_lr(spec, conv)
        lines.append(_get_line("schedule", name, backend, conv, ", ".join(f"{k}={v!r}" for k, v in lr.items())))
    lines.append("print([float(schedule(step)) for step in (0, 10, 100)])")
    return "\n".join(lines)


def snippets(spec: LossSpec | OptimizerSpec | ScheduleSpec) -> list[Snippet]:
    """One snippet per backend in :data:`BACKENDS`, not yet run.

    A loss snippet written with the framework's own name keeps, as ``fallback``, the same snippet with
    lossbridge's name: a framework whose call takes other input forms (torch's ``CTCLoss`` takes
    lengths, Keras's ``CTC`` two arrays) gets lossbridge's uniform call instead.
    """
    make = {"loss": _loss_snippet, "optimizer": _optimizer_snippet, "schedule": _schedule_snippet}[spec.kind]
    out = [Snippet(b, BACKENDS[b][0], make(spec, b)) for b in BACKENDS]  # type: ignore[operator]
    if isinstance(spec, LossSpec):
        for sn in out:
            plain = _loss_snippet(spec, sn.backend, native=False)
            sn.fallback = plain if plain != sn.code else None
    return out


def run_snippet(snippet: Snippet, available: set[str]) -> Snippet:
    """Execute the snippet if its backend is installed; record its printed output or its error."""
    if snippet.backend not in available:
        snippet.skipped = True
        return snippet
    snippet.output, snippet.error = _execute(snippet.code, snippet.backend)
    if snippet.error is not None and snippet.fallback is not None:
        output, error = _execute(snippet.fallback, snippet.backend)
        if error is None:
            snippet.code, snippet.output, snippet.error = snippet.fallback, output, None
    return snippet


def _execute(code: str, backend: str) -> tuple[str, str | None]:
    out = io.StringIO()
    error = None
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(out):
            warnings.simplefilter("ignore")
            exec(compile(code, f"<snippet {backend}>", "exec"), {"__name__": "__snippet__"})
    except Exception as exc:  # a failing snippet is reported by the build, which then fails in strict mode
        error = f"{type(exc).__name__}: {exc}"
    return out.getvalue()[:2000], error
