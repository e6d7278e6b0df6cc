r"""L-BFGS, defined once: the two-loop recursion, its memory and initial scaling, and two line searches.

L-BFGS is not a per-tensor optimizer. It works on ONE vector :math:`x`, the concatenation of all
parameters (torch flattens them, Optax treats the pytree as one vector), and a step needs the
objective at trial points. It uses the spec model's closure-step extension
(``OptimizerSpec.closure_step``, see :mod:`lossbridge.spec._model`):

* ``init(x, /, *, xp, **hyper)`` gives the state of the flat vector ``x``;
* ``closure_step(x, grad, state, /, *, value, value_and_grad, loop, xp, **hyper)`` returns
  ``(new_x, delta, new_state)``. ``value_and_grad(x_trial) -> (value, grad)`` evaluates the objective
  (a closure); ``loop(cond, body, carry)`` is the backend's while loop (a host ``while`` on NumPy and
  torch, ``jax.lax.while_loop`` on JAX), so every value-dependent decision (line-search brackets,
  stopping tests) is data in the loop carry and the spec never branches on an array value;
  ``set_row(mem, i, row) -> mem`` (optional) writes one row of the memory: the pairs are a ring buffer
  (``head`` in the state), so a stored pair costs one row, not a copy of the whole memory (torch writes
  in place, JAX a dynamic-update-slice; without it :func:`set_row_where`, a select);
  ``get_row(mem, i) -> row`` (optional) reads one (a view on torch and NumPy; without it ``take``).

Both frameworks' algorithms are this one recursion with different data (the conventions):

* torch (``torch.optim.LBFGS``, after minFunc): up to ``max_iter`` iterations per ``step(closure)``;
  a pair :math:`(s, y) = (t d, \Delta g)` is stored only when :math:`y^\top s > 10^{-10}` (the oldest
  dropped beyond ``history_size``), :math:`H_0 = y^\top s / y^\top y` of the last stored pair; the first
  iteration steps :math:`t = \min(1, 1/\|g\|_1)\,\mathrm{lr}`; a fixed step ``lr`` or the strong-Wolfe
  line search with cubic interpolation (:math:`c_1 = 10^{-4}`, :math:`c_2 = 0.9`, bracket tolerance
  :math:`10^{-9}`); stopping tests ``tolerance_grad``, ``tolerance_change``, ``max_eval``.
* optax (``optax.lbfgs``): one iteration per ``update``; every pair :math:`(\Delta x, \Delta g)` enters
  a cyclic memory of ``memory_size`` (weight 0 when :math:`y^\top s = 0`), :math:`\gamma` from the newest
  pair, :math:`\gamma_0 = \min(1, 1/\|g\|_2)`; then ``-lr`` and the zoom line search (Nocedal & Wright
  algorithms 3.5/3.6 with Hager-Zhang's approximate Wolfe test), or no line search.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lossbridge.conventions import Convention
from lossbridge.spec._model import OptimizerSpec
from lossbridge.spec._params import Param

__all__ = ["LBFGS", "SPECS", "lbfgs_init", "lbfgs_step", "set_row_where", "two_loop"]

_REFS = (
    "Nocedal, J. (1980). Updating Quasi-Newton Matrices with Limited Storage. Mathematics of Computation "
    "35(151). https://doi.org/10.1090/S0025-5718-1980-0572855-7",
    "Liu, D. C. & Nocedal, J. (1989). On the limited memory BFGS method for large scale optimization. "
    "Mathematical Programming 45. https://doi.org/10.1007/BF01589116",
    "Nocedal, J. & Wright, S. J. (2006). Numerical Optimization, 2nd ed., algorithms 3.5, 3.6, 7.4, 7.5. "
    "Springer. https://doi.org/10.1007/978-0-387-40065-5",
    "Hager, W. W. & Zhang, H. (2006). Algorithm 851: CG_DESCENT. ACM TOMS 32(1). "
    "https://doi.org/10.1145/1132973.1132979",
    "Schmidt, M. (2005). minFunc. https://www.cs.ubc.ca/~schmidtm/Software/minFunc.html",
)

#: torch's strong-Wolfe line search stops zooming when the bracket times max|d| is below this (fixed in torch)
WOLFE_BRACKET_TOL = 1e-9

_PARAMS = (
    Param("lr", 1.0, "step length: the fixed step (no line search), the line search's first trial (torch), "
          "the direction's scale (optax learning_rate; None is 1)", low=0.0, nullable=True),
    Param("history_size", 100, "pairs (s, y) kept in memory (optax memory_size)", kind="int", low=1, static=True),
    Param("max_iter", 20, "iterations per step (torch: per step(closure); optax: 1)", kind="int", low=1,
          static=True),
    Param("max_eval", None, "objective evaluations per step (None: max_iter * 5 // 4)", kind="int", low=1,
          nullable=True, static=True),
    Param("tolerance_grad", 1e-7, "stop when max|g| <= this (None: no such test, optax)", nullable=True,
          static=True),
    Param("tolerance_change", 1e-9, "stop when the step, the loss change or the slope g.d are below this "
          "(None: no such tests, optax)", nullable=True, static=True),
    Param("line_search", None, "None (fixed step lr), 'strong_wolfe' (torch) or 'zoom' (optax)", kind="choice",
          choices=("strong_wolfe", "zoom"), nullable=True, static=True),
    Param("memory", "curvature", "'curvature': store (t d, dg) only when y.s > curvature_eps, H0 of the last "
          "stored pair (torch); 'cyclic': store every (dx, dg), weight 0 when y.s = 0, H0 of the newest (optax)",
          kind="choice", choices=("curvature", "cyclic"), static=True),
    Param("curvature_eps", 1e-10, "a pair is stored only when y.s exceeds this ('curvature' memory)", low=0.0,
          static=True),
    Param("first_step", "l1_step", "first iteration: 'l1_step' steps t = min(1, 1/|g|_1) lr (torch); "
          "'l2_precond' scales the direction by min(1, 1/|g|_2) (optax)", kind="choice",
          choices=("l1_step", "l2_precond"), static=True),
    Param("scale_init_precond", True, "scale the initial inverse Hessian by y.s / y.y", kind="bool", static=True),
    Param("max_linesearch_steps", 20, "zoom: evaluations per line search", kind="int", low=1, static=True),
    Param("max_learning_rate", None, "zoom: largest step tried (None: unbounded)", low=0.0, nullable=True,
          static=True),
    Param("increase_factor", 2.0, "zoom: growth of the step while searching an interval", low=1.0, static=True),
    Param("slope_rtol", 1e-4, "sufficient-decrease constant c1 (torch's strong Wolfe: 1e-4 fixed)", low=0.0,
          high=1.0, static=True),
    Param("curv_rtol", 0.9, "curvature constant c2 (torch's strong Wolfe: 0.9 fixed)", low=0.0, high=1.0,
          static=True),
    Param("approx_dec_rtol", 1e-6, "zoom: relative tolerance of the approximate-Wolfe decrease test "
          "(None: Armijo only)", low=0.0, nullable=True, static=True),
    Param("stepsize_precision", 1e-5, "zoom: an interval shorter than this ends the search", low=0.0,
          static=True),
)


# ------------------------------------------------------------------------------------------ helpers


def _dot(a: Any, b: Any, *, xp: Any) -> Any:
    return xp.sum(a * b)


def _f(value: Any, like: Any, *, xp: Any) -> Any:
    """``value`` as a 0-d array of ``like``'s dtype (loop carries keep fixed dtypes)."""
    return xp.asarray(value, dtype=like.dtype)


