"""A jitted training step on a 2 x 2 mesh of 4 host devices: lossbridge loss and Optax optimizer.

``plugins/lossbridge-jax/tests/test_jax_sharding.py`` already checks, for every optimizer of the
catalog, that each state slot keeps its parameter's sharding through ``init`` and a jitted update
(2 devices, made-up gradients). This adds the training loop a user runs: a mesh
``("data", "model")`` of 4 forced host devices, parameters sharded over ``"model"`` (tensor
parallel), the batch sharded over ``"data"`` (data parallel), lossbridge's losses (mse and the
integer-label softmax cross-entropy under Optax's convention) differentiated through their
``custom_jvp`` inside the jitted step, and lossbridge's ``adam`` / Optax-convention ``adamw``.
Checked in float64:

* after N steps the parameters equal the unsharded single-device run (relative 1e-12: the sharded
  reductions sum in another order, so not bit for bit);
* the parameters, the updates and every state slot keep the parameters' shardings, and the step
  does not recompile after its first call (the same two compilations as ``optax.adam``: the step
  count comes out of ``init`` uncommitted and out of the first step replicated over the mesh).

``--xla_force_host_platform_device_count`` must be set before JAX initializes, so the check runs
in a fresh interpreter.
"""

from __future__ import annotations

import textwrap

SCRIPT = textwrap.dedent(
    """
    import jax
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

    import lossbridge

    assert jax.device_count() == 4, jax.devices()
    mesh = Mesh(np.array(jax.devices()).reshape(2, 2), ("data", "model"))
    shard = {
        "w1": NamedSharding(mesh, P(None, "model")),
        "b1": NamedSharding(mesh, P("model")),
        "w2": NamedSharding(mesh, P("model", None)),
        "b2": NamedSharding(mesh, P()),
    }
    batch = NamedSharding(mesh, P("data"))
    STEPS, N, D, H, C = 5, 16, 6, 8, 3

    rng = np.random.default_rng(0)
    init = {
        "w1": rng.normal(size=(D, H)) / 2, "b1": np.zeros(H),
        "w2": rng.normal(size=(H, 1 + C)) / 2, "b2": np.zeros(1 + C),
    }
    xs = rng.normal(size=(STEPS, N, D))
    ys = rng.normal(size=(STEPS, N, 1))
    labels = rng.integers(0, C, size=(STEPS, N))

    mse = lossbridge.get("mse", backend="jax")
    xent = lossbridge.get("softmax_cross_entropy_with_integer_labels", backend="jax", convention="optax")

    def loss_fn(params, x, y, label):
        h = jnp.tanh(x @ params["w1"] + params["b1"])
        out = h @ params["w2"] + params["b2"]
        return mse(out[:, :1], y) + jnp.mean(xent(out[:, 1:], label))

    def train(tx, params, place):
        state = tx.init(params)
        step = jax.jit(lambda p, s, x, y, label: _step(tx, p, s, x, y, label))
        for k in range(STEPS):
            params, state, updates = step(params, state, place(xs[k]), place(ys[k]), place(labels[k]))
        return params, state, updates, step

    def _step(tx, params, state, x, y, label):
        grads = jax.grad(loss_fn)(params, x, y, label)
        updates, state = tx.update(grads, state, params)
        import optax
        return optax.apply_updates(params, updates), state, updates

    for name, convention, kwargs in [("adam", None, {"lr": 0.05}), ("adamw", "optax", {"learning_rate": 0.05})]:
        tx = lossbridge.get(name, backend="jax", convention=convention, **kwargs)

        # unsharded: uncommitted arrays on the default device
        ref, _, _, _ = train(tx, jax.tree.map(jnp.asarray, init), jnp.asarray)

        # sharded parameters (and so state), data-parallel batches
        params = {k: jax.device_put(jnp.asarray(v), shard[k]) for k, v in init.items()}
        got, state, updates, step = train(tx, params, lambda a: jax.device_put(jnp.asarray(a), batch))
        # two compilations, as with optax.adam: init's step count is an uncommitted scalar, the first
        # step returns it replicated over the mesh; every later step reuses the second executable
        assert step._cache_size() <= 2, (name, step._cache_size())

        for k in init:
            assert got[k].sharding.is_equivalent_to(shard[k], got[k].ndim), (name, k, got[k].sharding)
            assert updates[k].sharding.is_equivalent_to(shard[k], got[k].ndim), (name, k, updates[k].sharding)
            for slot, leaf in state.slots[k].items():
                assert leaf.sharding.is_equivalent_to(shard[k], leaf.ndim), (name, k, slot, leaf.sharding)
            want = np.asarray(ref[k])
            err = np.max(np.abs(np.asarray(got[k]) - want)) / np.max(np.abs(want))
            assert err <= 1e-12, (name, k, err)
            assert np.max(np.abs(want - init[k])) > 1e-3, (name, k, "did not train")
        assert int(state.count) == STEPS
    print("jax sharded ok")
    """
)


def test_sharded_training_step_matches_unsharded():
    from ._launch import require, run_child

    require("jax", "optax", "lossbridge_jax")
    run_child(["-c", SCRIPT], "jax sharded ok", XLA_FLAGS="--xla_force_host_platform_device_count=4",
              JAX_PLATFORMS="cpu")
