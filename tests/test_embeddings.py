"""embed_items: local model, content-keyed caches (texts, model folders, OpenAI server), the
file provider's validation and errors, ItemEmbeddings' alignment by id, and the OpenAI path end
to end against a stub server on 127.0.0.1."""
from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from openai_stub import OpenAIStub, stub_vector  # noqa: E402

from rec_utils.data import clean_title, item_texts, load_dataset  # noqa: E402
from rec_utils.text import EmbeddingError, ItemEmbeddings, embed_items, read_embedding_file, text_hash  # noqa: E402

TEXTS = pd.Series({3: "Lego City Fire Station", 1: "Lego Police Car", 7: "Dog food", 9: "",
                   4: "Shampoo for dry hair"})


# ----------------------------------------------------------------------------- local model + cache


@pytest.fixture(scope="module")
def minilm_run(tmp_path_factory):
    cache = tmp_path_factory.mktemp("emb-cache")
    first = embed_items(TEXTS, cache_dir=cache, show_progress=False, device="cpu")
    return cache, first


def test_minilm_semantics_and_missing_text(minilm_run):
    _, e = minilm_run
    assert e.dim == 384 and e.vectors.dtype == np.float32
    assert e.item_ids.tolist() == [1, 3, 4, 7, 9]  # sorted ids
    assert e.missing_text.tolist() == [False, False, False, False, True]
    assert not e.vectors[e.positions([9])[0]].any(), "no text → zero vector"
    v = {i: e.lookup([i])[0] for i in (1, 3, 7)}
    assert np.allclose(np.linalg.norm(v[1]), 1, atol=1e-4)
    assert v[3] @ v[1] > 0.35 > v[3] @ v[7]  # fire station ~ police car, not dog food
    assert e.info["n_embedded"] == 4 and e.info["n_cached"] == 0


def test_cache_second_run_and_changed_title(minilm_run):
    cache, first = minilm_run
    again = embed_items(TEXTS, cache_dir=cache, show_progress=False)
    assert again.info["n_embedded"] == 0 and again.info["n_cached"] == 4
    np.testing.assert_array_equal(again.vectors, first.vectors)
    changed = TEXTS.copy()
    changed[7] = "Dry dog food for puppies"
    e2 = embed_items(changed, cache_dir=cache, show_progress=False)
    assert e2.info["n_embedded"] == 1 and e2.info["n_cached"] == 3
    np.testing.assert_array_equal(e2.lookup([1, 3, 4]), first.lookup([1, 3, 4]))
    assert not np.allclose(e2.lookup([7]), first.lookup([7]))
    with pytest.raises(EmbeddingError, match="no embedding"):
        e2.lookup([12345])


def test_unknown_local_model_is_a_clear_error(tmp_path):
    with pytest.raises(EmbeddingError, match="not available offline"):
        embed_items(TEXTS, model="no-such-org/no-such-model", cache_dir=tmp_path, show_progress=False)


# ----------------------------------------------------------------------------- texts


def test_item_text_builders():
    beauty = load_dataset("beauty")
    t = item_texts(beauty)
    assert len(t) == 12101 and (t == "").sum() == 7
    raw = pd.Series(["A &amp; B&nbsp;C&trade;", "x  &#9733;y &egrave;"])
    assert clean_title(raw, "reference").tolist() == ["A  and  B C", "x  &#9733;y &egrave;"]
    assert clean_title(raw, "unescape").tolist() == ["A and B C", "x ★y è"]
    assert clean_title(raw, "none").tolist() == raw.tolist()
    ml = item_texts(load_dataset("ml-latest-small"))
    assert ml.loc[1] == "Toy Story (1995) (Adventure, Animation, Children, Comedy, Fantasy)"
    steam = pd.read_csv("data/steam_items_only/items.csv", dtype=str, keep_default_na=False)
    steam["item_id"] = steam["item_id"].astype(int)
    st = item_texts(steam)
    assert st.loc[1].startswith("Fallout 4. Categories: RPG. Tags: Action, Action RPG")


# ----------------------------------------------------------------------------- file provider


def _write_authors_csv(path, rows):
    with gzip.open(path, "wt") as f:
        f.write("ItemId,embedding,class\n")
        for iid, vec in rows:
            f.write(f'{iid},"{json.dumps(vec)}",0\n')


