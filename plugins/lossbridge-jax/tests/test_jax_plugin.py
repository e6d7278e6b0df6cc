"""The plugin registers through the entry point without importing JAX; the namespace is jax.numpy."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import lossbridge


def test_loading_the_plugin_does_not_import_jax():
    script = textwrap.dedent(
        """
        import sys, warnings
        warnings.simplefilter("ignore")
        import lossbridge
        from lossbridge.registry import default_registry
        backend = default_registry().backend("jax")
        assert type(backend).__module__ == "lossbridge_jax._backend", backend
        assert default_registry().plugins["jax"].distribution == "lossbridge-jax"
        heavy = [m for m in ("jax", "jaxlib", "optax") if m in sys.modules]
        assert not heavy, heavy
        print("lazy ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "lazy ok" in done.stdout


def test_namespace_is_the_array_api_namespace_of_jax_arrays():
    import array_api_compat
    import jax.numpy as jnp

    backend = lossbridge.registry.default_registry().backend("jax")
    assert backend.namespace() is jnp
    assert array_api_compat.array_namespace(jnp.ones(2)) is jnp
    assert jnp.ones(2).__array_namespace__() is jnp
    assert backend.loss_order == "prediction_first"
    assert lossbridge.registry.default_registry().backend("optax") is backend
