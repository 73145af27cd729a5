"""Building blocks of the sequential neural models (paper §6.4): activations, Keras-style
initialisation, the tied projection head with its fused full-softmax cross-entropy, the
self-attention block and its padding/causal mask.

The frozen-text item tables of the issue-23 variants (:class:`FrozenItemTable`) live here too.

Shapes: B = batch rows, L = sequence positions, d = ``emb_dim``, n = catalogue size (train
items; the item table has 1 or 2 more rows for padding and BERT4Rec's mask token).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "linear": nn.Identity}


def activation(name: str) -> nn.Module:
    """A fresh activation module by name (one of :data:`ACTIVATIONS`); ValueError otherwise."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, not {name!r}")
    return ACTIVATIONS[name]()


def glorot_(module: nn.Module) -> None:
    """Keras defaults: Glorot-uniform kernels, zero biases, uniform(±0.05) embeddings."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.uniform_(m.weight, -0.05, 0.05)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class SoftmaxCrossEntropy(torch.autograd.Function):
    """Mean full-softmax cross-entropy of ``z @ W.T + b`` against ``y``, with few passes over
    the (targets × catalogue) logits: one matmul, one fused softmax (row-local, cache
    friendly), a gather; the backward subtracts the one-hot in place and scales the small
    matmul results instead of the big matrix. Same value and gradients as
    ``F.cross_entropy(F.linear(z, W, b), y)`` (the per-target loss is capped at −log(1e-30) ≈ 69
    where the target's probability underflows in float32)."""

    @staticmethod
    def forward(ctx, z, W, b, y):
        logits = torch.addmm(b.to(z.dtype), z, W.t())
        p = torch.softmax(logits.float(), dim=1)
        del logits
        loss = -torch.log(p.gather(1, y[:, None]).clamp_min(1e-30)).mean()
        ctx.save_for_backward(z, W, y, p)
        return loss

    @staticmethod
    def backward(ctx, g):
        z, W, y, p = ctx.saved_tensors
        p.scatter_add_(1, y[:, None], torch.full((len(y), 1), -1.0, device=p.device))  # p - onehot
        scale = g / len(y)
        gb = p.sum(0) * scale if ctx.needs_input_grad[2] else None
        pc = p.to(z.dtype)
        gz = (pc @ W) * scale.to(z.dtype) if ctx.needs_input_grad[0] else None
        gW = (pc.t() @ z) * scale.to(z.dtype) if ctx.needs_input_grad[1] else None
        return gz, gW, (gb.to(W.dtype) if gb is not None else None), None


class TiedHead(nn.Module):
    """Dense(in → emb_dim, activation) → ``@ item_table[:n_items].T`` → + bias.

    The item table is *passed in* at call time, so the only output weights are the shared
    embeddings (no separate output matrix exists).

    The bias (``item_bias=True``, the default) is one learnable value per item, zero-initialised,
    as the spec and the reference's docstring describe. Deviation note: the reference's
    ``BiasLayer`` creates its weight with shape ``input_shape[2:]``, meant for (batch, N, items)
    inputs, but every model feeds it 2-D (targets, items) logits, so what it actually learns is
    one scalar added to every logit, which the softmax cancels. ``item_bias=False`` reproduces
    that (no per-item bias)."""

    def __init__(self, in_dim: int, emb_dim: int, n_items: int, act: str, item_bias: bool = True,
                 project: bool = True):
        super().__init__()
        if not project and in_dim != emb_dim:
            raise ValueError(f"a head without projection needs in_dim == emb_dim, got {in_dim} and {emb_dim}")
        # project=False: the original SASRec's prediction layer, a plain dot product of the
        # last hidden state with the item table (no Dense, no activation)
        self.dense = nn.Linear(in_dim, emb_dim) if project else nn.Identity()
        self.act = activation(act) if project else nn.Identity()
        if item_bias:
            self.bias = nn.Parameter(torch.zeros(n_items))
        else:  # constant zeros: the reference's scalar bias cancels in the softmax
            self.register_buffer("bias", torch.zeros(n_items), persistent=False)
        self.n_items = n_items

    def project(self, h: torch.Tensor) -> torch.Tensor:
        """(..., in_dim) hidden states → (..., emb_dim) states that are scored against the table."""
        return self.act(self.dense(h))

    def forward(self, h: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        z = self.act(self.dense(h))
        return F.linear(z, table[: self.n_items], self.bias)

    def loss(self, h: torch.Tensor, table: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of the logits of ``h`` against ``y`` (see SoftmaxCrossEntropy)."""
        z = self.act(self.dense(h))
        w = table[: self.n_items]
        if torch.is_autocast_enabled(z.device.type):  # the custom function runs outside autocast
            w = w.to(z.dtype)
        with torch.autocast(z.device.type, enabled=False):
            return SoftmaxCrossEntropy.apply(z, w, self.bias, y)


#: ``item_table`` values: the paper's trainable table and the frozen-text-table variants (issue 23).
ITEM_TABLES = ("trainable", "adapter", "adapter_mlp", "offset")
#: How the offset of ``item_table="offset"`` is kept inside its radius.
OFFSET_BOUNDS = ("tanh", "clip")


class FrozenItemTable(nn.Module):
    """An item table whose base rows are **frozen** (e.g. reduced text vectors) plus a small trainable
    part; a drop-in for the ``nn.Embedding`` of :class:`~.base.SequentialModule` (``forward(x)`` gives
    the effective rows of ids ``x``, :meth:`table` the whole effective table, tied to the head).

    * ``kind="adapter"`` — effective item row = A·v + c, a trainable linear map of the frozen vector v
      (LLM2Rec style: frozen text embeddings, a learned projection), initialised to the identity
      (training starts exactly from the frozen vectors);
    * ``kind="adapter_mlp"`` — v + W₂·GELU(W₁·v + c₁) + c₂ (residual two-layer MLP, hidden width d,
      W₂ = 0 at init: again the identity at the start);
    * ``kind="offset"`` — v + bound(o), a trainable per-item offset o (zero init) whose norm is kept
      below ``radius`` (Let It Go? Not Quite, RecSys'25: frozen content embedding + a bounded
      trainable delta): ``bound="tanh"`` rescales o to r·tanh(‖o‖/r)·o/‖o‖ (smooth, always < r),
      ``"clip"`` to o·min(1, r/‖o‖) (projection onto the ball).

    The rows beyond ``n_items`` (padding, BERT4Rec's mask token) carry no text: they are their frozen
    random init plus an unbounded trainable offset (``extra``, zero init), so the mask token still
    learns. ``weight`` is the frozen (rows, d) base table (``requires_grad=False``; the LLM2 init
    rows are written into it).

    Deviations: the adapter maps the *reduced* vectors (d → d), not the raw embedder output (D → d)
    as LLM2Rec does; the offset's radius is given relative to the RMS row norm of the frozen item
    rows (``radius`` is the absolute value computed from it by the caller).
    """

    def __init__(self, base: torch.Tensor, n_items: int, kind: str, radius: float = 0.0, bound: str = "tanh"):
        super().__init__()
        if kind not in ITEM_TABLES[1:]:
            raise ValueError(f"FrozenItemTable kind must be one of {ITEM_TABLES[1:]}, not {kind!r}")
        if bound not in OFFSET_BOUNDS:
            raise ValueError(f"offset_bound must be one of {OFFSET_BOUNDS}, not {bound!r}")
        if kind == "offset" and not radius > 0:
            raise ValueError(f"the offset's radius must be > 0, not {radius}")
        rows, d = base.shape
        self.kind, self.n_items, self.radius, self.bound = kind, int(n_items), float(radius), bound
        self.weight = nn.Parameter(base.detach().clone(), requires_grad=False)
        self.extra = nn.Parameter(torch.zeros(rows - self.n_items, d))
        if kind == "adapter":
            self.adapter = nn.Linear(d, d)
            with torch.no_grad():
                self.adapter.weight.copy_(torch.eye(d))
                self.adapter.bias.zero_()
        elif kind == "adapter_mlp":
            self.up, self.down = nn.Linear(d, d), nn.Linear(d, d)
            nn.init.xavier_uniform_(self.up.weight)
            nn.init.zeros_(self.up.bias)
            nn.init.zeros_(self.down.weight)
            nn.init.zeros_(self.down.bias)
        else:
            self.offset = nn.Parameter(torch.zeros(self.n_items, d))

    @property
    def embedding_dim(self) -> int:
        return self.weight.shape[1]

    @property
    def num_embeddings(self) -> int:
        return self.weight.shape[0]

    def bounded_offset(self, o: torch.Tensor) -> torch.Tensor:
        """(..., d) offsets rescaled to norm < ``radius`` (``bound``: tanh or clip)."""
        norm = torch.sqrt(torch.square(o).sum(-1, keepdim=True) + 1e-24)  # smooth at o = 0
        if self.bound == "tanh":
            scale = self.radius * torch.tanh(norm / self.radius) / norm
        else:
            scale = torch.clamp(self.radius / norm, max=1.0)
        return o * scale

    def _items(self, v: torch.Tensor, ids: torch.Tensor | None) -> torch.Tensor:
        """Effective rows of items from their frozen rows ``v`` (ids: their indices, for the offset)."""
        if self.kind == "adapter":
            return self.adapter(v)
        if self.kind == "adapter_mlp":
            return v + self.down(F.gelu(self.up(v)))
        o = self.offset if ids is None else F.embedding(ids, self.offset)
        return v + self.bounded_offset(o)

    def table(self) -> torch.Tensor:
        """The (rows, d) effective table: items transformed, extra rows = frozen + ``extra``."""
        n = self.n_items
        return torch.cat([self._items(self.weight[:n], None), self.weight[n:] + self.extra])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Effective rows of the ids ``x`` (any shape) → (*x.shape, d); only the rows used are computed."""
        n = self.n_items
        v = F.embedding(x, self.weight)
        items = self._items(v, x.clamp_max(n - 1))
        extra = v + F.embedding((x - n).clamp_min(0), self.extra)
        return torch.where((x < n)[..., None], items, extra)


class SelfAttention(nn.Module):
    """Multi-head self-attention with ``h`` heads of size emb_dim // h on PyTorch's fused
    ``scaled_dot_product_attention``; ``allowed`` (B, 1, L, L) bool, True = may attend."""

    def __init__(self, d: int, heads: int, dropout: float):
        super().__init__()
        if heads < 1 or d // heads < 1:
            raise ValueError(f"emb_dim {d} and heads {heads}: need 1 <= heads <= emb_dim")
        self.h, self.dk = heads, d // heads
        self.qkv = nn.Linear(d, 3 * heads * self.dk)
        self.out = nn.Linear(heads * self.dk, d)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.h, self.dk).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.out(y.transpose(1, 2).reshape(b, n, self.h * self.dk))


class FeedForward(nn.Sequential):
    """Position-wise Linear(d → inner) → activation → dropout → Linear(inner → d), (B, L, d) → (B, L, d)."""

    def __init__(self, d: int, inner: int, act: str, dropout: float):
        super().__init__(nn.Linear(d, inner), activation(act), nn.Dropout(dropout), nn.Linear(inner, d))


def attention_mask(x: torch.Tensor, pad: int, causal: bool) -> torch.Tensor:
    """(B, 1, L, L) bool: keys that are real items (and, if causal, not in the future); every
    position may attend to itself so fully padded rows never produce NaN."""
    n = x.shape[1]
    real = (x != pad)[:, None, None, :]
    eye = torch.eye(n, dtype=torch.bool, device=x.device)
    allowed = real | eye
    if causal:
        allowed = allowed & torch.ones(n, n, dtype=torch.bool, device=x.device).tril()
    return allowed
