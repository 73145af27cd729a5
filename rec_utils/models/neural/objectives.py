"""Training objectives beside the paper's full-softmax cross-entropy (issue 23), vectorised in torch.

The paper (§6.4) trains every sequential model with the full softmax over the whole catalogue
(``loss="ce"``, the faithful default, computed by :class:`.layers.SoftmaxCrossEntropy`). The
strongest published SASRec results since then train with sampled objectives; two are here, both
scoring a **shared** set of candidate items per batch (one ``(targets × candidates)`` matmul, no
Python loop):

* ``loss="sampled_softmax"`` — softmax over the target and a set C of negatives with the
  **logQ correction** (Bengio & Senécal 2008; Yi et al., RecSys'19 "Sampling-bias-corrected
  neural modeling"): every logit s_i becomes s_i − log q_i, q_i the expected number of times item
  i is drawn into C, so that the sampled softmax is an unbiased estimate of the full one's
  gradient direction. Negatives (``negatives``):

  * ``"uniform"`` — ``n_negatives`` distinct items drawn uniformly (q constant: the correction
    cancels);
  * ``"in_batch"`` — the distinct targets of the batch (q_i ∝ the item's share of training
    targets, its popularity: without the correction popular items are over-penalised);
  * ``"mixed"`` — both (Yang et al., WWW'20 "Mixed negative sampling"): q_i = m_b·p_i + m_u/n, m_b
    the batch's targets, m_u the uniform draws, p_i the popularity share.

  A candidate equal to a row's own target (an accidental hit) is masked out of that row. With
  ``negatives="uniform"`` and ``n_negatives ≥ n_items`` C is the whole catalogue and the loss *is*
  the full-softmax cross-entropy (tested).
* ``loss="gbce"`` — gSASRec's generalised binary cross-entropy (Petrov & Macdonald, RecSys'23):
  binary cross-entropy of the target against k uniform negatives, with the positive's probability
  raised to the power β: σ(s⁺)^β, β = α·(t·(1 − 1/α) + 1/α), α = k / (n − 1) the negative sampling
  rate and t ∈ [0, 1] the calibration parameter (``gbce_t``; t = 0: β = 1, plain BCE; t = 1: β = α,
  fully calibrated). Per target: −β·log σ(s⁺) − Σ_neg log(1 − σ(s⁻)), averaged over the k + 1
  logits of every target as gSASRec's ``BCEWithLogitsLoss`` (mean reduction) does.

Uniform negatives are drawn once per batch and shared by its targets (``negative_sharing=
"batch"``, default: k distinct items, one dense matmul) or per target (``"target"``: k items with
replacement for every target, as gSASRec; a (targets × k × d) gather, more memory and time, but
every step pushes down T·k item rows instead of k).

Deviations:
    * ``negative_sharing="batch"`` (default) shares the negatives of a batch: cheaper, but fewer
      distinct items get a negative gradient per step than gSASRec's per-target draws
      (``"target"``).
    * gBCE masks accidental hits (a negative equal to the target adds nothing); gSASRec does not
      check. Its float64 clamped transform is replaced by the identical, stable
      ``β·softplus(−s⁺)`` (equal to −log σ(s⁺)^β; tested against the gSASRec formula).
    * The popularity q of ``in_batch``/``mixed`` is the item's share of the training targets
      (counted once from the training interactions), not a streaming estimate.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

#: ``loss`` values: the paper's full softmax and the sampled objectives of this module.
OBJECTIVES = ("ce", "sampled_softmax", "gbce")
#: ``negatives`` values of the sampled softmax (gBCE draws uniform negatives).
NEGATIVES = ("uniform", "in_batch", "mixed")
#: ``negative_sharing``: one uniform draw per batch shared by its targets, or one per target.
SHARING = ("batch", "target")


def gbce_beta(n_negatives: int, n_items: int, t: float) -> float:
    """gSASRec's β = α·(t·(1 − 1/α) + 1/α) with α = k / (n − 1), the share of the other items that
    are drawn as negatives (k clipped to n − 1: at most every other item). t = 0 → 1; t = 1 → α."""
    alpha = min(int(n_negatives), n_items - 1) / max(n_items - 1, 1)
    return alpha * (t * (1.0 - 1.0 / alpha) + 1.0 / alpha)


def sampled_softmax_loss(z: torch.Tensor, W: torch.Tensor, b: torch.Tensor, y: torch.Tensor, cand: torch.Tensor,
                         logq_y: torch.Tensor | None = None, logq_c: torch.Tensor | None = None) -> torch.Tensor:
    """Mean sampled-softmax cross-entropy of the (T, d) projected states ``z`` against targets ``y``
    (T,) with the (C,) candidate items ``cand`` as negatives; logits ``z·W[i] + b[i] − log q_i``
    (no correction when ``logq_*`` is None). A candidate equal to a row's target is masked out of
    that row; the target's own logit is always in its row."""
    z = z.float()
    pos = (z * W[y].float()).sum(1) + b[y].float()
    neg, hit = negative_logits(z, W, b, y, cand)
    if logq_y is not None:
        pos = pos - logq_y
        neg = neg - logq_c
    neg = neg.masked_fill(hit, -math.inf)
    logits = torch.cat([pos[:, None], neg], 1)
    return (torch.logsumexp(logits, 1) - pos).mean()


