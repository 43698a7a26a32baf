import json

import matplotlib.pyplot as plt
import numpy as np
import pytest

from dmlnotes.distances import EuclideanDistance
from dmlnotes.experiments import comparison
from dmlnotes.experiments.comparison import (
    RECIPES,
    Comparison,
    ComparisonResult,
    compare,
    run_recipe,
    train_and_evaluate,
)
from dmlnotes.losses import ContrastiveLoss
from loss_testing import tiny_images


@pytest.fixture
def tiny_data():
    return tiny_images(32, 4, seed=0), tiny_images(6, 3, seed=1)


@pytest.fixture
def cache_in(tmp_path, monkeypatch):
    monkeypatch.setattr(comparison, "cache_dir", lambda: tmp_path)
    return tmp_path


@pytest.mark.parametrize("name", list(RECIPES))
def test_every_recipe_trains_and_is_measured(name, tiny_data):
    train, test = tiny_data
    result = train_and_evaluate(name, steps=2, device="cpu", train_set=train, test_set=test, embedding_dim=8)
    assert result.name == name and result.lesson == RECIPES[name].lesson and result.steps == 2
    assert 0.0 <= result.recall_at_1 <= 1.0 and 0.0 <= result.map_at_r <= 1.0
    assert result.final_loss == result.final_loss  # not NaN


def test_same_seed_same_result(tiny_data):
    train, test = tiny_data
    runs = [
        train_and_evaluate("contrastive", steps=3, device="cpu", train_set=train, test_set=test, embedding_dim=8)
        for _ in range(2)
    ]
    assert runs[0].final_loss == runs[1].final_loss and runs[0].recall_at_1 == runs[1].recall_at_1


def test_measuring_on_the_way_equals_a_shorter_run(tiny_data):
    train, test = tiny_data
    short = train_and_evaluate("contrastive", steps=3, device="cpu", train_set=train, test_set=test, embedding_dim=8)
    both = run_recipe("contrastive", 0, (3, 6), "cpu", train, test, embedding_dim=8, cache=False)
    assert [r.steps for r in both] == [3, 6]
    assert both[0].recall_at_1 == short.recall_at_1 and both[0].final_loss == short.final_loss


def run(tiny_data, recipe="contrastive", seed=0):
    train, test = tiny_data
    return run_recipe(recipe, seed, (2, 4), "cpu", train, test, embedding_dim=8, cache=True)


def test_cache_returns_the_stored_runs_without_training(tiny_data, cache_in, monkeypatch):
    first = run(tiny_data)
    assert len(list(cache_in.glob("contrastive-seed0-*.json"))) == 1
    monkeypatch.setattr(comparison, "_train", lambda *args: pytest.fail("trained although cached"))
    assert run(tiny_data) == first


def test_cache_is_keyed_by_recipe_settings_and_seed(tiny_data, cache_in):
    run(tiny_data)
    run(tiny_data, seed=1)
    changed = comparison.Recipe("contrastive", "02", lambda c, d: ContrastiveLoss(margin=0.5))
    run(tiny_data, recipe=changed)  # same name, other margin: a new file, not the stale one
    assert len(list(cache_in.glob("contrastive-seed*.json"))) == 3
    plain = comparison.Recipe(
        "contrastive",
        "02",
        lambda c, d: ContrastiveLoss(margin=1.0, distance=EuclideanDistance(normalize_embeddings=True)),
    )
    run(tiny_data, recipe=plain)  # same name and margin, another distance (a submodule): a new file
    assert len(list(cache_in.glob("contrastive-seed*.json"))) == 4


@pytest.mark.parametrize("damage", ["garbage", "other key", "missing length"])
def test_a_corrupt_or_stale_file_is_recomputed(tiny_data, cache_in, damage):
    first = run(tiny_data)
    (path,) = cache_in.glob("*.json")
    stored = json.loads(path.read_text())
    if damage == "garbage":
        path.write_text("{not json")
    elif damage == "other key":
        stored["key"]["seed"] = 7
        stored["results"][0]["recall_at_1"] = 0.123456
        path.write_text(json.dumps(stored))
    else:
        stored["results"] = stored["results"][:1]
        path.write_text(json.dumps(stored))
    again = run(tiny_data)
    assert [without_time(r) for r in again] == [without_time(r) for r in first]  # retrained, not the damaged numbers
    assert [without_time(ComparisonResult(**r)) for r in json.loads(path.read_text())["results"]] == [
        without_time(r) for r in first
    ]


