"""The ``lbfgs`` spec (NumPy only): the two-loop recursion, the memory, the line searches, purity.

Expected numbers come from float64 NumPy transcriptions written here: the dense inverse-BFGS
recursion (Nocedal & Wright eq. 7.19, the matrix the two-loop recursion multiplies by without forming
it) and the textbook L-BFGS iteration (algorithm 7.5 with a fixed step and the curvature test), not
from lossbridge.
"""

from __future__ import annotations

import numpy as np
import pytest

import lossbridge
from lossbridge.errors import ParameterError, SpecError
from lossbridge.spec._lbfgs import LBFGS, lbfgs_init, lbfgs_step, set_row_where, two_loop
from lossbridge.spec._model import OptimizerSpec

RNG = np.random.default_rng(3)
A = RNG.normal(size=(9, 6))
B = RNG.normal(size=9)


def f(x: np.ndarray) -> float:
    r = A @ x - B
    return float(0.5 * r @ r + 0.1 * np.sum(np.cos(2 * x)))


def grad(x: np.ndarray) -> np.ndarray:
    return A.T @ (A @ x - B) - 0.2 * np.sin(2 * x)


def closure(params: list[np.ndarray]) -> tuple[float, list[np.ndarray]]:
    return f(params[0]), [grad(params[0])]


def host_loop(cond, body, carry):
    while bool(cond(carry)):
        carry = body(carry)
    return carry


def _hyper(**changes):
    return {p.name: p.default for p in LBFGS.params} | changes


# -- the two-loop recursion -------------------------------------------------------------------------
def dense_inverse_bfgs(pairs: list[tuple[np.ndarray, np.ndarray]], gamma: float, n: int) -> np.ndarray:
    """H = V_k^T ... (gamma I) ... V_k + sum rho s s^T, built pair by pair (oldest first)."""
    h = gamma * np.eye(n)
    for s, y in pairs:
        rho = 1.0 / (y @ s)
        v = np.eye(n) - rho * np.outer(y, s)
        h = v.T @ h @ v + rho * np.outer(s, s)
    return h


@pytest.mark.parametrize("m", [1, 3, 5])
def test_two_loop_is_the_inverse_bfgs_matrix_times_the_vector(m: int) -> None:
    n = 6
    pairs = []
    for _ in range(m):
        s = RNG.normal(size=n)
        y = s + 0.3 * RNG.normal(size=n)  # y.s > 0 (close to s)
        pairs.append((s, y))
    q = RNG.normal(size=n)
    gamma = 0.7
    expected = dense_inverse_bfgs(pairs, gamma, n) @ q
    s_mem = np.stack([s for s, _ in pairs])
    y_mem = np.stack([y for _, y in pairs])
    rho = np.array([1.0 / (y @ s) for s, y in pairs])
    np.testing.assert_allclose(two_loop(q, s_mem, y_mem, rho, np.asarray(gamma), xp=np), expected, rtol=1e-12)


def test_two_loop_ignores_empty_rows() -> None:
    # rows with rho = 0 (an empty or rejected slot of the memory) change nothing, bit for bit
    s, y, q = RNG.normal(size=4), RNG.normal(size=4), RNG.normal(size=4)
    rho = np.array([1.0 / abs(y @ s)])
    full = two_loop(q, s[None], y[None], rho, np.asarray(0.5), xp=np)
    padded = two_loop(q, np.stack([np.zeros(4), s]), np.stack([np.zeros(4), y]), np.array([0.0, rho[0]]),
                      np.asarray(0.5), xp=np)
    assert np.array_equal(full, padded)


def test_set_row_where_replaces_one_row() -> None:
    mem = RNG.normal(size=(4, 3))
    out = set_row_where(mem, np.asarray(2), np.array([7.0, 8.0, 9.0]), xp=np)
    expected = mem.copy()
    expected[2] = [7.0, 8.0, 9.0]
    assert np.array_equal(out, expected) and not np.array_equal(mem, expected)  # a new array, mem untouched
    assert np.array_equal(set_row_where(np.zeros(3), np.asarray(0), np.asarray(5.0), xp=np), [5.0, 0.0, 0.0])


def _ring_run(m: int, steps: int, **hooks):
    """``steps`` one-iteration fixed steps with a memory of ``m``: the iterates, the kept pairs (s = t d, y =
    the gradient change, as torch stores them) recorded outside the spec, and the final state."""
    hyper = _hyper(lr=0.5, history_size=m, max_iter=1, tolerance_grad=None, tolerance_change=None)
    x = np.linspace(-1.0, 1.0, 6)
    state = lbfgs_init(x, xp=np, **hyper)
    xs, kept, prev = [], [], None
    for _ in range(steps):
        g = grad(x)
        if prev is not None and (g - prev[1]) @ prev[0] > 1e-10:
            kept.append((prev[0], g - prev[1]))
        x, _, state = lbfgs_step(x, g, state, value=np.asarray(f(x)), value_and_grad=lambda z: (np.asarray(f(z)),
                                 grad(z)), loop=host_loop, xp=np, **hyper, **hooks)
        prev = (state["d"] * state["t"], g)
        xs.append(x.copy())
    return xs, kept, state


