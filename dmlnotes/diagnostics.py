"""Signals that tell what a training run is doing, for the lesson on failures (notebook 17).

* :class:`GradientNorms`: a ``fit`` callback recording the gradient norm of every step.
* :func:`embedding_spread`: the mean squared distance between two embeddings of a set, the
  number that falls to 0 when an embedding collapses to a point.

This module is deliberately not part of the comparison cache's fingerprint
(:mod:`dmlnotes.experiments.comparison` lists the code a cached result depends on): it only
observes training, so changing it does not retrain the lessons' comparisons.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from .checks import check_embeddings
from .distances import pairwise_squared_euclidean


class GradientNorms:
    """A :func:`dmlnotes.training.fit` callback that records each optimiser step's gradient norm.

    ``fit`` calls its callbacks after ``optimizer.step()``; the gradients of that step are
    still in ``.grad`` then (they are cleared before the next backward pass), so
    ``GradientNorms(model.parameters())`` passed as ``callbacks=[...]`` gives, in ``norms``,
    the L2 norm over all the given parameters' gradients at each step (0 for a step in
    which none of them received a gradient). A gradient norm falling to 0 is the signal of
    a collapse or of a loss without active terms; one that grows by orders of magnitude
    announces a divergence.
    """

    def __init__(self, parameters: Iterable[nn.Parameter]):
        self.parameters = [p for p in parameters if p.requires_grad]
        if not self.parameters:
            raise ValueError("GradientNorms needs at least one parameter that requires grad")
        self.norms: list[float] = []

    def __call__(self, step: int, history) -> None:
        squares = [p.grad.detach().double().pow(2).sum() for p in self.parameters if p.grad is not None]
        self.norms.append(float(torch.stack(squares).sum().sqrt()) if squares else 0.0)


def embedding_spread(embeddings) -> float:
    """Mean squared Euclidean distance over all ordered pairs of rows (the diagonal's zeros included).

    2 for points spread evenly over a unit sphere (a circle in 2-D), 0 for a collapse to one
    point; unnormalised embeddings have no upper bound. Accepts a tensor or a NumPy array.
    """
    embeddings = torch.as_tensor(embeddings)
    check_embeddings(embeddings)
    if embeddings.shape[0] == 0:
        raise ValueError("embedding_spread needs at least one embedding, got 0 rows")
    return float(pairwise_squared_euclidean(embeddings.double()).mean())