def _run_if(pred: Any, fn: Callable[[dict], dict], carry: dict, *, loop: Any, xp: Any) -> dict:
    """``fn(carry)`` if the 0-d bool ``pred`` holds, else ``carry``: a loop that runs at most once
    (how a guarded objective evaluation stays free of value branching)."""
    def body(c: dict) -> dict:
        out = fn({k: v for k, v in c.items() if k != "_go"})
        return {**out, "_go": xp.asarray(False)}

    out = loop(lambda c: c["_go"], body, {**carry, "_go": pred})
    return {k: v for k, v in out.items() if k != "_go"}


def two_loop(
    q: Any, s_mem: Any, y_mem: Any, rho: Any, gamma: Any, *, xp: Any, loop: Any = None, head: Any = None,
    get_row: Any = None,
) -> Any:
    r"""The L-BFGS two-loop recursion: :math:`H q` for the memory rows (oldest first).

    .. math::
        \alpha_i = \rho_i s_i^\top q,\ q \leftarrow q - \alpha_i y_i\ (i = m..1);\quad
        r = \gamma q;\quad r \leftarrow r + (\alpha_i - \rho_i y_i^\top r) s_i\ (i = 1..m)

    The memory is a ring buffer: logical row ``i`` (0 the oldest) is physical row ``(head + i) % m``
    (``head``: a 0-d integer array, the physical row of the oldest pair; ``None`` is 0, rows stored
    oldest first). A row with :math:`\rho = 0` (empty, or a rejected pair) changes nothing. With the
    backend's ``loop`` (``loop(cond, body, carry)``) both recursions run as loops over the rows from the
    oldest non-empty one: the work grows with the pairs held, not ``history_size``, and ``jax.jit`` traces
    one body instead of unrolling every row; they read a row with the backend's ``get_row(mem, i)`` (``i``
    a 0-d integer array; a view on torch and NumPy), else ``take``. Without ``loop`` the rows are unrolled
    (the same numbers).

    >>> import numpy as np
    >>> s, y = np.array([[1.0, 0.0]]), np.array([[2.0, 0.0]])
    >>> two_loop(np.array([4.0, 1.0]), s, y, np.array([0.5]), np.asarray(0.5), xp=np).tolist()
    [2.0, 0.5]
    """
    m = s_mem.shape[0]
    if loop is not None:
        return _two_loop_rows(q, s_mem, y_mem, rho, gamma, xp=xp, loop=loop, head=head, get_row=get_row)
    if head is None:
        phys: list[Any] = list(range(m))

        def at(mem: Any, i: Any) -> Any:
            return mem[i, ...]
    else:
        order = (xp.astype(head, xp.asarray(0).dtype) + xp.arange(m)) % m
        phys = [order[i : i + 1] for i in range(m)]

        def at(mem: Any, i: Any) -> Any:
            return xp.take(mem, i, axis=0)[0, ...]
    alphas: list[Any] = [None] * m
    for i in range(m - 1, -1, -1):
        a = _dot(at(s_mem, phys[i]), q, xp=xp) * at(rho, phys[i])
        alphas[i] = a
        q = q - a * at(y_mem, phys[i])
    r = q * gamma
    for i in range(m):
        b = _dot(at(y_mem, phys[i]), r, xp=xp) * at(rho, phys[i])
        r = r + (alphas[i] - b) * at(s_mem, phys[i])
    return r