def without_time(result):
    return {k: v for k, v in result.__dict__.items() if k != "seconds"}


def fake_comparison(values: dict[str, dict[int, list[float]]]) -> Comparison:
    results = [
        ComparisonResult(name, "00", seed, steps, r1, r1 / 2, 1.0, 0.5)
        for name, by_steps in values.items()
        for steps, per_seed in by_steps.items()
        for seed, r1 in enumerate(per_seed)
    ]
    lengths = tuple(sorted({s for by in values.values() for s in by}))
    return Comparison(results, list(values), lengths)


def test_beats_needs_a_margin_larger_than_the_spread():
    result = fake_comparison(
        {
            "a": {10: [0.80, 0.82, 0.84], 20: [0.80, 0.81, 0.82]},
            "b": {10: [0.70, 0.72, 0.74], 20: [0.79, 0.80, 0.81]},
        }
    )
    assert result.mean("a") == pytest.approx(0.82) and result.std("a") == pytest.approx(0.02)
    assert result.beats("a", "b", 10) and not result.beats("a", "b", 20) and not result.beats("b", "a", 10)
    result.assert_beats("a", "b", 10)
    assert result.verdict("a", "b", 10) == "ahead" and result.verdict("b", "a", 10) == "behind"
    assert result.verdict("a", "b", 20) == "within the spread"
    assert result.mean_std("a", 10) == "82.0 ± 2.0 %" and result.gap("a", "b", 10) == "10.0 points (spread 4.0)"
    with pytest.raises(AssertionError, match="does not beat b at 20 steps"):
        result.assert_beats("a", "b")  # every length


def test_rankings_and_their_changes_are_reported():
    result = fake_comparison(
        {"a": {1: [0.5, 0.6], 2: [0.6, 0.7]}, "b": {1: [0.4, 0.5], 2: [0.8, 0.9]}, "c": {1: [0.1, 0.1], 2: [0.1, 0.1]}}
    )
    assert result.ranking(1) == ["a", "b", "c"] and result.ranking(2) == ["b", "a", "c"]
    assert result.rank_changes() == [("a", "b")]
    assert "a and b" in result.ranking_report()
    table = result.table()
    assert "55.0 ± 7.1" in table and "R@1 2 steps" in table
    ax = result.plot(highlight="a", title="Two schedules")
    assert ax.get_title().startswith("Two schedules; mean ± std over seeds [0, 1]")
    plt.close(ax.figure)


def test_compare_runs_every_recipe_and_seed(tiny_data, cache_in):
    train, test = tiny_data
    result = compare(
        ["contrastive", "NCA"],
        seeds=(0, 1),
        lengths=(2, 3),
        device="cpu",
        train_set=train,
        test_set=test,
        embedding_dim=8,
    )
    assert result.names == ["contrastive", "NCA"] and result.seeds == [0, 1] and result.lengths == (2, 3)
    assert len(result.results) == 2 * 2 * 2
    assert np.all(np.isfinite(result.values("NCA", 3)))
    with pytest.raises(ValueError, match="distinct"):
        compare(["NCA", "NCA"], train_set=train, test_set=test)
    with pytest.raises(ValueError, match="unknown recipe"):
        compare(["no such loss"], train_set=train, test_set=test)


def test_mean_std_and_spread_of_plain_values():
    assert comparison.mean_std([0.5, 0.6, 0.7]) == "60.0 ± 10.0 %"
    assert comparison.mean_std([0.555]) == "55.5 %" and comparison.spread([0.555]) == 0.0
    assert comparison.spread([1.0, 3.0]) == pytest.approx(2**0.5)


def test_settings_kept_behind_a_property_are_in_the_cache_key():
    from dmlnotes.losses import CenterLoss, NormSoftmaxLoss

    def settings(loss):
        return comparison._settings(loss)

    assert settings(CenterLoss(4, 2, center_weight=0.1)) != settings(CenterLoss(4, 2, center_weight=1.0))
    assert settings(CenterLoss(4, 2, center_weight=0.1))["center_weight"] == 0.1
    assert settings(NormSoftmaxLoss(4, 2, temperature=0.05)) != settings(NormSoftmaxLoss(4, 2, temperature=1.0))


