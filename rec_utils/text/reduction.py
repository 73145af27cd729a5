"""Dimensionality reduction of item embeddings (paper §5.2, reference ``main/utils/dim_reducer.py``
and ``main/utils/side_encoder.py``), shared by LLMSeqSim, SKNNEmb and (later) LLM2Sequential
through :meth:`rec_utils.text.EmbeddingSpec.item_vectors`.

::

    Z = reduce_embeddings(X, "pca", 128)                      # L2-normalised rows (reference default)
    Z = reduce_embeddings(X, "lda", 128, labels=item_class)  # dims clipped to #classes − 1
    Z = reduce_embeddings(X, "lda", 128, labels="kmeans")    # pseudo-classes (deviation, see below)
    r = Reducer("autoencoder", 64, seed=0).fit(X_train); Z = r.transform(X)

Methods:

* ``pca`` — sklearn ``PCA(n_components=d)``.
* ``random`` — sklearn ``GaussianRandomProjection(n_components=d)``, seeded (the reference
  leaves it unseeded).
* ``lda`` — sklearn ``LinearDiscriminantAnalysis`` on item class labels, d clipped to
  min(input dim, #classes − 1) with a warning (as the reference). Beauty has **no** item
  classes in our data (the authors' ``class`` column lives in their unavailable embedding
  files), so ``labels`` must be given; ``labels="kmeans"`` derives pseudo-classes with k-means
  on the vectors (``n_pseudo_classes``, default d + 1 so that d dims are reachable) — a
  documented deviation, not the paper's LDA.
* ``autoencoder`` — the reference's linear "SideEncoder" in torch: encoder Dense layers of
  widths …, 4d, 2d (powers-of-two multiples of 2d below the input size, widest first) then the
  d-wide code; the decoder mirrors it back to the input size; no non-linearities, MSE loss,
  Adam (lr 1e-3, Keras' default), 3 epochs, batch 512, no L2 — the code layer is the reduced
  vector. Seeded; runs on CUDA when present.
* ``variance`` — keep the d input dimensions with the highest variance over the fitted items
  (LLMInit's variance-based selection); coordinates stay in the original basis.
* ``whiten=True`` — whitening of the text vectors before the reduction ("BERT-whitening", Su et
  al. 2021: centre, rotate to the principal axes, scale each to unit variance), an option beyond
  the paper against the anisotropy of sentence embeddings. With ``pca`` it is sklearn's
  ``PCA(whiten=True)`` — whitening, then the top-d whitened components (Su et al.'s whitening-k);
  with ``random`` and ``autoencoder`` the vectors are whitened in full (components with variance
  ≤ 1e-12 × the largest dropped) and then reduced (issue 23). With ``variance`` (every whitened
  dimension has variance 1: nothing to select), ``lda`` (invariant to it) and no reduction it is
  a ValueError.
* ``None`` / ``"none"`` — no reduction (rows are still L2-normalised when ``normalize``).

``normalize=True`` L2-normalises the reduced rows (zero rows stay zero), as the reference's
DimReducer does for LLMSeqSim / SKNNEmb; LLM2Sequential uses the raw output
(``normalize=False``). Deviation: a d at least as large as the input dimension is clipped to
the input dimension for pca / random / variance / autoencoder (the reference would fail or
expand), with a warning.
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np

from ..utils import canonical_json, resolve_device, short_hash

log = logging.getLogger(__name__)

METHODS = ("none", "pca", "lda", "random", "autoencoder", "variance")


def l2_normalize(X: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (X / norms).astype(np.float32)


def autoencoder_widths(input_dim: int, dim: int) -> list[int]:
    """Encoder widths of the reference's linear autoencoder: [..., 4d, 2d, d]."""
    widths, w = [], 2 * dim
    while w < input_dim:
        widths.append(w)
        w *= 2
    return widths[::-1] + [dim]


def kmeans_labels(X: np.ndarray, n_classes: int, seed: int = 0) -> np.ndarray:
    """Pseudo-classes for LDA on datasets without item classes (MiniBatch k-means, seeded)."""
    from sklearn.cluster import MiniBatchKMeans  # heavy: loaded only by this method

    km = MiniBatchKMeans(n_clusters=n_classes, random_state=seed, n_init=3, batch_size=2048)
    return km.fit_predict(X)


#: Reductions that ``whiten=True`` applies to (see the module docstring).
WHITENED = ("pca", "random", "autoencoder")