def _two_loop_rows(
    q: Any, s_mem: Any, y_mem: Any, rho: Any, gamma: Any, *, xp: Any, loop: Any, head: Any = None,
    get_row: Any = None,
) -> Any:
    """:func:`two_loop` as two loops over the logical rows ``start..m-1`` (physical ``(head + i) % m``),
    ``start`` the oldest row with rho != 0 (rows before it are empty: they would add zeros)."""
    m = s_mem.shape[0]
    rows = xp.arange(m)
    order = rows if head is None else (xp.astype(head, rows.dtype) + rows) % m
    by_age = xp.take(rho, order)  # the weights oldest first
    first = xp.argmax(xp.astype(by_age != 0.0, rho.dtype))
    start = xp.where(xp.any(by_age != 0.0), first, first * 0 + m)
    rows = xp.astype(rows, first.dtype)
    order = xp.astype(order, first.dtype)

    def take(mem: Any, i: Any) -> Any:
        return xp.take(mem, xp.reshape(i, (1,)), axis=0)[0, ...]

    row = take if get_row is None else get_row

    def newest_first(c: dict) -> dict:
        i = c["i"]
        p = take(order, i)
        a = _dot(row(s_mem, p), c["q"], xp=xp) * row(rho, p)
        return {"i": i - 1, "q": c["q"] - a * row(y_mem, p), "alphas": xp.where(rows == i, a, c["alphas"])}

    back = loop(lambda c: c["i"] >= start, newest_first,
                {"i": first * 0 + (m - 1), "q": q, "alphas": xp.zeros_like(rho)})
    alphas = back["alphas"]

    def oldest_first(c: dict) -> dict:
        i, r = c["i"], c["r"]
        p = take(order, i)
        b = _dot(row(y_mem, p), r, xp=xp) * row(rho, p)
        return {"i": i + 1, "r": r + (take(alphas, i) - b) * row(s_mem, p)}

    return loop(lambda c: c["i"] < m, oldest_first, {"i": start, "r": back["q"] * gamma})["r"]


def set_row_where(mem: Any, i: Any, row: Any, *, xp: Any) -> Any:
    """The default ``set_row`` hook (pure Array API): ``mem`` with row ``i`` (a 0-d integer array)
    replaced by ``row``, every other row as it was; a select over the whole memory, no copy in place."""
    m = mem.shape[0]
    hit = xp.reshape(xp.arange(m, dtype=i.dtype) == i, (m,) + (1,) * (mem.ndim - 1))
    return xp.where(hit, xp.reshape(xp.astype(row, mem.dtype), (1, *row.shape)), mem)


def _maxabs(v: Any, *, xp: Any) -> Any:
    return xp.max(xp.abs(v))


# ------------------------------------------------------------------------------------------ state


def lbfgs_init(x: Any, /, *, xp: Any, history_size: int, **hyper: Any) -> dict[str, Any]:
    """Empty memory for the flat parameter vector ``x``: pairs ``s_mem``/``y_mem`` with weights ``rho``
    (0: empty) in a ring buffer whose oldest row is ``head`` (a 0-d array of the default integer dtype; a
    new pair overwrites that row and ``head`` moves on, so logical row ``i`` is physical ``(head + i) %
    history_size``; portable files keep the rows oldest first, :mod:`lossbridge.portable`), ``h_diag``
    (torch's kept scaling), the last direction ``d`` and step ``t``, the previous point ``prev_x``,
    gradient ``prev_grad`` and value ``prev_value``, the counters ``n_iter`` and ``func_evals``, the
    objective ``value``/``grad`` at the current point (``inf``: unknown, as
    ``optax.value_and_grad_from_state`` reads it) and the last line-search ``stepsize``."""
    n = x.shape[0]
    zeros = xp.zeros_like(x)
    zero = xp.zeros((), dtype=x.dtype)
    return {  # two arrays: a backend's set_row may write one in place
        "s_mem": xp.zeros((history_size, n), dtype=x.dtype), "y_mem": xp.zeros((history_size, n), dtype=x.dtype),
        "rho": xp.zeros((history_size,), dtype=x.dtype), "head": xp.zeros((), dtype=xp.asarray(0).dtype),
        "h_diag": xp.ones((), dtype=x.dtype), "d": zeros, "t": zero,
        "prev_x": zeros, "prev_grad": zeros, "prev_value": zero,
        "n_iter": zero, "func_evals": zero,
        "value": xp.asarray(float("inf"), dtype=x.dtype), "grad": zeros, "stepsize": xp.ones((), dtype=x.dtype),
    }


# ------------------------------------------------------------------------------------------ strong Wolfe (torch)


def _cubic_interpolate(x1: Any, f1: Any, g1: Any, x2: Any, f2: Any, g2: Any, lo: Any, hi: Any, *, xp: Any) -> Any:
    """Minimizer of the cubic through two points with slopes, clipped to ``[lo, hi]`` (minFunc's polyinterp);
    the middle of ``[lo, hi]`` when the cubic has no real minimizer."""
    d1 = g1 + g2 - 3 * (f1 - f2) / (x1 - x2)
    d2_square = d1 * d1 - g1 * g2
    real = d2_square >= 0
    d2 = xp.sqrt(xp.where(real, d2_square, xp.zeros_like(d2_square)))
    forward = x1 <= x2
    den_f = g2 - g1 + 2 * d2
    den_b = g1 - g2 + 2 * d2
    one = xp.ones_like(den_f)
    mp_f = x2 - (x2 - x1) * ((g2 + d2 - d1) / xp.where(den_f == 0, one, den_f))
    mp_b = x1 - (x1 - x2) * ((g1 + d2 - d1) / xp.where(den_b == 0, one, den_b))
    inf = xp.asarray(float("inf"), dtype=den_f.dtype)
    mp_f = xp.where(den_f == 0, -inf * (g2 + d2 - d1) * (x2 - x1), mp_f)  # torch divides by zero: +-inf
    mp_b = xp.where(den_b == 0, -inf * (g1 + d2 - d1) * (x1 - x2), mp_b)
    min_pos = xp.where(forward, mp_f, mp_b)
    clipped = xp.minimum(xp.maximum(min_pos, lo), hi)
    return xp.where(real, clipped, (lo + hi) / 2.0)


