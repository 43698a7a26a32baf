import nbformat
from nbformat.v4 import new_code_cell, new_notebook

from dmlnotes import lesson_checks, notebook_runner


def test_bench_and_execute_a_tiny_notebook(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DMLNOTES_STATIC", raising=False)
    path = tmp_path / "99_tiny.ipynb"
    notebook = new_notebook(cells=[new_code_cell("import os\nprint(os.environ['DMLNOTES_STATIC'], 6 * 7)")])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)

    assert notebook_runner.main(["bench", str(path)]) == 0
    table = capsys.readouterr().out
    assert "99_tiny.ipynb" in table and "ok" in table and "total" in table
    assert not nbformat.read(path, as_version=4).cells[0].outputs  # bench leaves the file alone

    assert notebook_runner.main(["execute", str(path)]) == 0
    executed = nbformat.read(path, as_version=4)
    cell = executed.cells[0]
    assert cell.execution_count == 1 and cell.outputs[0]["text"] == "1 42\n"  # static mode was on
    assert executed.metadata["dmlnotes"]["run_seconds"] > 0  # for the course map
    assert lesson_checks.kernel_metadata(nbformat.read(path, as_version=4)) == []  # as JupyterLab saves it
    import os

    assert "DMLNOTES_STATIC" not in os.environ  # ... in the kernel only


def test_cold_bench_gives_the_kernel_an_empty_comparison_cache(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("DMLNOTES_COMPARISON_CACHE", raising=False)  # as in `make test`, whatever the caller set
    path = tmp_path / "98_cache.ipynb"
    code = (
        "import os\nfrom dmlnotes.experiments.comparison import cache_dir\nd = cache_dir()\n"
        "assert 'dmlnotes-comparison-' in str(d) and not any(d.iterdir())"
    )
    notebook = new_notebook(cells=[new_code_cell(code)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, path)
    assert notebook_runner.main(["bench", "--cold", str(path)]) == 0
    assert "98_cache.ipynb" in capsys.readouterr().out
    import os

    assert "DMLNOTES_COMPARISON_CACHE" not in os.environ
