"""Tests of dmlnotes.losses.center (survey eq. (7), Wen et al. 2016)."""

import math

import pytest
import torch
import torch.nn.functional as F

from dmlnotes.data import InMemoryDataset, RandomBatchSampler
from dmlnotes.losses import CenterLoss
from dmlnotes.models import MLPEmbedding
from dmlnotes.training import fit
from loss_testing import DTYPES, assert_attached_zero_and_warning, make_weighted_problem
from loss_testing import SOFTMAX_TOLERANCES as TOL


def brute_center_loss(embeddings, weight, bias, centers, labels, center_weight, reduction):
    """Eq. (7) sample by sample: softmax cross-entropy by explicit exp and log, then the centre term."""
    terms = []
    for i in range(embeddings.shape[0]):
        x, y = embeddings[i], int(labels[i])
        exps = []
        for j in range(weight.shape[0]):
            logit = bias[j]
            for k in range(weight.shape[1]):
                logit = logit + weight[j, k] * x[k]
            exps.append(torch.exp(logit))
        softmax_term = -torch.log(exps[y] / sum(exps))
        squared_distance = 0.0
        for k in range(centers.shape[1]):
            squared_distance = squared_distance + (x[k] - centers[y, k]) ** 2
        terms.append(softmax_term + center_weight / 2 * squared_distance)
    total = sum(terms)
    return total / len(terms) if reduction == "mean" else total


def brute_center_deltas(centers, embeddings, labels):
    """``delta c_j = sum_{y_i = j} (c_j - x_i) / (1 + n_j)`` class by class, sample by sample."""
    deltas = torch.zeros_like(centers)
    for j in range(centers.shape[0]):
        members = [i for i in range(len(labels)) if int(labels[i]) == j]
        for i in members:
            deltas[j] += centers[j] - embeddings[i]
        deltas[j] /= 1 + len(members)
    return deltas


def make_problem(dtype, n=8, dim=3, num_classes=4, seed=0, **loss_kwargs):
    loss_fn, embeddings, labels = make_weighted_problem(CenterLoss, dtype, n, dim, num_classes, seed, **loss_kwargs)
    with torch.no_grad():  # a non-zero bias, so that its place in the logits is checked too
        loss_fn.bias.copy_(0.3 * torch.randn(num_classes, dtype=dtype))
    return loss_fn, embeddings, labels


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("center_update", ["rule", "gradient"])
@pytest.mark.parametrize("center_weight", [0.5, 0.003])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_matches_brute_force_values_and_gradients(dtype, center_update, center_weight, reduction):
    loss_fn, embeddings, labels = make_problem(
        dtype, center_weight=center_weight, center_update=center_update, reduction=reduction
    )
    parameters = {"weight": loss_fn.weight, "bias": loss_fn.bias}
    if center_update == "gradient":
        parameters["centers"] = loss_fn.centers
    copies = {name: value.detach().clone().requires_grad_() for name, value in parameters.items()}
    old_centers = loss_fn.centers.detach().clone()
    reference_embeddings = embeddings.detach().clone().requires_grad_()

    got = loss_fn(embeddings, labels)
    expected = brute_center_loss(
        reference_embeddings,
        copies["weight"],
        copies["bias"],
        copies.get("centers", old_centers),
        labels,
        center_weight,
        reduction,
    )
    torch.testing.assert_close(got, expected, **TOL[dtype])
    got.backward()
    expected.backward()
    torch.testing.assert_close(embeddings.grad, reference_embeddings.grad, **TOL[dtype])
    for name, parameter in parameters.items():
        torch.testing.assert_close(parameter.grad, copies[name].grad, **TOL[dtype])
    assert loss_fn.last_stats.num_terms == len(labels)
    if center_update == "rule":  # the call moved the centres (training mode), after computing the loss
        assert not torch.equal(loss_fn.centers, old_centers)