def _strong_wolfe(
    vg: Any, x: Any, t: Any, d: Any, f: Any, g: Any, gtd: Any, max_ls: Any, *, c1: float, c2: float,
    loop: Any, xp: Any,
) -> tuple[Any, Any, Any, Any]:
    """torch's strong-Wolfe line search (minFunc's lswolfe) as two loops over a carry.

    Returns ``(f_new, g_new, t, evaluations)``.
    """
    tol = WOLFE_BRACKET_TOL
    d_norm = _maxabs(d, xp=xp)
    zero = xp.zeros_like(f)
    f_new, g_new = vg(x + t * d)
    c = {
        "t_prev": zero, "f_prev": f, "g_prev": g, "gtd_prev": gtd,
        "t": t, "f_new": f_new, "g_new": g_new, "gtd_new": _dot(g_new, d, xp=xp),
        "ls_iter": zero, "evals": zero + 1,
    }

    def armijo_fail(c: dict) -> Any:
        return (c["f_new"] > (f + c1 * c["t"] * gtd)) | ((c["ls_iter"] > 1) & (c["f_new"] >= c["f_prev"]))

    def wolfe(c: dict) -> Any:
        return xp.abs(c["gtd_new"]) <= -c2 * gtd

    def bracketed(c: dict) -> Any:
        return armijo_fail(c) | wolfe(c) | (c["gtd_new"] >= 0)

    def extrapolate(c: dict) -> dict:
        t = c["t"]
        t_next = _cubic_interpolate(c["t_prev"], c["f_prev"], c["gtd_prev"], t, c["f_new"], c["gtd_new"],
                                    t + 0.01 * (t - c["t_prev"]), t * 10, xp=xp)
        f_n, g_n = vg(x + t_next * d)
        return {"t_prev": t, "f_prev": c["f_new"], "g_prev": c["g_new"], "gtd_prev": c["gtd_new"],
                "t": t_next, "f_new": f_n, "g_new": g_n, "gtd_new": _dot(g_n, d, xp=xp),
                "ls_iter": c["ls_iter"] + 1, "evals": c["evals"] + 1}

    c = loop(lambda c: (c["ls_iter"] < max_ls) & ~bracketed(c), extrapolate, c)
    # the bracket: [t] (Wolfe holds), [t_prev, t], or [0, t] when the iterations ran out
    fail, ok = armijo_fail(c), wolfe(c)
    single = ~fail & ok
    ran_out = c["ls_iter"] == max_ls
    b = {
        "b0": xp.where(ran_out, zero, xp.where(single, c["t"], c["t_prev"])),
        "f0": xp.where(ran_out, f, xp.where(single, c["f_new"], c["f_prev"])),
        "g0": xp.where(ran_out, g, xp.where(single, c["g_new"], c["g_prev"])),
        "d0": xp.where(ran_out, gtd, xp.where(single, c["gtd_new"], c["gtd_prev"])),
        "b1": c["t"], "f1": c["f_new"], "g1": c["g_new"], "d1": c["gtd_new"],
        "done": single & ~ran_out, "insuf": xp.asarray(False), "ls_iter": c["ls_iter"], "evals": c["evals"],
    }
    b["low0"] = b["f0"] <= b["f1"]

    def zoom_cond(b: dict) -> Any:
        return ~b["done"] & (b["ls_iter"] < max_ls) & ~(xp.abs(b["b1"] - b["b0"]) * d_norm < tol)

    def zoom(b: dict) -> dict:
        lo, hi = xp.minimum(b["b0"], b["b1"]), xp.maximum(b["b0"], b["b1"])
        t = _cubic_interpolate(b["b0"], b["f0"], b["d0"], b["b1"], b["f1"], b["d1"], lo, hi, xp=xp)
        eps = 0.1 * (hi - lo)
        near = xp.minimum(hi - t, t - lo) < eps
        move = near & (b["insuf"] | (t >= hi) | (t <= lo))
        moved = xp.where(xp.abs(t - hi) < xp.abs(t - lo), hi - eps, lo + eps)
        t = xp.where(move, moved, t)
        insuf = near & ~move
        f_n, g_n = vg(x + t * d)
        gtd_n = _dot(g_n, d, xp=xp)
        low0 = b["low0"]
        f_low = xp.where(low0, b["f0"], b["f1"])
        to_high = (f_n > (f + c1 * t * gtd)) | (f_n >= f_low)
        done = ~to_high & (xp.abs(gtd_n) <= -c2 * gtd)
        b_low = xp.where(low0, b["b0"], b["b1"])
        b_high = xp.where(low0, b["b1"], b["b0"])
        swap = ~to_high & ~done & (gtd_n * (b_high - b_low) >= 0)  # the old low becomes the high end
        new = dict(b)
        for key, value in (("b", t), ("f", f_n), ("g", g_n), ("d", gtd_n)):
            k0, k1 = key + "0", key + "1"
            old_low = xp.where(low0, b[k0], b[k1])
            # slot 0 is written when it is the high end (to_high) or the low end (not to_high), or by a swap
            is_high0 = ~low0
            w0 = xp.where(to_high, xp.where(is_high0, value, b[k0]),
                          xp.where(low0, value, xp.where(swap, old_low, b[k0])))
            w1 = xp.where(to_high, xp.where(is_high0, b[k1], value),
                          xp.where(low0, xp.where(swap, old_low, b[k1]), value))
            new[k0], new[k1] = w0, w1
        new["low0"] = xp.where(to_high, new["f0"] <= new["f1"], low0)
        new["done"] = done
        new["insuf"] = insuf
        new["ls_iter"] = b["ls_iter"] + 1
        new["evals"] = b["evals"] + 1
        return new

    b = loop(zoom_cond, zoom, b)
    low0 = b["low0"]
    return (xp.where(low0, b["f0"], b["f1"]), xp.where(low0, b["g0"], b["g1"]),
            xp.where(low0, b["b0"], b["b1"]), b["evals"])