def test_the_memory_is_a_ring_buffer_of_the_newest_pairs() -> None:
    # read from its oldest row (head), the memory holds the newest m pairs, oldest first; head counts the pairs
    m = 3
    _, kept, state = _ring_run(m, 9)
    assert len(kept) > m  # it has wrapped around
    head = int(state["head"])
    assert head == len(kept) % m and state["head"].dtype.kind == "i"
    for row, (s, y) in zip(range(m), kept[-m:], strict=True):
        k = (head + row) % m
        assert np.array_equal(state["s_mem"][k], s) and np.array_equal(state["y_mem"][k], y)
        assert state["rho"][k] == 1.0 / np.sum(y * s)


def test_in_place_row_hooks_give_the_same_numbers() -> None:
    # a backend's in-place set_row / view get_row (NumPy's optimizer) against the spec's defaults: bit for bit
    from lossbridge.backends._numpy_closure import get_row, set_row

    plain, _, a = _ring_run(3, 9)
    hooked, _, b = _ring_run(3, 9, set_row=set_row, get_row=get_row)
    for u, v in zip(plain, hooked, strict=True):
        assert np.array_equal(u, v)
    for k in ("s_mem", "y_mem", "rho", "head"):
        assert np.array_equal(a[k], b[k]), k


# -- the textbook iteration (fixed step, curvature test) -------------------------------------------
def textbook_lbfgs(x: np.ndarray, steps: int, *, lr: float, m: int) -> list[np.ndarray]:
    """Nocedal & Wright algorithm 7.5 with a fixed step: pairs kept when y.s > 1e-10, H0 = s.y / y.y of the
    last kept pair, the first step scaled by min(1, 1/|g|_1) (minFunc's, torch's); one iteration per step."""
    pairs: list[tuple[np.ndarray, np.ndarray]] = []
    gamma = 1.0
    out = []
    g = grad(x)
    prev = None
    for k in range(steps):
        if prev is not None:
            s, y = prev[0], g - prev[1]
            if y @ s > 1e-10:
                pairs = [*pairs, (s, y)][-m:]
                gamma = (y @ s) / (y @ y)
        d = -dense_inverse_bfgs(pairs, gamma, x.size) @ g
        t = min(1.0, 1.0 / np.sum(np.abs(g))) * lr if k == 0 else lr
        x = x + t * d
        prev = (t * d, g)
        g = grad(x)
        out.append(x.copy())
    return out


@pytest.mark.parametrize(("lr", "m"), [(1.0, 100), (0.5, 2), (0.8, 4)])
def test_fixed_step_matches_the_textbook_iteration(lr: float, m: int) -> None:
    x0 = RNG.normal(size=6)
    expected = textbook_lbfgs(x0.copy(), 30, lr=lr, m=m)
    opt = lossbridge.get("lbfgs", backend="numpy", convention="torch", lr=lr, history_size=m, max_iter=1,
                         tolerance_grad=None, tolerance_change=None)
    params = [x0.copy()]
    for k in range(30):
        opt.step(params, closure)
        err = np.max(np.abs(params[0] - expected[k])) / np.max(np.abs(expected[k]))
        assert err <= 1e-10, f"step {k + 1}: {err:.3g}"


# -- the line searches ------------------------------------------------------------------------------
def _one_step(**changes):
    x = RNG.normal(size=6)
    hyper = _hyper(**changes)
    state = lbfgs_init(x, xp=np, **hyper)
    with np.errstate(all="ignore"):
        new_x, delta, state = lbfgs_step(x, grad(x), state, value=np.asarray(f(x)),
                                         value_and_grad=lambda z: (np.asarray(f(z)), grad(z)), loop=host_loop,
                                         xp=np, **hyper)
    return x, new_x, delta, state


def test_strong_wolfe_step_satisfies_the_strong_wolfe_conditions() -> None:
    x, new_x, _, state = _one_step(line_search="strong_wolfe", max_iter=1)
    d, t = state["d"], float(state["t"])
    g0 = grad(x) @ d
    assert g0 < 0
    assert f(new_x) <= f(x) + 1e-4 * t * g0  # sufficient decrease
    assert abs(grad(new_x) @ d) <= 0.9 * abs(g0)  # strong curvature


