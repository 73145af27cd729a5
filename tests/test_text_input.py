"""Item text that cannot be embedded as it is: an all-empty title column is refused with the
file and column named (not a numpy error later), and texts longer than the local model reads
are counted and warned about (exactly with the model's tokenizer, else a word-count bound)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import write_dataset
from rec_utils.data import DataValidationError, DataWarning, item_texts, load_dataset
from rec_utils.text import EmbeddingError, embed_items
from rec_utils.text.cache import EmbeddingCache, embed_with_cache
from rec_utils.text.texts import TextTruncationWarning, count_too_long, text_hashes, warn_too_long


def test_all_empty_title_column_is_refused_naming_file_and_column(tmp_path):
    folder = write_dataset(tmp_path / "untitled", [(0, 1, 1), (0, 2, 2), (1, 3, 3)],
                           items=[(1, ""), (2, "  "), (3, "&quot;")])
    with pytest.warns(DataWarning, match="2 item"):  # "&quot;" is a title until cleaned
        ds = load_dataset(folder)
    with pytest.raises(DataValidationError, match=r"untitled/items\.csv: column 'title' is empty in every one of the "
                                                  r"3 rows \(item_id 1 \.\.\. 3; with clean=.reference.\)"):
        item_texts(ds)
    assert item_texts(ds, clean="none").tolist() == ["", "", "&quot;"]  # not empty without the clean-up


def test_all_empty_texts_never_become_an_all_zero_matrix_from_the_cache(tmp_path):
    cache = EmbeddingCache(tmp_path, "test", "m")
    cache.put(text_hashes(["something"]), np.ones((1, 3), np.float32))  # a cache that holds vectors
    with pytest.raises(EmbeddingError, match="all 2 item texts are empty: nothing to embed"):
        embed_with_cache(np.array(["", ""], dtype=object), lambda t: np.ones((len(t), 3)), cache)


def _pieces(texts):
    """A stand-in tokenizer: one piece per word plus [CLS] and [SEP]."""
    return [len(t.split()) + 2 for t in texts]


def test_too_long_texts_are_counted_by_tokenizer_or_by_a_word_bound():
    # 256 and 257 pieces by _pieces; a 1000-character word is one piece there, 334 by a
    # tokenizer that cuts every 3 characters, and never certain by the word bound
    texts = ["short title", "w " * 254, "w " * 255, "x" * 1000]
    assert count_too_long(texts, 256, _pieces) == (1, True)
    assert count_too_long(texts, 256, lambda t: [-(-len(x.replace(" ", "")) // 3) + 2 for x in t]) == (1, True)
    assert count_too_long(texts[3:], 256, lambda t: [-(-len(x) // 3) + 2 for x in t]) == (1, True)
    assert count_too_long(texts, 256) == (1, False)  # the bound: only > 254 words is certain
    assert count_too_long(["a" * 254, ""], 256, lambda t: pytest.fail("no candidate to tokenize")) == (0, True)
    with pytest.warns(TextTruncationWarning, match=r"^1 of 4 item texts are longer than m reads \(256 word pieces\)"):
        assert warn_too_long(texts, 256, _pieces, "m") == 1
    with pytest.warns(TextTruncationWarning, match=r"^at least \(a word-count bound; no tokenizer\) 1 of 4"):
        warn_too_long(texts, 256, None, "m")


def test_embed_items_warns_with_the_minilm_tokenizer_count(tmp_path, monkeypatch):
    from rec_utils.text import local

    monkeypatch.setattr(local, "encode", lambda texts, folder, **kw: np.ones((len(texts), 4), np.float32))
    texts = pd.Series({1: "Rosewater toner", 2: "lipstick " * 300, 3: ""})
    with pytest.warns(TextTruncationWarning, match=r"^1 of 2 item texts are longer than .*all-MiniLM-L6-v2 reads "
                                                   r"\(256 word pieces\)"):
        e = embed_items(texts, cache_dir=tmp_path, show_progress=False, device="cpu")
    assert e.info["n_too_long"] == 1