def negative_logits(z: torch.Tensor, W: torch.Tensor, b: torch.Tensor, y: torch.Tensor,
                    negs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(T, k) logits of the negatives and the (T, k) mask of accidental hits (negative = target):
    ``negs`` (k,) shared by every row (one matmul) or (T, k), one set per row (a batched product
    over the gathered (T, k, d) rows)."""
    if negs.dim() == 1:
        return torch.addmm(b[negs].float(), z, W[negs].float().t()), negs[None, :] == y[:, None]
    return torch.einsum("td,tkd->tk", z, W[negs].float()) + b[negs].float(), negs == y[:, None]


def gbce_loss(z: torch.Tensor, W: torch.Tensor, b: torch.Tensor, y: torch.Tensor, negs: torch.Tensor,
              beta: float) -> torch.Tensor:
    """gSASRec's gBCE (module docstring) of the (T, d) projected states ``z`` against targets ``y``
    with the negatives ``negs`` ((k,) shared or (T, k) per row): mean over the T·(k + 1) logits of
    ``β·softplus(−s⁺) + Σ softplus(s⁻)``; accidental hits carry no loss."""
    z = z.float()
    pos = (z * W[y].float()).sum(1) + b[y].float()
    neg, hit = negative_logits(z, W, b, y, negs)
    neg_loss = F.softplus(neg).masked_fill(hit, 0.0).sum(1)
    return (beta * F.softplus(-pos) + neg_loss).sum() / (len(y) * (negs.shape[-1] + 1))


class SampledObjective:
    """The sampled objective of one training run: draws the batch's candidates and computes the
    loss from the head's projected states. Not an ``nn.Module`` (no state in the checkpoint): the
    negatives come from its own seeded generator, so runs with the same seed draw the same ones.

    Args:
        loss: ``"sampled_softmax"`` or ``"gbce"``.
        n_items: catalogue size n (rows of the table that are items).
        n_negatives: k, uniform negatives per batch (≥ n: the whole catalogue).
        negatives: :data:`NEGATIVES` (sampled softmax only; gBCE is uniform).
        logq: apply the logQ correction (sampled softmax).
        gbce_t: gBCE's calibration t in [0, 1].
        popularity: (n,) counts of each item as a training target (for in-batch/mixed logQ).
        seed: seeds the negative draws.
        device: where the draws go.

    Raises ValueError for unknown values, k < 1, t outside [0, 1], gBCE with non-uniform negatives.
    """

    def __init__(self, loss: str, n_items: int, n_negatives: int, negatives: str = "uniform", logq: bool = True,
                 gbce_t: float = 0.75, popularity: np.ndarray | None = None, seed: int = 0, device: str = "cpu",
                 negative_sharing: str = "batch"):
        check_objective(loss, n_negatives, negatives, gbce_t, negative_sharing)
        self.sharing = negative_sharing
        if loss == "ce":
            raise ValueError("loss='ce' is the full softmax of the head (TiedHead.loss), not a sampled objective")
        self.loss, self.n_items, self.k = loss, int(n_items), int(n_negatives)
        self.negatives, self.logq, self.device = negatives, bool(logq), device
        self.generator = torch.Generator().manual_seed(int(seed))
        self.beta = gbce_beta(self.k, self.n_items, gbce_t) if loss == "gbce" else None
        pop = np.ones(self.n_items) if popularity is None else np.asarray(popularity, dtype=np.float64)
        if pop.shape != (self.n_items,):
            raise ValueError(f"popularity must have one count per item ({self.n_items}), got shape {pop.shape}")
        share = pop / max(pop.sum(), 1.0)
        self.p = torch.as_tensor(share, dtype=torch.float32, device=device)

    def uniform(self, rows: int | None = None) -> torch.Tensor:
        """k distinct items drawn uniformly (the whole catalogue, in order, when k ≥ n) shared by
        the batch; with ``rows`` (``negative_sharing="target"``): (rows, k) items drawn uniformly
        with replacement, one set per target (as gSASRec)."""
        if rows is not None:
            return torch.randint(0, self.n_items, (rows, self.k), generator=self.generator).to(self.device)
        if self.k >= self.n_items:
            return torch.arange(self.n_items, device=self.device)
        return torch.randperm(self.n_items, generator=self.generator)[: self.k].to(self.device)

    def __call__(self, z: torch.Tensor, W: torch.Tensor, b: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Loss of the (T, d) projected states ``z`` (after the head's Dense), the (rows, d) item
        table ``W`` (rows ≥ n are padding/mask and never candidates), the (n,) bias and targets ``y``."""
        W = W[: self.n_items]
        rows = len(y) if self.sharing == "target" else None
        if self.loss == "gbce":
            return gbce_loss(z, W, b, y, self.uniform(rows), self.beta)
        if rows is not None:  # uniform per target: q constant, no correction
            return sampled_softmax_loss(z, W, b, y, self.uniform(rows))
        parts = []
        if self.negatives in ("in_batch", "mixed"):
            parts.append(y)
        if self.negatives in ("uniform", "mixed"):
            parts.append(self.uniform())
        cand = parts[0] if self.negatives == "uniform" else torch.unique(torch.cat(parts))
        if not self.logq or self.negatives == "uniform":  # uniform: q constant, the correction cancels
            return sampled_softmax_loss(z, W, b, y, cand)
        m_b = float(len(y))
        m_u = float(min(self.k, self.n_items)) if self.negatives == "mixed" else 0.0
        logq = torch.log(m_b * self.p + m_u / self.n_items).clamp_min(-80.0)
        return sampled_softmax_loss(z, W, b, y, cand, logq[y], logq[cand])


def check_objective(loss: str, n_negatives: int, negatives: str, gbce_t: float, negative_sharing: str = "batch") -> None:
    """ValueError naming the parameter when the objective's settings are not valid."""
    if negative_sharing not in SHARING:
        raise ValueError(f"negative_sharing must be one of {SHARING}, not {negative_sharing!r}")
    if negative_sharing == "target" and negatives != "uniform":
        raise ValueError(f"negative_sharing='target' draws uniform negatives per target; negatives={negatives!r} "
                         "shares the batch's targets (use negative_sharing='batch')")
    if loss not in OBJECTIVES:
        raise ValueError(f"loss must be one of {OBJECTIVES}, not {loss!r}")
    if negatives not in NEGATIVES:
        raise ValueError(f"negatives must be one of {NEGATIVES}, not {negatives!r}")
    if int(n_negatives) < 1:
        raise ValueError(f"n_negatives must be >= 1, not {n_negatives}")
    if not 0.0 <= float(gbce_t) <= 1.0:
        raise ValueError(f"gbce_t must be in [0, 1], not {gbce_t}")
    if loss == "gbce" and negatives != "uniform":
        raise ValueError(f"loss='gbce' draws uniform negatives (gSASRec); negatives={negatives!r} is for "
                         "loss='sampled_softmax'")


__all__ = ["NEGATIVES", "OBJECTIVES", "SHARING", "SampledObjective", "check_objective", "gbce_beta", "gbce_loss",
           "negative_logits", "sampled_softmax_loss"]
