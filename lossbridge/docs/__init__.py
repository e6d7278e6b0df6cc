"""The guide: a documentation site generated from the registry (MkDocs + Material).

Every installed spec, a plugin's included, gets a page: formula, parameters, names, usage,
references, what each framework's convention changes, pictures drawn at build time and a usage
snippet per backend that is executed while the site is built. Index pages (choosing a loss by task,
choosing an optimizer or schedule, porting between frameworks) are generated from the specs' own
task tags, usage text and conventions.

``generate(dest)`` writes the generated pages into a directory; the MkDocs hook in
``lossbridge/docs/_hook.py`` (named by the repository's ``mkdocs.yml``) adds them to a build, so
``mkdocs build --strict`` is the whole build. Nothing here is imported by the core: matplotlib and
MkDocs are imported lazily (``pip install "lossbridge[docs]"``).
"""

from __future__ import annotations

from lossbridge.docs._plots import plot_spec
from lossbridge.docs._site import Page, SiteReport, generate, site_pages

__all__ = ["Page", "SiteReport", "generate", "plot_spec", "site_pages"]