def test_by_hand_loss_from_the_old_centres_and_the_update_rule_with_an_absent_class():
    # W = 0, b = 0: every softmax term is log 3 = 1.0986123. lambda = 0.1, alpha = 0.5.
    # Centres c_0 = (0, 0), c_1 = (1, 1), c_2 = (5, 5); batch x = (1, 0), (3, 0) of class 0, (1, 3) of class 1.
    # Squared distances to the centres: 1, 9, 4; centre term 0.1 / 2 * (1 + 9 + 4) / 3 = 0.2333333.
    # Loss: 1.0986123 + 0.2333333 = 1.3319456.
    # Update: class 0, n = 2: delta = ((0 - 1, 0) + (0 - 3, 0)) / 3 = (-4/3, 0), c_0 <- (2/3, 0).
    #         class 1, n = 1: delta = (1 - 1, 1 - 3) / 2 = (0, -1), c_1 <- (1, 1.5).
    #         class 2 is not in the batch: c_2 stays (5, 5).
    # Second call: squared distances 1/9, 49/9, 9/4; centre term 0.05 * (50/9 + 9/4) / 3 = 0.1300926;
    # loss 1.2287049.
    loss_fn = CenterLoss(3, 2, center_weight=0.1, alpha=0.5).double()
    with torch.no_grad():
        loss_fn.weight.zero_()
        loss_fn.centers.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]]))
    embeddings = torch.tensor([[1.0, 0.0], [3.0, 0.0], [1.0, 3.0]], dtype=torch.float64)
    labels = torch.tensor([0, 0, 1])

    first = loss_fn(embeddings, labels)
    torch.testing.assert_close(first, torch.tensor(math.log(3) + 0.7 / 3, dtype=torch.float64))
    expected_centers = torch.tensor([[2 / 3, 0.0], [1.0, 1.5], [5.0, 5.0]], dtype=torch.float64)
    torch.testing.assert_close(loss_fn.centers, expected_centers)
    second = loss_fn(embeddings, labels)
    torch.testing.assert_close(second, torch.tensor(math.log(3) + 0.05 * (50 / 9 + 9 / 4) / 3, dtype=torch.float64))


@pytest.mark.parametrize("alpha", [0.5, 1.0, 0.1])
def test_update_rule_matches_its_closed_form_on_a_random_batch(alpha):
    loss_fn, embeddings, labels = make_problem(torch.float64, n=9, num_classes=5, alpha=alpha)
    labels = torch.tensor([0, 0, 0, 1, 1, 3, 3, 3, 3])  # class 2 and class 4 are absent
    before = loss_fn.centers.clone()
    loss_fn(embeddings, labels)
    torch.testing.assert_close(loss_fn.centers, before - alpha * brute_center_deltas(before, embeddings, labels))
    torch.testing.assert_close(loss_fn.centers[[2, 4]], before[[2, 4]], rtol=0, atol=0)
    # update_centers is the same step without the loss.
    loss_fn.update_centers(embeddings, labels)
    after_one = before - alpha * brute_center_deltas(before, embeddings, labels)
    torch.testing.assert_close(loss_fn.centers, after_one - alpha * brute_center_deltas(after_one, embeddings, labels))


def test_eval_mode_and_alpha_zero_leave_the_centres_alone():
    loss_fn, embeddings, labels = make_problem(torch.float64)
    before = loss_fn.centers.clone()
    loss_fn.eval()
    loss_fn(embeddings, labels).backward()
    assert torch.equal(loss_fn.centers, before)
    loss_fn.train()
    loss_fn.alpha = 0.0
    loss_fn(embeddings, labels)
    assert torch.equal(loss_fn.centers, before)
    loss_fn.alpha = 0.5
    loss_fn(embeddings, labels)
    assert not torch.equal(loss_fn.centers, before)


@pytest.mark.parametrize("alpha", [0.5, 1.0])
def test_with_fixed_embeddings_the_rule_converges_to_the_class_means(alpha):
    # The same batch every step: c_j - mean_j shrinks by the factor 1 - alpha n_j / (1 + n_j) per step.
    generator = torch.Generator().manual_seed(5)
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2])
    embeddings = 3 * torch.randn(9, 2, generator=generator, dtype=torch.float64)
    means = torch.stack([embeddings[labels == j].mean(dim=0) for j in range(3)])
    loss_fn = CenterLoss(3, 2, alpha=alpha).double()
    start = loss_fn.centers.clone()
    counts = torch.tensor([3.0, 2.0, 4.0], dtype=torch.float64)
    shrink = 1 - alpha * counts / (1 + counts)
    for step in range(1, 61):
        loss_fn(embeddings, labels)
        if step in (1, 5):
            torch.testing.assert_close(loss_fn.centers - means, shrink.unsqueeze(1) ** step * (start - means))
    torch.testing.assert_close(loss_fn.centers, means, rtol=0, atol=1e-9)


def test_two_calls_then_one_backward_work_after_the_in_place_update():
    loss_fn, embeddings, labels = make_problem(torch.float64, center_weight=0.5)
    centers_before = loss_fn.centers.clone()
    first = loss_fn(embeddings, labels)
    second = loss_fn(embeddings, labels)  # updates the centres the first call's graph was built from
    (first + second).backward()
    # Each call's gradient is that of the loss at the centres it saw.
    expected = embeddings.detach().clone().requires_grad_()
    eval_loss = CenterLoss(4, 3, center_weight=0.5).double().eval()
    eval_loss.load_state_dict(loss_fn.state_dict())
    with torch.no_grad():
        eval_loss.centers.copy_(centers_before)
    total = eval_loss(expected, labels)
    with torch.no_grad():
        eval_loss.centers.copy_(centers_before - 0.5 * brute_center_deltas(centers_before, expected, labels))
    total = total + eval_loss(expected, labels)
    total.backward()
    torch.testing.assert_close(embeddings.grad, expected.grad)


