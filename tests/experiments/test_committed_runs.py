"""The comparison runs committed in results/comparison/ are what the current code trains.

The lessons read them instead of training (a fresh clone runs each lesson in seconds), so
these tests keep them honest: every file is for the current code, and one of them,
trained again here, comes out the same bit for bit.
"""

import json

import pytest
import torch

from dmlnotes.experiments import comparison
from dmlnotes.experiments.comparison import COMMITTED_RUNS, EMBEDDING_DIM, RECIPES, glyphs_split, stale_runs

pytestmark = pytest.mark.skipif(not COMMITTED_RUNS.is_dir(), reason="no committed runs outside the repository")


def test_every_committed_run_is_for_the_current_code():
    stale = [path.name for path in stale_runs(COMMITTED_RUNS)]
    assert not stale, (
        f"{len(stale)} committed comparison runs are for older code (e.g. {stale[:3]}): run `make notebooks`, "
        "which removes them and trains the lessons' runs again, and commit results/comparison/"
    )


def test_a_committed_run_is_trained_again_bit_for_bit():
    recipe, seed = RECIPES["contrastive"], 0
    train_set, test_set = glyphs_split()
    [path] = COMMITTED_RUNS.glob(f"contrastive-seed{seed}-*.json")
    stored = json.loads(path.read_text())
    lengths = stored["key"]["lengths"]
    key = comparison._run_key(recipe, seed, lengths, train_set, test_set, EMBEDDING_DIM)
    if (stored["key"]["train_data"], stored["key"]["test_data"]) != (key["train_data"], key["test_data"]):
        pytest.skip("the glyphs drawn here differ (another matplotlib's fonts): the lessons train their runs instead")
    assert stored["key"] == key
    if stored["trained_on"]["cpu_capability"] != torch.backends.cpu.get_cpu_capability():
        pytest.skip(f"trained with {stored['trained_on']['cpu_capability']} instructions: the sums round differently")
    again = comparison._train_single_threaded(
        recipe, seed, lengths, torch.device("cpu"), train_set, test_set, EMBEDDING_DIM
    )
    fields = ("steps", "recall_at_1", "map_at_r", "final_loss")
    assert [[getattr(run, field) for field in fields] for run in again] == [
        [run[field] for field in fields] for run in stored["results"]
    ]
