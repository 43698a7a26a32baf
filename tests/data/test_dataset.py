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
    assert float(digits.inputs.min()) >= 0.0 and float(digits.inputs.max()) <= 1.0
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


def test_stratified_split_rejects_an_empty_data_set():
    with pytest.raises(ValueError, match="dataset has no samples to split"):
        stratified_split(toy_dataset().subset([]))


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


def test_dataset_rejects_negative_labels_and_labels_without_a_name():
    with pytest.raises(ValueError, match=r"labels must be class ids >= 0, got -1 \(at sample 1\)"):
        InMemoryDataset(torch.zeros(3, 2), torch.tensor([0, -1, 1]))
    with pytest.raises(ValueError, match=r"labels must be class ids 0 \.\. 1, one per class name \(2 given\), got 3"):
        InMemoryDataset(torch.zeros(3, 2), torch.tensor([0, 3, 1]), ["a", "b"])


@pytest.mark.parametrize("split", [class_disjoint_split, stratified_split])
def test_splits_want_a_data_set(split):
    for not_a_dataset in (torch.zeros(10, 2), np.arange(10), [0, 1, 2]):
        with pytest.raises(ValueError, match=r"dataset must be a data set with labels, get_batch\(\) and subset\(\)"):
            split(not_a_dataset)


@pytest.mark.parametrize("fraction", ["0.5", None, float("nan"), 0.0, 1.0, -0.2, True])
def test_split_fractions_must_be_numbers_strictly_between_0_and_1(fraction):
    with pytest.raises(ValueError, match="train_fraction must"):
        class_disjoint_split(toy_dataset(), train_fraction=fraction)
    with pytest.raises(ValueError, match="test_fraction must"):
        stratified_split(toy_dataset(), test_fraction=fraction)


def test_stratified_split_rejects_a_bad_seed():
    for seed in (-1, 1.5, "0", None):
        with pytest.raises(ValueError, match="seed must be an integer >= 0"):
            stratified_split(toy_dataset(), seed=seed)


def test_stratified_split_is_scikit_learns_and_depends_on_its_seed_only():
    from sklearn.model_selection import train_test_split

    data = toy_dataset(num_classes=6, per_class=10)
    train, test = stratified_split(data, test_fraction=0.3, seed=7)
    expected_train, expected_test = train_test_split(
        np.arange(len(data)), test_size=0.3, stratify=data.labels.numpy(), random_state=7
    )
    # inputs are the sample indices, so they say which samples each side got (in the data set's order)
    assert train.inputs.flatten().long().tolist() == sorted(expected_train.tolist())
    assert test.inputs.flatten().long().tolist() == sorted(expected_test.tolist())
    torch.manual_seed(123), np.random.seed(123)  # noqa: NPY002 (global seeds play no part)
    again_train, _ = stratified_split(data, test_fraction=0.3, seed=np.int64(7))
    assert torch.equal(again_train.inputs, train.inputs)
    other_train, _ = stratified_split(data, test_fraction=0.3, seed=8)
    assert not torch.equal(other_train.inputs, train.inputs)


def test_stratified_split_refuses_a_fraction_that_leaves_a_class_off_one_side():
    # 5 classes of 4: a tenth is 2 test samples, fewer than the classes
    with pytest.raises(ValueError, match=r"test_fraction=0.1 splits 20 samples into 18 train and 2 test samples"):
        stratified_split(toy_dataset(num_classes=5, per_class=4), test_fraction=0.1)
    with pytest.raises(ValueError, match=r"into 2 train and 18 test samples"):
        stratified_split(toy_dataset(num_classes=5, per_class=4), test_fraction=0.9)
    # Enough test samples in all, but shared by class size: the two small classes get none of the 4.
    labels = torch.tensor([0, 0, 1, 1] + [2] * 100)
    data = InMemoryDataset(torch.zeros(len(labels), 1), labels)
    with pytest.raises(ValueError, match=r"leaves classes \[0, 1\] out of the test side"):
        stratified_split(data, test_fraction=0.03)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "3"])
def test_samplers_reject_a_bad_number_of_batches(bad):
    labels = torch.arange(5).repeat_interleave(4)
    with pytest.raises(ValueError, match="num_batches must be an integer >= 1"):
        ClassBalancedBatchSampler(labels, 2, 2, num_batches=bad)
    with pytest.raises(ValueError, match="num_batches must be an integer >= 1"):
        RandomBatchSampler(20, 4, num_batches=bad)


def test_samplers_take_numpy_integers_and_reject_booleans():
    labels = torch.arange(5).repeat_interleave(4)
    sampler = ClassBalancedBatchSampler(labels, np.int64(2), np.int32(2), num_batches=np.int64(3))
    assert len(sampler) == 3 and [len(batch) for batch in sampler] == [4, 4, 4]
    assert len(RandomBatchSampler(np.int64(20), np.int64(4), num_batches=np.int64(2))) == 2
    with pytest.raises(ValueError, match="classes_per_batch must be an integer >= 1, got True"):
        ClassBalancedBatchSampler(labels, True, 2)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1, got True"):
        RandomBatchSampler(20, True)
    with pytest.raises(ValueError, match="num_samples must be an integer >= 1, got 2.0"):
        RandomBatchSampler(2.0, 1)
    for seed in (-1, 2.5):
        with pytest.raises(ValueError, match="seed must be an integer >= 0"):
            ClassBalancedBatchSampler(labels, 2, 2, seed=seed)
        with pytest.raises(ValueError, match="seed must be an integer >= 0"):
            RandomBatchSampler(20, 4, seed=seed)


def test_class_balanced_sampler_says_what_is_wrong_with_its_labels():
    data = toy_dataset()
    with pytest.raises(
        ValueError, match=r"labels must hold one class id per sample, got a data set .*pass its \.labels"
    ):
        ClassBalancedBatchSampler(data, 2, 2)
    empty = data.subset([])
    with pytest.raises(ValueError, match="labels are empty"):
        ClassBalancedBatchSampler(empty.labels, 2, 2)


def test_fit_on_an_empty_data_set_names_the_empty_labels_not_the_steps():
    from dmlnotes.losses import ContrastiveLoss
    from dmlnotes.training import fit

    empty = toy_dataset().subset([])
    with pytest.raises(ValueError, match="labels are empty"):
        fit(torch.nn.Linear(1, 2), ContrastiveLoss(), empty, device="cpu", progress=False)
