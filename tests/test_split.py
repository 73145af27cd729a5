"""The temporal split reproduces the authors' Beauty split; folds, inner validation, LOO."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rec_utils.data import load_dataset
from rec_utils.split import (Prompts, inner_validation_split, make_split, sessions_to_prompts,
                             temporal_folds)


@pytest.fixture(scope="module")
def beauty_split(beauty):
    return make_split(beauty, "temporal")


def test_beauty_temporal_split_sizes_and_prompt_lengths(beauty_split):
    s = beauty_split
    assert s.train["session_id"].nunique() == 17890
    assert s.info["test_sessions_before_filter"] == 4473
    assert len(s.test) == 4469
    lengths, counts = np.unique(s.test.lengths, return_counts=True)
    hist = dict(zip(lengths.tolist(), counts.tolist()))
    # stable sort of session times (the authors' numpy quicksort gave 4:1029, 5:653)
    assert [hist[i] for i in range(1, 6)] == [16, 13, 90, 1025, 655]
    assert s.test.lengths.max() == 202
    train_len = s.train.groupby("session_id").size()
    assert round(train_len.mean(), 2) == 8.06 and train_len.median() == 6 and train_len.max() == 99


def test_test_items_are_known_and_sessions_are_the_most_recent(beauty_split):
    s = beauty_split
    known = set(s.train["item_id"])
    assert set(s.test.items) <= known and set(s.test.targets) <= known

def test_test_sessions_end_no_earlier_than_train_sessions(beauty, beauty_split):
    ends = beauty.interactions.groupby("session_id")["timestamp"].max()
    assert ends.loc[beauty_split.test.session_ids].min() >= ends.loc[beauty_split.train.session_id.unique()].max()


def test_metric_context_comes_from_the_whole_dataset(beauty_split):
    s = beauty_split
    assert s.n_items == 12101 and int(s.item_counts.sum()) == 198502


def test_tie_seed_changes_fingerprint_not_sessions(beauty):
    a, b = make_split(beauty, tie_seed=0), make_split(beauty, tie_seed=1)
    f = make_split(beauty, tie_order="file")
    assert len({a.fingerprint, b.fingerprint, f.fingerprint}) == 3
    assert a.fingerprint == make_split(beauty, tie_seed=0).fingerprint
    np.testing.assert_array_equal(a.test.session_ids, b.test.session_ids)
    assert (a.test.targets != b.test.targets).mean() > 0.05  # ties decide many last items


def test_prompts_from_hand_example():
    import pandas as pd
    df = pd.DataFrame({"session_id": [1, 1, 1, 2, 2, 3], "item_id": [5, 6, 7, 8, 9, 5], "timestamp": range(6)})
    p = sessions_to_prompts(df, known_items=np.array([5, 6, 7, 9]))
    # session 2 loses item 8 -> 1 item -> dropped; session 3 has one item -> dropped
    assert p.session_ids.tolist() == [1]
    assert p[0].tolist() == [5, 6] and p.targets.tolist() == [7]
    q = Prompts(np.array([0, 1]), np.array([0, 3, 5]), np.array([1, 2, 3, 4, 5]), np.array([9, 8]))
    assert q.truncate(2)[0].tolist() == [2, 3] and q.truncate(2)[1].tolist() == [4, 5]
    assert q.subset(np.array([1]))[0].tolist() == [4, 5] and q.subset(np.array([1])).targets.tolist() == [8]
    assert len(q.sample(1, seed=0)) == 1


def test_forward_chaining_folds(beauty_split):
    folds = temporal_folds(beauty_split, 3)
    n_train = [f.train["session_id"].nunique() for f in folds]
    assert n_train == [4473, 8946, 13418]  # array_split of 17,890 sessions into 4 bins
    for f in folds:
        assert set(f.test.items) <= set(f.train["item_id"])
        assert not set(f.test.session_ids) & set(f.train["session_id"])
        # validation sessions are later than every train session of the fold
        t_train = f.train.groupby("session_id")["timestamp"].max().max()
        t_val = beauty_split.train[beauty_split.train.session_id.isin(f.test.session_ids)].groupby("session_id")["timestamp"].max()
        assert t_val.min() >= t_train
    assert len({f.fingerprint for f in folds}) == 3


def test_inner_validation_is_seeded_and_capped(beauty_split):
    rest, val = inner_validation_split(beauty_split.train, seed=3)
    rest2, val2 = inner_validation_split(beauty_split.train, seed=3)
    assert len(val) <= 500 and len(val) >= 490  # 500 sampled, a few lose items
    np.testing.assert_array_equal(val.session_ids, val2.session_ids)
    assert not set(val.session_ids) & set(rest["session_id"])
    assert set(val.items) <= set(rest["item_id"])


def test_leave_one_out(tiny_folder):
    ds = load_dataset(tiny_folder)
    s = make_split(ds, "loo", tie_order="file")
    # session 2 = [0, 2, 3, 4]: train [0, 2], validation [0, 2] -> 3, test [0, 2, 3] -> 4
    i = int(np.flatnonzero(s.test.session_ids == 2)[0])
    assert s.test[i].tolist() == [0, 2, 3] and s.test.targets[i] == 4
    j = int(np.flatnonzero(s.validation.session_ids == 2)[0])
    assert s.validation[j].tolist() == [0, 2] and s.validation.targets[j] == 3
    assert s.train[s.train.session_id == 2]["item_id"].tolist() == [0, 2]
    # session 3 = [2, 3] is too short for LOO: it trains whole and is not evaluated
    assert 3 not in s.test.session_ids and s.train[s.train.session_id == 3]["item_id"].tolist() == [2, 3]


def test_beauty_loo_counts_every_session(beauty):
    s = make_split(beauty, "loo")
    assert len(s.test) == len(s.validation) == 22363


def test_bad_protocol(beauty):
    with pytest.raises(ValueError, match="protocol"):
        make_split(beauty, "random")


def test_timestamp_ties_counts_only_ties_within_a_session():
    from rec_utils.split import has_timestamp_ties, timestamp_ties

    df = pd.DataFrame({"session_id": [0, 0, 0, 1, 1, 2], "timestamp": [5, 5, 6, 5, 7, 5]})
    assert timestamp_ties(df) == {"tied_interactions": 2, "sessions_with_ties": 1}
    assert has_timestamp_ties(df)
    # the same times across sessions are no tie: every tie order gives the same sequences
    assert not has_timestamp_ties(df.drop(index=1))
    with pytest.raises(ValueError, match="timestamp"):
        timestamp_ties(df.drop(columns="timestamp"))


def test_tie_spread_runs_only_when_the_data_has_ties(capsys):
    from rec_utils.split import tie_spread_seeds

    tied = pd.DataFrame({"session_id": [0, 0, 1], "timestamp": [1, 1, 2]})
    assert tie_spread_seeds(tied, [0, 1, 2]) == [0, 1, 2]
    assert tie_spread_seeds(tied.drop(index=1), [0, 1, 2]) == []
    assert "skipped" in capsys.readouterr().out