def test_file_provider_reads_authors_format(tmp_path):
    p = tmp_path / "product_embeddings_openai.csv.gz"
    _write_authors_csv(p, [(i, [float(i), 1.0, 0.0]) for i in (1, 3, 4, 7, 9, 11)])
    e = embed_items(TEXTS, "file", path=p)
    assert e.item_ids.tolist() == [1, 3, 4, 7, 9] and e.dim == 3
    np.testing.assert_allclose(e.lookup([7]), [[7, 1, 0]])
    assert e.missing_text.tolist() == [False, False, False, False, True]


@pytest.mark.parametrize("rows,match", [
    ([(1, [1.0, 2.0]), (3, [1.0, 2.0])], r"3 item\(s\) of the catalogue have no vector, e.g. \[4, 7, 9\]"),
    ([(i, [1.0, 2.0]) for i in (1, 3, 4, 7)] + [(9, [1.0, 2.0, 3.0])], "different dimensions"),
    ([(i, [1.0, 2.0]) for i in (1, 3, 4, 7)] + [(9, [float("nan"), 2.0])], r"NaN or inf, e.g. item\(s\) \[9\]"),
    ([(i, [1.0, 2.0]) for i in (1, 3, 4, 7, 9, 9)], "duplicate item ids"),
])
def test_file_provider_validation(tmp_path, rows, match):
    p = tmp_path / "emb.csv.gz"
    _write_authors_csv(p, rows)
    with pytest.raises(EmbeddingError, match=match):
        embed_items(TEXTS, "file", path=p)


def test_file_provider_npz_and_dim(tmp_path):
    p = tmp_path / "emb.npz"
    np.savez(p, item_ids=np.array([9, 7, 4, 3, 1]), vectors=np.eye(5, dtype=np.float32))
    ids, vecs = read_embedding_file(p, item_ids=[1, 3])
    assert ids.tolist() == [1, 3] and vecs.shape == (2, 5)
    with pytest.raises(EmbeddingError, match="expected 4"):
        read_embedding_file(p, dim=4)
    with pytest.raises(EmbeddingError, match="needs path"):
        embed_items(TEXTS, "file")


# ----------------------------------------------------------------------------- openai via stub


def test_openai_without_key_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(EmbeddingError, match="OPENAI_API_KEY"):
        embed_items(TEXTS, "openai", cache_dir=tmp_path, show_progress=False)


def test_openai_end_to_end_batching_retry_ledger_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    texts = pd.Series({i: f"product number {i}" for i in range(7)} | {7: ""})
    with OpenAIStub(dim=8) as stub:
        stub.fail_plan = [429, 503]  # a rate limit, then a transient server error
        e = embed_items(texts, "openai", "text-embedding-ada-002", api_key="sk-test", base_url=stub.base_url,
                        batch_size=3, cache_dir=tmp_path, retry_base_s=0.01, show_progress=False)
        # 7 texts with text → 3 batches (3, 3, 1) + 2 retried requests
        assert len(stub.requests) == 5
        ok = stub.requests[2:]
        assert [len(r["input"]) for r in ok] == [3, 3, 1]
        assert all(r["model"] == "text-embedding-ada-002" and r["encoding_format"] == "float" for r in stub.requests)
        assert {k.lower(): v for k, v in stub.headers[0].items()}["authorization"] == "Bearer sk-test"
        assert "" not in sum((r["input"] for r in ok), [])  # empty text never sent
        for i in range(7):  # out-of-order response data re-sorted by index
            np.testing.assert_allclose(e.lookup([i])[0], stub_vector(f"product number {i}", 8), rtol=1e-6)
        assert not e.lookup([7]).any() and e.missing_text[e.positions([7])[0]]
        assert e.info["requests"] == 5 and e.info["retries"] == 2
        assert e.info["prompt_tokens"] == 7 * 4
        ledger = pd.read_csv(next(tmp_path.rglob("ledger.csv")))
        assert ledger.iloc[-1][["texts", "requests", "retries", "prompt_tokens"]].tolist() == [7, 5, 2, 28]
        assert ledger.iloc[-1]["cost_usd"] == pytest.approx(28 / 1e6 * 0.10)
        # second run: everything from the cache, no request, no key needed
        n = len(stub.requests)
        again = embed_items(texts, "openai", "text-embedding-ada-002", base_url=stub.base_url,
                            cache_dir=tmp_path, show_progress=False)
        assert len(stub.requests) == n and again.info["n_embedded"] == 0
        np.testing.assert_array_equal(again.vectors, e.vectors)
        # a changed text: one request with one input
        texts[3] = "a new title"
        e3 = embed_items(texts, "openai", "text-embedding-ada-002", api_key="sk-test", base_url=stub.base_url,
                         cache_dir=tmp_path, show_progress=False)
        assert len(stub.requests) == n + 1 and stub.requests[-1]["input"] == ["a new title"]
        assert e3.info["n_embedded"] == 1