def test_rule_centres_get_no_gradient_and_are_not_optimiser_parameters():
    loss_fn, embeddings, labels = make_problem(torch.float64, center_weight=0.5)
    assert [name for name, p in loss_fn.named_parameters() if p.requires_grad] == ["weight", "bias"]
    assert [p.shape for p in loss_fn.parameter_group(lr=0.1)["params"]] == [(4, 3), (4,)]
    assert "centers" in dict(loss_fn.named_buffers())
    loss_fn(embeddings, labels).backward()
    assert loss_fn.centers.grad is None and not loss_fn.centers.requires_grad

    # fit: the optimiser moves W and b, the rule moves the centres.
    torch.manual_seed(0)
    data = InMemoryDataset(torch.randn(24, 5), torch.arange(3).repeat(8))
    loss_fn = CenterLoss(3, 2, center_weight=0.5)
    weight, centers = loss_fn.weight.detach().clone(), loss_fn.centers.clone()
    sampler = RandomBatchSampler(24, batch_size=12, seed=0)
    fit(MLPEmbedding(5, 2), loss_fn, data, batch_sampler=sampler, steps=3, device="cpu", progress=False)
    assert not torch.equal(loss_fn.weight.detach(), weight) and not torch.equal(loss_fn.centers, centers)
    assert loss_fn.centers.grad is None


def test_rule_moves_the_centres_by_the_rule_only_during_fit():
    # With a learning rate of 0 the model and the classifier stay put, so the centres after fit
    # are the rule applied to the (fixed) embeddings of each batch in turn.
    torch.manual_seed(1)
    data = InMemoryDataset(torch.randn(12, 5), torch.arange(3).repeat(4))
    model, loss_fn = MLPEmbedding(5, 2), CenterLoss(3, 2, center_weight=0.5)
    expected = loss_fn.centers.clone()
    batches = [list(range(0, 6)), list(range(6, 12))]
    fit(model, loss_fn, data, batch_sampler=batches, steps=2, lr=0.0, device="cpu", progress=False)
    model.train()  # fit trains in training mode
    with torch.no_grad():
        for batch in batches:
            features = model(data.inputs[batch])
            expected -= 0.5 * brute_center_deltas(expected, features, data.labels[batch])
    torch.testing.assert_close(loss_fn.centers, expected)


def test_gradient_mode_learns_the_centres_by_the_optimiser():
    loss_fn, embeddings, labels = make_problem(torch.float64, center_weight=0.5, center_update="gradient")
    assert [name for name, p in loss_fn.named_parameters() if p.requires_grad] == ["weight", "bias", "centers"]
    before = loss_fn.centers.detach().clone()
    loss_fn(embeddings, labels).backward()
    assert torch.equal(loss_fn.centers.detach(), before)  # no rule in this mode
    # d/dc_j of lambda/2 mean_i ||x_i - c_{y_i}||^2 = lambda / m sum_{y_i = j} (c_j - x_i).
    expected = torch.zeros_like(before)
    for i in range(len(labels)):
        expected[labels[i]] += 0.5 / len(labels) * (before[labels[i]] - embeddings[i].detach())
    torch.testing.assert_close(loss_fn.centers.grad, expected)

    torch.manual_seed(0)
    data = InMemoryDataset(torch.randn(24, 5), torch.arange(3).repeat(8))
    loss_fn = CenterLoss(3, 2, center_weight=0.5, center_update="gradient")
    before = loss_fn.centers.detach().clone()
    fit(
        MLPEmbedding(5, 2),
        loss_fn,
        data,
        batch_sampler=RandomBatchSampler(24, 12),
        steps=3,
        device="cpu",
        progress=False,
    )
    assert not torch.equal(loss_fn.centers.detach().cpu(), before)


def test_zero_center_weight_is_the_softmax_loss():
    loss_fn, embeddings, labels = make_problem(torch.float64, center_weight=0.0)
    expected = F.cross_entropy(embeddings @ loss_fn.weight.T + loss_fn.bias, labels)
    torch.testing.assert_close(loss_fn(embeddings, labels), expected)


def test_logits_and_class_probabilities():
    loss_fn, embeddings, labels = make_problem(torch.float64)
    logits = loss_fn.logits(embeddings)
    x, weight, bias = embeddings.detach(), loss_fn.weight.detach(), loss_fn.bias.detach()
    expected = torch.zeros(len(labels), 4, dtype=torch.float64)
    for i in range(len(labels)):
        for j in range(4):
            expected[i, j] = sum(float(x[i, k] * weight[j, k]) for k in range(3)) + float(bias[j])
    torch.testing.assert_close(logits, expected)
    torch.testing.assert_close(loss_fn.class_probabilities(embeddings).sum(dim=1), torch.ones(len(labels)).double())
    centers = loss_fn.class_centers
    assert not centers.requires_grad and centers.shape == (4, 3)
    centers += 1  # a copy: the loss's centres do not move
    assert not torch.equal(centers, loss_fn.centers)


