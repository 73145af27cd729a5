"""SASRec (Kang & McAuley, ICDM 2018) as in the paper (§6.4): causal self-attention, pre-norm.

    item_emb(x) + pos_emb → dropout → L × [x + drop(MHA(LN(x))) ; x + drop(FFN(LN(x)))] (→ LN)
    → tied head (Dense(d, relu) → item tableᵀ + bias) → softmax over all items

Training: every session's last ``max_len + 1`` items; the input is the first ``max_len`` and the
target at each position is the next item (full-softmax cross-entropy at every non-padded
position whose input is real). Prediction: scores at the last position.

Deviations:
    * Padding keys are masked out of the attention (the reference feeds padding as a token the
      model can attend to). With left padding this makes batch trimming exact; every position
      may also attend to itself so padded rows stay finite.
    * ``final_norm=True`` adds the original SASRec's LayerNorm after the last block (off by
      default, as in the reference; the leave-one-out preset turns it on).
    * The paper's categorical CE and BERT4Rec's projection head replace the original BCE with
      one negative and dot-product prediction layer (as in the reference); ``head="dot"``
      restores the original dot-product prediction layer.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .base import SequentialConfig, SequentialModule, SequentialRecommender
from .batching import next_item_targets
from .layers import FeedForward, SelfAttention, attention_mask, glorot_


@dataclass
class SASRecConfig(SequentialConfig):
    """Defaults: the RecSys'23 Beauty optimum (spec §7, last paragraph), which produced the
    paper's SASRec row (NDCG@10 0.0276)."""

    emb_dim: int = 320  # int: item/hidden size d (RecSys'23 Beauty optimum 320)
    drop_rate: float = 0.3  # float: dropout on input embeddings, attention and FFN outputs (0.3)
    learning_rate: float = 0.001  # float: AdamW learning rate (0.001)
    weight_decay: float = 0.0  # float: AdamW weight decay (0)
    clipnorm: float | None = 100.0  # float|None: per-tensor gradient clip (100)
    batch_size: int = 128  # int: sequences per step (128)
    num_layers: int = 1  # int: transformer blocks L (1)
    num_heads: int = 1  # int: attention heads h, head size emb_dim // h (1)
    activation: str = "relu"  # str: activation of the head's Dense and of the FFN (paper: ReLU)
    final_norm: bool = False  # bool: LayerNorm after the last block (original SASRec); the reference has none
    head: str = "dense"  # str: "dense" = the paper's Dense(d, activation) before the tied item table; "dot" = original SASRec (hidden state · item table)
    ffn_scale: int = 1  # int: FFN inner width as a multiple of emb_dim (the reference fixes 1 for SASRec; BERT-style 4)


class SASRecModule(SequentialModule):
    def __init__(self, n_items: int, c: SASRecConfig):
        super().__init__(n_items, c.emb_dim, c.emb_dim, c.activation, item_bias=c.item_bias,
                         project_head=c.head == "dense")
        d = c.emb_dim
        self.max_len = c.max_len
        self.pos_emb = nn.Embedding(c.max_len, d)
        self.drop = nn.Dropout(c.drop_rate)
        self.blocks = nn.ModuleList(
            nn.ModuleDict({"ln1": nn.LayerNorm(d, eps=1e-5), "attn": SelfAttention(d, c.num_heads, 0.0),
                           "ln2": nn.LayerNorm(d, eps=1e-5), "ffn": FeedForward(d, c.ffn_scale * d, c.activation, 0.0)})
            for _ in range(c.num_layers))
        self.final_ln = nn.LayerNorm(d, eps=1e-5) if c.final_norm else nn.Identity()
        glorot_(self)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[1]
        pos = torch.arange(self.max_len - n, self.max_len, device=x.device)  # right-aligned
        h = self.drop(self.item_emb(x) + self.pos_emb(pos))
        allowed = attention_mask(x, self.pad, causal=True)
        for b in self.blocks:
            h = h + self.drop(b["attn"](b["ln1"](h), allowed))
            h = h + self.drop(b["ffn"](b["ln2"](h)))
        return self.final_ln(h)


class SASRec(SequentialRecommender):
    name = "SASRec"
    config_class = SASRecConfig

    def _validate_config(self) -> None:
        super()._validate_config()
        c = self.config
        if c.num_layers < 1 or not 1 <= c.num_heads <= c.emb_dim or c.ffn_scale < 1:
            raise ValueError("SASRec: need num_layers >= 1, 1 <= num_heads <= emb_dim and ffn_scale >= 1")
        if c.head not in ("dense", "dot"):
            raise ValueError(f"SASRec: head must be 'dense' or 'dot', not {c.head!r}")

    def build_module(self, n_items: int) -> SASRecModule:
        return SASRecModule(n_items, self.config)

    def training_data(self, seqs: np.ndarray):
        x, y = next_item_targets(seqs, self.pad_)
        return lambda rng: (x, y)
