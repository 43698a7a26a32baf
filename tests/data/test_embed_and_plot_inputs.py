"""What embed and plot_embeddings, the two consumers of data sets outside dmlnotes.data, refuse.

(They live in dmlnotes/training.py and dmlnotes/plots.py; their input checks are tested here.)
"""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from dmlnotes.data import InMemoryDataset
from dmlnotes.plots import plot_embeddings
from dmlnotes.training import embed


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True])
def test_embed_rejects_a_bad_batch_size(batch_size):
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        embed(torch.nn.Linear(3, 2), torch.zeros(5, 3), batch_size=batch_size)


def test_embed_takes_tensors_and_data_sets_not_arrays():
    model = torch.nn.Linear(3, 2)
    inputs = torch.randn(7, 3)
    data = InMemoryDataset(inputs, torch.zeros(7, dtype=torch.long))
    expected = model(inputs).detach()
    assert torch.allclose(embed(model, inputs, batch_size=np.int64(3)), expected)
    assert torch.allclose(embed(model, data, batch_size=2), expected)
    with pytest.raises(ValueError, match="inputs must be a tensor or a data set with get_batch\\(\\), got ndarray"):
        embed(model, inputs.numpy())


def test_plot_embeddings_rejects_labels_that_are_not_class_ids():
    points = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.5]])
    try:
        with pytest.raises(ValueError, match="labels must be integer class ids .* got dtype float64"):
            plot_embeddings(points, np.array([0.0, 1.7, 2.0]))  # 1.7 would be drawn as class 1
        with pytest.raises(ValueError, match="labels must be integer class ids .* got dtype bool"):
            plot_embeddings(points, [True, False, True])
        with pytest.raises(ValueError, match="labels must be class ids >= 0 .* got -1"):
            plot_embeddings(points, torch.tensor([0, -1, 1]))  # -1 would take the last class's colour
        with pytest.raises(ValueError, match=r"class_names must name every class id 0 \.\. 2, got 2 names"):
            plot_embeddings(points, [0, 1, 2], class_names=["a", "b"])
        ax = plot_embeddings(points, np.array([0, 2, 1], dtype=np.uint8), class_names=["a", "b", "c"])
        assert [text.get_text() for text in ax.get_legend().get_texts()] == ["a", "b", "c"]
    finally:
        plt.close("all")
