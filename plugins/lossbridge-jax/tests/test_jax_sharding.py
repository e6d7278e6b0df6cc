"""Each optimizer state leaf keeps its parameter's sharding (two forced host devices).

``--xla_force_host_platform_device_count`` must be set before JAX initializes its backend, so the
check runs in a fresh interpreter. ``init`` is called eagerly, as with Optax (under ``jax.jit`` the
state's sharding is the compiler's choice unless ``out_shardings`` is given, for Optax too).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import jax, jax.numpy as jnp, numpy as np, optax
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    import lossbridge

    assert jax.device_count() == 2, jax.devices()
    mesh = Mesh(np.array(jax.devices()), ("x",))
    row, rep = NamedSharding(mesh, P("x", None)), NamedSharding(mesh, P())
    params = {
        "w": jax.device_put(jnp.arange(24.0).reshape(8, 3) / 10, row),
        "b": jax.device_put(jnp.ones(3), rep),
    }
    for name in [e.name for e in lossbridge.catalog(kind="optimizer") if lossbridge.spec(e.name).gradient_driven]:
        tx = lossbridge.get(name, backend="jax")
        state = tx.init(params)

        def check(state, when):
            if state.slots is None:  # a stateless optimizer (fromage): nothing to place
                return
            for key, param in params.items():
                for slot, leaf in state.slots[key].items():
                    if leaf.shape == param.shape:
                        assert leaf.sharding.is_equivalent_to(param.sharding, leaf.ndim), (
                            name, when, key, slot, leaf.sharding, param.sharding)

        check(state, "init")
        step = jax.jit(lambda p, s: tx.update(jax.tree.map(lambda x: 0.1 * x, p), s, p))
        for _ in range(2):
            updates, state = step(params, state)
        check(state, "update")
        assert updates["w"].sharding.is_equivalent_to(row, 2), (name, updates["w"].sharding)
    print("sharding ok")
    """
)


def test_state_leaves_keep_the_parameter_sharding():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "sharding ok" in done.stdout
