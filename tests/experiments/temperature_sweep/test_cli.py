"""The sweep as a script: a readable results file, clear errors, ``python -m``."""

import json

import pytest

from dmlnotes.experiments import temperature_sweep as ts


def test_script_writes_a_readable_file(tmp_path, capsys, cub_folder, tiny_backbone_factory):
    folder = cub_folder
    out = tmp_path / "results" / "sweep.json"
    argv = [
        "--setup",
        "cub",
        "--data-root",
        str(folder),
        "--allow-cpu",
        "--device",
        "cpu",
        "--temperatures",
        "0.05",
        "1.0",
        "--seeds",
        "0",
        "--steps",
        "1",
        "--warmup-steps",
        "1",
        "--dim",
        "3",
        "--image-size",
        "16",
        "--out",
        str(out),
    ]
    assert ts.main(argv, model_factory=tiny_backbone_factory) == 0
    data = json.loads(out.read_text())
    assert data["setup"] == "cub" and data["config"]["steps"] == 1 and data["config"]["embedding_dim"] == 3
    assert [(run["temperature"], run["seed"]) for run in data["runs"]] == [(0.05, 0), (1.0, 0)]
    assert all(0.0 <= run["recall_at_1"] <= 1.0 for run in data["runs"])
    assert ts.SweepResult.load(out).temperatures == [0.05, 1.0]
    printed = capsys.readouterr().out
    assert "Table 1" in printed and str(out) in printed
    # The CSV form too.
    assert ts.main(argv[:-1] + [str(tmp_path / "sweep.csv")], model_factory=tiny_backbone_factory) == 0
    assert ts.SweepResult.load(tmp_path / "sweep.csv").seeds == [0]


def test_script_reports_bad_input_and_missing_cub_clearly(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        ts.main(["--temperatures", "0"])
    assert exit_info.value.code == 2 and "temperature must be a positive" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        ts.main(["--setup", "cub", "--data-root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.json")])
    assert exit_info.value.code == 1 and "CUB-200-2011 was not found" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


def test_module_runs_as_a_script(monkeypatch, capsys):
    """``python -m dmlnotes.experiments.temperature_sweep`` reaches ``main`` (run in-process, no new interpreter)."""
    import runpy
    import sys
    import warnings

    monkeypatch.setattr(sys, "argv", ["temperature_sweep", "--help"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "found in sys.modules": the module is imported already
        with pytest.raises(SystemExit) as exit_info:
            runpy.run_module("dmlnotes.experiments.temperature_sweep", run_name="__main__")
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    assert "--setup" in printed and "Table 1" in printed