def fit_whitener(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PCA-whitening of the rows of ``X`` (n, D): ``(shift, W)`` with ``X @ W − shift`` centred, on
    the principal axes and of unit variance per axis; W is (D, r), r the components whose variance
    exceeds 1e-12 × the largest (a rank-deficient X keeps only its real directions)."""
    X64 = np.asarray(X, dtype=np.float64)
    mu = X64.mean(0)
    _, s, vt = np.linalg.svd(X64 - mu, full_matrices=False)
    var = s ** 2 / max(len(X64) - 1, 1)
    keep = var > 1e-12 * var.max() if len(var) and var.max() > 0 else np.zeros(len(var), bool)
    W = vt[keep].T / np.sqrt(var[keep])
    return (mu @ W).astype(np.float32), W.astype(np.float32)


@dataclass
class Reducer:
    """A fitted reduction; ``fit`` on some items, ``transform`` any vectors of the same space."""

    method: str | None = "pca"  # one of METHODS (None = no reduction)
    dim: int | None = None  # target dimension (None only with method none)
    normalize: bool = True  # L2-normalise the output rows (reference default for LLMSeqSim)
    seed: int = 0  # random projection / autoencoder init and batches / k-means
    labels: object = None  # LDA class labels (array aligned with fit rows) or "kmeans"
    n_pseudo_classes: int | None = None  # k-means classes for labels="kmeans" (default dim + 1)
    ae_epochs: int = 3  # autoencoder epochs (reference default 3)
    ae_batch_size: int = 512  # autoencoder batch size (reference default 512)
    ae_lr: float = 1e-3  # autoencoder Adam learning rate (Keras default)
    device: str = "auto"  # autoencoder device
    whiten: bool = False  # pca: scale components to unit variance (BERT-whitening; not in the paper)

    def __post_init__(self):
        m = "none" if self.method is None else str(self.method).lower()
        if m == "random_projection":
            m = "random"
        if m not in METHODS:
            raise ValueError(f"unknown reduction {self.method!r}; choose one of {METHODS}")
        self.method = m
        if m != "none" and (self.dim is None or int(self.dim) < 1):
            raise ValueError(f"reduction {m!r} needs a positive dim, got {self.dim!r}")
        if self.whiten and m not in WHITENED:
            why = {"variance": "every whitened dimension has variance 1, there is nothing to select",
                   "lda": "LDA is invariant to whitening", "none": "there is no reduction to whiten before; "
                   "use reduction='pca' (whitening-k) or a reduced_dim"}[m]
            raise ValueError(f"whiten=True with reduction {m!r}: {why}; whiten works with {WHITENED}")

    # ------------------------------------------------------------------ fit / transform

    def fit(self, X: np.ndarray, labels=None) -> "Reducer":
        X = _check(X)
        labels = self.labels if labels is None else labels
        n, D = X.shape
        m = self.method
        d = None if m == "none" else int(self.dim)
        self.whitener_ = None
        if self.whiten and m in ("random", "autoencoder"):  # pca whitens itself (PCA(whiten=True))
            self.whitener_ = fit_whitener(X)
            X = X @ self.whitener_[1] - self.whitener_[0]
            D = X.shape[1]
        if m in ("pca", "random", "variance", "autoencoder") and d > D:
            warnings.warn(f"{m}: dim {d} > input dimension {D}; using {D}", stacklevel=2)
            d = D
        if m == "pca":
            from sklearn.decomposition import PCA  # heavy: loaded only by this method

            self.model_ = PCA(n_components=min(d, n), whiten=self.whiten, random_state=self.seed).fit(X)
        elif m == "random":
            from sklearn.random_projection import GaussianRandomProjection  # heavy: loaded only by this method

            self.model_ = GaussianRandomProjection(n_components=d, random_state=self.seed).fit(X)
        elif m == "variance":
            var = X.var(axis=0)
            self.columns_ = np.sort(np.argsort(-var, kind="stable")[:d])
        elif m == "lda":
            self.model_ = self._fit_lda(X, labels, d)
        elif m == "autoencoder":
            self.model_ = self._fit_autoencoder(X, d)
        self.input_dim_ = D
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = _check(X)
        m = self.method
        if getattr(self, "whitener_", None) is not None:
            X = (X @ self.whitener_[1] - self.whitener_[0]).astype(np.float32)
        if m == "none":
            Z = X
        elif m == "variance":
            Z = X[:, self.columns_]
        elif m == "autoencoder":
            import torch  # heavy: loaded only where tensors are used

            enc = self.model_
            dev = next(enc.parameters()).device
            with torch.no_grad():
                Z = enc(torch.as_tensor(X, device=dev)).cpu().numpy()
        else:
            Z = self.model_.transform(X)
        Z = np.asarray(Z, dtype=np.float32)
        return l2_normalize(Z) if self.normalize else Z

    def fit_transform(self, X: np.ndarray, labels=None) -> np.ndarray:
        return self.fit(X, labels).transform(X)

    # ------------------------------------------------------------------ methods

    def _fit_lda(self, X, labels, d):
        from sklearn.discriminant_analysis import LinearDiscriminantAnalysis  # heavy: loaded only by this method

        if labels is None:
            raise ValueError(
                "LDA needs item class labels (labels=array aligned with the items). This dataset has "
                "none (Beauty: the paper's class column is in the authors' unavailable embedding files); "
                "pass labels='kmeans' for k-means pseudo-classes (a documented deviation)."
            )
        if isinstance(labels, str):
            if labels != "kmeans":
                raise ValueError(f"labels must be an array or 'kmeans', got {labels!r}")
            k = self.n_pseudo_classes or d + 1
            labels = kmeans_labels(X, min(k, len(X)), self.seed)
        labels = np.asarray(labels)
        if len(labels) != len(X):
            raise ValueError(f"LDA: {len(labels)} labels for {len(X)} items")
        n_classes = len(np.unique(labels))
        max_d = min(X.shape[1], n_classes - 1)
        if max_d < 1:
            raise ValueError("LDA needs at least 2 classes")
        if d > max_d:
            log.warning("LDA cannot reduce to %d > min(n_features, n_classes - 1) = %d; using %d", d, max_d, max_d)
            d = max_d
        self.lda_dim_ = d
        return LinearDiscriminantAnalysis(n_components=d).fit(X, labels)

    def _fit_autoencoder(self, X, d):
        import torch  # heavy: loaded only where tensors are used
        from torch import nn  # heavy: loaded only where tensors are used

        dev = resolve_device(self.device)
        g = torch.Generator().manual_seed(self.seed)
        torch.manual_seed(self.seed)
        widths = autoencoder_widths(X.shape[1], d)
        dims = [X.shape[1]] + widths
        enc = nn.Sequential(*[nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:])])
        back = dims[::-1]
        dec = nn.Sequential(*[nn.Linear(a, b) for a, b in zip(back[:-1], back[1:])])
        model = nn.Sequential(enc, dec).to(dev)
        opt = torch.optim.Adam(model.parameters(), lr=self.ae_lr)
        Xt = torch.as_tensor(X, device=dev)
        self.ae_losses_ = []
        for _ in range(self.ae_epochs):
            perm = torch.randperm(len(Xt), generator=g).to(dev)
            total = 0.0
            for a in range(0, len(Xt), self.ae_batch_size):
                xb = Xt[perm[a : a + self.ae_batch_size]]
                loss = ((model(xb) - xb) ** 2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item() * len(xb)
            self.ae_losses_.append(total / len(Xt))
        enc.eval()
        return enc


def _check(X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2:
        raise ValueError(f"expected a 2-D (items × dim) matrix, got shape {X.shape}")
    if not np.isfinite(X).all():
        bad = np.flatnonzero(~np.isfinite(X).all(axis=1))
        raise ValueError(f"{len(bad)} embedding row(s) contain NaN or inf (rows {bad[:5].tolist()})")
    return X


_CACHE: dict = {}  # content key → reduced matrix (in-process memo of reduce_embeddings)
_CACHE_MAX = 32


def _labels_key(labels):
    """Content of the LDA labels for the memo key: None, the string (e.g. "kmeans"), the
    numeric array, or the JSON of an object array (class names)."""
    if labels is None or isinstance(labels, str):
        return labels
    lab = np.asarray(labels)
    return canonical_json(lab.tolist()) if lab.dtype.kind == "O" else lab


def reduce_embeddings(X: np.ndarray, method: str | None = "pca", dim: int | None = None, *,
                      normalize: bool = True, seed: int = 0, labels=None, cache: bool = True,
                      **options) -> np.ndarray:
    """Fit a :class:`Reducer` on ``X`` ((n, D) float32, rows = items) and return the reduced
    rows of ``X``: (n, d) float32 (d possibly clipped, see the module docstring).

    Results are memoised in-process by the *content* of everything they depend on: the bytes
    of X, method, dim, normalize, seed, the labels (array content, or "kmeans") and every
    option, so a grid over aggregation / similarity does not refit the same reduction and a
    changed input never reuses a stale one. Hits return a copy. Raises ``ValueError`` on an
    unknown method, a missing dim / labels, NaN/inf rows; ``TypeError`` on an unknown option.
    """
    r = Reducer(method, dim, normalize=normalize, seed=seed, labels=labels, **options)
    key = None
    if cache:
        X = np.ascontiguousarray(X, dtype=np.float32)
        key = short_hash(X, r.method, dim, normalize, seed, _labels_key(labels), sorted(options.items()))
        if key in _CACHE:
            return _CACHE[key].copy()
    Z = r.fit_transform(X)
    if key is not None:
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.clear()
        _CACHE[key] = Z.copy()
    return Z


__all__ = ["METHODS", "Reducer", "WHITENED", "fit_whitener", "autoencoder_widths", "kmeans_labels", "l2_normalize", "reduce_embeddings"]
