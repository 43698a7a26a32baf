"""Tests of dmlnotes.benchmark: recipes, tasks and shards, one run, the results file, the command line."""

import json
import math

import pytest
import torch

from dmlnotes.benchmark import (
    RECIPES,
    BenchmarkRecipe,
    BenchmarkSetup,
    Task,
    choose_settings,
    final_tasks,
    format_table,
    interval95,
    merge,
    read_results,
    run_task,
    search_tasks,
    shard,
    summarize,
    write_results,
)
from dmlnotes.benchmark.cli import main
from dmlnotes.benchmark.runs import METRICS, parse_shard
from dmlnotes.data import class_disjoint_split, load_digits
from dmlnotes.losses import ContrastiveLoss


# Recipes ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(RECIPES))
def test_every_grid_entry_builds_a_loss_that_trains(name):
    recipe = RECIPES[name]
    torch.manual_seed(0)
    per_class = recipe.samples_per_class
    labels = torch.arange(8).repeat_interleave(per_class)
    embeddings = torch.randn(len(labels), 16, requires_grad=True)
    for entry in recipe.grid:
        loss_fn, miner = recipe.build(8, 16, entry)
        settings = recipe.settings(entry)
        assert set(entry) <= set(settings) and all(settings[k] == v for k, v in entry.items())
        if miner is None:
            loss = loss_fn(embeddings, labels)
        else:
            loss = loss_fn(embeddings, labels, miner(embeddings.detach(), labels))
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(embeddings.grad).all(), (name, dict(entry))


def test_a_grid_entry_must_name_known_settings():
    with pytest.raises(ValueError, match="unknown settings"):
        BenchmarkRecipe("x", "00", lambda c, d, s: ContrastiveLoss(), "", defaults={"margin": 1}, grid=({"mrgin": 2},))
    with pytest.raises(ValueError, match="has no settings"):
        RECIPES["contrastive"].settings({"scale": 2})


# Tasks and shards -------------------------------------------------------------------------------
SETUP = BenchmarkSetup("glyphs", lengths=(3, 6), search_steps=3, seeds=(0, 1, 2), search_seeds=(0, 1))


def test_search_tasks_cover_every_grid_entry_and_search_seed():
    recipes = [RECIPES["contrastive"], RECIPES["circle"]]
    tasks = search_tasks(SETUP, recipes)
    assert len(tasks) == (len(recipes[0].grid) + len(recipes[1].grid)) * 2
    assert {task.lengths for task in tasks} == {(3,)} and {task.phase for task in tasks} == {"search"}


@pytest.mark.parametrize("count", [1, 2, 3, 7, 40])
def test_shards_partition_the_tasks(count):
    tasks = search_tasks(SETUP, list(RECIPES.values()))
    parts = [shard(tasks, index, count) for index in range(1, count + 1)]
    flat = [task.key for part in parts for task in part]
    assert len(flat) == len(tasks) and set(flat) == {task.key for task in tasks}


@pytest.mark.parametrize("text", ["0/4", "5/4", "2", "a/b", "2/0"])
def test_a_bad_shard_is_a_clear_error(text):
    with pytest.raises(ValueError, match="K/N"):
        parse_shard(text)


def _search_record(recipe, overrides, seed, score, status="ok"):
    metrics = {name: score for name in METRICS} if status == "ok" else None
    return {
        "phase": "search",
        "recipe": recipe,
        "overrides": overrides,
        "seed": seed,
        "status": status,
        "metrics": metrics,
    }


def test_choose_settings_takes_the_best_mean_and_counts_failures_as_worst():
    recipe = RECIPES["contrastive"]  # grid: margin 0.5, 1.0, 2.0
    records = [
        _search_record("contrastive", {"margin": 0.5}, 0, 0.30),
        _search_record("contrastive", {"margin": 0.5}, 1, 0.30),
        _search_record("contrastive", {"margin": 1.0}, 0, 0.50),
        _search_record("contrastive", {"margin": 1.0}, 1, 0.05),  # mean 0.275 < 0.30
        _search_record("contrastive", {"margin": 2.0}, 0, 0.90),
        _search_record("contrastive", {"margin": 2.0}, 1, None, status="nan"),
    ]
    assert choose_settings(records, [recipe]) == {"contrastive": {"margin": 0.5}}
    failed = [_search_record("contrastive", {"margin": m}, 0, None, status="failed") for m in (0.5, 1.0, 2.0)]
    assert choose_settings(failed, [recipe]) == {"contrastive": {}}  # every run failed: the defaults
    tied = [_search_record("contrastive", {"margin": m}, 0, 0.4) for m in (2.0, 1.0)]
    assert choose_settings(tied, [recipe]) == {"contrastive": {"margin": 1.0}}  # the earlier grid entry


