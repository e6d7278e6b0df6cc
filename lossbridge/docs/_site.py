"""The whole generated site: spec pages, choosing pages, porting pages, the index and the nav."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lossbridge
from lossbridge.docs._pages import KIND_DIRS, cell, framework_names, spec_page, spec_path
from lossbridge.docs._snippets import Snippet, run_snippet, snippets
from lossbridge.docs._texts import FRAMEWORK_BACKENDS, OPTIMIZER_INTRO, SITE_INTRO, TASK_INTROS
from lossbridge.registry import default_registry
from lossbridge.spec import LossSpec
from lossbridge.spec._model import TASKS

__all__ = ["Page", "SiteReport", "generate", "nav", "site_pages"]


@dataclass
class Page:
    """One generated file: its path in the site, its content (Markdown text or PNG bytes)."""

    path: str
    content: str | bytes


@dataclass
class SiteReport:
    """What a generation produced and what went wrong (failing snippets, pictures not drawn)."""

    pages: list[Page] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _draw_all(names: list[str], folder: str) -> dict[str, str | None]:
    """Draw every spec's picture into ``folder``; ``{name: None or why not}`` (runs in a subprocess)."""
    from lossbridge.docs._plots import plot_spec

    out: dict[str, str | None] = {}
    for name in names:
        try:
            plot_spec(name, Path(folder) / f"{name}.png")
            out[name] = None
        except Exception as exc:  # reported on the page and by the build
            out[name] = f"{type(exc).__name__}: {exc}"
    return out


def _specs() -> list[tuple[Any, str]]:
    return sorted(default_registry().specs(), key=lambda sd: (sd[0].kind, sd[0].name))


def _run_snippets(specs: list[tuple[Any, str]], run: bool) -> dict[str, list[Snippet]]:
    available = set(lossbridge.available_backends()) if run else set()
    return {spec.name: [run_snippet(sn, available) for sn in snippets(spec)] for spec, _ in specs}


def _spec_pages(
    report: SiteReport, specs: list[tuple[Any, str]], drawn: dict[str, str | None], ran: dict[str, list[Snippet]]
) -> None:
    for spec, provider in specs:
        found = ran[spec.name]
        for sn in found:
            if sn.error:
                report.failures.append(f"{spec.name}: the {sn.backend} snippet failed: {sn.error}")
        problem = drawn.get(spec.name, "pictures were not drawn in this build")
        image = None if problem else f"../img/{spec.name}.png"
        if problem and spec.name in drawn:
            report.failures.append(f"{spec.name}: no picture: {problem}")
        report.pages.append(
            Page(
                spec_path(spec),
                spec_page(spec, provider=provider, snippets=found, image=image, image_problem=problem),
            )
        )


def _row(spec: Any, prefix: str = "../") -> str:
    names = "; ".join(
        f"{fw}: " + ", ".join(f"`{n}`" for n in sorted(framework_names(spec, fw))) for fw in sorted(spec.conventions)
    )
    return f"| [{spec.name}]({prefix}{spec_path(spec)}) | {cell(spec.summary)} | {cell(names) or '-'} |"


#: Choosing pages beyond the task tags: topic -> which losses it recommends, from their declarations.
TOPICS = {
    "imbalanced": lambda s: bool({p.name for p in s.all_params()} & {"class_weight", "pos_weight"})
    or "imbalanc" in s.usage.lower()
    or "focal" in s.name,
}


def _task_page(task: str, specs: list[Any]) -> Page:
    title, intro = TASK_INTROS.get(task, (task.replace("_", " ").capitalize(), ""))
    wanted = TOPICS.get(task, lambda s: task in s.tasks)
    chosen = [s for s in specs if isinstance(s, LossSpec) and wanted(s)]
    lines = [f"# Choosing a loss: {title}", "", intro, ""]
    lines += ["| loss | what it is | framework names |", "|---|---|---|", *(_row(s) for s in chosen), ""]
    lines += ["## When to use each, and the pitfalls", "", "From each spec's own usage notes.", ""]
    for s in chosen:
        lines += [f"### [{s.name}](../{spec_path(s)})", "", s.usage or s.summary, ""]
    return Page(f"choose/{task}.md", "\n".join(lines))


def _optimizer_page(specs: list[Any]) -> Page:
    lines = [OPTIMIZER_INTRO, ""]
    for kind, title in (("optimizer", "Optimizers"), ("schedule", "Learning-rate schedules")):
        chosen = [s for s in specs if s.kind == kind]
        lines += [f"## {title}", "", "| spec | what it is | framework names |", "|---|---|---|"]
        lines += [*(_row(s) for s in chosen), ""]
        for s in chosen:
            lines += [f"### [{s.name}](../{spec_path(s)})", "", s.usage or s.summary, ""]
    return Page("choose/optimizers.md", "\n".join(lines))


