"""Heated-up softmax embedding (survey section 2.2, eqs. (20)-(23); Zhang, Yu, Karaman, Zhang & Chang 2018).

The normalised softmax again, written with ``alpha = 1 / T`` and with ``alpha`` changed
during training. By eq. (23) the gradient a sample receives is
``alpha * sum_m (q(m|x) - p(m|x)) w_m``: a large ``alpha`` gives big gradients to
misclassified and boundary samples and almost none to samples already near their class
weight; a small ``alpha`` gives every sample some gradient. "Heating up" trains with a
moderate ``alpha`` and then lowers it (raises the temperature) for the last epochs, so
that the well-classified samples are pulled in too and the classes become compact.
"""

from __future__ import annotations

from ..checks import check_non_negative_int, check_positive
from .norm_softmax import InverseTemperatureSoftmax


class HeatedUpSoftmaxLoss(InverseTemperatureSoftmax):
    r"""Normalised, bias-free softmax with logits ``alpha * cos``, survey eqs. (20)-(21).

    .. math::
        \ell(x) = -\log \frac{\exp(\alpha\, \hat w_y^\top \hat f)}{\sum_m \exp(\alpha\, \hat w_m^\top \hat f)}

    averaged over the batch: :class:`~dmlnotes.losses.norm_softmax.NormSoftmaxLoss` at
    ``T = 1 / alpha`` (it shares that class's code). ``alpha`` is a plain attribute:
    set ``loss_fn.alpha`` between steps, by hand or with :class:`HeatUpSchedule`.

    This is the paper's "L2 normalisation" variant: features and class weights are both
    L2-normalised. Their reference code (``ColumbiaDVMM/Heated_Up_Softmax_Embedding``) uses
    ``alpha = 16`` for it, also keeps a zero-initialised trainable bias (dropped here, as
    in eq. (19)), and offers two variants not implemented here: batch-normalised,
    unnormalised features with ``alpha / sqrt(dim)``, and a learned scalar in place of
    ``alpha`` (``--learn_norm``, initialised at 1).

    Args:
        num_classes: number of training classes (>= 2).
        embedding_dim: dimension of the embeddings.
        alpha: ``alpha = 1 / T > 0``; default 16 from the reference code.
        warn_if_empty: warn when a batch is empty.

    Shapes:
        embeddings ``(batch, embedding_dim)``, labels ``(batch,)`` with values in
        ``0 .. num_classes-1`` -> scalar.
    """

    def __init__(
        self,
        num_classes: int,
        embedding_dim: int,
        alpha: float = 16.0,
        warn_if_empty: bool = False,
        reduction: str = "mean",
    ):
        super().__init__(num_classes, embedding_dim, alpha, warn_if_empty=warn_if_empty, reduction=reduction)

    inverse_temperature_name = "alpha"
    alpha = InverseTemperatureSoftmax.inverse_temperature  # ``alpha = 1 / T``, the paper's name

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, embedding_dim={self.embedding_dim}, alpha={self.alpha}"


class HeatUpSchedule:
    """``alpha_start`` until ``heat_up_step``, then ``alpha_end``: the heating-up of the paper.

    Call :meth:`update` once per step (or epoch; the unit is yours, counted from 0) before
    computing the loss::

        schedule = HeatUpSchedule(heat_up_step=60, alpha_start=16.0, alpha_end=4.0)
        for epoch in range(80):
            schedule.update(loss_fn, epoch)
            ...

    or, counting optimiser steps, hand ``callbacks=[schedule.as_callback(loss_fn)]`` to
    :func:`dmlnotes.training.fit`.

    Defaults follow the reference code: ``alpha = 16`` for about 60 of 80 epochs, then
    ``alpha * 0.25 = 4`` for the last 20. At the same point that code also multiplies the
    learning rate by 0.1; that is the optimiser's business and left to the training loop.

    Args:
        heat_up_step: first step at which ``alpha_end`` is used (>= 0).
        alpha_start: ``alpha`` before heating up (> 0).
        alpha_end: ``alpha`` from ``heat_up_step`` on (> 0); usually below ``alpha_start``.
    """

    def __init__(self, heat_up_step: int, alpha_start: float = 16.0, alpha_end: float = 4.0):
        self.heat_up_step = check_non_negative_int("heat_up_step", heat_up_step)
        self.alpha_start = check_positive("alpha_start", alpha_start)
        self.alpha_end = check_positive("alpha_end", alpha_end)

    def alpha_at(self, step: int) -> float:
        """The ``alpha`` to use at ``step``."""
        return self.alpha_start if step < self.heat_up_step else self.alpha_end

    def update(self, loss_fn: HeatedUpSoftmaxLoss, step: int) -> float:
        """Set ``loss_fn.alpha`` for ``step`` and return it."""
        loss_fn.alpha = self.alpha_at(step)
        return loss_fn.alpha

    def as_callback(self, loss_fn: HeatedUpSoftmaxLoss):
        """A ``callback(step, history)`` for :func:`dmlnotes.training.fit`.

        ``fit`` calls it after each optimiser step with ``step`` counted from 1, which is
        the 0-based index of the next step, so the next step gets ``alpha_at(step)``.
        Sets ``alpha_start`` (the value for step 0) right away.
        """
        self.update(loss_fn, 0)

        def callback(step: int, history=None) -> None:
            self.update(loss_fn, step)

        return callback

    def __repr__(self) -> str:
        return (
            f"HeatUpSchedule(heat_up_step={self.heat_up_step}, alpha_start={self.alpha_start}, "
            f"alpha_end={self.alpha_end})"
        )