def test_final_tasks_need_a_chosen_setting():
    with pytest.raises(ValueError, match="run the search first"):
        final_tasks(SETUP, [RECIPES["contrastive"]], {})
    tasks = final_tasks(SETUP, [RECIPES["contrastive"]], {"contrastive": {"margin": 2.0}})
    assert [task.seed for task in tasks] == [0, 1, 2] and tasks[0].lengths == (3, 6)
    assert tasks[0].overrides == (("margin", 2.0),)


# One run ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits_datasets():
    digits = load_digits()
    train_set, test_set = class_disjoint_split(digits, 0.6)
    fit_part, validation = class_disjoint_split(train_set, 0.5)
    return {"search": (fit_part, validation), "final": (train_set, test_set)}


class MLPSetup(BenchmarkSetup):
    def make_model(self):
        from dmlnotes.models import MLPEmbedding

        return MLPEmbedding(64, self.embedding_dim)


TINY = MLPSetup("glyphs", embedding_dim=8, batch_size=12, lengths=(2, 4), search_steps=2)


class NaNLoss(torch.nn.Module):
    def forward(self, embeddings, labels, indices_tuple=None):
        return embeddings.sum() * math.nan


class BrokenLoss(torch.nn.Module):
    def forward(self, embeddings, labels, indices_tuple=None):
        raise RuntimeError("this loss is broken on purpose")


TEST_RECIPES = {
    "contrastive": RECIPES["contrastive"],
    "nan": BenchmarkRecipe("nan", "--", lambda c, d, s: NaNLoss(), "test"),
    "broken": BenchmarkRecipe("broken", "--", lambda c, d, s: BrokenLoss(), "test"),
}


def test_a_run_is_measured_at_each_length_on_the_right_classes(digits_datasets):
    task = Task("final", "contrastive", (("margin", 2.0),), 0, (2, 4))
    records = run_task(task, TINY, device="cpu", recipes=TEST_RECIPES, datasets=digits_datasets)
    assert [r["steps"] for r in records] == [2, 4] and {r["status"] for r in records} == {"ok"}
    for record in records:
        assert set(record["metrics"]) == set(METRICS)
        assert all(0.0 <= value <= 1.0 for value in record["metrics"].values())
        assert record["settings"] == {"margin": 2.0} and record["evaluated_on"] == "test classes"
        assert record["setup_config"]["lengths"] == (2, 4) and record["setup_config"]["batch_size"] == 12
        assert record["environment"]["torch"] == torch.__version__ and record["seconds_per_step"] > 0
    assert records[1]["seconds"] >= records[0]["seconds"]
    again = run_task(task, TINY, device="cpu", recipes=TEST_RECIPES, datasets=digits_datasets)
    assert [r["metrics"] for r in again] == [r["metrics"] for r in records]  # a seed fixes the run


def test_nan_and_broken_runs_are_recorded_not_dropped(digits_datasets):
    nan = run_task(
        Task("search", "nan", (), 0, (2,)), TINY, device="cpu", recipes=TEST_RECIPES, datasets=digits_datasets
    )
    assert [(r["status"], r["steps"], r["metrics"]) for r in nan] == [("nan", 2, None)]
    assert "FloatingPointError" in nan[0]["error"] and nan[0]["evaluated_on"] == "validation classes"
    broken = run_task(
        Task("final", "broken", (), 0, (2, 4)), TINY, device="cpu", recipes=TEST_RECIPES, datasets=digits_datasets
    )
    assert [r["status"] for r in broken] == ["failed", "failed"] and "broken on purpose" in broken[0]["error"]


# Results ----------------------------------------------------------------------------------------
def _final(recipe, seed, steps, map_at_r, status="ok"):
    metrics = {name: map_at_r for name in METRICS} if status == "ok" else None
    return {
        "setup": "glyphs", "phase": "final", "recipe": recipe, "overrides": {}, "settings": {}, "seed": seed,
        "steps": steps, "status": status, "metrics": metrics, "seconds_per_step": 0.01 if status == "ok" else None,
    }  # fmt: skip