def _value(spec: Any, fw: str, name: str) -> Any:
    conv = spec.conventions[fw]
    if name in conv.params:
        return conv.params[name]
    return next((p.default for p in spec.all_params() if p.name == name), None)


def _differences(spec: Any, src: str, dst: str) -> str:
    """What changes in the numbers between two frameworks' conventions of one spec."""
    a, b = spec.conventions[src], spec.conventions[dst]
    parts = [
        f"`{k}`: {_value(spec, src, k)!r} → {_value(spec, dst, k)!r}"
        for k in sorted(set(a.params) | set(b.params))
        if repr(_value(spec, src, k)) != repr(_value(spec, dst, k))
    ]
    if isinstance(spec, LossSpec) and a.reduction != b.reduction:
        ra, rb = a.reduction, b.reduction
        for attr in ("default", "feature_mean", "normalize_by"):
            if getattr(ra, attr) != getattr(rb, attr):
                parts.append(f"reduction {attr}: {getattr(ra, attr)!r} → {getattr(rb, attr)!r}")
    if a.hyper_dtype != b.hyper_dtype:
        kept = [d or "the parameter dtype" for d in (a.hyper_dtype, b.hyper_dtype)]
        parts.append(f"hyperparameters kept in {kept[0]} → {kept[1]}")
    return "; ".join(parts) or "same numbers"


def _porting_page(src: str, dst: str, specs: list[Any]) -> Page:
    backend = FRAMEWORK_BACKENDS[dst]
    both = [s for s in specs if src in s.conventions and dst in s.conventions]
    only = [s for s in specs if src in s.conventions and dst not in s.conventions]
    lines = [
        f"# Porting from {src} to {dst}",
        "",
        f"Every spec both {src} and {dst} have, what changes in the numbers when you take the \"same\" name "
        f"across (defaults, eps placement, reductions, clipping), and the one line that reproduces {src}'s "
        f"numbers with a {dst} object (backend `{backend}`). Notes are {src}'s, then {dst}'s.",
        "",
        f"| spec | {src} name | {dst} name | what changes ({src} → {dst}) | {src}'s numbers in {dst} | notes |",
        "|---|---|---|---|---|---|",
    ]
    for s in both:
        src_names, dst_names = sorted(framework_names(s, src)), sorted(framework_names(s, dst))
        first = src_names[0] if src_names else s.name
        call = f'`lossbridge.get("{first}", backend="{backend}", convention="{src}")`'
        notes = " / ".join(cell(n) for n in (s.conventions[src].notes, s.conventions[dst].notes) if n) or "-"
        lines.append(
            f"| [{s.name}](../{spec_path(s)}) | {', '.join(f'`{n}`' for n in src_names) or '-'} | "
            f"{', '.join(f'`{n}`' for n in dst_names) or '-'} | {cell(_differences(s, src, dst))} | {call} | {notes} |"
        )
    lines += ["", f"## {src} items with no {dst} counterpart", ""]
    if only:
        lines += [f"| spec | {src} name | in {dst} with lossbridge |", "|---|---|---|"]
        for s in only:
            names = sorted(framework_names(s, src))
            first = names[0] if names else s.name
            call = f'`lossbridge.get("{first}", backend="{backend}", convention="{src}")`'
            lines.append(f"| [{s.name}](../{spec_path(s)}) | {', '.join(f'`{n}`' for n in names) or '-'} | {call} |")
    else:
        lines.append("None: every item has a counterpart.")
    return Page(f"porting/{src}-to-{dst}.md", "\n".join([*lines, ""]))


def _pairs(specs: list[Any]) -> list[tuple[str, str]]:
    frameworks = sorted({fw for s in specs for fw in s.conventions})
    return [(a, b) for a in frameworks for b in frameworks if a != b and b in FRAMEWORK_BACKENDS]


def _porting_index(pairs: list[tuple[str, str]]) -> Page:
    lines = [
        "# Porting between frameworks",
        "",
        "The same name often gives different numbers in two frameworks. Each page below lists every spec two "
        "frameworks share, what differs, and the `lossbridge.get` call that gives the source framework's numbers "
        "as a native object of the target framework. Caffe cannot be installed, so it is a source only.",
        "",
        *(f"- [{a} → {b}]({a}-to-{b}.md)" for a, b in pairs),
        "",
    ]
    return Page("porting/index.md", "\n".join(lines))


