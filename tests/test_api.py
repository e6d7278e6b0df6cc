"""The public API: lookup, name matching, the catalog, and the messages of every lookup error."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import lossbridge


@pytest.mark.parametrize("name", ["mse", "MSE", "Mean-Squared-Error", "mean squared error", "L2"])
def test_names_match_case_and_separator_insensitively_with_aliases(name: str) -> None:
    assert lossbridge.spec(name).name == "mse"


def test_unknown_name_suggests_close_matches() -> None:
    expected = r"unknown loss, optimizer or schedule 'msee'.*did you mean 'mse'"
    with pytest.raises(lossbridge.UnknownNameError, match=expected):
        lossbridge.get("msee")


def test_unknown_backend_lists_installed_and_how_to_add() -> None:
    with pytest.raises(lossbridge.BackendError) as info:
        lossbridge.get("mse", backend="mxnet")
    assert "unknown backend 'mxnet'" in str(info.value)
    assert "Installed backends: " in str(info.value) and "numpy" in str(info.value)


def test_known_but_uninstalled_backend_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    from lossbridge.registry import Registry

    reg = Registry(entry_points=False)  # only the built-ins: no torch backend registered
    with pytest.raises(lossbridge.BackendError, match=r"pip install lossbridge-torch"):
        lossbridge.get("mse", backend="PyTorch", registry=reg)


def test_backend_aliases() -> None:
    assert type(lossbridge.get("mse", backend="np")).__name__ == "NumpyLoss"


def test_unknown_parameter_lists_the_valid_ones_with_ranges() -> None:
    with pytest.raises(lossbridge.ParameterError) as info:
        lossbridge.get("sgd", mometum=0.9)
    message = str(info.value)
    assert "unknown parameter(s) 'mometum'" in message
    assert "momentum (float in [0, 1])" in message and "lr (float in [0, inf))" in message


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"lr": -1.0}, "parameter 'lr' expects float in [0, inf), got -1.0"),
        ({"momentum": 1.5}, "parameter 'momentum' expects float in [0, 1], got 1.5"),
        ({"nesterov": "yes"}, "parameter 'nesterov' expects bool, got 'yes'"),
        ({"lr": float("nan")}, "parameter 'lr' expects float in [0, inf), got nan"),
    ],
)
def test_invalid_parameter_values_are_refused_with_the_range(params: dict, expected: str) -> None:
    with pytest.raises(
        lossbridge.ParameterError, match=expected.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")
    ):
        lossbridge.get("sgd", **params)


def test_reduction_is_validated() -> None:
    with pytest.raises(lossbridge.ParameterError, match="parameter 'reduction' expects one of 'mean', 'sum', 'none'"):
        lossbridge.get("mse", reduction="avg")


def test_unknown_convention_lists_the_known_ones() -> None:
    with pytest.raises(lossbridge.ParameterError, match=r"unknown convention 'mxnet'.*keras, optax, torch"):
        lossbridge.get("mse", convention="mxnet")


def test_spec_shows_conventions() -> None:
    spec = lossbridge.spec("sgd")
    assert spec.conventions["keras"].params["lr_in_momentum"] is True
    assert spec.conventions["torch"].native == "torch.optim.SGD"


def test_catalog_filters_by_kind_and_task() -> None:
    losses = lossbridge.catalog(kind="loss")
    assert losses and all(e.kind == "loss" for e in losses)
    assert "mse" in [e.name for e in lossbridge.catalog(task="regression")]
    assert "sgd" in [e.name for e in lossbridge.catalog(kind="optimizer")]


def test_conventions_change_defaults_and_user_params_win() -> None:
    keras_sgd = lossbridge.get("sgd", convention="keras")
    assert keras_sgd.hyper["lr"] == 0.01 and keras_sgd.hyper["lr_in_momentum"] is True
    assert lossbridge.get("sgd", convention="torch", lr=0.5).hyper["lr"] == 0.5


def test_import_and_numpy_use_load_no_ml_framework() -> None:
    code = (
        "import lossbridge, sys; lossbridge.get('hinge', backend='numpy'); lossbridge.catalog();"
        "print([m for m in sys.modules if m.split('.')[0] in ('torch','tensorflow','jax','keras','optax')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_all_matches_the_module() -> None:
    public = {n for n in dir(lossbridge) if not n.startswith("_")}
    assert set(lossbridge.__all__) <= public
    assert isinstance(lossbridge.get("mse")(np.zeros(2), np.ones(2)), np.floating)


def test_first_use_from_eight_threads_at_once_in_a_fresh_process() -> None:
    """The registry loads once under concurrent first use; every thread gets a working loss."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        """
        import threading, lossbridge
        barrier, results = threading.Barrier(8), []
        def use():
            barrier.wait()
            try:
                results.append(float(lossbridge.get("mse")([0.0, 1.0], [0.5, 1.0])))
            except Exception as exc:
                results.append(repr(exc))
        threads = [threading.Thread(target=use) for _ in range(8)]
        for t in threads: t.start()
        for t in threads: t.join()
        plugins = lossbridge.registry.default_registry().plugins
        print(results, sorted(p.name for p in plugins.values()).count("lossbridge.spec._builtin"))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == f"{[0.125] * 8} 1"


