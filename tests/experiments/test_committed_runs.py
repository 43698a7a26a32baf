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


def trained_with(path) -> str | None:
    """The torch version a committed run was trained with; None for a file that does not say."""
    try:
        return json.loads(path.read_text())["trained_on"]["torch"]
    except (ValueError, KeyError, TypeError):
        return None


def skip_unless_trained_with_this_torch(versions: set[str]) -> None:
    # The fingerprint holds torch's version: with another torch (a user's newer build) the
    # lessons train their runs instead of reading these, which is right, not an error.
    if torch.__version__ not in versions:
        pytest.skip(f"the runs were trained with torch {sorted(versions)}, this is {torch.__version__}")


def test_every_committed_run_is_for_the_current_code():
    paths = sorted(COMMITTED_RUNS.glob("*.json"))
    assert paths, "no committed comparison runs: run `make notebooks` and commit results/comparison/"
    if versions := {trained_with(path) for path in paths} - {None}:
        skip_unless_trained_with_this_torch(versions)
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
    skip_unless_trained_with_this_torch({stored["trained_on"]["torch"]})
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
