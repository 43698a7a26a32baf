"""Sweep results: summaries against Table 1, and the results files (their old format too)."""

import json

import numpy as np
import pytest

from dmlnotes.experiments import temperature_sweep as ts


def fake_result(rows):
    runs = [ts.RunResult(t, s, r / 100, 1.0, 0.5, 0.5, 0.2, 0.3, 1.0, 2.0, 0.1) for t, s, r in rows]
    return ts.SweepResult("glyphs", ts.GLYPHS, runs)


def test_spearman_matches_scipy_and_a_hand_count():
    from scipy.stats import spearmanr

    ours = [14.4, 25.3, 49.8, 61.7, 63.9, 56.3, 50.4]
    result = fake_result(
        [(t, s, r + d) for t, r in zip(ts.TABLE1_TEMPERATURES, ours) for s, d in ((0, -1.0), (1, 1.0))]
    )
    assert np.allclose(result.mean_recall(), ours)
    rho = result.spearman_with_table1()
    assert rho == pytest.approx(spearmanr(ours, ts.TABLE1_RECALL_AT_1).statistic)
    # Ranks 1,2,3,6,7,5,4 against Table 1's 1,2,5,6,7,4,3: sum of squared differences 6.
    assert rho == pytest.approx(1 - 6 * 6 / (7 * (49 - 1)))
    assert result.best_temperature() == 0.1


def test_save_and_load_json_and_csv(tmp_path):
    result = fake_result([(0.05, 0, 60.0), (0.05, 1, 62.0), (1.0, 0, 50.0), (1.0, 1, 51.0)])
    for name in ("sweep.json", "sweep.csv"):
        loaded = ts.SweepResult.load(result.save(tmp_path / name))
        assert loaded.temperatures == [0.05, 1.0] and loaded.seeds == [0, 1]
        assert np.allclose(loaded.mean_recall(), [61.0, 50.5]) and loaded.config == ts.GLYPHS
        assert "61.0" in loaded.format_table() and "61.3" in loaded.format_table()  # ours beside Table 1's
    with pytest.raises(ValueError, match=".json or .csv"):
        result.save(tmp_path / "sweep.txt")


# A CUB sweep as the single-module temperature_sweep.py (before the subpackage) saved it: files written
# then must still load, and the same runs must still save to the same content.
OLD_JSON = (
    '{"setup": "cub", "config": {"name": "cub", "embedding_dim": 2048, "steps": 2340, "warmup_steps": 78, '
    '"lr": 0.001, "lr_drop_steps": [1170], "lr_drop_factor": 0.1, "momentum": 0.9, "weight_decay": 0.0001, '
    '"classes_per_batch": 3, "samples_per_class": 25, "width": 16, "image_size": 224, "eval_batch_size": 128, '
    '"diagnostic_samples": 750, "cpu_threads": null}, "device": "cuda", "seconds": 123.5, '
    '"table1": {"temperatures": [0.005, 0.01, 0.03, 0.05, 0.1, 0.5, 1.0], '
    '"recall_at_1": [19.3, 38.8, 57.0, 61.3, 61.6, 54.8, 50.5]}, "runs": ['
    '{"temperature": 0.05, "seed": 0, "recall_at_1": 0.6125, "final_loss": 1.25, "train_accuracy": 0.875, '
    '"median_p_true": 0.5, "hard_share": 0.2, "top_negative_share": 0.3, "mean_gradient_norm": 1.5, '
    '"mean_feature_gradient_norm": 2.5, "seconds": 61.0, "finite": true}, '
    '{"temperature": 1.0, "seed": 0, "recall_at_1": 0.5, "final_loss": 4.5, "train_accuracy": 0.25, '
    '"median_p_true": 0.0125, "hard_share": 0.125, "top_negative_share": 0.0625, "mean_gradient_norm": 0.75, '
    '"mean_feature_gradient_norm": 0.5, "seconds": 62.5, "finite": false}]}'
)
OLD_CSV = (
    "setup,temperature,seed,recall_at_1,final_loss,train_accuracy,median_p_true,hard_share,top_negative_share,"
    "mean_gradient_norm,mean_feature_gradient_norm,seconds,finite\r\n"
    "cub,0.05,0,0.6125,1.25,0.875,0.5,0.2,0.3,1.5,2.5,61.0,True\r\n"
    "cub,1.0,0,0.5,4.5,0.25,0.0125,0.125,0.0625,0.75,0.5,62.5,False\r\n"
)


def test_files_in_the_old_format_load_and_save_unchanged(tmp_path):
    runs = [
        ts.RunResult(0.05, 0, 0.6125, 1.25, 0.875, 0.5, 0.2, 0.3, 1.5, 2.5, 61.0, finite=True),
        ts.RunResult(1.0, 0, 0.5, 4.5, 0.25, 0.0125, 0.125, 0.0625, 0.75, 0.5, 62.5, finite=False),
    ]
    (tmp_path / "old.json").write_text(OLD_JSON)
    (tmp_path / "old.csv").write_bytes(OLD_CSV.encode())
    from_json, from_csv = ts.SweepResult.load(tmp_path / "old.json"), ts.SweepResult.load(tmp_path / "old.csv")
    assert from_json == ts.SweepResult("cub", ts.CUB, runs, "cuda", 123.5)
    assert from_csv == ts.SweepResult("cub", ts.CUB, runs, "?")
    saved = from_json.save(tmp_path / "again.json").read_text()
    assert json.dumps(json.loads(saved)) == json.dumps(json.loads(OLD_JSON))  # same keys, order and values
    assert from_json.save(tmp_path / "again.csv").read_bytes() == OLD_CSV.encode()
