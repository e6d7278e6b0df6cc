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
    with pytest.raises(lossbridge.UnknownNameError, match=r"unknown loss or optimizer 'msee'.*did you mean 'mse'"):
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