def test_openai_gives_up_and_does_not_retry_client_errors(tmp_path):
    texts = pd.Series({1: "a", 2: "b"})
    with OpenAIStub() as stub:
        stub.fail_plan = [500] * 10
        with pytest.raises(EmbeddingError, match="giving up after 3 attempts"):
            embed_items(texts, "openai", api_key="k", base_url=stub.base_url, cache_dir=tmp_path,
                        max_retries=2, retry_base_s=0.001, show_progress=False)
        assert len(stub.requests) == 3
        stub.fail_plan = [400]
        with pytest.raises(EmbeddingError, match="request failed"):
            embed_items(texts, "openai", api_key="k", base_url=stub.base_url, cache_dir=tmp_path,
                        retry_base_s=0.001, show_progress=False)
        assert len(stub.requests) == 4  # a 400 is not retried
        ledger = pd.read_csv(next(tmp_path.rglob("ledger.csv")))
        assert len(ledger) == 2 and ledger["prompt_tokens"].sum() == 0


def test_cache_shards_compaction_and_broken_shard(tmp_path):
    from rec_utils.text import EmbeddingCache

    c = EmbeddingCache(tmp_path, "p", "m")
    hashes = [text_hash(f"t{i}") for i in range(20)]
    for i, h in enumerate(hashes):  # 20 single-vector writes → compacted past 16 shards
        c.put(np.array([h]), np.full((1, 3), i, np.float32))
    assert len(list(c.dir.glob("shard-*.npz"))) <= 16
    (c.dir / "shard-zzzz.npz").write_bytes(b"not a zip")  # a torn file is ignored, not fatal
    fresh = EmbeddingCache(tmp_path, "p", "m")
    found, vecs = fresh.get(np.array(hashes[::-1]))
    assert found.all() and vecs[:, 0].tolist() == list(range(19, -1, -1))


# ----------------------------------------------------------------------------- ItemEmbeddings alignment


def test_item_embeddings_sorts_rows_by_id():
    texts = pd.Series({3: "c", 1: "a", 2: ""})
    e = ItemEmbeddings(np.array([3, 1, 2]), np.array([[1, 0], [0, 1], [0.6, 0.8]]),
                       np.array([False, False, True]), texts=texts)
    assert e.item_ids.tolist() == [1, 2, 3] and e.vectors.dtype == np.float32
    np.testing.assert_array_equal(e.vectors, np.array([[0, 1], [0.6, 0.8], [1, 0]], np.float32))
    assert e.missing_text.tolist() == [False, True, False]
    assert e.texts.index.tolist() == [1, 2, 3] and e.texts.tolist() == ["a", "", "c"]
    np.testing.assert_array_equal(e.lookup([3, 1]), [[1, 0], [0, 1]])  # raised "no embedding" before
    assert e.positions([2, 7]).tolist() == [1, -1]
    assert e.subset([3, 2]).item_ids.tolist() == [2, 3]


