"""Static reveal.js slides of every lesson that work offline (``make slides``).

Each committed notebook (not executed again) becomes ``<out>/NN_topic.slides.html`` through
nbconvert's slides exporter, with the slide types of :mod:`dmlnotes.classroom.slide_types`.
nbconvert's template loads reveal.js, require.js, jQuery and MathJax from CDNs by default;
here they come from the npm registry once (pinned versions, into a git-ignored cache) and are
copied into ``<out>/vendor/``, so the folder is self-contained: copy it to a USB stick, open
an HTML file. The build fails if any page or style sheet still references the internet.
Widgets show the static figure the committed notebook saved.

Usage::

    python -m dmlnotes.classroom.slides [--out build/slides] [notebooks...]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from .offline import report, scan_folder

ROOT = Path(__file__).resolve().parents[2]
# Versions nbconvert's reveal template is written for: reveal.js 4 and MathJax 2 (it calls MathJax.Hub).
NPM_PACKAGES = ("reveal.js@4.6.0", "mathjax@2.7.9", "requirejs@2.3.7", "jquery@3.7.1")
# A reveal theme whose fonts ship with reveal.js (the default, "simple", imports web fonts).
REVEAL_THEME = "white"
TEMPLATE_DIR = Path(__file__).with_name("templates")


def fetch_vendor(cache: Path, allow_fetch: bool = True) -> Path:
    """The npm packages' folder, installed into ``cache`` on first use (unless ``allow_fetch`` is False)."""
    modules = cache / "node_modules"
    if all((modules / spec.rsplit("@", 1)[0] / "package.json").exists() for spec in NPM_PACKAGES):
        return modules
    if not allow_fetch:
        raise FileNotFoundError(f"no reveal.js and MathJax in {cache}: run `make slides` (or `make test-site`) once")
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit(
            "make slides needs npm (Node.js) once, to fetch reveal.js and MathJax from the npm registry: "
            "install Node.js (Debian: apt-get install npm)"
        )
    cache.mkdir(parents=True, exist_ok=True)
    command = [npm, "install", "--prefix", str(cache), "--no-save", "--no-audit", "--no-fund", "--loglevel=error"]
    subprocess.run([*command, *NPM_PACKAGES], check=True)
    return modules


MATHJAX_CONFIG = "TeX-AMS_CHTML-full"


def copy_vendor(modules: Path, out: Path) -> None:
    """The parts of the npm packages the slides load, into ``out/vendor``."""
    vendor = out / "vendor"
    reveal, theme = modules / "reveal.js", Path("dist") / "theme"
    for part in ("dist/reveal.js", "dist/reveal.css", f"{theme}/{REVEAL_THEME}.css", f"{theme}/fonts", "plugin/notes"):
        _copy(reveal / part, vendor / "reveal.js" / part)
    # MathJax 2: the configuration nbconvert asks for and what it loads (TeX in, CommonHTML out, TeX fonts).
    mathjax = modules / "mathjax"
    for part in (
        "MathJax.js",
        f"config/{MATHJAX_CONFIG}.js",
        "extensions",
        "jax/element",
        "jax/input/TeX",
        "jax/output/CommonHTML",
        "jax/output/PreviewHTML",
        "localization/en",
        "fonts/HTML-CSS/TeX/woff",
        "fonts/HTML-CSS/TeX/otf",
    ):
        _copy(mathjax / part, vendor / "mathjax" / part)
    _copy(modules / "requirejs" / "require.js", vendor / "require.js")
    _copy(modules / "jquery" / "dist" / "jquery.min.js", vendor / "jquery.min.js")


def _copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True)
    else:
        shutil.copy2(source, target)


def exporter():
    from nbconvert import SlidesExporter
    from traitlets.config import Config

    config = Config()
    config.SlidesExporter.reveal_url_prefix = "vendor/reveal.js"
    config.SlidesExporter.reveal_theme = REVEAL_THEME
    config.SlidesExporter.reveal_scroll = True  # a long cell scrolls instead of running off the projector
    config.SlidesExporter.mathjax_url = f"vendor/mathjax/MathJax.js?config={MATHJAX_CONFIG},Safe"
    config.SlidesExporter.require_js_url = "vendor/require.js"
    config.SlidesExporter.jquery_url = "vendor/jquery.min.js"
    # Our template is nbconvert's reveal template without its Mermaid import (a CDN module we do not use).
    config.SlidesExporter.extra_template_basedirs = [str(TEMPLATE_DIR)]
    config.SlidesExporter.template_name = "dmlnotes_reveal"
    return SlidesExporter(config=config)


def build(notebooks: list[Path], out: Path, cache: Path, allow_fetch: bool = True) -> list[Path]:
    """Write the slides of ``notebooks`` and the vendored libraries into ``out``; return the pages."""
    import nbformat

    out.mkdir(parents=True, exist_ok=True)
    copy_vendor(fetch_vendor(cache, allow_fetch), out)
    slides = exporter()
    pages = []
    for path in notebooks:
        notebook = nbformat.read(path, as_version=4)
        # Saved widget state would make nbconvert load the widget manager from a CDN; the
        # committed outputs already hold each widget's static figure.
        notebook.metadata.pop("widgets", None)
        body, _ = slides.from_notebook_node(notebook, resources={"metadata": {"name": path.stem}})
        page = out / f"{path.stem}.slides.html"
        page.write_text(body, encoding="utf-8")
        pages.append(page)
    found = scan_folder(out)
    if found:
        raise SystemExit(f"slides would load from the internet:\n{report(found, out)}")
    return pages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/NN_*.ipynb")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "slides")
    parser.add_argument("--cache", type=Path, default=ROOT / "build" / "vendor", help="where npm installs")
    parser.add_argument("--fetch-only", action="store_true", help="only install reveal.js and MathJax into the cache")
    args = parser.parse_args(argv)
    if args.fetch_only:
        fetch_vendor(args.cache)
        return 0
    notebooks = args.notebooks or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    pages = build(notebooks, args.out, args.cache)
    print(f"{len(pages)} slide decks in {args.out}, offline (open one in a browser; arrow keys, Esc for an overview)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
