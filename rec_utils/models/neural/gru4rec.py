"""GRU4Rec (Hidasi et al., ICLR 2016) as in the paper (§6.4).

    item_emb(x) → dropout → GRU(hidden_dim) → dropout → tied head (Dense(d, relu) → item tableᵀ
    + bias) → softmax over all items

Whole sessions (their last ``max_len + 1`` items) per batch instead of session-parallel
mini-batches; full-softmax cross-entropy on the next item at every real position.

Deviations:
    * Left-padded rows are packed (``pack_padded_sequence``) so the GRU starts at each
      session's first real item; the reference runs the GRU over the padding tokens too.
      This makes batch trimming exact. ``pack_padding=False`` reproduces the reference: every
      row is left-padded back to ``max_len`` and the GRU reads the padding tokens (a learned
      embedding) before the session, so the state it starts from depends on the session length.
      Together with file-order ties and ``item_bias=False`` this reproduces the paper's GRU4Rec
      on Beauty (temporal, 3 seeds on CPU: NDCG@10 0.0254 ± 0.0013 against 0.0260; packed:
      0.0220 ± 0.0014; README "Why SASRec and GRU4Rec fall short").
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .base import SequentialConfig, SequentialModule, SequentialRecommender
from .batching import next_item_targets
from .layers import glorot_


@dataclass
class GRU4RecConfig(SequentialConfig):
    """Defaults: the RecSys'23 Beauty optimum (spec §7), which produced the paper's GRU4Rec row
    (NDCG@10 0.0260)."""

    emb_dim: int = 208  # int: item-embedding size d (RecSys'23 Beauty optimum 208)
    hidden_dim: int = 320  # int: GRU state size (320)
    drop_rate: float = 0.0  # float: dropout after the embedding and after the GRU (0.0)
    learning_rate: float = 0.001  # float: AdamW learning rate (0.001)
    weight_decay: float = 0.0  # float: AdamW weight decay (0)
    clipnorm: float | None = None  # float|None: per-tensor gradient clip (None)
    batch_size: int = 128  # int: sessions per step (128)
    activation: str = "relu"  # str: activation of the head's Dense (paper: ReLU)
    pack_padding: bool = True  # bool: start the GRU at the first real item; False = the reference (GRU reads the max_len - n padding tokens first)


class GRU4RecModule(SequentialModule):
    def __init__(self, n_items: int, c: GRU4RecConfig):
        super().__init__(n_items, c.emb_dim, c.hidden_dim, c.activation, item_bias=c.item_bias)
        self.drop = nn.Dropout(c.drop_rate)
        self.max_len, self.pack_padding = c.max_len, c.pack_padding
        self.gru = nn.GRU(c.emb_dim, c.hidden_dim, batch_first=True)
        glorot_(self)
        for name, w in self.gru.named_parameters():  # Keras GRU: glorot input, orthogonal recurrent
            if name.startswith("weight_ih"):
                nn.init.xavier_uniform_(w)
            elif name.startswith("weight_hh"):
                for g in w.chunk(3, 0):
                    nn.init.orthogonal_(g)
            else:
                nn.init.zeros_(w)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        if not self.pack_padding:
            return self._encode_over_padding(x)
        b, n = x.shape
        lens = (x != self.pad).sum(1).clamp_min(1)
        ar = torch.arange(n, device=x.device)
        shift = (n - lens)[:, None]
        right = x.gather(1, (ar + shift) % n)  # left-padded → right-padded
        e = self.drop(self.item_emb(right))
        packed = pack_padded_sequence(e, lens.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.gru(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=n)
        out = out.gather(1, ((ar - shift) % n)[:, :, None].expand(-1, -1, out.shape[2]))  # back
        return self.drop(out)

    def _encode_over_padding(self, x: torch.Tensor) -> torch.Tensor:
        """The reference: the GRU runs over the full left-padded window of ``max_len`` (batch
        trimming undone, so results do not depend on the batch's longest session)."""
        n = x.shape[1]
        full = F.pad(x, (max(self.max_len - n, 0), 0), value=self.pad)
        out, _ = self.gru(self.drop(self.item_emb(full)))
        return self.drop(out[:, -n:])


class GRU4Rec(SequentialRecommender):
    name = "GRU4Rec"
    config_class = GRU4RecConfig

    def _validate_config(self) -> None:
        super()._validate_config()
        if self.config.hidden_dim < 1:
            raise ValueError("GRU4Rec: hidden_dim must be >= 1")

    def build_module(self, n_items: int) -> GRU4RecModule:
        return GRU4RecModule(n_items, self.config)

    def training_data(self, seqs: np.ndarray):
        x, y = next_item_targets(seqs, self.pad_)
        return lambda rng: (x, y)