@pytest.mark.parametrize("ids,vectors,missing,match", [
    ([5, 1, 5, 1, 2], np.zeros((5, 2)), None, r"2 duplicate item id\(s\) in the embeddings, e.g. \[1, 5\]"),
    ([1, 2, 3], np.zeros((2, 2)), None, "2 vector rows for 3 item ids"),
    ([1, 2], np.zeros(2), None, "2-D"),
    ([1, 2], np.zeros((2, 1, 3)), None, "2-D"),
    ([1, 2], np.zeros((2, 2)), [True], "missing_text has shape"),
    ([1.5, 2], np.zeros((2, 2)), None, "must be integers"),
])
def test_item_embeddings_validation(ids, vectors, missing, match):
    with pytest.raises(EmbeddingError, match=match):
        ItemEmbeddings(np.asarray(ids), vectors, missing)


def test_item_embeddings_texts_must_match_ids():
    with pytest.raises(EmbeddingError, match="texts"):
        ItemEmbeddings(np.array([1, 2]), np.zeros((2, 2)), texts=pd.Series({1: "a", 3: "b"}))


# ----------------------------------------------------------------------------- cache keys by content


@pytest.fixture
def fake_encoder(monkeypatch):
    """Replaces the sentence-transformers forward pass; counts calls and texts."""
    from rec_utils.text import local

    calls = []

    def encode(texts, folder, **kw):
        calls.append((folder, list(texts)))
        return np.stack([np.frombuffer(text_hash(t).encode()[:16], np.uint8).astype(np.float32) for t in texts])

    monkeypatch.setattr(local, "encode", encode)
    return calls


def _model_folder(path, weights=b"weights-v1"):
    (path / "1_Pooling").mkdir(parents=True)
    (path / "config.json").write_text('{"dim": 16}')
    (path / "1_Pooling" / "config.json").write_text("{}")
    (path / "model.safetensors").write_bytes(weights)
    return path


def test_local_model_cache_is_keyed_by_folder_content(tmp_path, fake_encoder):
    cache = tmp_path / "cache"
    a = _model_folder(tmp_path / "a")
    e1 = embed_items(TEXTS, model=str(a), cache_dir=cache, show_progress=False)
    assert e1.info["n_embedded"] == 4 and len(fake_encoder) == 1
    e2 = embed_items(TEXTS, model=str(a), cache_dir=cache, show_progress=False)  # same folder: reused
    assert e2.info["n_embedded"] == 0 and e2.info["n_cached"] == 4 and len(fake_encoder) == 1
    b = _model_folder(tmp_path / "elsewhere" / "b")  # same files, other path and name: reused
    e3 = embed_items(TEXTS, model=str(b), cache_dir=cache, show_progress=False)
    assert e3.info["n_embedded"] == 0 and e3.info["model_key"] == e1.info["model_key"] and len(fake_encoder) == 1
    (a / "model.safetensors").write_bytes(b"weights-v2, retrained")  # changed weights: re-embedded
    e4 = embed_items(TEXTS, model=str(a), cache_dir=cache, show_progress=False)
    assert e4.info["n_embedded"] == 4 and len(fake_encoder) == 2 and e4.info["model_key"] != e1.info["model_key"]
    (a / "1_Pooling" / "config.json").write_text('{"pooling_mode_cls_token": true}')  # any file counts
    assert embed_items(TEXTS, model=str(a), cache_dir=cache, show_progress=False).info["n_embedded"] == 4
    e5 = embed_items(TEXTS, model=str(a), cache_dir=cache, normalize=False, show_progress=False)
    assert e5.info["n_embedded"] == 4  # another output normalisation is another key


