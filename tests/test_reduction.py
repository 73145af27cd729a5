"""Dimensionality reduction: every method's shape, normalisation, seeding and errors."""
from __future__ import annotations

import numpy as np
import pytest

from rec_utils.text import Reducer, autoencoder_widths, reduce_embeddings


@pytest.fixture(scope="module")
def X():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((300, 48)).astype(np.float32)
    base[:, :4] *= 10  # four high-variance dims
    return base


@pytest.mark.parametrize("method", ["pca", "random", "variance", "autoencoder"])
def test_shapes_and_normalisation(X, method):
    Z = reduce_embeddings(X, method, 16, seed=0, cache=False)
    assert Z.shape == (300, 16) and Z.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1, atol=1e-5)
    raw = reduce_embeddings(X, method, 16, seed=0, normalize=False, cache=False)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1)


def test_pca_matches_sklearn_and_seeds(X):
    from sklearn.decomposition import PCA

    Z = reduce_embeddings(X, "pca", 8, normalize=False, cache=False)
    ref = PCA(8).fit_transform(X)
    np.testing.assert_allclose(np.abs(Z), np.abs(ref), rtol=1e-3, atol=1e-3)
    a = reduce_embeddings(X, "random", 8, seed=1, cache=False)
    b = reduce_embeddings(X, "random", 8, seed=1, cache=False)
    c = reduce_embeddings(X, "random", 8, seed=2, cache=False)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_variance_keeps_highest_variance_dims(X):
    r = Reducer("variance", 4, normalize=False).fit(X)
    assert r.columns_.tolist() == [0, 1, 2, 3]
    np.testing.assert_array_equal(r.transform(X), X[:, :4])


def test_lda_labels_clip_and_kmeans(X):
    with pytest.raises(ValueError, match="labels='kmeans'"):
        reduce_embeddings(X, "lda", 8)
    labels = np.arange(300) % 4  # 4 classes → at most 3 dims
    r = Reducer("lda", 8, labels=labels).fit(X)
    assert r.lda_dim_ == 3 and r.transform(X).shape == (300, 3)
    Z = reduce_embeddings(X, "lda", 5, labels="kmeans", cache=False)
    assert Z.shape == (300, 5)


def test_autoencoder_architecture_and_training(X):
    assert autoencoder_widths(1536, 64) == [1024, 512, 256, 128, 64]
    assert autoencoder_widths(384, 64) == [256, 128, 64]
    r = Reducer("autoencoder", 16, ae_epochs=30, ae_batch_size=64, normalize=False, device="cpu").fit(X)
    assert r.ae_losses_[-1] < r.ae_losses_[0]
    assert [m.out_features for m in r.model_] == [32, 16]


def test_errors_and_clipping(X):
    bad = X.copy()
    bad[5, 3] = np.nan
    with pytest.raises(ValueError, match=r"NaN or inf \(rows \[5\]\)"):
        reduce_embeddings(bad, "pca", 8)
    with pytest.raises(ValueError, match="unknown reduction"):
        Reducer("tsne", 8)
    with pytest.warns(UserWarning, match="dim 512 > input dimension 48"):
        Z = Reducer("pca", 512).fit_transform(X)
    assert Z.shape == (300, 48)
    none = reduce_embeddings(X, None)
    np.testing.assert_allclose(np.linalg.norm(none, axis=1), 1, atol=1e-5)


def test_pca_whitening(X):
    Z = reduce_embeddings(X, "pca", 8, whiten=True, normalize=False, cache=False)
    np.testing.assert_allclose(Z.var(axis=0, ddof=1), 1, rtol=1e-3)
    with pytest.raises(TypeError):
        reduce_embeddings(X, "pca", 8, no_such_option=1, cache=False)


def test_memo_is_keyed_by_content(X, monkeypatch):
    from rec_utils.text import reduction

    fits = []
    real = Reducer.fit_transform
    monkeypatch.setattr(Reducer, "fit_transform", lambda self, X, labels=None: fits.append(self.method) or real(self, X, labels))
    reduction._CACHE.clear()
    a = reduce_embeddings(X, "pca", 8)
    b = reduce_embeddings(X.copy(), "pca", 8)  # same content, another array: reused
    assert len(fits) == 1
    np.testing.assert_array_equal(a, b)
    b[:] = 0  # a hit is a copy: the memo cannot be corrupted by a caller
    np.testing.assert_array_equal(reduce_embeddings(X, "pca", 8), a)
    X2 = X.copy()
    X2[7, 3] += 1e-3  # one changed value: recomputed
    reduce_embeddings(X2, "pca", 8)
    assert len(fits) == 2
    for kw in ({"dim": 6}, {"normalize": False}, {"seed": 1}, {"whiten": True}):  # each option counts
        reduce_embeddings(X, "pca", **{"dim": 8, **kw})
    assert len(fits) == 6
    labels = np.arange(300) % 4
    reduce_embeddings(X, "lda", 3, labels=labels)
    reduce_embeddings(X, "lda", 3, labels=labels.copy())  # same label content: reused
    assert len(fits) == 7
    other = labels.copy()
    other[:10] = (other[:10] + 1) % 4  # same length and classes, other content: recomputed
    reduce_embeddings(X, "lda", 3, labels=other)
    names = np.array(["a", "b", "c", "d"], dtype=object)[labels]
    reduce_embeddings(X, "lda", 3, labels=names)
    reduce_embeddings(X, "lda", 3, labels=names.copy())
    assert len(fits) == 9
    reduce_embeddings(X, "pca", 8, cache=False)
    assert len(fits) == 10
