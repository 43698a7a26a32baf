"""The temperature sweep (survey Table 1): both setups end to end on tiny data, the script, bad input."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from dmlnotes.data import DatasetNotFoundError, InMemoryDataset
from dmlnotes.experiments import temperature_sweep as ts
from dmlnotes.models import BackboneEmbedding
from loss_testing import tiny_images

TINY_GLYPHS = dataclasses.replace(
    ts.GLYPHS,
    embedding_dim=8,
    steps=4,
    width=4,
    classes_per_batch=4,
    samples_per_class=2,
    diagnostic_samples=20,
)
TINY_CUB = dataclasses.replace(
    ts.CUB,
    embedding_dim=3,
    steps=2,
    warmup_steps=1,
    lr_drop_steps=(1,),
    classes_per_batch=2,
    samples_per_class=2,
    image_size=16,
    eval_batch_size=4,
    diagnostic_samples=6,
)


def make_cub(root, classes=(1, 2, 3, 101, 102, 103), per_class=3):
    """A CUB_200_2011 folder in the standard layout with small flat-colour images."""
    folder = root / "CUB_200_2011"
    lines, labels = [], []
    image_id = 0
    for c in classes:
        name = f"{c:03d}.Bird_{c}"
        (folder / "images" / name).mkdir(parents=True)
        for k in range(per_class):
            image_id += 1
            relative = f"{name}/Bird_{c}_{k}.jpg"
            colour = ((37 * c) % 256, (11 * c + 40 * k) % 256, (5 * c) % 256)
            Image.new("RGB", (24 + 4 * k, 20), color=colour).save(folder / "images" / relative, format="PNG")
            lines.append(f"{image_id} {relative}")
            labels.append(f"{image_id} {c}")
    (folder / "images.txt").write_text("\n".join(lines) + "\n")
    (folder / "image_class_labels.txt").write_text("\n".join(labels) + "\n")
    return folder


def tiny_backbone_factory(dim):
    backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return BackboneEmbedding(backbone, feature_dim=4, embedding_dim=dim)


def test_cub_path_runs_end_to_end_on_a_tiny_folder_on_the_cpu(tmp_path, monkeypatch):
    folder = make_cub(tmp_path)
    optimised = []
    real_sgd = ts._sgd
    monkeypatch.setattr(
        ts, "_sgd", lambda params, config: optimised.append(list(params)) or real_sgd(optimised[-1], config)
    )
    result = ts.run_sweep(
        [0.05, 1.0], [0], TINY_CUB, root=folder, model_factory=tiny_backbone_factory, device="cpu", allow_cpu=True
    )
    assert result.setup == "cub" and result.temperatures == [0.05, 1.0] and result.seeds == [0]
    for run in result.runs:
        assert 0.0 <= run.recall_at_1 <= 1.0 and run.finite
        assert len(run.losses) == TINY_CUB.warmup_steps + TINY_CUB.steps
        assert run.p_true.shape == (8,) and np.all((run.p_true > 0) & (run.p_true < 1))  # 2 batches of 2 x 2 >= 6
        assert 0.0 < run.hard_share <= 1.0 and 0.5 <= run.top_negative_share <= 1.0  # 2 wrong classes
    # Per run: a warm-up optimiser over the projection and the class weights only, then one over everything.
    assert len(optimised) == 4
    warmup, full = optimised[0], optimised[1]
    assert len(warmup) == 2 and warmup[0].shape == (3, 4) and warmup[1].shape == (3, 3)  # projection, class weights
    assert len(full) > len(warmup)


def test_the_rate_drops_after_the_drop_steps_counted_after_the_warm_up(monkeypatch):
    rates = []  # per fit call (warm-up, then training): the rate each step trains with, read as its loss runs
    real_fit = ts.fit

    def recording_fit(model, loss_fn, *args, optimizer, **kwargs):
        rates.append([])
        forward = loss_fn.forward

        def recorded_forward(*forward_args):
            rates[-1].append(optimizer.param_groups[0]["lr"])
            return forward(*forward_args)

        loss_fn.forward = recorded_forward
        try:
            return real_fit(model, loss_fn, *args, optimizer=optimizer, **kwargs)
        finally:
            del loss_fn.forward

    monkeypatch.setattr(ts, "fit", recording_fit)
    config = dataclasses.replace(TINY_GLYPHS, steps=6, warmup_steps=2, lr=0.01, lr_drop_steps=(2, 5))
    data = (tiny_images(8, 4, seed=0), tiny_images(4, 3, seed=1))
    run, _, _ = ts.train_one(config, 0.1, 0, *data, ts.default_model_factory(config), torch.device("cpu"))
    assert len(run.losses) == 8
    assert rates[0] == [0.01, 0.01]  # the warm-up keeps its rate
    assert rates[1] == pytest.approx([0.01, 0.01, 0.001, 0.001, 0.001, 0.0001], rel=1e-12)


@pytest.mark.parametrize("drops", [(0,), (3, 3), (1.5,)])
def test_drop_steps_are_distinct_steps_from_1(drops):
    with pytest.raises(ValueError, match="lr_drop_steps"):
        dataclasses.replace(TINY_GLYPHS, lr_drop_steps=drops)


def test_cub_without_data_says_where_to_get_it(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="CUB-200-2011 was not found"):
        ts.run_sweep([0.05], [0], "cub", root=tmp_path / "nowhere", device="cpu")


def test_cub_without_a_gpu_says_so(tmp_path):
    with pytest.raises(RuntimeError, match="needs a CUDA GPU"):
        ts.run_sweep([0.05], [0], TINY_CUB, root=make_cub(tmp_path), model_factory=tiny_backbone_factory, device="cpu")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"temperatures": [0.05, 0.0]}, "temperature must be a positive"),
        ({"temperatures": [-1.0]}, "temperature must be a positive"),
        ({"temperatures": [float("nan")]}, "temperature must be a positive"),
        ({"temperatures": []}, "at least one temperature"),
        ({"seeds": []}, "at least one integer seed"),
        ({"seeds": [0.5]}, "seeds must be integers"),
        ({"setup": "imagenet"}, "setup must be one of"),
    ],
)
def test_bad_input_raises_value_error(kwargs, message):
    arguments = {
        "temperatures": [0.05],
        "seeds": [0],
        "setup": "glyphs",
        "data": (tiny_images(8, 4, 0), tiny_images(4, 3, 1)),
    }
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        ts.run_sweep(**arguments)


def test_the_sweep_restores_torch_threads():
    before = torch.get_num_threads()
    data = (tiny_images(8, 4, seed=0), tiny_images(4, 3, seed=1))
    ts.run_sweep([0.1], [0], dataclasses.replace(TINY_GLYPHS, steps=1, cpu_threads=1), data=data, device="cpu")
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="cpu_threads"):
        dataclasses.replace(TINY_GLYPHS, cpu_threads=0)


def test_same_seed_same_result_on_the_cpu():
    data = (tiny_images(8, 4, seed=0), tiny_images(4, 3, seed=1))
    first, second = (ts.run_sweep([0.01, 0.5], [3], TINY_GLYPHS, data=data, device="cpu") for _ in range(2))
    for a, b in zip(first.runs, second.runs):
        assert a.losses == b.losses and a.recall_at_1 == b.recall_at_1
        for name in ("p_true", "embedding_gradient_norm", "feature_gradient_norm", "top_negative_share"):
            assert np.array_equal(getattr(a.signal, name), getattr(b.signal, name))
    # Different temperatures train differently.
    assert first.runs[0].losses != first.runs[1].losses


def test_keep_models_keeps_the_trained_network_and_loss():
    data = (tiny_images(8, 4, seed=0), tiny_images(4, 3, seed=1))
    kept = ts.run_sweep([0.1, 0.5], [0], TINY_GLYPHS, data=data, device="cpu", keep_models=True)
    plain = ts.run_sweep([0.1, 0.5], [0], TINY_GLYPHS, data=data, device="cpu")
    assert all(run.model is None and run.loss_fn is None for run in plain.runs)
    for run, same in zip(kept.runs, plain.runs):
        assert run.loss_fn.temperature == run.temperature and run.losses == same.losses
        # Measuring the kept network again gives the training signal the sweep recorded.
        batches = ts.diagnostic_batches(data[0], TINY_GLYPHS)
        with ts.cpu_threads(TINY_GLYPHS.cpu_threads):  # the thread count the sweep measured with
            again = ts.training_signal(run.model, run.loss_fn, data[0], batches, device="cpu")
        assert np.array_equal(again.p_true, run.signal.p_true)
        assert np.array_equal(again.embedding_gradient_norm, run.signal.embedding_gradient_norm)
    assert "model" not in kept.runs[0].summary()


def test_training_signal_matches_autograd_and_a_loop():
    """Closed-form per-sample gradients (eq. (23), and through the normalisation) equal autograd's."""
    torch.manual_seed(0)
    model = nn.Linear(5, 4)
    loss_fn = ts.NormSoftmaxLoss(3, 4, temperature=0.1)
    inputs, labels = torch.randn(6, 5), torch.tensor([0, 1, 2, 0, 1, 2])
    signal = ts.training_signal(model, loss_fn, InMemoryDataset(inputs, labels), [[0, 1, 2], [3, 4, 5]], device="cpu")
    embeddings = model(inputs).detach().requires_grad_(True)
    torch.nn.functional.cross_entropy(loss_fn.logits(embeddings), labels, reduction="sum").backward()
    assert np.allclose(signal.embedding_gradient_norm, embeddings.grad.norm(dim=1).numpy(), atol=1e-5)
    # Eq. (23): the logits z_m = w_m . f / T as a function of f, with normalised class weights.
    features = torch.nn.functional.normalize(embeddings.detach(), dim=1).requires_grad_(True)
    weights = torch.nn.functional.normalize(loss_fn.weight.detach(), dim=1)
    torch.nn.functional.cross_entropy(features @ weights.T / 0.1, labels, reduction="sum").backward()
    assert np.allclose(signal.feature_gradient_norm, features.grad.norm(dim=1).numpy(), rtol=1e-5, atol=1e-5)
    probabilities = loss_fn.class_probabilities(embeddings).detach()
    for i, y in enumerate(labels.tolist()):
        wrong = [probabilities[i, c].item() for c in range(3) if c != y]
        assert signal.p_true[i] == pytest.approx(probabilities[i, y].item(), abs=1e-6)
        assert signal.top_negative_share[i] == pytest.approx(max(wrong) / sum(wrong), rel=1e-5)
        assert signal.correct[i] == (probabilities[i].argmax().item() == y)