# ------------------------------------------------------------------------------------------ zoom (optax)


def _cubicmin(a: Any, fa: Any, fpa: Any, b: Any, fb: Any, c: Any, fc: Any, *, xp: Any) -> tuple[Any, Any]:
    """Minimizer of the cubic through (a, fa, fpa), (b, fb), (c, fc), and whether it exists."""
    C = fpa
    db = b - a
    dc = c - a
    denom = (db * dc) ** 2 * (db - dc)
    u, v = fb - fa - C * db, fc - fa - C * dc
    safe = xp.where(denom == 0, xp.ones_like(denom), denom)
    A = (dc**2 * u + (-(db**2)) * v) / safe
    B = ((-(dc**3)) * u + db**3 * v) / safe
    radical = B * B - 3.0 * A * C
    ok = (denom != 0) & (radical >= 0) & (A != 0)
    root = xp.sqrt(xp.where(radical >= 0, radical, xp.zeros_like(radical)))
    xmin = a + (-B + root) / (3.0 * xp.where(A == 0, xp.ones_like(A), A))
    return xmin, ok


def _quadmin(a: Any, fa: Any, fpa: Any, b: Any, fb: Any, *, xp: Any) -> tuple[Any, Any]:
    """Minimizer of the parabola through (a, fa, fpa), (b, fb), and whether it exists."""
    db = b - a
    db2 = db**2
    B = (fb - fa - fpa * db) / xp.where(db2 == 0, xp.ones_like(db2), db2)
    ok = (db2 != 0) & (B != 0)
    return a - fpa / (2.0 * xp.where(B == 0, xp.ones_like(B), B)), ok


def _zoom_linesearch(
    vg: Any, x: Any, direction: Any, value: Any, grad: Any, *, xp: Any, loop: Any, max_steps: int,
    max_stepsize: float | None, increase_factor: float, slope_rtol: float, curv_rtol: float,
    approx_dec_rtol: float | None, threshold: float,
) -> tuple[Any, Any, Any]:
    """Optax's zoom line search: ``(stepsize, value, grad)`` at the chosen step along ``direction``."""
    tol = 0.0
    slope = _dot(direction, grad, xp=xp)
    zero = xp.zeros_like(value)
    inf = xp.asarray(float("inf"), dtype=value.dtype)
    false = xp.asarray(False)
    s = {
        "count": zero, "stepsize": zero, "value": value, "grad": grad, "slope": slope,
        "decrease_error": inf, "error": inf, "interval_found": false, "done": false, "failed": false,
        "low": zero, "value_low": value, "slope_low": slope, "high": zero, "value_high": value,
        "slope_high": slope, "cubic_ref": zero, "value_cubic_ref": value,
        "safe_stepsize": zero, "safe_value": value, "safe_grad": grad,
    }

    def errors(step: Any, v: Any, sl: Any) -> tuple[Any, Any]:
        dec = v - value - slope_rtol * step * slope
        if approx_dec_rtol is not None:
            approx = xp.maximum(sl - (2 * slope_rtol - 1.0) * slope, v - value - approx_dec_rtol * xp.abs(value))
            dec = xp.minimum(approx, dec)
        dec = xp.maximum(dec, zero)
        dec = xp.where(xp.isnan(dec), inf, dec)
        curv = xp.maximum(xp.abs(sl) - curv_rtol * xp.abs(slope), zero)
        curv = xp.where(xp.isnan(curv), inf, curv)
        return dec, curv

    def step(s: dict) -> dict:
        zooming = s["interval_found"]
        # the trial step of each phase (the phase's lax.cond in Optax; here both are cheap scalars)
        grown = xp.where(s["count"] == 0, xp.ones_like(zero), increase_factor * s["stepsize"])
        max_reached = false
        if max_stepsize is not None:
            max_reached = grown >= max_stepsize
            grown = xp.minimum(grown, xp.asarray(max_stepsize, dtype=zero.dtype))
        low, high = s["low"], s["high"]
        delta = xp.abs(high - low)
        left, right = xp.minimum(high, low), xp.maximum(high, low)
        mc, ok_c = _cubicmin(low, s["value_low"], s["slope_low"], high, s["value_high"], s["cubic_ref"],
                             s["value_cubic_ref"], xp=xp)
        use_cubic = ok_c & (mc > left + 0.2 * delta) & (mc < right - 0.2 * delta)
        mq, ok_q = _quadmin(low, s["value_low"], s["slope_low"], high, s["value_high"], xp=xp)
        use_quad = ~use_cubic & ok_q & (mq > left + 0.1 * delta) & (mq < right - 0.1 * delta)
        middle = xp.where(use_cubic, mc, xp.where(use_quad, mq, (low + high) / 2.0))
        trial = xp.where(zooming, middle, grown)
        v, g = vg(x + trial * direction)
        sl = _dot(g, direction, xp=xp)
        dec, curv = errors(trial, v, sl)
        err = xp.maximum(dec, curv)
        ok_dec = dec <= tol
        last = s["count"] + 1 >= max_steps
        # interval search (Nocedal & Wright 3.5)
        high_new = (dec > 0.0) | ((v >= s["value"]) & (s["count"] > 0))
        low_new = (sl >= 0.0) & ~high_new
        found = high_new | low_new | (err <= tol)
        done_i = (err <= tol) | (max_reached & ~found)
        si = {
            "low": xp.where(low_new, trial, s["stepsize"]), "value_low": xp.where(low_new, v, s["value"]),
            "slope_low": xp.where(low_new, sl, s["slope"]), "high": xp.where(low_new, s["stepsize"], trial),
            "value_high": xp.where(low_new, s["value"], v), "slope_high": xp.where(low_new, s["slope"], sl),
            "safe_stepsize": xp.where(ok_dec, trial, s["safe_stepsize"]),
            "safe_value": xp.where(ok_dec, v, s["safe_value"]), "safe_grad": xp.where(ok_dec, g, s["safe_grad"]),
            "interval_found": found, "done": done_i, "failed": last & ~done_i,
        }
        si["cubic_ref"], si["value_cubic_ref"] = si["low"], si["value_low"]
        # zoom (Nocedal & Wright 3.6)
        upd_safe = ok_dec & (v < s["safe_value"])
        safe_step = xp.where(upd_safe, trial, s["safe_stepsize"])
        to_mid = (dec > 0.0) | (v >= s["value_low"])
        to_low = (sl * (high - low) >= 0.0) & ~to_mid
        h1 = {"": xp.where(to_mid, trial, high), "v": xp.where(to_mid, v, s["value_high"]),
              "s": xp.where(to_mid, sl, s["slope_high"])}
        done_z = err <= tol
        failed_z = (last | ((delta <= threshold) & (safe_step > 0.0))) & ~done_z
        sz = {
            "high": xp.where(to_low, low, h1[""]), "value_high": xp.where(to_low, s["value_low"], h1["v"]),
            "slope_high": xp.where(to_low, s["slope_low"], h1["s"]),
            "low": xp.where(to_mid, low, trial), "value_low": xp.where(to_mid, s["value_low"], v),
            "slope_low": xp.where(to_mid, s["slope_low"], sl),
            "cubic_ref": xp.where(to_mid | to_low, high, low),
            "value_cubic_ref": xp.where(to_mid | to_low, s["value_high"], s["value_low"]),
            "safe_stepsize": safe_step, "safe_value": xp.where(upd_safe, v, s["safe_value"]),
            "safe_grad": xp.where(upd_safe, g, s["safe_grad"]),
            "interval_found": s["interval_found"], "done": done_z, "failed": failed_z,
        }
        new = {k: xp.where(zooming, sz[k], si[k]) for k in si}
        new.update({"count": s["count"] + 1, "stepsize": trial, "value": v, "grad": g, "slope": sl,
                    "decrease_error": dec, "error": err})
        # a failed search falls back to the best step with sufficient decrease (if any)
        fallback = new["failed"] & ((new["safe_stepsize"] > 0.0) | xp.isinf(dec))
        new["stepsize"] = xp.where(fallback, new["safe_stepsize"], trial)
        new["value"] = xp.where(fallback, new["safe_value"], v)
        new["grad"] = xp.where(fallback, new["safe_grad"], g)
        return new

    s = loop(lambda s: ~(s["done"] | s["failed"]), step, s)
    return s["stepsize"], s["value"], s["grad"]