def test_framework_names_resolve_per_convention_with_presets() -> None:
    reg = lossbridge.registry.default_registry()
    assert reg.resolve("BCEWithLogitsLoss", "torch").preset == {"from_logits": True}
    assert lossbridge.get("BCEWithLogitsLoss", convention="torch").bound.params["from_logits"] is True
    caffe, optax = lossbridge.spec("HingeLoss", convention="caffe"), lossbridge.spec("hinge_loss", convention="optax")
    assert caffe.name != optax.name
    assert lossbridge.spec("hinge_loss").name == "hinge"
    assert lossbridge.spec("MSE").name == "mse"


def test_name_is_positional_only_so_keras_name_keyword_is_a_parameter() -> None:
    with pytest.raises(lossbridge.ParameterError, match="unknown parameter"):
        lossbridge.get("mse", name="my_loss")


def test_did_you_mean_lists_each_suggestion_once() -> None:
    with pytest.raises(lossbridge.UnknownNameError) as info:
        lossbridge.get("hinje")
    message = str(info.value)
    suggestions = message.split("did you mean ")[1].split("?")[0].split(", ")
    assert len(suggestions) == len(set(suggestions)) and "'hinge'" in suggestions


def test_keras_convention_accepts_keras_input_forms_on_numpy() -> None:
    loss = lossbridge.get("sparse_categorical_crossentropy", convention="keras")
    probs = np.array([[0.8, 0.2], [0.3, 0.7]])
    labels = np.array([[0.0], [1.0]])  # (N, 1) float labels, as Keras gets them from model.fit
    value = loss(labels, probs)
    assert value.dtype == np.float32  # Keras's loss dtype
    expected = -np.mean(np.log([0.8, 0.7]))
    np.testing.assert_allclose(value, expected, rtol=1e-6)
    with pytest.raises(lossbridge.InputError, match=r"fractional value 0\.5"):
        loss(np.array([0.5, 1.0]), probs)
    with pytest.raises(lossbridge.InputError, match="expected integer class indices"):
        lossbridge.get("sparse_categorical_crossentropy")(np.array([0.0, 1.0]), probs)


def test_keras_rank_rule_and_weights_shaped_n_by_1() -> None:
    mse = lossbridge.get("mse", convention="keras", dtype="float64")
    y, f = np.array([[1.0], [2.0]]), np.array([1.5, 2.0])
    np.testing.assert_allclose(mse(y[:, 0], f[:, None]), 0.125)
    np.testing.assert_allclose(mse(y, f[:, None], sample_weight=np.array([[2.0], [0.0]])), 0.25)


def test_torch_class_axis_one_on_numpy() -> None:
    loss = lossbridge.get("CrossEntropyLoss", convention="torch", reduction="none")
    x = np.random.default_rng(0).normal(size=(2, 3, 4))  # (N, C, d1)
    y = np.array([[0, 1, 2, 0], [2, 2, 1, 0]])
    own = lossbridge.get("sparse_categorical_crossentropy", from_logits=True, reduction="none")
    np.testing.assert_allclose(loss(y, x), own(y, np.moveaxis(x, 1, -1)), rtol=1e-12)
    _value, grad = loss.value_and_grad(y, x)
    assert grad.shape == x.shape


def test_a_convention_outside_its_verified_framework_version_warns_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    from lossbridge import _versions

    monkeypatch.setattr(_versions, "_WARNED", set())
    monkeypatch.setattr(importlib.metadata, "version", lambda dist: "99.0")
    with pytest.warns(lossbridge.UnverifiedVersionWarning, match=r"verified against torch >=2\.4,<2\.14; torch 99\.0"):
        lossbridge.get("mse", convention="torch")
    lossbridge.get("mse", convention="torch")  # once: no second warning (filterwarnings=error would raise)


def test_an_override_receives_the_backend_options_or_is_skipped_for_them() -> None:
    """A factory that takes the options gets them; one that does not is skipped for that call, so the generic
    adapter honours them (``validate=False`` is never silently dropped)."""
    from lossbridge.registry import Registry

    calls: list[dict] = []

    class Plugin:
        @lossbridge.hookimpl
        def lossbridge_register_overrides(self, register):  # type: ignore[no-untyped-def]
            def with_options(bound, **options):  # type: ignore[no-untyped-def]
                calls.append(options)
                return ("native", options)

            def bound_only(bound):  # type: ignore[no-untyped-def]
                calls.append({"bound_only": True})
                return "native"

            register("mse", "numpy", with_options, kind="loss")
            register("mae", "numpy", bound_only, kind="loss")

    reg = Registry(entry_points=False)
    reg.add_plugin(Plugin(), "test-overrides")
    assert lossbridge.get("mse", validate=False, registry=reg) == ("native", {"validate": False})
    assert lossbridge.get("mae", registry=reg) == "native"
    generic = lossbridge.get("mae", validate=False, registry=reg)
    assert generic != "native" and float(generic([0.0, 1.0], [0.5, 1.0])) == 0.25
    assert calls == [{"validate": False}, {"bound_only": True}]
