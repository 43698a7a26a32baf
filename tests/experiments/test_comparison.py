import pytest
from loss_testing import tiny_images

from dmlnotes.experiments.comparison import RECIPES, format_results, train_and_evaluate


@pytest.mark.parametrize("name", list(RECIPES))
def test_every_recipe_trains_and_is_measured(name):
    train, test = tiny_images(32, 4, seed=0), tiny_images(6, 3, seed=1)
    result = train_and_evaluate(name, steps=2, device="cpu", train_set=train, test_set=test, embedding_dim=8)
    assert result.name == name and result.lesson == RECIPES[name].lesson
    assert 0.0 <= result.recall_at_1 <= 1.0 and 0.0 <= result.map_at_r <= 1.0
    assert result.final_loss == result.final_loss  # not NaN
    assert name in format_results([result])


def test_same_seed_same_result():
    train, test = tiny_images(32, 4, seed=0), tiny_images(6, 3, seed=1)
    runs = [train_and_evaluate("contrastive", steps=3, device="cpu", train_set=train, test_set=test, embedding_dim=8) for _ in range(2)]
    assert runs[0].final_loss == runs[1].final_loss and runs[0].recall_at_1 == runs[1].recall_at_1
