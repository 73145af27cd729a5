"""LLMSeqPrompt (rec_utils.llm): cases, formats, parsing and mapping, the constrained decoder,
fine-tuning and its cache, the recommender through run_seeds, and the OpenAI backend against the
local stub. Every model here is the tiny random Llama with the real SmolLM2 tokenizer: the
135 M model is never loaded."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rec_utils.data import load_dataset
from rec_utils.llm import cases as C
from rec_utils.llm.mapping import Catalogue, OutputStats, map_fuzzy, map_list, map_samples, parse_output
from rec_utils.models import LLMSeqPrompt
from rec_utils.text import ItemEmbeddings

sys.path.insert(0, str(Path(__file__).parent))
from openai_stub import OpenAIStub, stub_vector  # noqa: E402

WORDS = ["red", "blue", "green", "lipstick", "shampoo", "soap", "brush", "cream", "oil", "mask", "nail", "polish"]


def stub_embed(texts):
    return np.stack([stub_vector(t, 16) for t in texts])


def synthetic(tmp_path: Path, n_sessions: int = 60, n_items: int = 24, seed: int = 0):
    """A small dataset folder with named items (one unnamed) and day-spaced sessions."""
    from conftest import write_dataset

    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_sessions):
        items = rng.choice(n_items, size=rng.integers(3, 6), replace=False)
        rows += [(s, int(i), 86400 * s + j) for j, i in enumerate(items)]
    names = [(i, f"{WORDS[i % 12]} {WORDS[(i * 5 + 3) % 12]} {i}") for i in range(n_items)]
    names[-1] = (n_items - 1, "")
    return load_dataset(write_dataset(tmp_path / "synth", rows, names))


def embeddings_of(ds) -> ItemEmbeddings:
    ids = ds.items["item_id"].to_numpy()
    return ItemEmbeddings(ids, stub_embed([str(t) for t in ds.items["title"].fillna("")]))


@pytest.fixture
def names():
    return pd.Series(["Lego City Fire Station", "Lego Police Car", "Dog food", "", "Shampoo Extra"], index=[10, 11, 12, 13, 14])


# ---------------------------------------------------------------- cases and formats


def test_cases_come_from_train_sessions_without_unnamed_items_and_split_20_percent(names):
    train = pd.DataFrame({"session_id": [1, 1, 1, 2, 2, 2, 3, 3, 4, 4, 4, 4, 5, 5, 5],
                          "item_id": [10, 11, 12, 10, 13, 11, 10, 11, 12, 11, 10, 14, 14, 12, 10],
                          "timestamp": range(15)})
    cs = C.train_cases(train, names, seed=42)
    assert cs.info["dropped_unnamed"] == 1 and cs.info["dropped_short"] == 1  # session 2 (item 13), session 3
    assert sorted(cs.session_ids.tolist()) == [1, 4, 5]
    by = dict(zip(cs.session_ids.tolist(), zip(cs.prompts, cs.targets)))
    assert by[4][0].tolist() == [12, 11, 10] and by[4][1] == 14
    assert cs.is_val.sum() == round(0.2 * 3)
    again = C.train_cases(train, names, seed=42)
    assert again.session_ids.tolist() == cs.session_ids.tolist()


def test_genitem_target_is_the_item_name_not_its_id():
    msgs = C.messages("genitem", ["Lego City Fire Station"], answer=["Dog food"])
    assert [m["role"] for m in msgs] == ["system", "user", "assistant"]
    assert msgs[2]["content"] == "Dog food" and "Lego City Fire Station" in msgs[1]["content"]


def test_recsys23_format_numbers_names_and_ends_with_the_separator_and_marker():
    p = C.recsys23_prompt(["A", "B"])
    assert p == "1. A \n2. B \n" + "\n\n###\n\n" and C.answer_text("recsys23", "C") == " C ###"
    long = C.recsys23_prompt([f"item {i} " + "x" * 300 for i in range(40)])
    assert long.startswith("1. item 20 ") and long.count("\n") == 20 + 4  # only the last 20 items


def test_force_first_moves_or_prepends_the_true_item():
    assert C.force_first(np.array([5, 6, 7]), 6).tolist() == [6, 5, 7]
    assert C.force_first(np.array([5, 6, 7]), 9).tolist() == [9, 5, 6]


def test_genlist_answer_parses_back_to_its_names():
    text = C.answer_text("genlist", ["A b", "C d", "E"])
    assert parse_output(text, "genlist") == (["A b", "C d", "E"], False)


# ---------------------------------------------------------------- parsing


@pytest.mark.parametrize("text, variant, names, failed", [
    ("x\nBEGIN\n1. A\n2. B\nEND", "genlist", ["A", "B"], False),
    ("BEGIN\n1. A\n2. B", "genlist", ["A", "B"], True),  # no end marker: kept, counted
    ("A\nB", "classify", ["A", "B"], True),  # no numbering: lines, counted
    ("", "rank", [], True),
    ("   \n", "genitem", [], True),
    (b"\xff\xfe bad", "genitem", [], True),  # not UTF-8
    ("Dog food\nmore text", "genitem", ["Dog food"], False),
    (" Dog food ### 1. x", "recsys23", ["Dog food"], False),
    ("1. Dog food", "genitem", ["Dog food"], False),  # a numbered answer loses its number
    ("2.5% Benzoyl Gel", "genitem", ["2.5% Benzoyl Gel"], False),  # a name starting with a decimal keeps it
    ("2.0mm Derma Roller", "genitem", ["2.0mm Derma Roller"], False),
])
def test_malformed_outputs_are_counted_never_raised(text, variant, names, failed):
    assert parse_output(text, variant) == (names, failed)


# ---------------------------------------------------------------- mapping


@pytest.fixture
def catalogue():
    ids = np.arange(6)
    nm = pd.Series(["alpha", "beta", "gamma", "delta", "epsilon", "alpha"], index=ids)  # 0 and 5 share a name
    pop = pd.Series([1, 9, 8, 7, 6, 5], index=ids)
    return Catalogue(ids, nm, pop, stub_embed(list(nm)), stub_embed)


def test_a_shared_name_maps_to_its_most_popular_item(catalogue):
    assert catalogue.exact("alpha") == 5 and catalogue.exact(" alpha ") == 5 and catalogue.exact("zeta") == -1


def test_beam_names_are_matched_as_catalogue_names_never_parsed():
    """The constrained beam names catalogue items only: its names are matched as they are, so one
    that reads like a numbered answer ("3. Blush") is found, and none is hallucinated."""
    ids = np.arange(3)
    nm = pd.Series(["3. Blush", "2.0mm Roller", "Soap"], index=ids)
    cat = Catalogue(ids, nm, pd.Series([3, 2, 1], index=ids), stub_embed(list(nm)), stub_embed)
    recs, st = map_samples(["3. Blush", "2.0mm Roller"], cat, prompt_ids=[], k=2, names_given=True)
    assert recs == [0, 1] and st.hallucinated == 0
    recs, st = map_samples(["3. Blush"], cat, prompt_ids=[], k=1)  # as generated text, the number goes
    assert st.hallucinated == 1


def test_count_and_replace_keeps_a_duplicate_once_and_replaces_the_rest_by_neighbours(catalogue):
    recs, st = map_samples(["beta", "beta", "beta", "zeta", "gamma"], catalogue, prompt_ids=[3], k=6)
    assert recs[:2] == [1, 2]  # exact names, first-appearance order
    assert 3 not in recs and len(recs) == len(set(recs)) == 5  # prompt item never recommended; 5 left
    assert st.neighbours == 3  # beta: 2 more, zeta (hallucinated): 1
    s = st.shares()
    assert s["duplicate_share"] == pytest.approx(2 / 5) and s["hallucinated_share"] == pytest.approx(1 / 5)
    assert s["unique_share"] == pytest.approx(3 / 5) and s["valid_name_share"] == pytest.approx(4 / 5)


def test_a_prompt_item_named_by_the_model_is_replaced(catalogue):
    recs, st = map_samples(["delta"], catalogue, prompt_ids=[3], k=3)
    assert 3 not in recs and st.prompt_items == 1 and len(recs) == 3


def test_empty_samples_count_as_parse_failures_and_the_list_is_filled(catalogue):
    recs, st = map_samples(["", b"\xff", "beta"], catalogue, prompt_ids=[], k=4)
    assert st.parse_failures == 2 and recs[0] == 1 and len(recs) == 4 and st.filled >= 1


def test_genlist_maps_unknown_names_to_unused_neighbours(catalogue):
    recs, st = map_list("BEGIN\n1. gamma\n2. gamma\n3. zeta\nEND", catalogue, prompt_ids=[], k=3, fill="none")
    assert recs[0] == 2 and len(recs) == len(set(recs)) == 3 and st.duplicate == 1 and st.hallucinated == 1


def test_fuzzy_mapping_falls_back_to_the_next_best_unused_match(catalogue):
    recs, st = map_fuzzy("1. gamma\n2. gamm\n3. delt", [2, 3, 4], catalogue, prompt_ids=[], k=3)
    assert recs == [2, 3, 4][:len(recs)] and recs[0] == 2 and len(set(recs)) == len(recs) == 3
    assert st.fuzzy == 2


def test_rank_output_is_a_reordering_of_the_candidates(catalogue):
    recs, _ = map_fuzzy("1. epsilon\n2. beta", [1, 2, 4], catalogue, prompt_ids=[], k=3, append_rest=True)
    assert recs == [4, 1, 2]


# ---------------------------------------------------------------- local model, decoding, fine-tuning


@pytest.fixture(scope="module")
def tok():
    from rec_utils.llm.local import load_tokenizer

    return load_tokenizer("tiny-random")


def test_prepare_torch_flushes_denormals():
    import torch

    from rec_utils.llm.local import prepare_torch

    prepare_torch()
    assert (torch.tensor([1e-39], dtype=torch.float32) * 1.0).item() == 0.0


def test_constrained_beam_search_names_only_catalogue_items(tok):
    from rec_utils.llm.local import load_model

    names, scores = _toy_beam(tok, load_model("tiny-random", tok, seed=1))
    assert names


TOY_CATALOGUE = ["Lego City Fire Station", "Lego City Police Car", "Dog food", "Shampoo Extra Long Name For Hair", "Soap"]


def _toy_beam(tok, lm):
    """Constrained beam (4 beams) of ``lm`` over :data:`TOY_CATALOGUE` for two prompts, checked:
    only catalogue names, each once, best first."""
    from rec_utils.llm.generate import NameTrie, constrained_beam

    trie = NameTrie.from_names(tok, TOY_CATALOGUE, tok.eos_token_id)
    p = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    names, scores = constrained_beam(lm, tok, [p, p + "more"], trie, num_beams=4, progress=False)
    for row, sc in zip(names, scores):
        assert row and set(row) <= set(TOY_CATALOGUE) and len(set(row)) == len(row)
        assert sc == sorted(sc, reverse=True)
    return names, scores


def test_sampling_returns_n_answers_per_prompt(tok):
    from rec_utils.llm.generate import sample
    from rec_utils.llm.local import load_model

    lm = load_model("tiny-random", tok)
    p = tok.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    out = sample(lm, tok, [p, p, p], n=3, temperature=1.0, max_new_tokens=4, progress=False)
    assert [len(o) for o in out] == [3, 3, 3] and all(isinstance(t, str) for o in out for t in o)


def test_finished_samples_leave_the_batch_without_changing_the_others_logits(tok):
    """The sampler drops finished rows from the shared key/value cache; the live rows must see the
    same logits as in the full batch."""
    import torch

    from rec_utils.llm.generate import _prefill, _step
    from rec_utils.llm.local import load_model

    lm = load_model("tiny-random", tok, seed=3).eval()
    p = tok.apply_chat_template([{"role": "user", "content": "hi there"}], tokenize=False, add_generation_prompt=True)
    with torch.no_grad():
        full, cache_full = _prefill(lm, tok, p)
        part, cache_part = _prefill(lm, tok, p)
        for c in (cache_full, cache_part):
            c.batch_repeat_interleave(3)
        first = torch.tensor([11, 12, 13])
        full, _ = _step(lm, first, cache_full)
        _step(lm, first, cache_part)
        second = torch.tensor([21, 22, 23])
        full, _ = _step(lm, second, cache_full)
        cache_part.batch_select_indices(torch.tensor([0, 2]))
        part, _ = _step(lm, second[[0, 2]], cache_part)
    assert torch.allclose(part, full[[0, 2]], atol=1e-5)


CATALOGUE = ["Lego City Fire Station", "Lego City Police Car", "Dog food", "Shampoo Extra Long Name For Hair", "Soap",
             "Lego", "Dog toy", "Dog food bowl", "Soap bar", "Shampoo"]


@pytest.fixture(scope="module")
def spread_lm(tok):
    """The tiny Llama with its LM head scaled x20: log-probabilities spread over several nats (the
    plain tiny model's are all within ~1e-3 of -log V, where float noise decides every order)."""
    import torch

    from rec_utils.llm.local import tiny_random_model

    lm = tiny_random_model(len(tok), 1, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id).eval()
    with torch.no_grad():
        lm.lm_head.weight.mul_(20)
    return lm


def prompts_of_several_lengths(tok, n=7):
    return [tok.apply_chat_template([{"role": "user", "content": "hi " * k}], tokenize=False, add_generation_prompt=True)
            for k in range(1, n + 1)]


def test_batched_beam_search_finds_the_sequential_searchs_names_and_scores(tok, spread_lm):
    """Prompts of 7 lengths in padded batches of 3 (left padding, rows leaving the batch): per
    prompt the same names in the same order as one prompt at a time, the same log-probabilities
    up to float noise."""
    from rec_utils.llm.generate import NameTrie, constrained_beam, constrained_beam_sequential

    trie = NameTrie.from_names(tok, CATALOGUE, tok.eos_token_id)
    ps = prompts_of_several_lengths(tok, 5)
    ref_names, ref_scores = constrained_beam_sequential(spread_lm, tok, ps, trie, num_beams=4, progress=False)
    names, scores = constrained_beam(spread_lm, tok, ps, trie, num_beams=4, progress=False, batch_size=3)
    assert names == ref_names
    assert np.allclose(np.concatenate(scores), np.concatenate(ref_scores), atol=1e-4)


def test_batched_beam_search_breaks_exact_ties_by_the_same_rule(tok):
    """An LM head of zeros makes every token equally likely: every order is decided by the tie rule
    (smaller token id, then earlier beam), which must be the sequential search's."""
    import torch

    from rec_utils.llm.generate import NameTrie, constrained_beam, constrained_beam_sequential
    from rec_utils.llm.local import tiny_random_model

    lm = tiny_random_model(len(tok), 2, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id).eval()
    with torch.no_grad():
        lm.lm_head.weight.zero_()
    trie = NameTrie.from_names(tok, CATALOGUE, tok.eos_token_id)
    ps = prompts_of_several_lengths(tok, 4)
    ref = constrained_beam_sequential(lm, tok, ps, trie, num_beams=4, progress=False)
    assert constrained_beam(lm, tok, ps, trie, num_beams=4, progress=False, batch_size=4) == ref


def test_catalogue_scores_are_a_distribution_over_the_catalogue(tok, spread_lm):
    """scores="catalogue" renormalises each step over the tokens the trie allows: with a beam as
    wide as the catalogue every name is found, and their probabilities sum to 1 (the full scores,
    log P(name | prompt), sum to less)."""
    from rec_utils.llm.generate import NameTrie, constrained_beam

    trie = NameTrie.from_names(tok, CATALOGUE, tok.eos_token_id)
    ps = prompts_of_several_lengths(tok, 2)
    names, scores = constrained_beam(spread_lm, tok, ps, trie, num_beams=len(CATALOGUE), progress=False,
                                     batch_size=2, scores="catalogue")
    for row, sc in zip(names, scores):
        assert sorted(row) == sorted(CATALOGUE) and np.exp(sc).sum() == pytest.approx(1.0, abs=1e-5)
    _, full = constrained_beam(spread_lm, tok, ps, trie, num_beams=len(CATALOGUE), progress=False, batch_size=2)
    assert all(np.exp(sc).sum() < 1 - 1e-3 for sc in full)


def test_name_trie_completes_a_prefix_only_where_it_names_one_item(tok):
    from rec_utils.llm.generate import NameTrie

    trie = NameTrie([[1, 2, 3], [1, 2, 4, 5], [1, 2], [7, 8]], end_id=0)
    assert trie.completion(trie.node([1, 2])) is None  # [1, 2] itself and two longer names
    assert trie.completion(trie.node([1, 2, 4])) == [5]
    assert trie.completion(trie.node([1, 2, 3])) == []
    assert trie.completion(trie.node([7])) == [8]
    assert trie.completion(trie.node([1, 2, 3, 0])) is None  # past the end token


def test_unique_stop_scores_each_name_by_the_prefix_that_names_it(tok, spread_lm):
    """stop="unique": a beam ends once its prefix names one catalogue item; with a beam as wide
    as the catalogue every name is found, each scored log P(its shortest unique prefix | prompt)
    (recomputed here by one forward pass over prompt + prefix), and fewer tokens are decoded
    than by the default search, which scores every name to its end token."""
    import torch

    from rec_utils.llm import generate as G

    trie = G.NameTrie.from_names(tok, CATALOGUE, tok.eos_token_id)
    ps = prompts_of_several_lengths(tok, 3)
    names, scores = G.constrained_beam(spread_lm, tok, ps, trie, num_beams=len(CATALOGUE), progress=False,
                                       batch_size=2, stop="unique")
    unique_tokens = G.last_timing["new_tokens"]
    G.constrained_beam(spread_lm, tok, ps, trie, num_beams=len(CATALOGUE), progress=False, batch_size=2)
    assert unique_tokens < G.last_timing["new_tokens"]
    for p, row, sc in zip(ps, names, scores):
        assert sorted(row) == sorted(CATALOGUE) and sc == sorted(sc, reverse=True)
        prompt = tok(p, add_special_tokens=False)["input_ids"]
        for name, got in zip(row, sc):
            ids = tok(name, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
            k = next(j for j in range(1, len(ids) + 1)
                     if ids[j - 1] == tok.eos_token_id or trie.completion(trie.node(ids[:j])) is not None)
            with torch.no_grad():
                logp = torch.log_softmax(spread_lm(input_ids=torch.tensor([prompt + ids[:k]])).logits[0].double(), -1)
            want = sum(float(logp[len(prompt) - 1 + j, ids[j]]) for j in range(k))
            assert got == pytest.approx(want, abs=1e-4)


@pytest.mark.parametrize("temperature", [1.0, 0.0])
def test_batched_sampling_draws_what_the_sequential_sampler_draws(tok, spread_lm, temperature):
    """Each prompt keeps its own seeded generator over its own rows: batching prompts does not
    change the samples (nor greedy answers)."""
    from rec_utils.llm.generate import sample, sample_sequential

    ps = prompts_of_several_lengths(tok, 5)
    kw = dict(n=3, temperature=temperature, max_new_tokens=5, seed=3, progress=False)
    assert sample(spread_lm, tok, ps, batch_size=3, **kw) == sample_sequential(spread_lm, tok, ps, **kw)


def test_every_local_decoder_keys_its_runs_by_the_decoding_revision():
    """Batched decoding (revision 3) is not bit-for-bit the one-prompt decoding: stored runs of
    revision 2 (sample) or without a revision (greedy, beam) must not be reused."""

    from rec_utils.llm.generate import DECODING_REVISION

    items = pd.DataFrame({"item_id": [0, 1], "title": ["a", "b"]})
    for dec in ("sample", "greedy", "beam"):
        fp = LLMSeqPrompt(model="tiny-random", decoder=dec).input_fingerprint(items)
        assert fp["decoding"] == DECODING_REVISION == 3


def test_only_the_faster_training_paths_key_their_runs_apart_from_the_reference():
    """The reference fine-tuning (padded batches, LM head everywhere) trains what stored runs were
    trained with: no new input, so its runs keep their identity; grouped / packed batches or the
    answer-only head train another model (float noise over many steps) and are keyed apart."""


    items = pd.DataFrame({"item_id": [0, 1], "title": ["a", "b"]})
    ref = LLMSeqPrompt(model="tiny-random", batching="padded", loss_head="all").input_fingerprint(items)
    assert "training" not in ref
    fast = {LLMSeqPrompt(model="tiny-random", batching=b, loss_head=h).input_fingerprint(items)["training"]
            for b, h in (("grouped", "answer"), ("packed", "answer"), ("padded", "answer"), ("grouped", "all"))}
    assert len(fast) == 4


def test_finetuning_logs_eval_loss_each_eval_step_and_caches_the_best_model(tok, tmp_path):
    from rec_utils.llm.finetune import TrainConfig, finetune

    ex = [(tok.apply_chat_template([{"role": "user", "content": f"items {i}"}], tokenize=False,
                                   add_generation_prompt=True), f"name {i % 3}" + tok.eos_token) for i in range(12)]
    cfg = TrainConfig(epochs=1, batch_size=2, eval_steps=2, patience=10, lr=1e-3)
    lm, info = finetune("tiny-random", tok, ex[:8], ex[8:], cfg, base_id="tiny", cache=tmp_path, progress=False)
    evals = [h["step"] for h in info["history"] if "eval_loss" in h]
    assert evals == [0, 2, 4]  # before training and every 2 steps of the 4
    assert info["best_step"] in evals and info["train_tokens_per_s"] > 0 and not info["cached"]
    lm2, info2 = finetune("tiny-random", tok, ex[:8], ex[8:], cfg, base_id="tiny", cache=tmp_path, progress=False)
    assert info2["cached"] and info2["key"] == info["key"]
    import torch

    assert all(torch.equal(a, b) for a, b in zip(lm.state_dict().values(), lm2.state_dict().values()))
    cfg_lora = TrainConfig(epochs=1, batch_size=2, eval_steps=2, lora=True, lora_r=2)
    _, info3 = finetune("tiny-random", tok, ex[:8], ex[8:], cfg_lora, base_id="tiny", cache=tmp_path, progress=False)
    assert info3["key"] != info["key"] and info3["lora"]


def test_packing_and_the_answer_only_head_leave_the_loss_unchanged(tok, spread_lm):
    """Three examples of different lengths: the padded batch's loss (the model's own, LM head at
    every position), the packed row's (position ids restarting, block-diagonal attention) and the
    answer-only head's are the same number; so is one example's packed alone vs unpacked."""
    import torch

    from rec_utils.llm.finetune import _collate, _collate_packed, answer_loss, tokenize_examples

    ex = tokenize_examples(tok, [("items: a b c\nnext:", " dog food" + tok.eos_token),
                                 ("items: x\nnext:", " a long shampoo name" + tok.eos_token),
                                 ("items: lego city fire station, police car\nnext:", " soap" + tok.eos_token)])
    with torch.no_grad():
        padded = _collate(tok.pad_token_id)(ex)
        ref = spread_lm(**padded).loss
        packed = _collate_packed(ex)
        assert packed["input_ids"].shape[0] == 1 and packed["position_ids"][0].tolist().count(0) == 3
        assert torch.allclose(spread_lm(**packed, use_cache=False).loss, ref, atol=1e-5)
        assert torch.allclose(answer_loss(spread_lm, packed), ref, atol=1e-5)
        assert torch.allclose(answer_loss(spread_lm, padded), ref, atol=1e-5)
        one = spread_lm(**_collate(tok.pad_token_id)(ex[1:2])).loss
        assert torch.allclose(answer_loss(spread_lm, _collate_packed(ex[1:2])), one, atol=1e-5)
    # a packed row without the block-diagonal mask (one sequence of positions) would differ
    cross = {**packed, "position_ids": torch.arange(packed["input_ids"].shape[1])[None]}
    with torch.no_grad():
        assert not torch.allclose(spread_lm(**cross, use_cache=False).loss, ref, atol=1e-3)


def test_fast_finetuning_paths_train_and_key_their_own_cache(tok, tmp_path):
    from rec_utils.llm.finetune import TrainConfig, finetune

    ex = [(f"items {i}:" + " word" * (i % 5), f" name {i % 3}" + tok.eos_token) for i in range(12)]
    infos = {}
    for batching, head in (("padded", "all"), ("grouped", "answer"), ("packed", "answer")):
        cfg = TrainConfig(epochs=1, batch_size=4, eval_steps=1, max_steps=1, lr=1e-3, batching=batching, loss_head=head)
        _, infos[batching] = finetune("tiny-random", tok, ex[:8], ex[8:], cfg, base_id="tiny", cache=tmp_path,
                                      progress=False)
    assert len({i["key"] for i in infos.values()}) == 3 and all(i["steps"] == 1 for i in infos.values())
    # step 0's validation loss is the untrained model's, whichever batching and loss head computed it
    e0 = [h["eval_loss"] for i in infos.values() for h in i["history"] if h.get("step") == 0 and "eval_loss" in h]
    assert len(e0) == 3 and max(e0) - min(e0) < 1e-4
    with pytest.raises(ValueError, match="batching"):
        TrainConfig(batching="bucketed")


def test_early_stopping_stops_by_evaluations_without_improvement(tok, tmp_path):
    from rec_utils.llm.finetune import TrainConfig, finetune

    ex = [(f"p{i}", f" q{i}" + tok.eos_token) for i in range(40)]
    cfg = TrainConfig(epochs=3, batch_size=2, eval_steps=1, patience=1, lr=0.5)  # diverges: stops early
    _, info = finetune("tiny-random", tok, ex[:30], ex[30:], cfg, base_id="tiny", cache=tmp_path, progress=False)
    assert info["steps"] < 45 and info["steps"] >= 1


# ---------------------------------------------------------------- the recommender


TINY = dict(model="tiny-random", n_train_cases=16, n_val_cases=4, batch_size=4, eval_steps=2, max_steps=2,
            n_samples=3, num_beams=3, max_new_tokens=12, list_length=4, n_clusters=4, progress=False)


@pytest.mark.parametrize("variant, decoder", [("genitem", "sample"), ("genitem", "beam"), ("recsys23", "beam"),
                                              ("genlist", "greedy"), ("classify", "greedy"), ("rank", "greedy")])
def test_every_variant_runs_end_to_end_through_run_seeds(tmp_path, monkeypatch, variant, decoder):
    from rec_utils.evaluation import run_seeds
    from rec_utils.setting import Setting
    from rec_utils.split import make_split

    monkeypatch.setenv("REC_UTILS_LLM_CACHE", str(tmp_path / "llm"))
    ds = synthetic(tmp_path)
    split = make_split(ds, "temporal")
    emb = embeddings_of(ds)
    cfg = {**{k: v for k, v in TINY.items() if k != "progress"}, "variant": variant, "decoder": decoder,
           "embedding": {"provider": "file", "path": "stub"}}
    cfg["candidates"] = {"aggregation": "last", "similarity": "dot"}
    setting = Setting.of("LLMSeqPrompt", split, config=cfg)
    make = lambda seed: LLMSeqPrompt(
        embeddings=emb, embed=stub_embed, progress=False, **cfg)
    runs = run_seeds(make, split, setting, out_dir=tmp_path / "out", items=ds.items)
    r = runs[0]
    assert r["n_test_sessions"] == len(split.test) and r["metrics"]["n_sessions"] == len(split.test)
    out = r["fit_info"]["output"]
    assert out["outputs"] > 0 and 0 <= out["hallucinated_share"] <= 1
    if decoder == "beam":
        assert out["hallucinated_share"] == 0.0
    assert any("eval_loss" in h for h in r["history"])
    again = run_seeds(make, split, setting, out_dir=tmp_path / "out", items=ds.items)  # stored: loaded
    assert again[0]["metrics"] == r["metrics"]


def test_recommendations_never_contain_prompt_items(tmp_path, monkeypatch):
    from rec_utils.split import make_split

    monkeypatch.setenv("REC_UTILS_LLM_CACHE", str(tmp_path / "llm"))
    ds = synthetic(tmp_path)
    split = make_split(ds, "temporal")
    m = LLMSeqPrompt(embeddings=embeddings_of(ds), embed=stub_embed, **TINY).fit(split.train, ds.items)
    recs = m.predict(split.test, k=5)
    for i in range(len(split.test)):
        assert not set(split.test[i].tolist()) & set(recs[i].tolist())


def test_bad_config_values_are_named():

    with pytest.raises(ValueError, match="variant"):
        LLMSeqPrompt(variant="genitems")
    with pytest.raises(ValueError, match="beam"):
        LLMSeqPrompt(variant="genlist", decoder="beam")


# ---------------------------------------------------------------- OpenAI backend


def test_openai_backend_without_a_key_names_openai_api_key(monkeypatch):
    from rec_utils.llm import LLMError
    from rec_utils.llm.openai_ft import client

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(LLMError, match="OPENAI_API_KEY"):
        client()


def test_cost_guard_refuses_above_the_bound_unless_raised():
    from rec_utils.llm import CostGuardError
    from rec_utils.llm.openai_ft import cost_guard, estimate_cost

    cost = estimate_cost(10_000_000, epochs=1)  # $80 at $0.008 / 1K
    with pytest.raises(CostGuardError, match="max_cost_usd"):
        cost_guard(cost, 50)
    cost_guard(cost, 100)


def test_openai_backend_end_to_end_against_the_stub(tmp_path, monkeypatch):
    from rec_utils.llm import CostGuardError
    from rec_utils.split import make_split

    ds = synthetic(tmp_path)
    split = make_split(ds, "temporal")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with OpenAIStub() as stub:
        stub.chat_answers = [str(ds.items["title"].iloc[2]), "Not An Item At All"]
        m = LLMSeqPrompt(embeddings=embeddings_of(ds), embed=stub_embed, backend="openai", model="gpt-3.5-turbo-1106",
                         base_url=stub.base_url, n_train_cases=10, n_val_cases=3, n_samples=4, cache_dir=tmp_path / "c",
                         progress=False)
        m.fit(split.train, ds.items)
        recs = m.predict(split.test, k=5)
        info = m.fit_info_
        assert info["openai"]["fine_tuned_model"] == "ft:gpt-3.5-turbo-1106:stub" and info["openai"]["polls"] >= 2
        assert info["openai"]["train"]["examples"] == 10 and info["openai"]["estimated_cost_usd"] > 0
        uploaded = stub.files["file-0"].decode()
        assert uploaded.count('"messages"') == 10 and '"assistant"' in uploaded
        chats = [r for r in stub.requests if isinstance(r, dict) and "messages" in r]
        assert len(chats) == len(split.test) and all(r["n"] == 4 for r in chats)
        assert info["output"]["hallucinated_share"] == pytest.approx(0.5)
        assert recs.shape == (len(split.test), 5)
        guarded = LLMSeqPrompt(embeddings=embeddings_of(ds), embed=stub_embed, backend="openai", base_url=stub.base_url,
                               n_train_cases=10, max_cost_usd=0.0, cache_dir=tmp_path / "c", progress=False)
        with pytest.raises(CostGuardError):
            guarded.fit(split.train, ds.items)


def test_a_model_folder_is_identified_by_its_file_contents_not_its_names_and_sizes(tmp_path):
    """Two checkpoints with the same file names and sizes but other weights key other caches."""
    from rec_utils.llm.local import base_model_id

    a, b = tmp_path / "a", tmp_path / "b"
    for folder, byte in ((a, b"\x00"), (b, b"\x01")):
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(byte * 64)
        (folder / "config.json").write_text("{}")
    assert base_model_id(str(a)) != base_model_id(str(b))
    assert base_model_id(str(a)) == base_model_id(str(a))


def test_gemma_prompts_use_gemma_turns_with_the_system_text_in_the_first_user_turn(tok):
    """The Gemma 3 base model has no chat template: ours renders Gemma's turns (checked with any
    tokenizer: the template only reads bos_token and the messages)."""
    from rec_utils.llm.local import GEMMA3_CHAT_TEMPLATE

    msgs = [{"role": "system", "content": "You recommend."}, {"role": "user", "content": "Items: a, b"},
            {"role": "assistant", "content": "c"}]
    prompt = tok.apply_chat_template(msgs[:2], tokenize=False, add_generation_prompt=True,
                                     chat_template=GEMMA3_CHAT_TEMPLATE)
    assert prompt == (f"{tok.bos_token}<start_of_turn>user\nYou recommend.\n\nItems: a, b<end_of_turn>\n"
                      "<start_of_turn>model\n")
    full = tok.apply_chat_template(msgs, tokenize=False, chat_template=GEMMA3_CHAT_TEMPLATE)
    assert full == prompt + "c<end_of_turn>\n"
    no_system = tok.apply_chat_template(msgs[1:2], tokenize=False, add_generation_prompt=True,
                                        chat_template=GEMMA3_CHAT_TEMPLATE)
    assert no_system == f"{tok.bos_token}<start_of_turn>user\nItems: a, b<end_of_turn>\n<start_of_turn>model\n"


def test_gemma_without_its_packages_says_how_to_install_them(monkeypatch):
    import importlib.util

    from rec_utils.llm import local

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == local.GEMMA3_PACKAGE else real(name, *a))
    with pytest.raises(local.LLMError, match="make gemma"):
        local.base_model_id("gemma3-270m")
    with pytest.raises(local.LLMError, match="make gemma"):
        local.load_tokenizer("gemma3-270m")


def test_int8_beam_search_names_only_catalogue_items_and_repeats_itself(tok, spread_lm):
    """int8 decoding (an option: dynamically quantised linear maps): only catalogue names, best
    first, every name of a catalogue-wide beam found, the same output for the same call, and
    scores close to fp32's (the tiny model's int8 error is small against its spread)."""
    import copy

    from rec_utils.llm.generate import NameTrie, constrained_beam, for_decoding

    q = for_decoding(copy.deepcopy(spread_lm), "int8")
    trie = NameTrie.from_names(tok, CATALOGUE, tok.eos_token_id)
    ps = prompts_of_several_lengths(tok, 2)
    kw = dict(num_beams=len(CATALOGUE), progress=False, batch_size=2)
    names, scores = constrained_beam(q, tok, ps, trie, **kw)
    assert (names, scores) == constrained_beam(q, tok, ps, trie, **kw)
    ref_names, ref_scores = constrained_beam(spread_lm, tok, ps, trie, **kw)
    for row, sc, ref_row, ref_sc in zip(names, scores, ref_names, ref_scores):
        assert sorted(row) == sorted(CATALOGUE) and sc == sorted(sc, reverse=True)
        got, want = dict(zip(row, sc)), dict(zip(ref_row, ref_sc))
        assert max(abs(got[n] - want[n]) for n in CATALOGUE) < 0.05 * (max(ref_sc) - min(ref_sc))
    cat_names, _ = constrained_beam(q, tok, ps, trie, scores="catalogue", **kw)  # the dequantised head's rows
    assert all(sorted(row) == sorted(CATALOGUE) for row in cat_names)


def test_notebook_06_run_config_is_the_preset_with_config_on_top():
    from rec_utils.models import preset_config
    from rec_utils.models.llmseqprompt import RUN_FIELDS, run_config

    run = run_config({**preset_config("LLMSeqPrompt", "beauty"), "variant": "genlist", "lora": True})
    assert tuple(run) == RUN_FIELDS
    assert (run["n_train_cases"], run["n_val_cases"], run["epochs"], run["eval_steps"]) == (256, 32, 1, 8)
    assert (run["variant"], run["lora"], run["temperature"]) == ("genlist", True, 0.25)  # the rest: defaults
    with pytest.raises(TypeError, match=r"unknown config field\(s\) \['n_train'\]"):
        run_config({"n_train": 5})
    # a field outside RUN_FIELDS is recorded where it leaves its default, never dropped
    run = run_config({"beam_stop": "unique", "precision": "fp32", "decoder": "beam"})
    assert tuple(run) == RUN_FIELDS + ("beam_stop",) and run["beam_stop"] == "unique"


def test_a_run_with_another_beam_stop_is_keyed_apart():
    from rec_utils.models.llmseqprompt import LLMSeqPrompt

    items = pd.DataFrame({"item_id": [1, 2], "title": ["a", "b"]})
    fp = {stop: LLMSeqPrompt(decoder="beam", beam_stop=stop, model="tiny-random").input_fingerprint(items)
          for stop in ("end", "unique")}
    assert "beam_stop" not in fp["end"] and fp["unique"]["beam_stop"] == "unique"


bf16_native = pytest.mark.skipif(
    not __import__("rec_utils.models.neural.trainer", fromlist=["native_bf16"]).native_bf16("cpu"),
    reason="the CPU does not run bf16 natively (avx512_bf16 / amx_bf16)")


@bf16_native
def test_bf16_beam_search_names_only_catalogue_items_and_repeats_itself(tok):
    """bf16 decoding (an option): weights in bf16, log-probabilities in fp32; still only catalogue
    names, best first, fp32 scores, and the same prompts give the same names and scores."""
    import torch

    from rec_utils.llm.generate import for_decoding
    from rec_utils.llm.local import load_model

    lm = for_decoding(load_model("tiny-random", tok, seed=1), "bf16")
    assert next(lm.parameters()).dtype == torch.bfloat16
    names, scores = _toy_beam(tok, lm)
    assert all(s <= 0 for sc in scores for s in sc)
    assert _toy_beam(tok, lm) == (names, scores)
    with pytest.raises(ValueError, match="precision"):
        for_decoding(lm, "fp16")


def test_bf16_runs_and_finetunings_are_keyed_apart_from_fp32_ones():
    """bf16 is another numerics: its runs and fine-tunings never stand for fp32 ones; fp32 keeps the
    keys it had before the option existed (no ``precision`` entry)."""
    from dataclasses import asdict

    from rec_utils.llm.finetune import TrainConfig, finetune_key
    from rec_utils.utils import short_hash

    items = pd.DataFrame({"item_id": [0, 1], "title": ["a", "b"]})
    fp32 = LLMSeqPrompt(model="tiny-random").input_fingerprint(items)
    assert "precision" not in fp32
    ex = [("p", "a")]
    cfg = TrainConfig()
    old = {k: v for k, v in asdict(cfg).items() if k not in ("precision", "lora_layers")}  # fields added later
    assert finetune_key("b", ex, [], cfg) == short_hash("b", ex, [], old)
    assert finetune_key("b", ex, [], TrainConfig(precision="bf16")) != finetune_key("b", ex, [], cfg)
    with pytest.raises(ValueError, match="precision"):
        TrainConfig(precision="fp16")
    with pytest.raises(ValueError, match="precision"):
        LLMSeqPrompt(model="tiny-random", precision="fp16")
    int8 = LLMSeqPrompt(model="tiny-random", precision="int8", device="cpu").input_fingerprint(items)
    assert int8["precision"] == "int8"  # decoded in int8: keyed apart (its fine-tuning is the fp32 one)


@bf16_native
def test_bf16_fingerprint_differs_from_fp32_where_bf16_is_native():
    items = pd.DataFrame({"item_id": [0, 1], "title": ["a", "b"]})
    fp = LLMSeqPrompt(model="tiny-random", precision="bf16", device="cpu").input_fingerprint(items)
    assert fp["precision"] == "bf16"
    assert fp != LLMSeqPrompt(model="tiny-random", device="cpu").input_fingerprint(items)


@bf16_native
def test_bf16_finetuning_trains_with_autocast_and_keeps_fp32_weights(tok, tmp_path):
    import torch

    from rec_utils.llm.finetune import TrainConfig, finetune

    ex = [(f"items {i}:" + " word" * (i % 5), f" name {i % 3}" + tok.eos_token) for i in range(8)]
    cfg = TrainConfig(epochs=1, batch_size=4, max_steps=1, lr=1e-3, batching="grouped", loss_head="answer",
                      precision="bf16")
    lm, info = finetune("tiny-random", tok, ex, [], cfg, base_id="tiny", cache=tmp_path, progress=False)
    assert info["steps"] == 1 and info["precision"] == "bf16" and np.isfinite(info["train_loss"])
    assert next(lm.parameters()).dtype == torch.float32


@bf16_native
def test_bf16_lora_trains_on_a_bf16_base_and_keeps_an_fp32_merged_model(tok, tmp_path):
    """LoRA in bf16 holds the frozen base in bf16 (no fp32 master copy needed): the loss is finite,
    the adapter changes the weights, the kept model is fp32, and the key differs from fp32 LoRA's."""
    import torch

    from rec_utils.llm.finetune import TrainConfig, finetune, finetune_key
    from rec_utils.llm.local import load_model

    ex = [(f"items {i}:" + " word" * (i % 5), f" name {i % 3}" + tok.eos_token) for i in range(8)]
    cfg = TrainConfig(epochs=1, batch_size=4, max_steps=2, lr=1e-2, lora=True, lora_r=2, precision="bf16")
    lm, info = finetune("tiny-random", tok, ex, [], cfg, base_id="tiny", cache=tmp_path, progress=False)
    assert info["steps"] == 2 and np.isfinite(info["train_loss"])
    assert all(p.dtype == torch.float32 for p in lm.parameters())
    base = load_model("tiny-random", tok)
    q = lm.model.layers[0].self_attn.q_proj.weight
    assert not torch.allclose(q, base.model.layers[0].self_attn.q_proj.weight.to(torch.bfloat16).float())
    assert finetune_key("tiny", ex, [], cfg) != finetune_key("tiny", ex, [], TrainConfig(lora=True, lora_r=2))


def test_lora_on_the_top_layers_leaves_the_lower_layers_untouched(tok, tmp_path):
    """``lora_layers=1``: adapters on the last decoder layer only, so after the merge the first
    layer's weights are the base's and the last one's are not; keyed apart from LoRA on every
    layer; the default (0) keeps the key of before the field existed; bad values are refused."""
    import torch

    from rec_utils.llm.finetune import TrainConfig, finetune, finetune_key
    from rec_utils.llm.local import load_model

    ex = [(f"items {i}:" + " word" * (i % 5), f" name {i % 3}" + tok.eos_token) for i in range(8)]
    cfg = TrainConfig(epochs=1, batch_size=4, max_steps=2, lr=1e-2, lora=True, lora_r=2, lora_layers=1)
    lm, info = finetune("tiny-random", tok, ex, [], cfg, base_id="tiny", cache=tmp_path, progress=False)
    base = load_model("tiny-random", tok)
    q = lambda m, i: m.model.layers[i].self_attn.q_proj.weight
    assert len(lm.model.layers) > 1 and info["steps"] == 2
    assert torch.equal(q(lm, 0), q(base, 0))
    assert not torch.allclose(q(lm, -1), q(base, -1))
    every = TrainConfig(epochs=1, batch_size=4, max_steps=2, lr=1e-2, lora=True, lora_r=2)
    assert finetune_key("tiny", ex, [], cfg) != finetune_key("tiny", ex, [], every)
    with pytest.raises(ValueError, match="lora_layers"):
        TrainConfig(lora_layers=2)  # without lora=True
    with pytest.raises(ValueError, match="lora_layers"):
        TrainConfig(lora=True, lora_layers=-1)