# ------------------------------------------------------------------------------------------ the step


def lbfgs_step(
    x: Any, grad: Any, state: dict[str, Any], /, *, value: Any, value_and_grad: Any, loop: Any, xp: Any,
    lr: Any, history_size: int, max_iter: int, max_eval: int | None, tolerance_grad: float | None,
    tolerance_change: float | None, line_search: str | None, memory: str, curvature_eps: float,
    first_step: str, scale_init_precond: bool, max_linesearch_steps: int, max_learning_rate: float | None,
    increase_factor: float, slope_rtol: float, curv_rtol: float, approx_dec_rtol: float | None,
    stepsize_precision: float, slope_grad: Any = None, set_row: Any = None, get_row: Any = None, **hyper: Any,
) -> tuple[Any, Any, dict[str, Any]]:
    r"""One L-BFGS step of the flat vector ``x`` from its gradient ``grad`` and objective ``value``.

    Runs up to ``max_iter`` iterations: update the memory, :math:`d = -\mathrm{lr}\, H g` by
    :func:`two_loop` (torch: :math:`d = -Hg`, step :math:`t = \mathrm{lr}`), then a fixed step or a line
    search along :math:`d`. Returns ``(new_x, delta, new_state)`` (``delta = new_x - x``, exactly the
    step when ``max_iter`` is 1). ``slope_grad`` (Optax's ``grad=``) is the gradient the zoom line
    search reads at ``x`` when it differs from the updates ``grad``.

    .. math:: x \leftarrow x + t\, d,\quad d = -H_k g_k

    >>> import numpy as np
    >>> def vg(z): return np.sum(z * z), 2 * z
    >>> def loop(cond, body, c):
    ...     while bool(cond(c)): c = body(c)
    ...     return c
    >>> x = np.array([1.0, 2.0])
    >>> st = lbfgs_init(x, xp=np, history_size=5)
    >>> hyper = {p.name: p.default for p in LBFGS.params} | {"line_search": "strong_wolfe"}
    >>> new_x, _, st = lbfgs_step(x, 2 * x, st, value=np.sum(x * x), value_and_grad=vg, loop=loop, xp=np, **hyper)
    >>> bool(np.abs(new_x).max() < 1e-6)
    True
    """
    dt = x.dtype
    lr = 1.0 if lr is None else lr  # Optax's learning_rate=None: the direction unscaled
    zero = xp.zeros((), dtype=dt)
    value = xp.asarray(value, dtype=dt)
    max_evals = max_eval if max_eval is not None else max_iter * 5 // 4
    never = xp.asarray(False)
    size = state["rho"].shape[0]
    int_dtype = xp.asarray(0).dtype

    def write(mem: Any, i: Any, row: Any) -> Any:  # the backend's in-place row write, else a select
        return set_row_where(mem, i, row, xp=xp) if set_row is None else set_row(mem, i, row)

    def index(h: Any) -> Any:  # the ring's write position (its oldest row) as an index
        return xp.astype(h, int_dtype)

    def advance(h: Any) -> Any:
        return (h + 1) % size

    def below(v: Any, tol: float | None) -> Any:
        return never if tol is None else v <= tol

    c = {
        "x": x, "f": value, "g": grad, "d": state["d"], "t": state["t"], "s_mem": state["s_mem"],
        "y_mem": state["y_mem"], "rho": state["rho"], "h_diag": state["h_diag"], "head": state["head"],
        "prev_x": state["prev_x"], "prev_grad": state["prev_grad"], "prev_value": state["prev_value"],
        "n_iter": state["n_iter"], "k": zero, "evals": zero + 1, "func_evals": state["func_evals"] + 1,
        "value": state["value"], "vgrad": state["grad"], "stepsize": state["stepsize"],
        "done": below(_maxabs(grad, xp=xp), tolerance_grad), "moved": never,
    }
    # Optax's grad= (the gradient the line search reads at x) when it is given apart from the updates
    slope_g = slope_grad if slope_grad is not None and max_iter == 1 else None

    def iteration(c: dict) -> dict:
        g, f = c["g"], c["f"]
        k, n = c["k"] + 1, c["n_iter"] + 1
        first = n == 1
        one = xp.ones_like(zero)
        s_mem, y_mem, rho, h, head = c["s_mem"], c["y_mem"], c["rho"], c["h_diag"], c["head"]
        if memory == "curvature":  # torch: (t d, dg), kept only with enough curvature
            y = g - c["prev_grad"]
            s = c["d"] * c["t"]
            ys = _dot(y, s, xp=xp)
            keep = ~first & (ys > curvature_eps)
            yy = _dot(y, y, xp=xp)

            def kept(mem: dict) -> dict:  # only when kept: one row written, the oldest (at head) replaced
                at = index(mem["head"])
                out = {"s_mem": write(mem["s_mem"], at, s), "y_mem": write(mem["y_mem"], at, y),
                       "rho": write(mem["rho"], at, 1.0 / ys), "h": mem["h"], "head": advance(mem["head"])}
                if scale_init_precond:
                    out["h"] = ys / yy
                return out

            mem = _run_if(keep, kept, {"s_mem": s_mem, "y_mem": y_mem, "rho": rho, "h": h, "head": head},
                          loop=loop, xp=xp)
            s_mem, y_mem, rho, h, head = mem["s_mem"], mem["y_mem"], mem["rho"], mem["h"], mem["head"]
            gamma = h
        else:  # optax: every (dx, dg) in a cyclic memory
            s = xp.where(first, xp.zeros_like(g), c["x"] - c["prev_x"])
            y = xp.where(first, xp.zeros_like(g), g - c["prev_grad"])
            ys = _dot(y, s, xp=xp)
            weight = xp.where(ys == 0.0, zero, 1.0 / xp.where(ys == 0.0, one, ys))
            at = index(head)
            s_mem, y_mem, rho = write(s_mem, at, s), write(y_mem, at, y), write(rho, at, weight)
            head = advance(head)
            if scale_init_precond:
                yy = _dot(y, y, xp=xp)
                gamma = xp.where(yy > 0.0, ys / xp.where(yy > 0.0, yy, one), one)
                if first_step == "l2_precond":
                    norm = xp.sqrt(_dot(g, g, xp=xp))
                    gamma = xp.where(first, xp.minimum(one, 1.0 / norm), gamma)
            else:
                gamma = one
        d = two_loop(-g, s_mem, y_mem, rho, gamma, xp=xp, loop=loop, head=head, get_row=get_row)
        if first_step == "l1_step":
            t = xp.where(first, xp.minimum(one, 1.0 / xp.sum(xp.abs(g))) * lr, lr * one)
        else:
            d = lr * d
            t = one
        gtd = _dot(g, d, xp=xp)
        stop = never if tolerance_change is None else gtd > -tolerance_change  # not a descent: no step at all
        nxt = {**c, "k": k, "n_iter": n, "s_mem": s_mem, "y_mem": y_mem, "rho": rho, "h_diag": h, "head": head, "d": d,
               "t": t, "prev_x": c["x"], "prev_grad": g, "prev_value": f}

        def move(m: dict) -> dict:
            x0 = m["x"]
            if line_search == "strong_wolfe":
                f_n, g_n, t_n, ls_evals = _strong_wolfe(
                    value_and_grad, x0, m["t"], m["d"], m["f"], m["g"], gtd, max_evals - m["evals"],
                    c1=slope_rtol, c2=curv_rtol, loop=loop, xp=xp)
                m = {**m, "x": x0 + t_n * m["d"], "f": f_n, "g": g_n, "t": t_n, "evals": m["evals"] + ls_evals,
                     "func_evals": m["func_evals"] + ls_evals, "value": f_n, "vgrad": g_n}
            elif line_search == "zoom":
                step_size, f_n, g_n = _zoom_linesearch(
                    value_and_grad, x0, m["d"], m["f"], m["g"] if slope_g is None else slope_g, xp=xp, loop=loop,
                    max_steps=max_linesearch_steps, max_stepsize=max_learning_rate, increase_factor=increase_factor,
                    slope_rtol=slope_rtol, curv_rtol=curv_rtol, approx_dec_rtol=approx_dec_rtol,
                    threshold=stepsize_precision)
                m = {**m, "x": x0 + step_size * m["d"], "f": f_n, "g": g_n, "t": step_size, "stepsize": step_size,
                     "value": f_n, "vgrad": g_n}
            else:
                # the objective at the moved point is unknown until evaluated (inf, as
                # optax.value_and_grad_from_state reads it): torch skips the evaluation after the last iteration
                m = {**m, "x": x0 + m["t"] * m["d"], "value": xp.full_like(m["value"], float("inf"))}

                def evaluate(e: dict) -> dict:
                    f_n, g_n = value_and_grad(e["x"])
                    return {**e, "f": xp.asarray(f_n, dtype=dt), "g": g_n, "evals": e["evals"] + 1,
                            "func_evals": e["func_evals"] + 1, "value": xp.asarray(f_n, dtype=dt), "vgrad": g_n}

                # torch re-evaluates only when another iteration follows (max_iter is static, k is not)
                m = _run_if(m["k"] != max_iter, evaluate, m, loop=loop, xp=xp)
            return m

        # without tolerance_change every iteration moves: no loop around it (a while loop under jax.jit)
        nxt = move(nxt) if tolerance_change is None else _run_if(~stop, move, nxt, loop=loop, xp=xp)
        moved = ~stop
        nxt["moved"] = moved  # torch's gtd > -tolerance_change: the iteration takes no step at all
        tc = tolerance_change
        done = (stop | (nxt["k"] == max_iter) | (nxt["evals"] >= max_evals)
                | (moved & below(_maxabs(nxt["g"], xp=xp), tolerance_grad))
                | (moved & below(xp.abs(nxt["t"]) * _maxabs(nxt["d"], xp=xp), tc))  # = max|t d|: rounding is monotone
                | (moved & (never if tc is None else xp.abs(nxt["f"] - f) < tc)))
        nxt["done"] = done
        return nxt

    if max_iter == 1:  # one iteration (optax): no loop carrying the whole memory, the same numbers
        c = iteration(c) if tolerance_grad is None else _run_if(~c["done"], iteration, c, loop=loop, xp=xp)
    else:
        c = loop(lambda c: ~c["done"] & (c["k"] < max_iter), iteration, c)
    new_state = {
        "s_mem": c["s_mem"], "y_mem": c["y_mem"], "rho": c["rho"], "h_diag": c["h_diag"], "head": c["head"],
        "d": c["d"],
        "t": c["t"], "prev_x": c["prev_x"], "prev_grad": c["prev_grad"], "prev_value": c["prev_value"],
        "n_iter": c["n_iter"], "func_evals": c["func_evals"], "value": c["value"], "grad": c["vgrad"],
        "stepsize": c["stepsize"],
    }
    if max_iter == 1:
        delta = c["t"] * c["d"]
        delta = xp.where((c["k"] > 0) & c["moved"], delta, xp.zeros_like(delta))
        if line_search is None:
            return x + delta, delta, new_state
        return c["x"], delta, new_state
    return c["x"], c["x"] - x, new_state


