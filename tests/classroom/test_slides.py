"""The slides' page and the vendored files agree, checked on a small notebook and a stand-in
for the npm packages (the real build is in test_site_build.py, `make test-site`)."""

import re

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from dmlnotes.classroom import slide_types, slides


def fake_npm_packages(cache):
    """The files of the pinned npm packages that the slides use, as empty stand-ins."""
    modules = cache / "node_modules"
    files = [
        "reveal.js/dist/reveal.js",
        "reveal.js/dist/reveal.css",
        f"reveal.js/dist/theme/{slides.REVEAL_THEME}.css",
        "reveal.js/dist/theme/fonts/source-sans-pro/source-sans-pro.css",
        "reveal.js/plugin/notes/notes.js",
        "mathjax/MathJax.js",
        f"mathjax/config/{slides.MATHJAX_CONFIG}.js",
        "mathjax/extensions/Safe.js",
        "mathjax/jax/element/mml/jax.js",
        "mathjax/jax/input/TeX/config.js",
        "mathjax/jax/output/CommonHTML/jax.js",
        "mathjax/jax/output/PreviewHTML/jax.js",
        "mathjax/localization/en/en.js",
        "mathjax/fonts/HTML-CSS/TeX/woff/MathJax_Main-Regular.woff",
        "mathjax/fonts/HTML-CSS/TeX/otf/MathJax_Main-Regular.otf",
        "requirejs/require.js",
        "jquery/dist/jquery.min.js",
    ]
    files += [f"{spec.rsplit('@', 1)[0]}/package.json" for spec in slides.NPM_PACKAGES]
    for name in files:
        (modules / name).parent.mkdir(parents=True, exist_ok=True)
        (modules / name).write_text("/* stand-in */")


def small_lesson(path):
    figure = new_code_cell("plot()")
    figure.outputs.append(new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"}))
    notebook = new_notebook(
        cells=[
            new_markdown_cell("# 99 · A lesson"),
            new_markdown_cell("## The loss: eq. (1)\n\n$$\\ell = [\\alpha - d^2]_+$$"),
            figure,
            new_markdown_cell("## Exercises\n\n1. Why?"),
        ]
    )
    slide_types.assign(notebook)
    notebook.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}  # saved by a live run
    nbformat.write(notebook, path)
    return path


def test_every_file_a_slide_page_loads_is_in_its_folder(tmp_path):
    fake_npm_packages(tmp_path / "cache")
    out = tmp_path / "slides"
    [page] = slides.build([small_lesson(tmp_path / "99_lesson.ipynb")], out, tmp_path / "cache", allow_fetch=False)
    html = page.read_text(encoding="utf-8")
    loaded = re.findall(r'<(?:script|link)[^>]*?(?:src|href)="([^"?#]+)', html)
    loaded += [f"{name}.js" for name in re.findall(r'"(vendor/reveal\.js/[^"]+)\.js"', html)]  # require()d
    assert "vendor/reveal.js/dist/reveal.js" in loaded and "vendor/mathjax/MathJax.js" in loaded
    for reference in loaded:
        assert (out / reference).is_file(), f"the page loads {reference}, which the folder lacks"
    assert html.count("<section") >= 3  # title, equation and exercises slides
    assert "mermaid" not in html.lower()  # our template drops nbconvert's CDN import
    assert "html-manager" not in html  # nor the widget manager: widgets show their saved figure


def test_without_the_npm_packages_the_error_says_what_to_run(tmp_path):
    try:
        slides.fetch_vendor(tmp_path, allow_fetch=False)
    except FileNotFoundError as error:
        assert "make slides" in str(error)
    else:
        raise AssertionError("expected FileNotFoundError")
