"""Plugins as real distributions: a ``.dist-info`` with an entry point placed on ``sys.path``."""

from __future__ import annotations

import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

import lossbridge
from lossbridge.registry import PluginWarning

GOOD_PLUGIN = """
import lossbridge
from lossbridge.spec import Input, LossSpec


def poisson(y_true, y_pred, /, *, xp):
    return y_pred - y_true * xp.log(y_pred)


def poisson_vjp(y_true, y_pred, cot, /, *, xp):
    return ((1.0 - y_true / y_pred) * cot,)


POISSON = LossSpec(
    name="toy_poisson",
    summary="Poisson negative log-likelihood (toy plugin).",
    fn=poisson,
    vjp=poisson_vjp,
    inputs=(Input("y_true", "target", "positive"), Input("y_pred", "prediction", "positive", differentiable=True)),
    tasks=frozenset({"regression"}),
    formula=r"\\hat y - y \\log \\hat y",
    references=("Nelder & Wedderburn (1972). Generalized linear models.",),
)


@lossbridge.hookimpl
def lossbridge_register_specs(register):
    register(POISSON)
"""

BROKEN_PLUGIN = "raise RuntimeError('this plugin is broken on purpose')\n"

DUPLICATE_PLUGIN = """
import lossbridge
from lossbridge.spec._regression import MSE
import dataclasses

@lossbridge.hookimpl
def lossbridge_register_specs(register):
    register(dataclasses.replace(MSE, name="my_mse", aliases=("mse",)))
"""

MALFORMED_PLUGIN = """
import lossbridge
from lossbridge.spec import Input, LossSpec

@lossbridge.hookimpl
def lossbridge_register_specs(register):
    register(LossSpec(name="Bad Name", summary="", fn=None, inputs=()))
"""

MISSING_FRAMEWORK_PLUGIN = """
import lossbridge
from lossbridge.backends import Backend

class NoSuchBackend(Backend):
    name = "nosuchfw"
    requires = ("nosuchframework_xyz",)
    distribution = "lossbridge-nosuchfw"

@lossbridge.hookimpl
def lossbridge_register_backends(register):
    register(NoSuchBackend())
"""


def install_distribution(root: Path, dist: str, module: str, source: str) -> None:
    """Write ``module.py`` and a ``dist-info`` whose entry point (group ``lossbridge``) names it."""
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[lossbridge]\n{module} = {module}\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_registry: None) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_installed_plugin_adds_a_loss(site: Path) -> None:
    install_distribution(site, "lossbridge-toy", "lossbridge_toy_good", GOOD_PLUGIN)
    loss = lossbridge.get("toy-poisson")
    y, p = np.array([1.0, 2.0, 0.5]), np.array([1.5, 1.0, 0.25])
    expected = np.mean(p - y * np.log(p))  # Poisson NLL written out
    assert float(loss(y, p)) == pytest.approx(expected, rel=1e-12)
    assert "toy_poisson" in [e.name for e in lossbridge.catalog(kind="loss")]
    entry = next(e for e in lossbridge.catalog() if e.name == "toy_poisson")
    assert entry.distribution == "lossbridge-toy"


def test_plugin_that_raises_on_import_warns_and_the_rest_works(site: Path) -> None:
    install_distribution(site, "lossbridge-broken", "lossbridge_toy_broken", BROKEN_PLUGIN)
    install_distribution(site, "lossbridge-toy", "lossbridge_toy_good", GOOD_PLUGIN)
    with pytest.warns(PluginWarning, match=r"lossbridge-broken.*RuntimeError: this plugin is broken on purpose"):
        loss = lossbridge.get("mse")
    assert float(loss([0.0], [2.0])) == 4.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert lossbridge.get("toy_poisson") is not None  # reported once, not on every call


def test_strict_mode_raises_on_a_broken_plugin(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_distribution(site, "lossbridge-broken", "lossbridge_toy_broken", BROKEN_PLUGIN)
    monkeypatch.setenv("LOSSBRIDGE_STRICT_PLUGINS", "1")
    with pytest.raises(lossbridge.PluginError, match=r"lossbridge-broken.*broken on purpose"):
        lossbridge.get("mse")


def test_a_name_provided_twice_names_both_providers(site: Path) -> None:
    install_distribution(site, "lossbridge-dupe", "lossbridge_toy_dupe", DUPLICATE_PLUGIN)
    with pytest.warns(PluginWarning, match="provided twice.*'lossbridge'.*'lossbridge-dupe'"):
        lossbridge.catalog()
    with pytest.raises(lossbridge.PluginError, match=r"lossbridge, lossbridge\-dupe"):
        lossbridge.get("mse")
    assert lossbridge.get("sgd") is not None  # everything else keeps working


def test_a_malformed_spec_is_rejected_naming_its_plugin(site: Path) -> None:
    install_distribution(site, "lossbridge-malformed", "lossbridge_toy_malformed", MALFORMED_PLUGIN)
    with pytest.warns(
        PluginWarning, match=r"malformed spec 'Bad Name' from plugin 'lossbridge-malformed'.*not lower_snake_case"
    ):
        names = [e.name for e in lossbridge.catalog()]
    assert "Bad Name" not in names and "mse" in names


def test_strict_mode_raises_on_a_malformed_spec(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install_distribution(site, "lossbridge-malformed", "lossbridge_toy_malformed", MALFORMED_PLUGIN)
    monkeypatch.setenv("LOSSBRIDGE_STRICT_PLUGINS", "1")
    with pytest.raises(lossbridge.SpecError, match="lossbridge-malformed") as info:
        lossbridge.catalog()
    assert info.value.plugin == "lossbridge-malformed"


def test_backend_whose_framework_is_missing(site: Path) -> None:
    install_distribution(site, "lossbridge-nosuchfw", "lossbridge_toy_nofw", MISSING_FRAMEWORK_PLUGIN)
    assert "nosuchfw" not in lossbridge.available_backends()
    with pytest.raises(lossbridge.BackendError) as info:
        lossbridge.get("mse", backend="nosuchfw")
    message = str(info.value)
    assert "needs nosuchframework_xyz" in message
    assert "pip install lossbridge-nosuchfw" in message
    assert "numpy" in message  # lists what is installed
    assert lossbridge.get("mse", backend="numpy") is not None
