"""The guide: the generated pages cover the registry, and ``mkdocs build --strict`` builds the site.

The build runs once per module (``tox -e docs``): every snippet of every installed backend runs in it
and every picture is drawn, so a failing snippet, a missing picture or a broken link fails it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import lossbridge

ROOT = Path(__file__).resolve().parents[1]
KIND_DIRS = {"loss": "losses", "optimizer": "optimizers", "schedule": "schedules"}


def _has_example_plugin() -> bool:
    return any(e.distribution == "lossbridge-example" for e in lossbridge.catalog())


def test_generated_pages_cover_every_spec_and_task() -> None:
    from lossbridge.docs import site_pages
    from lossbridge.spec._model import TASKS

    report = site_pages(pictures=False, run_snippets=False)
    paths = {p.path for p in report.pages}
    specs = lossbridge.catalog()
    assert {f"{KIND_DIRS[e.kind]}/{e.name}.md" for e in specs} <= paths
    assert sum(1 for p in paths if p.split("/")[0] in KIND_DIRS.values()) == len(specs)
    assert {f"choose/{t}.md" for t in TASKS} | {"choose/imbalanced.md"} <= paths
    assert {"index.md", "choose/optimizers.md", "porting/index.md", "porting/torch-to-keras.md"} <= paths
    assert {"porting/keras-to-torch.md", "porting/torch-to-optax.md", "porting/caffe-to-torch.md"} <= paths
    assert not report.failures


def test_spec_page_declares_everything() -> None:
    from lossbridge.docs import site_pages

    pages = {p.path: p.content for p in site_pages(pictures=False, run_snippets=False).pages}
    page = pages["losses/binary_crossentropy.md"]
    spec = lossbridge.spec("binary_crossentropy")
    assert spec.formula in page
    needles = ("## Parameters", "`from_logits`", "## Conventions", "BCEWithLogitsLoss", "## Usage", "## References")
    for needle in needles:
        assert needle in page
    assert 'lossbridge.get("BCELoss", backend="torch", convention="torch")' in page
    porting = pages["porting/torch-to-keras.md"]
    assert 'lossbridge.get("BCELoss", backend="tensorflow", convention="torch")' in porting
    assert "[binary_crossentropy](../losses/binary_crossentropy.md)" in pages["choose/binary.md"]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site built with ``mkdocs build --strict``, or the one ``LOSSBRIDGE_DOCS_SITE`` names (already built)."""
    if os.environ.get("LOSSBRIDGE_DOCS_SITE"):
        return Path(os.environ["LOSSBRIDGE_DOCS_SITE"])
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    pytest.importorskip("matplotlib")
    pytest.importorskip("mathjax")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "MPLBACKEND": "Agg"}
    env.pop("LOSSBRIDGE_DOCS_FAST", None)
    cmd = [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"), "-d", str(out)]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-6000:]
    return out


def test_site_has_a_page_per_registered_spec(site: Path) -> None:
    specs = lossbridge.catalog()
    pages = [p for d in KIND_DIRS.values() for p in (site / d).glob("*.html")]
    assert len(pages) == len(specs)
    for e in specs:
        assert (site / KIND_DIRS[e.kind] / f"{e.name}.html").is_file()
        assert (site / "img" / f"{e.name}.png").is_file()


def test_example_plugin_specs_appear(site: Path) -> None:
    if not _has_example_plugin():
        pytest.skip("lossbridge_example is not installed")
    page = (site / "losses" / "quantile.html").read_text(encoding="utf-8")
    assert "lossbridge-example" in page
    assert (site / "optimizers" / "qhm.html").is_file()


def test_loss_page_has_formula_picture_and_ran_snippets(site: Path) -> None:
    page = (site / "losses" / "binary_crossentropy.html").read_text(encoding="utf-8")
    assert 'class="arithmatex"' in page
    assert '<img alt="binary_crossentropy" src="../img/binary_crossentropy.png"' in page
    assert "Output (printed while this site was built)" in page
    assert "failed while the site was built" not in page


def test_math_is_vendored_and_nothing_loads_from_a_cdn(site: Path) -> None:
    assert (site / "javascripts" / "mathjax" / "tex-svg.js").stat().st_size > 1_000_000
    index = (site / "index.html").read_text(encoding="utf-8")
    assert 'src="javascripts/mathjax/tex-svg.js"' in index
    assert "fonts.googleapis" not in index and "cdn.jsdelivr" not in index


def test_search_index_holds_the_specs(site: Path) -> None:
    index = json.loads((site / "search" / "search_index.json").read_text(encoding="utf-8"))
    locations = {doc["location"].split("#")[0] for doc in index["docs"]}
    assert "losses/huber.html" in locations
    assert "porting/torch-to-keras.html" in locations


def test_guide_pages_are_in_the_nav(site: Path) -> None:
    guides = sorted((ROOT / "docs" / "guide").glob("*.md"))
    if not guides:
        pytest.skip("no docs/guide pages")
    index = (site / "index.html").read_text(encoding="utf-8")
    for md in guides:
        assert f"guide/{md.stem}.html" in index


def _browser() -> str | None:
    import shutil

    for name in ("chromium-headless-shell", "chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def served(site: Path) -> Any:
    """The built site over HTTP on 127.0.0.1, recording every path the browser asked for."""
    import functools
    import http.server
    import threading

    requested: list[tuple[str, int]] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_request(self, code: Any = "-", size: Any = "-") -> None:
            requested.append((self.path.split("?")[0], int(code) if str(code).isdigit() else 0))

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", requested
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("page", ["index.html", "losses/binary_crossentropy.html", "porting/torch-to-keras.html"])
def test_browser_renders_formulas_and_pictures(served: Any, page: str, tmp_path: Path) -> None:
    """Headless Chromium loads the page: MathJax typesets the formula, the picture is fetched; a screenshot is kept."""
    browser = _browser()
    if browser is None:
        pytest.skip("no headless Chromium (apt-get install chromium-headless-shell)")
    base, requested = served
    shots = Path(os.environ.get("LOSSBRIDGE_DOCS_SCREENSHOTS", tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    flags = [browser, "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=10000"]
    shot = shots / (page.replace("/", "_").replace(".html", ".png"))
    url = f"{base}/{page}"
    subprocess.run([*flags, "--window-size=1280,2400", f"--screenshot={shot}", url], capture_output=True, timeout=120)
    dom = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    assert shot.is_file() and shot.stat().st_size > 10_000
    assert "md-content" in dom
    if page.startswith("losses/"):
        assert "<mjx-container" in dom  # typeset, not raw LaTeX
        assert ("/img/binary_crossentropy.png", 200) in requested
        assert ("/javascripts/mathjax/tex-svg.js", 200) in requested