def _index(specs: list[tuple[Any, str]], pairs: list[tuple[str, str]]) -> Page:
    counts = {k: sum(1 for s, _ in specs if s.kind == k) for k in KIND_DIRS}
    lines = [
        SITE_INTRO,
        "",
        f"This build has **{counts['loss']} losses, {counts['optimizer']} optimizers and {counts['schedule']} "
        f"schedules** (every spec installed when it was built, plugins' included).",
        "",
        "- Choosing a loss by task: "
        + ", ".join(f"[{TASK_INTROS.get(t, (t, ''))[0]}](choose/{t}.md)" for t in sorted(TASKS | set(TOPICS))),
        "- [Choosing an optimizer and a schedule](choose/optimizers.md)",
        "- [Porting between frameworks](porting/index.md): "
        + ", ".join(f"[{a} → {b}](porting/{a}-to-{b}.md)" for a, b in pairs),
        "",
        "## Every spec",
        "",
        "| spec | kind | what it is | provided by |",
        "|---|---|---|---|",
    ]
    for s, dist in specs:
        lines.append(f"| [{s.name}]({spec_path(s)}) | {s.kind} | {cell(s.summary)} | `{dist}` |")
    return Page("index.md", "\n".join([*lines, ""]))


def _pictures(names: list[str], folder: str, parallel: bool) -> concurrent.futures.Future[dict[str, str | None]]:
    if not parallel:
        done: concurrent.futures.Future[dict[str, str | None]] = concurrent.futures.Future()
        done.set_result(_draw_all(names, folder))
        return done
    pool = concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    future = pool.submit(_draw_all, names, folder)
    pool.shutdown(wait=False)
    return future


def site_pages(*, pictures: bool = True, run_snippets: bool = True, parallel: bool | None = None) -> SiteReport:
    """Every generated page of the site, in memory, with what failed.

    Pictures are drawn in a second process while the snippets run here (``parallel``; default: when
    the machine has more than one core). ``LOSSBRIDGE_DOCS_FAST=1`` skips both (a quick draft).
    """
    start = time.perf_counter()
    if os.environ.get("LOSSBRIDGE_DOCS_FAST") == "1":
        pictures = run_snippets = False
    report = SiteReport()
    specs = _specs()
    names = [s.name for s, _ in specs]
    with tempfile.TemporaryDirectory(prefix="lossbridge-docs-") as folder:
        use_pool = (os.cpu_count() or 1) > 1 if parallel is None else parallel
        future = _pictures(names, folder, use_pool) if pictures else None
        ran = _run_snippets(specs, run_snippets)  # meanwhile the pictures are drawn in the other process
        drawn = future.result() if future is not None else {}
        _spec_pages(report, specs, drawn, ran)
        for name, problem in drawn.items():
            if problem is None:
                report.pages.append(Page(f"img/{name}.png", (Path(folder) / f"{name}.png").read_bytes()))
    only = [s for s, _ in specs]
    pairs = _pairs(only)
    report.pages.append(_index(specs, pairs))
    report.pages += [_task_page(t, only) for t in sorted(TASKS | set(TOPICS))]
    report.pages.append(_optimizer_page(only))
    report.pages.append(_porting_index(pairs))
    report.pages += [_porting_page(a, b, only) for a, b in pairs]
    report.seconds = time.perf_counter() - start
    return report


def nav(pages: list[Page], guide: list[str]) -> list[Any]:
    """The MkDocs nav: home, choosing, porting, the spec pages by kind, then every guide page."""
    paths = {p.path for p in pages}
    by_dir = lambda d: sorted(p for p in paths if p.startswith(f"{d}/") and p.endswith(".md"))  # noqa: E731
    tasks = [p for p in by_dir("choose") if Path(p).stem in TASKS | set(TOPICS)]
    choose = [{TASK_INTROS.get(Path(p).stem, (Path(p).stem, ""))[0]: p} for p in tasks]
    porting = sorted(by_dir("porting"), key=lambda p: (not p.endswith("index.md"), p))
    out: list[Any] = [
        {"Home": "index.md"},
        {"Choosing a loss": choose},
        {"Choosing an optimizer": "choose/optimizers.md"},
        {"Porting": porting},
        {"Losses": by_dir("losses")},
        {"Optimizers": by_dir("optimizers")},
        {"Schedules": by_dir("schedules")},
    ]
    if guide:
        out.append({"Guide": sorted(guide)})
    return out


def generate(dest: str | Path, **options: Any) -> SiteReport:
    """Write every generated page under ``dest`` (a docs directory); options as :func:`site_pages`."""
    report = site_pages(**options)
    root = Path(dest)
    for page in report.pages:
        target = root / page.path
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(page.content, bytes):
            target.write_bytes(page.content)
        else:
            target.write_text(page.content, encoding="utf-8")
    return report
