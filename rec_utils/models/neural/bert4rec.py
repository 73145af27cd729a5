"""BERT4Rec (Sun et al., CIKM 2019) as in the paper (§6.4): bidirectional, post-norm, cloze.

    item_emb(x) + pos_emb → L × [LN(x + drop(MHA(x))) ; LN(x + drop(FFN(x)))]
    → tied head (Dense(d, gelu) → item tableᵀ + bias) → softmax over all items

Training data, regenerated every epoch (:func:`cloze_copies`): every session's last
``max_len`` items once with only its last item masked, plus ``n_random_copies`` (10) copies in
which each real position is masked independently with probability ``mask_prob``; the loss is
the full-softmax cross-entropy at the masked positions. Prediction: drop the window's first
position, append the mask token, score the mask position.

Deviations:
    * The mask token has its own id (``n_items + 1``) and padding keys are masked out of the
      attention; the reference uses one id for both and lets the model attend to padding.
      Batch trimming is exact as a consequence.
    * Random copies in which no position was drawn carry no loss and are dropped from the
      epoch (they would contribute nothing to the gradient).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .base import SequentialConfig, SequentialModule, SequentialRecommender
from .batching import IGNORE
from .layers import FeedForward, SelfAttention, attention_mask, glorot_


@dataclass
class BERT4RecConfig(SequentialConfig):
    """Defaults: the RecSys'23 Beauty optimum (spec §7), which produced the paper's BERT4Rec
    row (NDCG@10 0.0339)."""

    emb_dim: int = 512  # int: item/hidden size d (RecSys'23 Beauty optimum 512)
    drop_rate: float = 0.25  # float: dropout on the attention and FFN outputs (0.25)
    learning_rate: float = 0.0001  # float: AdamW learning rate (0.0001)
    weight_decay: float = 0.004  # float: AdamW weight decay (0.004)
    clipnorm: float | None = 5.0  # float|None: per-tensor gradient clip (5)
    batch_size: int = 256  # int: sequences (copies) per step (256)
    num_layers: int = 2  # int: transformer blocks L (2)
    num_heads: int = 2  # int: attention heads h, head size emb_dim // h (2)
    mask_prob: float = 0.65  # float: masking probability of the random copies (0.65)
    n_random_copies: int = 10  # int: randomly masked copies per session per epoch (paper: 10)
    activation: str = "gelu"  # str: activation of FFN and head (paper: GELU)


class BERT4RecModule(SequentialModule):
    def __init__(self, n_items: int, c: BERT4RecConfig):
        super().__init__(n_items, c.emb_dim, c.emb_dim, c.activation, extra_tokens=2, item_bias=c.item_bias)
        d = c.emb_dim
        self.mask_id = n_items + 1
        self.max_len = c.max_len
        self.pos_emb = nn.Embedding(c.max_len, d)
        self.drop = nn.Dropout(c.drop_rate)
        self.blocks = nn.ModuleList(
            nn.ModuleDict({"attn": SelfAttention(d, c.num_heads, 0.0), "ln1": nn.LayerNorm(d, eps=1e-5),
                           "ffn": FeedForward(d, 4 * d, c.activation, 0.0), "ln2": nn.LayerNorm(d, eps=1e-5)})
            for _ in range(c.num_layers))
        glorot_(self)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[1]
        pos = torch.arange(self.max_len - n, self.max_len, device=x.device)
        h = self.item_emb(x) + self.pos_emb(pos)  # as the reference: no embedding norm/dropout
        allowed = attention_mask(x, self.pad, causal=False)
        for b in self.blocks:
            h = b["ln1"](h + self.drop(b["attn"](h, allowed)))
            h = b["ln2"](h + self.drop(b["ffn"](h)))
        return h


def cloze_copies(seqs: np.ndarray, pad: int, mask_id: int, mask_prob: float, n_copies: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One epoch of BERT4Rec training rows from left-padded sequences (n, L):

    * n rows with only the last position masked (target = the last item);
    * ``n_copies`` · n rows, each real position masked with probability ``mask_prob``
      (rows with no masked position dropped).

    Returns (inputs, targets) with targets = −100 at unmasked positions."""
    real = seqs != pad
    last_x = seqs.copy()
    last_x[:, -1] = np.where(real[:, -1], mask_id, pad)
    last_y = np.full_like(seqs, IGNORE)
    last_y[:, -1] = np.where(real[:, -1], seqs[:, -1], IGNORE)
    rep = np.tile(seqs, (n_copies, 1))
    m = (rng.random(rep.shape) < mask_prob) & (rep != pad)
    keep = m.any(1)
    rep, m = rep[keep], m[keep]
    x = np.concatenate([last_x, np.where(m, mask_id, rep)])
    y = np.concatenate([last_y, np.where(m, rep, IGNORE)])
    return x, y


class BERT4Rec(SequentialRecommender):
    name = "BERT4Rec"
    config_class = BERT4RecConfig

    def _validate_config(self) -> None:
        super()._validate_config()
        if not 0.0 < self.config.mask_prob <= 1.0:
            raise ValueError(f"mask_prob must be in (0, 1], not {self.config.mask_prob}")
        c = self.config
        if c.num_layers < 1 or not 1 <= c.num_heads <= c.emb_dim or c.n_random_copies < 0:
            raise ValueError("BERT4Rec: need num_layers >= 1, 1 <= num_heads <= emb_dim, n_random_copies >= 0")

    def build_module(self, n_items: int) -> BERT4RecModule:
        return BERT4RecModule(n_items, self.config)

    def training_data(self, seqs: np.ndarray):
        base = seqs[:, 1:]  # the last max_len items
        c = self.config
        return lambda rng: cloze_copies(base, self.pad_, self.pad_ + 1, c.mask_prob, c.n_random_copies, rng)

    def prediction_inputs(self, window: np.ndarray) -> np.ndarray:
        mask = np.full((len(window), 1), self.pad_ + 1, dtype=window.dtype)
        return np.concatenate([window[:, 1:], mask], axis=1)