def test_interval_is_students_t():
    low, high = interval95([0.1, 0.2, 0.3])
    # t(0.975, 2 degrees of freedom) = 4.3027 (statistical tables); std = 0.1; sqrt(3)
    assert (high - low) / 2 == pytest.approx(4.3027 * 0.1 / math.sqrt(3), rel=1e-4)
    assert all(math.isnan(v) for v in interval95([0.5]))


def test_summary_over_seeds_counts_failures():
    records = [_final("a", 0, 10, 0.2), _final("a", 1, 10, 0.4), _final("a", 2, 10, None, status="nan")]
    records += [_final("b", s, 10, 0.5) for s in range(3)] + [_final("a", 0, 20, 0.6)]
    rows = summarize(records)
    assert [(row["recipe"], row["steps"]) for row in rows] == [("a", 10), ("a", 20), ("b", 10)]
    first = rows[0]
    assert (first["runs"], first["failed"]) == (3, 1)
    assert first["MAP@R"]["mean"] == pytest.approx(0.3) and first["MAP@R"]["std"] == pytest.approx(math.sqrt(0.02))
    table = format_table(rows, 10)
    assert table.index("\nb ") < table.index("\na ") and "2/3" in table


def test_merge_keeps_the_later_record_of_a_run_and_files_round_trip(tmp_path):
    old, new = _final("a", 0, 10, 0.2), _final("a", 0, 10, 0.7)
    merged = merge([old, _final("a", 1, 10, 0.3)], [new])
    assert len(merged) == 2 and {r["metrics"]["R@1"] for r in merged} == {0.7, 0.3}
    path = write_results(tmp_path / "r.json", merged)
    assert read_results(path) == merged
    (tmp_path / "bad.json").write_text(json.dumps({"runs": []}))
    with pytest.raises(ValueError, match="not a dmlnotes benchmark results file"):
        read_results(tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError, match="run python -m dmlnotes.benchmark run"):
        read_results(tmp_path / "missing.json")


def test_command_line_merges_shards_and_prints_the_table(tmp_path, capsys):
    write_results(tmp_path / "1.json", [_final("a", s, 10, 0.2 + 0.1 * s) for s in range(3)])
    write_results(tmp_path / "2.json", [_final("b", s, 10, 0.6) for s in range(3)])
    assert main(["merge", str(tmp_path / "1.json"), str(tmp_path / "2.json"), "--out", str(tmp_path / "all.json")]) == 0
    assert len(read_results(tmp_path / "all.json")) == 6
    assert main(["table", str(tmp_path / "all.json")]) == 0
    printed = capsys.readouterr().out
    assert "after 10 steps" in printed and printed.index("\nb ") < printed.index("\na ")
    with pytest.raises(SystemExit):
        main(["run", "--phase", "all", "--shard", "1/2", "--out", str(tmp_path / "x.json")])


def test_command_line_run_resumes_and_feeds_the_search_to_the_final_phase(tmp_path, monkeypatch, capsys):
    trained = []

    def fake_run_tasks(tasks, setup, jobs, root, device):  # scores a margin by its size: 2.0 wins
        trained.extend(tasks)
        return [
            {**_final(task.recipe, task.seed, steps, dict(task.overrides).get("margin", 1.0) / 10), "phase": task.phase,
             "overrides": dict(task.overrides)}
            for task in tasks
            for steps in task.lengths
        ]  # fmt: skip

    monkeypatch.setattr("dmlnotes.benchmark.cli.run_tasks", fake_run_tasks)
    out = str(tmp_path / "r.json")
    main(["run", "--losses", "contrastive", "--phase", "search", "--shard", "1/2", "--out", out])
    assert len(trained) == 2  # margins 0.5 and 2.0 of the three, one search seed
    main(["run", "--losses", "contrastive", "--phase", "search", "--out", out])
    assert len(trained) == 3  # only the missing margin 1.0
    main(["run", "--losses", "contrastive", "--phase", "final", "--out", out])
    finals = trained[3:]
    assert [task.seed for task in finals] == [0, 1, 2] and {task.overrides for task in finals} == {(("margin", 2.0),)}
    assert "after 300 steps" in capsys.readouterr().out


def test_the_published_results_are_found_from_the_package_and_hold_every_recipe():
    from dmlnotes.benchmark import PUBLISHED_RESULTS

    records = read_results(PUBLISHED_RESULTS)
    finals = {record["recipe"] for record in records if record["phase"] == "final"}
    assert finals == set(RECIPES)  # a recipe added since the last full run needs `make benchmark` again
