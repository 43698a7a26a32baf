import numpy as np
import pytest
import torch

from dmlnotes.data import (
    ClassBalancedBatchSampler,
    InMemoryDataset,
    RandomBatchSampler,
    class_disjoint_split,
    load_digits,
    stratified_split,
)


def toy_dataset(num_classes=6, per_class=5):
    labels = torch.arange(num_classes).repeat_interleave(per_class)
    inputs = torch.arange(len(labels), dtype=torch.float32)[:, None]
    return InMemoryDataset(inputs, labels, [f"c{c}" for c in range(num_classes)], name="toy")


def test_digits_is_the_bundled_scikit_learn_set():
    digits = load_digits()
    assert digits.inputs.shape == (1797, 64) and digits.inputs.dtype == torch.float32
    assert 0.0 <= float(digits.inputs.min()) and float(digits.inputs.max()) <= 1.0
    assert digits.num_classes == 10 and digits.class_names == [str(d) for d in range(10)]
    assert load_digits(flatten=False).inputs.shape == (1797, 1, 8, 8)


def test_dataset_rejects_mismatched_lengths_and_float_labels():
    with pytest.raises(ValueError, match="disagree on the number of samples"):
        InMemoryDataset(torch.zeros(3, 2), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="integer class ids"):
        InMemoryDataset(torch.zeros(3, 2), torch.tensor([0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="1-D"):
        InMemoryDataset(torch.zeros(3, 2), torch.zeros(3, 1, dtype=torch.long))


def test_get_batch_and_subset_relabel():
    data = toy_dataset()
    inputs, labels = data.get_batch([0, 7, 29])
    assert inputs.flatten().tolist() == [0.0, 7.0, 29.0] and labels.tolist() == [0, 1, 5]
    sub = data.subset([10, 11, 25], relabel=True)
    assert sub.labels.tolist() == [0, 0, 1] and sub.class_names == ["c2", "c5"]


def test_class_disjoint_split_is_disjoint_covering_and_relabelled():
    data = toy_dataset(num_classes=7)
    train, test = class_disjoint_split(data)
    train_names, test_names = set(train.class_names), set(test.class_names)
    assert not train_names & test_names
    assert train_names | test_names == set(data.class_names)
    assert len(train) + len(test) == len(data)
    # The first classes (by id) train: c0.. c3 for 7 classes (round(3.5) = 4).
    assert train.class_names == ["c0", "c1", "c2", "c3"]
    assert sorted(torch.unique(train.labels).tolist()) == list(range(4))
    assert sorted(torch.unique(test.labels).tolist()) == list(range(3))
    # Inputs travel with their labels.
    assert set(train.inputs.flatten().tolist()) == set(range(20))


def test_class_disjoint_split_needs_two_classes():
    with pytest.raises(ValueError, match="at least 2 classes"):
        class_disjoint_split(toy_dataset(num_classes=1))


def test_stratified_split_keeps_every_class_on_both_sides():
    train, test = stratified_split(load_digits(), test_fraction=0.25)
    assert train.num_classes == test.num_classes == 10
    assert len(train) + len(test) == 1797
    counts = torch.bincount(test.labels).float() / torch.bincount(load_digits().labels).float()
    assert torch.allclose(counts, torch.full((10,), 0.25), atol=0.02)


def test_stratified_split_rejects_a_class_with_one_sample():
    data = InMemoryDataset(torch.zeros(5, 1), torch.tensor([0, 0, 1, 1, 2]))
    with pytest.raises(ValueError, match="class 2 has 1 sample"):
        stratified_split(data)


def test_class_balanced_sampler_gives_p_classes_times_k_samples():
    labels = torch.arange(10).repeat_interleave(6)
    sampler = ClassBalancedBatchSampler(labels, classes_per_batch=4, samples_per_class=3, num_batches=50, seed=1)
    assert len(sampler) == 50
    seen = set()
    for batch in sampler:
        assert len(batch) == 12 and len(set(batch)) == 12
        batch_labels = labels[batch]
        classes, counts = torch.unique(batch_labels, return_counts=True)
        assert classes.numel() == 4 and torch.all(counts == 3)
        # Samples of a class come in one block.
        assert all(len(set(batch_labels[i : i + 3].tolist())) == 1 for i in range(0, 12, 3))
        seen.update(classes.tolist())
    assert seen == set(range(10))


def test_class_balanced_sampler_reuses_samples_of_small_classes():
    labels = torch.tensor([0, 0, 0, 0, 1])
    batch = next(iter(ClassBalancedBatchSampler(labels, classes_per_batch=2, samples_per_class=3)))
    assert labels[batch].tolist().count(1) == 3 and set(batch[3:]) == {4}


def test_class_balanced_sampler_default_length_and_errors():
    labels = torch.arange(5).repeat_interleave(8)
    assert len(ClassBalancedBatchSampler(labels, 2, 4)) == 40 // 8
    with pytest.raises(ValueError, match="only 5 classes"):
        ClassBalancedBatchSampler(labels, 6, 2)
    with pytest.raises(ValueError, match="samples_per_class"):
        ClassBalancedBatchSampler(labels, 2, 0)


def test_class_balanced_sampler_is_repeatable_with_a_seed():
    labels = np.repeat(np.arange(8), 5)
    first = list(ClassBalancedBatchSampler(labels, 3, 2, num_batches=5, seed=3))
    second = list(ClassBalancedBatchSampler(labels, 3, 2, num_batches=5, seed=3))
    assert first == second


def test_random_batch_sampler_sees_every_sample_once_per_pass():
    sampler = RandomBatchSampler(30, batch_size=10, seed=0)
    batches = list(sampler)
    assert len(batches) == 3 and sorted(sum(batches, [])) == list(range(30))
    with pytest.raises(ValueError, match="batch_size"):
        RandomBatchSampler(5, batch_size=6)