LBFGS = OptimizerSpec(
    name="lbfgs",
    aliases=("l_bfgs", "limited_memory_bfgs"),
    summary="L-BFGS: quasi-Newton steps from a limited memory of (step, gradient change) pairs, with a "
    "line search, over all parameters as one vector.",
    init=lbfgs_init,
    update=None,
    closure_step=lbfgs_step,
    slots=("s_mem", "y_mem", "rho", "head", "h_diag", "d", "t", "prev_x", "prev_grad", "prev_value", "n_iter",
           "func_evals", "value", "grad", "stepsize"),
    params=_PARAMS,
    formula=(
        r"d_k = -H_k g_k,\ H_k g = \text{two-loop}(g; \{s_i, y_i, \rho_i = 1/y_i^\top s_i\}, \gamma_k),\ "
        r"\gamma_k = s^\top y / y^\top y,\ x_{k+1} = x_k + t_k d_k\ (t_k: \text{line search or lr})"
    ),
    references=_REFS,
    usage=(
        "Deterministic (full-batch) smooth problems with up to a few million parameters: it needs the objective "
        "at trial points (a closure). torch: opt.step(closure) with closure() recomputing the loss and "
        "calling backward(); up to max_iter iterations per call, one param group. JAX: Optax's loop with "
        "optax.value_and_grad_from_state and update(grads, state, params, value=, grad=, value_fn=), one "
        "iteration per update, jittable. NumPy: opt.step(params, closure) with closure(params) -> (value, "
        "grads). Memory: 2 * history_size copies of all parameters. Keras has no L-BFGS (refused). The memory "
        "rule, first step and line search are the frameworks' choices (conventions), and torch's strong Wolfe "
        "uses c1 = slope_rtol, c2 = curv_rtol (1e-4, 0.9 as torch fixes them). With stochastic gradients use "
        "no line search and a small lr."
    ),
    conventions={
        "torch": Convention(
            "torch",
            "torch.optim.LBFGS",
            notes="Up to max_iter iterations per step(closure); pairs (t d, dg) stored only when y.s > 1e-10; "
            "first step min(1, 1/|g|_1) lr; line_search_fn=None (fixed step lr) or 'strong_wolfe' (cubic "
            "interpolation, c1=1e-4, c2=0.9, bracket tolerance 1e-9, at most max_eval - evaluations so far); "
            "stops on tolerance_grad (max|g|), tolerance_change (step, loss change, slope) and max_eval.",
            names={"LBFGS": {}},
            kwargs={"line_search_fn": "line_search"},
        ),
        "optax": Convention(
            "optax",
            "optax.lbfgs",
            params={
                "history_size": 10, "max_iter": 1, "tolerance_grad": None, "tolerance_change": None,
                "line_search": "zoom", "memory": "cyclic", "first_step": "l2_precond",
            },
            notes="One iteration per update; every (dx, dg) enters a cyclic memory of memory_size (weight 0 when "
            "y.s = 0); gamma from the newest pair, min(1, 1/|g|_2) at the first update; learning_rate (None: 1) "
            "scales the direction; linesearch: the default scale_by_zoom_linesearch(max_linesearch_steps=20, "
            "initial_guess_strategy='one') as 'zoom', or None. The state holds value and grad for "
            "optax.value_and_grad_from_state.",
            names={"lbfgs": {}},
            kwargs={"memory_size": "history_size", "linesearch": "line_search"},
        ),
    },
)

SPECS = (LBFGS,)