def test_float64_batch_with_float32_loss_updates_float32_centres_and_trains_the_parameters():
    loss_fn = CenterLoss(3, 2, center_weight=0.5)
    embeddings = torch.randn(4, 2, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 1, 2, 0])
    before = loss_fn.centers.clone()
    loss = loss_fn(embeddings, labels)
    loss.backward()
    assert loss.dtype == torch.float64 and loss_fn.centers.dtype == torch.float32
    assert loss_fn.weight.grad.dtype == torch.float32 and loss_fn.bias.grad is not None
    expected = before - 0.5 * brute_center_deltas(before, embeddings.detach().float(), labels)
    torch.testing.assert_close(loss_fn.centers, expected)


def test_centres_follow_to_and_are_in_the_state_dict_in_both_modes():
    for center_update in ("rule", "gradient"):
        loss_fn = CenterLoss(3, 2, center_update=center_update).double()
        assert loss_fn.centers.dtype == torch.float64
        assert set(loss_fn.state_dict()) == {"weight", "bias", "centers"}


def test_batch_permutation_invariance_of_the_value_and_the_update():
    loss_fn, embeddings, labels = make_problem(torch.float64, n=12)
    other = CenterLoss(4, 3).double()
    other.load_state_dict(loss_fn.state_dict())
    permutation = torch.randperm(12, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(other(embeddings[permutation], labels[permutation]), loss_fn(embeddings, labels))
    torch.testing.assert_close(other.centers, loss_fn.centers)


def test_empty_batch_gives_attached_zero_and_leaves_the_centres_alone():
    loss_fn = CenterLoss(3, 2, warn_if_empty=True)
    before = loss_fn.centers.clone()
    assert_attached_zero_and_warning(
        loss_fn, torch.zeros(0, 2, requires_grad=True), torch.zeros(0, dtype=torch.long), match="sample"
    )
    assert torch.equal(loss_fn.centers, before)


def test_large_logits_stay_finite_in_float32():
    # W = 1000 * I: logits of +-1000 for a misclassified sample; loss = 2000 + log(1 + e^-2000) + centre term.
    loss_fn = CenterLoss(2, 2, center_weight=0.0)
    with torch.no_grad():
        loss_fn.weight.copy_(1000 * torch.eye(2))
    embeddings = torch.tensor([[-1.0, 1.0]], requires_grad=True)
    loss = loss_fn(embeddings, torch.tensor([0]))
    loss.backward()
    torch.testing.assert_close(loss, torch.tensor(2000.0))
    assert torch.isfinite(embeddings.grad).all() and torch.isfinite(loss_fn.weight.grad).all()


def test_bad_parameters_and_input_are_named():
    for bad in (-0.1, float("nan"), float("inf"), True):
        with pytest.raises(ValueError, match="center_weight"):
            CenterLoss(3, 2, center_weight=bad)
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="alpha"):
            CenterLoss(3, 2, alpha=bad)
    loss_fn = CenterLoss(3, 2)
    with pytest.raises(ValueError, match="alpha"):
        loss_fn.alpha = 2.0
    with pytest.raises(ValueError, match="center_weight"):
        loss_fn.center_weight = -1.0
    assert loss_fn.alpha == 0.5 and loss_fn.center_weight == 0.003
    with pytest.raises(ValueError, match="center_update"):
        CenterLoss(3, 2, center_update="sgd")
    with pytest.raises(ValueError, match="num_classes"):
        CenterLoss(1, 2)
    with pytest.raises(ValueError, match="embedding_dim"):
        CenterLoss(3, 0)
    embeddings = torch.randn(2, 2)
    with pytest.raises(ValueError, match="0..2"):
        loss_fn(embeddings, torch.tensor([0, 3]))
    with pytest.raises(ValueError, match=r"\(batch, 2\)"):
        loss_fn(torch.randn(2, 5), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="indices_tuple"):
        loss_fn(embeddings, torch.tensor([0, 1]), (torch.tensor([0]), torch.tensor([1]), torch.tensor([1])))
    with pytest.raises(ValueError, match="0..2"):
        loss_fn.update_centers(embeddings, torch.tensor([0, 5]))


def test_pytorch_metric_learning_has_no_center_loss_to_compare_with():
    # If a future version adds one, this fails as a reminder to compare with it.
    import pytorch_metric_learning.losses as pml_losses

    assert not [name for name in dir(pml_losses) if name.lower().replace("_", "") in ("centerloss", "centreloss")]
