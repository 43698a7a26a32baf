import json

from dmlnotes import lesson_checks, notebook_metadata


def saved_by_an_old_classic_notebook():
    return {
        "cells": [{"cell_type": "markdown", "id": "a1", "metadata": {}, "source": ["# Title ü"]}],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {**notebook_metadata.LANGUAGE_INFO, "version": "3.11.7"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def test_the_check_names_the_display_name_jupyterlab_would_write():
    problems = lesson_checks.kernel_metadata(saved_by_an_old_classic_notebook())
    assert len(problems) == 1 and "Python 3 (ipykernel)" in str(problems[0])
    stripped = saved_by_an_old_classic_notebook()
    del stripped["metadata"]["language_info"]
    assert len(lesson_checks.kernel_metadata(stripped)) == 3


def test_normalising_changes_only_the_metadata_and_keeps_the_python_version(tmp_path):
    path = tmp_path / "99_old.ipynb"
    original = saved_by_an_old_classic_notebook()
    path.write_text(notebook_metadata.dumps(original), encoding="utf-8")
    assert notebook_metadata.main([str(path)]) == 0
    normalised = json.loads(path.read_text(encoding="utf-8"))
    assert normalised["cells"] == original["cells"]
    assert normalised["metadata"]["kernelspec"]["display_name"] == "Python 3 (ipykernel)"
    assert normalised["metadata"]["language_info"]["version"] == "3.11.7"
    assert lesson_checks.kernel_metadata(normalised) == []
    assert not notebook_metadata.normalize(path)  # the second time nothing changes
