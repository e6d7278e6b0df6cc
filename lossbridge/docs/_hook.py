"""The MkDocs hook that adds the generated site to a build (named by ``mkdocs.yml``'s ``hooks:``).

It adds every generated page and picture, the vendored MathJax (from the ``django-static-mathjax``
package, so formulas render with no network), sets the nav (every ``docs/guide/*.md`` page is
included automatically), and reports each failing snippet or missing picture as a warning, which
fails ``mkdocs build --strict``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from lossbridge.docs._site import nav, site_pages

log = logging.getLogger("mkdocs.plugins.lossbridge")

MATHJAX = "javascripts/mathjax/tex-svg.js"


def mathjax_source() -> Path:
    """The bundled MathJax 3 ``tex-svg.js`` (one self-contained file: SVG output needs no web fonts)."""
    import importlib.util

    found = importlib.util.find_spec("mathjax")
    locations = list(found.submodule_search_locations or []) if found else []
    for folder in locations:
        path = Path(folder) / "static" / "mathjax" / "es5" / "tex-svg.js"
        if path.is_file():
            return path
    raise RuntimeError('the site needs MathJax from the package django-static-mathjax: pip install "lossbridge[docs]"')


def on_files(files: Any, config: Any) -> Any:
    """Add the generated pages, pictures and MathJax; set the nav; warn about every failure."""
    from mkdocs.structure.files import File

    report = site_pages()
    for page in report.pages:
        files.append(File.generated(config, page.path, content=page.content))
    files.append(File.generated(config, MATHJAX, abs_src_path=str(mathjax_source())))
    guide = [f.src_uri for f in files.documentation_pages() if f.src_uri.startswith("guide/")]
    config["nav"] = nav(report.pages, guide)
    for failure in report.failures:
        log.warning(failure)
    log.info(f"lossbridge: {len(report.pages)} generated files in {report.seconds:.1f} s")
    return files