def test_training_signal_uses_batch_statistics_but_leaves_running_statistics_alone():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4))
    model.eval()
    loss_fn = ts.NormSoftmaxLoss(3, 4, temperature=0.1)
    data = InMemoryDataset(3 + 2 * torch.randn(6, 5), torch.tensor([0, 1, 2, 0, 1, 2]))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    p_true = ts.training_signal(model, loss_fn, data, [[0, 1, 2, 3, 4, 5]], device="cpu").p_true
    assert not model.training and all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    model.train()
    expected = loss_fn.class_probabilities(model(data.inputs)).detach()[torch.arange(6), data.labels]
    assert np.allclose(p_true, expected.numpy(), atol=1e-6)


def test_hard_share_by_hand():
    p_true = np.array([0.9, 0.1, 0.5, 0.8, 0.2, 0.7, 0.6, 0.3, 0.95, 0.4])
    norms = np.array([1.0, 6.0, 1.0, 1.0, 2.0, 1.0, 1.0, 1.0, 1.0, 5.0])
    # The hardest 10 % is the single sample with p = 0.1: 6 of the total 20.
    assert ts.hard_share(p_true, norms) == pytest.approx(6 / 20)
    # The hardest 20 %: p = 0.1 and 0.2, 8 of 20.
    assert ts.hard_share(p_true, norms, fraction=0.2) == pytest.approx(8 / 20)
    with pytest.raises(ValueError):
        ts.hard_share(p_true, norms[:3])


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


def test_script_writes_a_readable_file(tmp_path, capsys):
    folder = make_cub(tmp_path)
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


def test_plot_sweep_draws_our_row_beside_table1(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    result = fake_result([(0.05, 0, 60.0), (0.05, 1, 62.0), (1.0, 0, 50.0), (1.0, 1, 51.0)])
    ax = ts.plot_sweep(ts.SweepResult.load(result.save(tmp_path / "sweep.json")))
    assert ax.get_xscale() == "log" and ax.get_ylabel().startswith("Recall@1")
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert any("Table 1" in label for label in labels) and any("2 seeds" in label for label in labels)
    plt.close(ax.figure)
