"""Concurrency: the registry loads each plugin once under concurrent first use (8 threads, a fresh
process, mixed kinds and backends; tests/test_api.py has the single-loss case), and torch optimizer
classes compiled for different hyperparameters keep their own compiled update."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import lossbridge


def test_eight_threads_register_every_plugin_once_and_each_get_a_correct_object() -> None:
    script = textwrap.dedent(
        """
        import threading, collections
        import numpy as np
        import lossbridge.backends.numpy as numpy_backend
        calls = collections.Counter()
        original = numpy_backend.lossbridge_register_backends
        def counted(register):
            calls["numpy backend hook"] += 1
            return original(register)
        counted.__dict__.update(original.__dict__)  # the hookimpl marker
        numpy_backend.lossbridge_register_backends = counted  # read when the registry first loads
        import lossbridge
        jobs = [
            ("mse", {}, lambda f: f(np.array([0.0, 1.0]), np.array([0.5, 1.0])), 0.125),
            ("mae", {}, lambda f: f(np.array([0.0, 1.0]), np.array([0.5, 1.0])), 0.25),
            ("hinge", {}, lambda f: f(np.array([1.0, -1.0]), np.array([0.5, 0.5])), 1.0),
            ("huber", {"delta": 1.0}, lambda f: f(np.array([0.0]), np.array([3.0])), 2.5),
        ]
        barrier, results = threading.Barrier(8), {}
        def use(k):
            barrier.wait()
            name, kw, call, expected = jobs[k % len(jobs)]
            try:
                if k % 2:
                    opt = lossbridge.get("sgd", backend="numpy", lr=0.5)
                    p = [np.array([1.0])]
                    opt.step(p, [np.array([1.0])])
                    results[k] = float(p[0][0]) == 0.5 and float(call(lossbridge.get(name, **kw))) == expected
                else:
                    results[k] = float(call(lossbridge.get(name, **kw))) == expected
            except Exception as exc:
                results[k] = repr(exc)
        threads = [threading.Thread(target=use, args=(k,)) for k in range(8)]
        for t in threads: t.start()
        for t in threads: t.join()
        reg = lossbridge.registry.default_registry()
        names = [p.name for p in reg.plugins.values()]
        dup = sorted(n for n, c in collections.Counter(names).items() if c > 1)
        print(sorted(results.items()), calls["numpy backend hook"], dup, len(lossbridge.catalog()))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    results, hook_calls, duplicates, count = done.stdout.strip().rsplit(" ", 3)[0], *done.stdout.split()[-3:]
    assert results == str([(k, True) for k in range(8)]), done.stdout
    assert hook_calls == "1" and duplicates == "[]", done.stdout
    assert int(count) == len(lossbridge.catalog())


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.compile's own internals
def test_torch_compiled_optimizer_classes_do_not_share_compiled_state() -> None:
    """Two classes (lr 0.1 and 0.01) with compile=True, stepped alternately: each equals its own
    float64 NumPy run, so neither compiled update carries the other's hyperparameters."""
    torch = pytest.importorskip("torch")
    grads = [np.random.default_rng(k).normal(size=(3, 2)) for k in range(4)]
    classes = {lr: lossbridge.get("adam", backend="torch", lr=lr) for lr in (0.1, 0.01)}
    assert classes[0.1] is not classes[0.01]
    params = {lr: torch.nn.Parameter(torch.ones(3, 2, dtype=torch.float64)) for lr in classes}
    opts = {lr: cls([params[lr]], compile=True, fused=False) for lr, cls in classes.items()}
    for g in grads:
        for lr in classes:  # alternately
            params[lr].grad = torch.tensor(g)
            opts[lr].step()
    for lr in classes:
        reference = lossbridge.get("adam", backend="numpy", lr=lr)
        p = [np.ones((3, 2))]
        for g in grads:
            reference.step(p, [g])
        np.testing.assert_allclose(params[lr].detach().numpy(), p[0], rtol=1e-12, atol=0)
    compiled = [cls._compiled for cls in classes.values()]
    assert all(c is not None for c in compiled) and compiled[0] is not compiled[1]
