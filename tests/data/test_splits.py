"""Membership splits: disjointness, exact sizes, determinism, serialisation, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lit_mia.data.splits import SETS, MembershipSplit, make_split
from lit_mia.errors import ConfigError


@st.composite
def split_args(draw) -> dict:
    """Sizes that fit in n_total (members, non-members >= 1)."""
    n_total = draw(st.integers(2, 3000))
    left = n_total - 2
    kw = {"n_total": n_total, "seed": draw(st.integers(0, 2**32 - 1))}
    for key in ("n_validation", "n_shadow", "n_probe"):
        kw[key] = draw(st.integers(0, left))
        left -= kw[key]
    kw["n_members"] = 1 + draw(st.integers(0, left))
    left -= kw["n_members"] - 1
    kw["n_nonmembers"] = 1 + draw(st.integers(0, left))
    return kw


@settings(max_examples=100, deadline=None)
@given(split_args())
def test_split_properties(kw: dict) -> None:
    s = make_split(**kw)
    sizes = s.sizes()
    assert sizes == {
        "members": kw["n_members"],
        "validation": kw["n_validation"],
        "nonmembers": kw["n_nonmembers"],
        "shadow": kw["n_shadow"],
        "probe": kw["n_probe"],
    }
    allidx = np.concatenate([getattr(s, n) for n in SETS])
    assert np.unique(allidx).size == allidx.size == sum(sizes.values())  # pairwise disjoint
    assert allidx.min() >= 0
    assert allidx.max() < kw["n_total"]
    for n in SETS:
        assert getattr(s, n).dtype == np.int64
    assert make_split(**kw) == s  # deterministic per seed

    s_in, s_out = s.shadow_halves()
    assert s_in.size == s_out.size == kw["n_shadow"] // 2
    assert np.intersect1d(s_in, s_out).size == 0
    assert set(s_in.tolist()) | set(s_out.tolist()) <= set(s.shadow.tolist())


@settings(max_examples=100, deadline=None)
@given(split_args())
def test_round_trip(kw: dict) -> None:
    s = make_split(**kw)
    d = json.loads(json.dumps(s.to_dict()))
    assert MembershipSplit.from_dict(d) == s


@settings(max_examples=50, deadline=None)
@given(n_total=st.integers(100, 5000), seed=st.integers(0, 10**6))
def test_different_seeds_differ(n_total: int, seed: int) -> None:
    a = make_split(n_total, n_total // 4, n_total // 4, seed=seed)
    b = make_split(n_total, n_total // 4, n_total // 4, seed=seed + 1)
    assert not np.array_equal(a.members, b.members)


def test_later_blocks_do_not_move_earlier_ones() -> None:
    a = make_split(1000, 300, 200, n_validation=50, seed=7)
    b = make_split(1000, 300, 200, n_validation=50, n_shadow=400, n_probe=10, seed=7)
    for n in ("members", "validation", "nonmembers"):
        assert np.array_equal(getattr(a, n), getattr(b, n))


def test_save_load_json(tmp_path) -> None:
    s = make_split(5000, 1000, 1000, n_validation=200, n_shadow=2000, n_probe=100, seed=3)
    path = tmp_path / "split.json"
    s.save_json(path)
    assert MembershipSplit.load_json(path) == s
    d = json.loads(path.read_text())
    assert d["seed"] == 3
    assert d["n_total"] == 5000
    assert len(d["shadow"]) == 2000


def test_arrays_are_read_only() -> None:
    s = make_split(100, 10, 10)
    with pytest.raises(ValueError, match="read-only"):
        s.members[0] = 1


def test_sum_too_large_names_keys_and_sizes() -> None:
    with pytest.raises(ConfigError) as e:
        make_split(5000, 2500, 2000, n_validation=200, n_shadow=400, n_probe=100, dataset="mnist5k")
    msg = str(e.value)
    for key in ("n_members", "n_validation", "n_nonmembers", "n_shadow", "n_probe"):
        assert f"data.{key}" in msg
    assert "5200" in msg
    assert "5000" in msg
    assert "mnist5k" in msg
    assert "\n" not in msg


@pytest.mark.parametrize(
    ("kw", "key"),
    [
        ({"n_members": 0}, "data.n_members"),
        ({"n_nonmembers": 0}, "data.n_nonmembers"),
        ({"n_members": -3}, "data.n_members"),
        ({"n_validation": -1}, "data.n_validation"),
        ({"n_shadow": -5}, "data.n_shadow"),
        ({"n_probe": -1}, "data.n_probe"),
        ({"n_members": 10.0}, "data.n_members"),
        ({"n_nonmembers": "10"}, "data.n_nonmembers"),
        ({"n_shadow": True}, "data.n_shadow"),
        ({"n_probe": None}, "data.n_probe"),
    ],
)
def test_bad_counts(kw: dict, key: str) -> None:
    args = {"n_total": 100, "n_members": 10, "n_nonmembers": 10} | kw
    with pytest.raises(ConfigError, match=key):
        make_split(**args)


def test_numpy_ints_accepted() -> None:
    s = make_split(np.int64(100), np.int32(10), np.int64(10), n_shadow=np.int16(4))
    assert s.sizes()["shadow"] == 4


@pytest.mark.parametrize(
    ("sets", "words"),
    [
        ({"members": [0, 1, 2], "nonmembers": [2, 3]}, ["members", "nonmembers"]),
        ({"members": [0, 1], "validation": [5], "probe": [5, 6]}, ["validation", "probe"]),
        ({"shadow": [1, 1]}, ["shadow", "repeated"]),
        ({"members": [0, 10]}, ["members", "outside"]),
        ({"members": [-1]}, ["members", "outside"]),
    ],
)
def test_check_catches_bad_hand_built_split(sets: dict, words: list[str]) -> None:
    arrays = {n: sets.get(n, []) for n in SETS}
    with pytest.raises(AssertionError) as e:
        MembershipSplit(**arrays, seed=0, n_total=10)
    for w in words:
        assert w in str(e.value)
