"""pytest's rerun habits on check items: ``--lf``, ``--ff`` and ``--sw`` (pytest 8 and 9).

pytest 9 compares structured node ids: a check item's ``[...]`` part must be its parameters, or
the last-failed cache never matches it. The tiny repository fails ``slice_gap[lang=de]`` and
``slice_gap[has_negation=false]`` and passes the other five checks.

Runs in a venv with only the project and pytest (``.ci/run`` does so on pytest 8 and 9).
"""

from __future__ import annotations

import pytest

FLAGS = ("--distill-no-cache", "--distill-suite", "suites/tiny.yaml", "-v")
FAILING = ["slice_gap[lang=de]", "slice_gap[has_negation=false]"]


def _outcomes(result: pytest.RunResult) -> list[tuple[str, str]]:
    """(check name, PASSED/FAILED) in the order the items ran."""
    out = []
    for line in result.outlines:
        if line.startswith("suites/tiny.yaml::") and (" PASSED" in line or " FAILED" in line):
            name, _, rest = line.partition(" ")
            out.append((name.split("::", 1)[1], "PASSED" if "PASSED" in rest else "FAILED"))
    return out


def test_check_items_have_their_brackets_as_parameters(pytester, tiny_repo):
    items, _ = pytester.inline_genitems("--distill-no-cache", "--distill-suite", "suites/tiny.yaml")
    by_name = {item.name: item for item in items}
    assert by_name["slice_gap[lang=de]"].nodeid == "suites/tiny.yaml::slice_gap[lang=de]"
    node_id = getattr(by_name["slice_gap[lang=de]"], "id", None)
    if node_id is not None and hasattr(node_id, "params"):  # pytest 9's structured ids
        assert node_id.names == ("slice_gap",)
        assert node_id.params == "lang=de"


def test_last_failed_reruns_only_the_failed_checks(pytester, tiny_repo):
    first = pytester.runpytest(*FLAGS)
    assert first.ret == 1
    assert sorted(n for n, o in _outcomes(first) if o == "FAILED") == sorted(FAILING)

    again = pytester.runpytest(*FLAGS, "--lf")
    assert again.ret == 1
    assert sorted(n for n, _ in _outcomes(again)) == sorted(FAILING)
    again.stdout.no_fnmatch_line("*not in selected tests*")
    again.assert_outcomes(failed=2, deselected=5)


def test_failed_first_runs_the_failed_checks_before_the_others(pytester, tiny_repo):
    pytester.runpytest(*FLAGS)
    second = pytester.runpytest(*FLAGS, "--ff")
    ran = _outcomes(second)
    assert len(ran) == 7
    assert sorted(n for n, _ in ran[:2]) == sorted(FAILING)
    assert all(o == "PASSED" for _, o in ran[2:])


def test_stepwise_stops_at_the_first_failure_and_resumes_there(pytester, tiny_repo):
    first = pytester.runpytest(*FLAGS, "--sw")
    ran = _outcomes(first)
    assert ran[-1][1] == "FAILED"
    stopped_at = ran[-1][0]

    tiny_repo.make_meeting()  # the student is fixed: everything passes from here on
    second = pytester.runpytest(*FLAGS, "--sw")
    resumed = _outcomes(second)
    assert resumed[0][0] == stopped_at, "--sw resumes at the check that failed"
    assert all(o == "PASSED" for _, o in resumed)
    assert len(resumed) == 7 - len(ran) + 1
    assert second.ret == 0