def test_zoom_step_satisfies_sufficient_decrease_and_curvature() -> None:
    hyper = {"history_size": 10, "max_iter": 1, "tolerance_grad": None, "tolerance_change": None,
             "line_search": "zoom", "memory": "cyclic", "first_step": "l2_precond"}
    x, new_x, delta, state = _one_step(**hyper)
    d = state["d"]
    eta = float(state["stepsize"])
    np.testing.assert_allclose(delta, eta * d, rtol=0, atol=0)
    g0 = grad(x) @ d
    assert f(new_x) <= f(x) + 1e-4 * eta * g0 or grad(new_x) @ d <= (2 * 1e-4 - 1) * g0
    assert abs(grad(new_x) @ d) <= 0.9 * abs(g0)
    assert float(state["value"]) == pytest.approx(f(new_x), rel=1e-14)  # for value_and_grad_from_state


def test_converges_on_the_nonconvex_problem() -> None:
    # torch stops a call once the loss changes by less than tolerance_change (1e-9): |g| ~ 1e-5 there
    for conv, steps, tol in (("torch", 5, 1e-4), ("optax", 60, 1e-6)):
        opt = lossbridge.get("lbfgs", backend="numpy", convention=conv,
                             **({"line_search_fn": "strong_wolfe"} if conv == "torch" else {}))
        params = [np.zeros(6)]
        for _ in range(steps):
            opt.step(params, closure)
        assert np.max(np.abs(grad(params[0]))) < tol, conv


# -- purity: the same step on array-api-strict -------------------------------------------------------
@pytest.mark.parametrize("line_search", [None, "strong_wolfe", "zoom"])
def test_the_step_runs_on_array_api_strict_with_numpy_numbers(line_search) -> None:
    xps = pytest.importorskip("array_api_strict")
    cyclic = {"memory": "cyclic", "first_step": "l2_precond", "max_iter": 1} if line_search == "zoom" else {}
    hyper = _hyper(line_search=line_search, history_size=3, max_iter=4) | cyclic
    x = RNG.normal(size=6)
    results = {}
    for name, ns in (("numpy", np), ("strict", xps)):
        xx = ns.asarray(x)

        def vg(z, ns=ns):
            zn = np.asarray(z) if ns is np else np.from_dlpack(z)
            return ns.asarray(f(zn)), ns.asarray(grad(zn))

        state = lbfgs_init(xx, xp=ns, **hyper)
        cur = xx
        with np.errstate(all="ignore"):
            for _ in range(3):
                v, g = vg(cur)
                cur, _, state = lbfgs_step(cur, g, state, value=v, value_and_grad=vg, loop=host_loop, xp=ns, **hyper)
        results[name] = np.asarray(cur) if ns is np else np.from_dlpack(cur)
    np.testing.assert_allclose(results["strict"], results["numpy"], rtol=1e-12)


# -- declaration and parameters ----------------------------------------------------------------------
def test_names_and_conventions_resolve() -> None:
    assert lossbridge.spec("LBFGS").name == "lbfgs"
    assert lossbridge.spec("L-BFGS").name == "lbfgs"
    opt = lossbridge.get("LBFGS", backend="numpy", convention="torch", line_search_fn="strong_wolfe", history_size=5)
    assert opt.hyper["line_search"] == "strong_wolfe" and opt.hyper["history_size"] == 5
    opt = lossbridge.get("lbfgs", backend="numpy", convention="optax", memory_size=4, linesearch=None,
                         learning_rate=None)
    assert opt.hyper["history_size"] == 4 and opt.hyper["line_search"] is None and opt.hyper["max_iter"] == 1


def test_invalid_parameters_are_refused() -> None:
    with pytest.raises(ParameterError, match="line_search"):
        lossbridge.get("lbfgs", backend="numpy", line_search="backtracking")
    with pytest.raises(ParameterError, match="history_size"):
        lossbridge.get("lbfgs", backend="numpy", history_size=0)
    with pytest.raises(ParameterError, match="lr"):
        lossbridge.get("lbfgs", backend="numpy", lr=-1.0)


def test_a_closure_step_spec_declares_no_per_tensor_update() -> None:
    bad = OptimizerSpec(name="bad_lbfgs", summary="x", formula="x", references=("x",), params=LBFGS.params,
                        init=lbfgs_init, update=lambda *a, **k: None, closure_step=lbfgs_step)
    with pytest.raises(SpecError, match="closure_step"):
        bad.validate_declaration()


def test_numpy_step_returns_the_starting_loss_and_updates_in_place() -> None:
    opt = lossbridge.get("lbfgs", backend="numpy", convention="torch")
    params = [np.zeros(6)]
    assert opt.step(params, closure) == pytest.approx(f(np.zeros(6)))
    assert np.any(params[0] != 0)