def test_model_content_hash_is_memoised_by_mtime_and_size(tmp_path, monkeypatch):
    import hashlib
    import os

    from rec_utils.text import local, model_content_hash

    a = _model_folder(tmp_path / "a")
    reads = []
    real = hashlib.file_digest
    monkeypatch.setattr(local.hashlib, "file_digest", lambda fh, algo: reads.append(fh.name) or real(fh, algo))
    h = model_content_hash(a)
    assert len(reads) == 3 and model_content_hash(a) == h and len(reads) == 3  # memoised: files not read again
    st = (a / "config.json").stat()
    os.utime(a / "config.json", ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # touched, same bytes
    assert model_content_hash(a) == h and len(reads) == 6  # re-read (mtime changed), same content hash
    (a / "config.json").write_text('{"dim": 32}')
    assert model_content_hash(a) != h
    (a / "config.json").write_text('{"dim": 16}')
    assert model_content_hash(a) == h  # the key is the content, not the history


def test_packaged_minilm_key_is_its_content(minilm_run):
    from rec_utils.text import model_content_hash, resolve_local_model

    _, e = minilm_run
    folder = resolve_local_model("all-MiniLM-L6-v2")
    assert folder == resolve_local_model("sentence-transformers/all-MiniLM-L6-v2")
    assert e.info["model_key"].startswith("local-")
    again = embed_items(TEXTS, model=folder, cache_dir=minilm_run[0], show_progress=False)  # by path: same cache
    assert again.info["model_key"] == e.info["model_key"] and again.info["n_embedded"] == 0
    assert len(model_content_hash(folder)) == 12


def test_openai_key_is_model_dimensions_and_host(tmp_path):
    texts = pd.Series({1: "a b", 2: "c"})
    with OpenAIStub(dim=8) as stub:
        kw = dict(api_key="k", cache_dir=tmp_path, show_progress=False)
        e1 = embed_items(texts, "openai", "text-embedding-3-small", base_url=stub.base_url, **kw)
        assert e1.info["n_embedded"] == 2 and len(stub.requests) == 1
        again = embed_items(texts, "openai", "text-embedding-3-small", base_url=stub.base_url, **kw)
        assert again.info["n_embedded"] == 0 and len(stub.requests) == 1
        other_host = stub.base_url.replace("127.0.0.1", "localhost")
        e2 = embed_items(texts, "openai", "text-embedding-3-small", base_url=other_host, **kw)
        assert e2.info["n_embedded"] == 2 and len(stub.requests) == 2
        e3 = embed_items(texts, "openai", "text-embedding-3-small", base_url=stub.base_url, dimensions=4, **kw)
        assert e3.info["n_embedded"] == 2 and e3.dim == 4
        e4 = embed_items(texts, "openai", "text-embedding-3-large", base_url=stub.base_url, **kw)
        assert e4.info["n_embedded"] == 2
        assert len({e.info["model_key"] for e in (e1, e2, e3, e4)}) == 4


# ----------------------------------------------------------------------------- file errors, missing text


def test_corrupt_and_truncated_files_name_the_file(tmp_path):
    not_gz = tmp_path / "product_embeddings_openai.csv.gz"
    not_gz.write_text('ItemId,embedding\n1,"[1.0, 2.0]"\n')  # plain text under a .gz name
    with pytest.raises(EmbeddingError, match=rf"{not_gz}: cannot read the file \(BadGzipFile"):
        read_embedding_file(not_gz)
    full = tmp_path / "full.csv.gz"
    _write_authors_csv(full, [(i, [float(i)] * 64) for i in range(200)])
    truncated = tmp_path / "truncated.csv.gz"
    truncated.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(EmbeddingError, match=rf"{truncated}: cannot read the file \(EOFError"):
        embed_items(pd.Series({1: "a"}), "file", path=truncated)
    npz = tmp_path / "emb.npz"
    np.savez(npz, item_ids=np.arange(50), vectors=np.ones((50, 8), np.float32))
    cut = tmp_path / "cut.npz"
    cut.write_bytes(npz.read_bytes()[:300])
    with pytest.raises(EmbeddingError, match=rf"{cut}: cannot read the file"):
        read_embedding_file(cut)


def test_items_without_text_are_counted_and_logged(tmp_path, caplog, fake_encoder):
    import logging

    with caplog.at_level(logging.WARNING, logger="rec_utils.text.embed"):
        e = embed_items(TEXTS, model=str(_model_folder(tmp_path / "m")), cache_dir=tmp_path / "c",
                        show_progress=False)
    assert e.info["n_missing_text"] == 1 and e.missing_text.sum() == 1
    assert "1 of 5 items have no text" in caplog.text
    assert sum(len(t) for _, t in fake_encoder) == 4 and "" not in fake_encoder[0][1]
    p = tmp_path / "emb.npz"
    np.savez(p, item_ids=np.array([1, 3, 4, 7, 9]), vectors=np.ones((5, 3), np.float32))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rec_utils.text.embed"):
        f = embed_items(TEXTS, "file", path=p)
    assert f.info["n_missing_text"] == 1 and "1 of 5 items have no text" in caplog.text
