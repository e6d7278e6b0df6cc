"""``lossbridge info NAME``: everything a spec declares, and how each framework differs."""

from __future__ import annotations

import lossbridge


def test_info_adam_shows_formula_parameters_usage_references_conventions(cli) -> None:
    code, out, _ = cli("info", "adam")
    assert code == 0
    spec = lossbridge.spec("adam")
    assert out.startswith("adam (optimizer)")
    assert r"\beta_1 m_{t-1}" in out  # the LaTeX formula, verbatim
    for p in spec.params:
        row = next(line for line in out.splitlines() if line.startswith(f"│ {p.name} "))
        assert p.describe() in row
        assert repr(p.default) in row
    assert spec.usage.split(".")[0] in out
    assert spec.references[0] in out
    for fw, conv in spec.conventions.items():
        assert conv.native in out, fw
    keras = next(line for line in out.splitlines() if line.startswith("│ keras "))
    assert "eps=1e-07 (default 1e-08)" in keras
    assert "float32" in keras  # hyperparameters kept in float32
    torch = next(line for line in out.splitlines() if line.startswith("│ torch "))
    assert "same as default" in torch


def test_info_by_alias_shows_loss_reduction_per_convention(cli) -> None:
    code, out, _ = cli("info", "BCE")
    assert code == 0
    assert out.startswith("binary_crossentropy (loss)")
    assert "tasks: binary, multilabel" in out
    keras = next(line for line in out.splitlines() if line.startswith("│ keras "))
    assert "mean over last axis first" in keras
    optax = next(line for line in out.splitlines() if line.startswith("│ optax "))
    assert "default 'none'" in optax
    assert "from_logits=True (default False)" in optax
    assert "reduction" in out  # the shared parameter is listed with the spec's own


def test_info_prints_brackets_in_docs_literally(cli) -> None:
    code, out, _ = cli("info", "mse")
    assert code == 0
    reduction_row = next(line for line in out.splitlines() if line.startswith("│ reduction "))
    assert "one of 'mean', 'sum', 'none'" in reduction_row
    for spec in lossbridge.catalog():
        for p in lossbridge.spec(spec.name).all_params():
            if "[" in p.doc:  # rich markup would eat "[eps, 1 - eps]"
                _, text, _ = cli("info", spec.name)
                assert p.doc in text


def test_unknown_name_exits_2_with_the_library_message(cli) -> None:
    try:
        lossbridge.spec("adamm")
    except lossbridge.UnknownNameError as exc:
        message = str(exc)
    code, out, err = cli("info", "adamm")
    assert code == 2
    assert out == ""
    assert err.strip() == f"lossbridge: error: {message}"
    assert "did you mean 'adam'" in err
