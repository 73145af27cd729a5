"""The sequential neural models of the paper (§6.4): GRU4Rec, SASRec, BERT4Rec.

Read in this order, nanoGPT style:

* :mod:`.layers` - activations, Keras-style init, the tied head with its fused softmax
  cross-entropy, self-attention, feed-forward, the attention mask;
* :mod:`.batching` - sessions → left-padded index matrices, prompt windows, length-bucketed
  batches, trimming, next-item targets;
* :mod:`.trainer` - AdamW + per-tensor clipnorm, the epoch loop with early stopping on
  validation NDCG@20, the ``on_epoch`` callback, native-bf16 check, checkpoint files;
* :mod:`.base` - the config base, the module base and the fit/predict wrapper;
* :mod:`.gru4rec`, :mod:`.sasrec`, :mod:`.bert4rec` - one model per file.
"""
from __future__ import annotations

from .base import SequentialConfig, SequentialModule, SequentialRecommender
from .bert4rec import BERT4Rec, BERT4RecConfig
from .gru4rec import GRU4Rec, GRU4RecConfig
from .sasrec import SASRec, SASRecConfig

__all__ = ["BERT4Rec", "BERT4RecConfig", "GRU4Rec", "GRU4RecConfig", "SASRec", "SASRecConfig",
           "SequentialConfig", "SequentialModule", "SequentialRecommender"]
