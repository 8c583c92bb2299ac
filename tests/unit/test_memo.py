"""memo: results of pure steps kept under the sha256 of their exact inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from harness import stats
from harness.memo import code_version, memo_array, memo_bytes, memo_json, memo_key, memo_root


class Calls:
    """A computation that counts how often it ran and returns a fixed, chosen value."""

    def __init__(self, value):
        self.value, self.n = value, 0

    def __call__(self):
        self.n += 1
        return self.value


def test_a_result_is_computed_once_and_read_back(tmp_path):
    compute = Calls({"p": 0.25, "ci": [0.1, 0.4], "method": "exact"})
    key = memo_key("ns", 1, np.array([1.0, 0.0]), "teacher_delta", 0.05)
    with memo_root(tmp_path):
        first = memo_json("ns", key, compute)
        again = memo_json("ns", key, compute)
    assert compute.n == 1 and first == again == compute.value
    (entry,) = (tmp_path / "memo" / "ns").glob("*.json")
    assert entry.name == f"{key}.json"


@pytest.mark.parametrize("changed", [
    (np.array([1.0, 1.0]), "teacher_delta", 0.05),  # another value
    (np.array([1.0, 0.0, 0.0]), "teacher_delta", 0.05),  # another length
    (np.array([1, 0]), "teacher_delta", 0.05),  # another dtype
    (np.array([1.0, 0.0]), "teacher_ratio", 0.05),  # another parameter
    (np.array([1.0, 0.0]), "teacher_delta", 0.050000000000000010),  # the last bit of a float
    (np.array([1.0, 0.0]), "teacher_delta", None),
])
def test_any_change_of_an_input_is_another_key(changed):
    base = memo_key("ns", 1, np.array([1.0, 0.0]), "teacher_delta", 0.05)
    assert memo_key("ns", 1, *changed) != base
    assert memo_key("ns", 2, np.array([1.0, 0.0]), "teacher_delta", 0.05) != base  # version
    assert memo_key("other", 1, np.array([1.0, 0.0]), "teacher_delta", 0.05) != base


def test_keys_do_not_collide_across_boundaries_or_types():
    assert memo_key("ns", 1, "ab", "c") != memo_key("ns", 1, "a", "bc")
    assert memo_key("ns", 1, ["a", "b"]) != memo_key("ns", 1, ["a"], ["b"])
    assert memo_key("ns", 1, 1) != memo_key("ns", 1, 1.0) != memo_key("ns", 1, True)
    assert memo_key("ns", 1, {"a": 1, "b": 2}) == memo_key("ns", 1, {"b": 2, "a": 1})
    assert memo_key("ns", 1, np.array(["x", "y"], dtype=object)) != memo_key(
        "ns", 1, np.array(["x", "z"], dtype=object))
    with pytest.raises(TypeError, match="cannot hash a object"):
        memo_key("ns", 1, object())


def _as_list(value):
    if not isinstance(value, list):
        raise ValueError("not a list")
    return value


def test_a_corrupt_or_foreign_entry_is_recomputed_and_overwritten(tmp_path):
    compute = Calls([1, 2, 3])
    key = memo_key("ns", 1, "x")
    with memo_root(tmp_path):
        memo_json("ns", key, compute)
        entry = tmp_path / "memo" / "ns" / f"{key}.json"
        entry.write_bytes(entry.read_bytes()[:-5])  # torn
        assert memo_json("ns", key, compute) == [1, 2, 3] and compute.n == 2
        # an entry copied under another name is not read as that name's
        other = memo_key("ns", 1, "y")
        (tmp_path / "memo" / "ns" / f"{other}.json").write_bytes(entry.read_bytes())
        assert memo_json("ns", other, Calls("y")) == "y"
        # an entry its decoder rejects is recomputed
        entry.write_text(json.dumps({"key": key, "value": "not a list"}))
        assert memo_json("ns", key, compute, decode=_as_list) == [1, 2, 3]
    assert json.loads(entry.read_text())["value"] == [1, 2, 3]


def test_arrays_and_bytes_entries(tmp_path):
    key = memo_key("arr", 1, "x")
    with memo_root(tmp_path):
        values = memo_array("arr", key, Calls(np.array([0.5, 1.0])), shape=(2,), dtype=np.float64)
        # the wrong shape is not read back
        again = Calls(np.array([0.5, 1.0, 2.0]))
        memo_array("arr", key, again, shape=(3,), dtype=np.float64)
        assert again.n == 1 and list(values) == [0.5, 1.0]
        png = Calls(b"\x89PNG...")
        assert memo_bytes("png", key, png) == memo_bytes("png", key, png) == b"\x89PNG..."
        assert png.n == 1
        entry = tmp_path / "memo" / "png" / f"{key}.bin"
        entry.write_bytes(b"\x89PNG.,." + entry.read_bytes()[7:])  # edited: checksum fails
        assert memo_bytes("png", key, png) == b"\x89PNG..." and png.n == 2
        assert memo_bytes("none", key, lambda: None) is None  # None is not kept
    assert not (tmp_path / "memo" / "none").exists()


def test_nothing_is_kept_with_the_cache_off(tmp_path):
    compute = Calls(1.5)
    key = memo_key("ns", 1, "x")
    with memo_root(None):
        assert memo_json("ns", key, compute) == memo_json("ns", key, compute) == 1.5
    assert memo_json("ns", key, compute) == 1.5  # outside any run: computed too
    assert compute.n == 3
    assert not (tmp_path / "memo").exists()


def test_a_result_json_cannot_hold_is_computed_not_kept(tmp_path):
    with memo_root(tmp_path):
        assert memo_json("ns", memo_key("ns", 1, "x"), Calls({1, 2})) == {1, 2}
    assert not list((tmp_path / "memo").rglob("*.json"))


def test_code_version_changes_with_the_code_and_the_library():
    one = code_version(("harness.stats",), ("numpy",))
    assert one == code_version(("harness.stats",), ("numpy",))
    assert one != code_version(("harness.memo",), ("numpy",))
    assert one != code_version(("harness.stats",), ("numpy", "scipy"))
    with pytest.raises(ModuleNotFoundError):
        code_version(("harness.no_such_module",))


def test_a_memoized_test_is_the_test(tmp_path):
    s = np.array([1.0, 0.0, 1.0, 1.0, 0.5, 0.25] * 10)
    r = np.array([1.0, 1.0, 1.0, 0.0, 0.75, 0.25] * 10)
    args = dict(student=s, reference=r, compare="teacher_delta", bound="min", threshold=-0.05,
                binary=False, confidence=0.9, seed=0)
    plain = stats.compare_test(**args)
    with memo_root(tmp_path):
        first = stats.compare_test(**args)
        (entry,) = (tmp_path / "memo" / "stats").glob("*.json")
        read = stats.compare_test(**args)
        other = stats.compare_test(**{**args, "threshold": -0.2})
        needed = stats.needed_examples(**{k: v for k, v in args.items() if k != "confidence"})
        needed_again = stats.needed_examples(**{k: v for k, v in args.items()
                                                if k != "confidence"})
        q = stats.bh_adjust([0.01, None, 0.04])
        q_again = stats.bh_adjust([0.01, None, 0.04])
    assert plain == first == read and other != read
    assert entry.stat().st_size > 0
    assert needed == needed_again == stats.needed_examples(
        **{k: v for k, v in args.items() if k != "confidence"})
    assert q == q_again == stats.bh_adjust([0.01, None, 0.04])


def test_a_memoized_function_keys_on_its_arguments_by_name(tmp_path):
    from harness.memo import memoized, plain_parts

    calls = []

    @memoized("test.share", 1, folder="share", modules=("harness.memo",), parts=plain_parts)
    def share(values, *, of="x", slices=None):
        calls.append(1)
        return {"share": sum(v == of for v in values) / len(values)}

    with memo_root(tmp_path):
        assert share(["x", "y"]) == share(["x", "y"], of="x") == {"share": 0.5}  # defaults bound
        assert share(("x", "y")) == {"share": 0.5}  # a tuple is the same data as a list
        assert len(calls) == 1
        assert share(["x", "y"], of="y", slices={"a": np.array([0])}) == {"share": 0.5}
        assert len(calls) == 2
        with pytest.raises(TypeError):  # arguments that do not bind: the function's own error
            share()
        assert share([object()], of=object()) == {"share": 0.0}  # not data: computed, not kept
    assert len(calls) == 3
    assert len(list((tmp_path / "memo" / "share").glob("*.json"))) == 2