def test_runs_are_the_same_in_worker_processes_and_here(tiny_data, monkeypatch):
    # Uncached runs train one process per core, single-threaded; here they are single-threaded too.
    train, test = tiny_data
    recipes = [RECIPES["contrastive"], RECIPES["triplet (semi-hard)"]]

    def runs(workers):
        monkeypatch.setenv("DMLNOTES_WORKERS", str(workers))
        return comparison._runs(recipes, (0, 1), (2, 4), "cpu", train, test, 8, cache=False)

    here, side_by_side = runs(1), runs(2)
    assert [[(r.name, r.seed, r.steps) for r in run] for run in side_by_side] == [
        [(recipe.name, seed, steps) for steps in (2, 4)] for recipe in recipes for seed in (0, 1)
    ]
    as_numbers = [[(r.recall_at_1, r.map_at_r, r.final_loss) for r in run] for run in here]
    assert as_numbers == [[(r.recall_at_1, r.map_at_r, r.final_loss) for r in run] for run in side_by_side]


def test_nmi_runs_are_the_same_runs_also_scored_by_nmi(tiny_data, cache_in):
    train, test = tiny_data
    settings = dict(seeds=(0, 1), lengths=(2, 3), device="cpu", train_set=train, test_set=test, embedding_dim=8)
    plain = compare(["contrastive", "CosFace, m = 0.35"], **settings)
    scored = compare(["contrastive", "CosFace, m = 0.35"], with_nmi=True, **settings)
    for name in plain.names:
        for steps in plain.lengths:
            for metric in ("recall_at_1", "map_at_r"):
                assert np.array_equal(plain.values(name, steps, metric), scored.values(name, steps, metric))
            assert np.all((scored.values(name, steps, "nmi") >= 0) & (scored.values(name, steps, "nmi") <= 1))
    assert plain.metrics == ["recall_at_1", "map_at_r"] and scored.metrics == ["recall_at_1", "map_at_r", "nmi"]
    assert "NMI" not in plain.table() and "NMI 3 steps" in scored.table()
    with pytest.raises(ValueError, match="with_nmi=True"):
        plain.values("contrastive", 2, "nmi")
    # cached apart: the files of the runs without NMI keep their names and hold no NMI
    assert len(list(cache_in.glob("contrastive-seed*.json"))) == 2
    assert len(list(cache_in.glob("contrastive-nmi-seed*.json"))) == 2
    for path in cache_in.glob("contrastive-seed*.json"):
        assert all("nmi" not in result for result in json.loads(path.read_text())["results"])


def test_runs_asked_without_nmi_are_read_from_the_runs_scored_by_nmi(tiny_data, cache_in, monkeypatch):
    train, test = tiny_data
    settings = dict(seeds=(0,), lengths=(2, 3), device="cpu", train_set=train, test_set=test, embedding_dim=8)
    scored = compare(["contrastive"], with_nmi=True, **settings)
    compare(["NCA"], **settings)

    def no_training(function, jobs, **kwargs):
        if jobs:
            raise AssertionError("trained a run the cache holds")
        return []

    monkeypatch.setattr(comparison, "run_jobs", no_training)
    plain = compare(["contrastive"], **settings)
    for steps in plain.lengths:
        for metric in ("recall_at_1", "map_at_r"):
            read, trained = plain.values("contrastive", steps, metric), scored.values("contrastive", steps, metric)
            assert np.array_equal(read, trained)
    assert plain.metrics == ["recall_at_1", "map_at_r"] and all(run.nmi is None for run in plain.results)
    with pytest.raises(AssertionError, match="trained a run"):  # the other way round there is no NMI to read
        compare(["NCA"], with_nmi=True, **settings)


def test_runs_of_other_code_are_stale_and_pruned(tiny_data, cache_in):
    train, test = tiny_data
    compare(
        ["contrastive", "NCA"], seeds=(0,), lengths=(2,), device="cpu", train_set=train, test_set=test, embedding_dim=8
    )
    [older] = cache_in.glob("nca-seed0-*.json")
    stored = json.loads(older.read_text())
    stored["key"]["code"] = "the fingerprint of older code"
    older.write_text(json.dumps(stored))
    (cache_in / "broken.json").write_text("{")
    assert comparison.stale_runs(cache_in) == [cache_in / "broken.json", older]
    assert comparison.prune_stale_runs(cache_in) == [cache_in / "broken.json", older]
    assert [path.name.split("-seed")[0] for path in cache_in.glob("*.json")] == ["contrastive"]
    assert stored["trained_on"] == comparison.trained_on()
