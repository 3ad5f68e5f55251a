"""scripts/reference-suite's bookkeeping: the expectations file it reads, and the verdicts
it draws from a run's outcomes (the run itself is scripts/test's job)."""

import importlib.machinery
import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load_script():
    path = os.path.join(ROOT, "scripts", "reference-suite")
    loader = importlib.machinery.SourceFileLoader("reference_suite", path)
    spec = importlib.util.spec_from_loader("reference_suite", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


rs = _load_script()


def test_expectations_file_is_well_formed():
    expected = rs.read_expected(rs.EXPECTED)
    assert expected, "the expectations file lists nothing"
    for test_id, (outcome, category, reason) in expected.items():
        assert test_id.startswith("tests/test_"), test_id
        assert reason.strip(), test_id
        if outcome == "deselect":
            assert category == "internet", f"{test_id}: only internet tests are deselected"
        if "::" not in test_id:
            assert outcome == "fail", f"{test_id}: a module entry is a module that cannot be imported"


def test_bad_line_is_refused(tmp_path):
    bad = tmp_path / "expected.txt"
    bad.write_text("tests/test_x.py::T::test_y fail no-such-category why\n")
    with pytest.raises(SystemExit):
        rs.read_expected(str(bad))
    bad.write_text("tests/test_x.py::T::test_y fail bug a\ntests/test_x.py::T::test_y fail bug b\n")
    with pytest.raises(SystemExit):
        rs.read_expected(str(bad))


def _res(outcome, message=""):
    return {"outcome": outcome, "message": message}


EXPECTED = {
    "tests/test_a.py::T::test_known_failure": ("fail", "bug", "x"),
    "tests/test_a.py::T::test_net": ("deselect", "internet", "x"),
    "tests/test_a.py::T::test_disabled": ("skip", "suite", "x"),
    "tests/test_b.py": ("fail", "missing-name", "x"),
}


def test_expected_outcomes_pass():
    results = {
        "tests/test_a.py::T::test_known_failure": _res("failed", "boom"),
        "tests/test_a.py::T::test_disabled": _res("skipped"),
        "tests/test_a.py::T::test_ok": _res("passed"),
        "tests/test_b.py": _res("error", "ImportError"),
    }
    assert rs.compare(EXPECTED, results, selection=False) == []


def test_every_kind_of_surprise_is_reported():
    results = {
        "tests/test_a.py::T::test_known_failure": _res("passed"),  # listed, now passes
        "tests/test_a.py::T::test_net": _res("passed"),  # deselected, but it ran
        "tests/test_a.py::T::test_disabled": _res("passed"),  # listed as skipped
        "tests/test_a.py::T::test_new": _res("failed", "AssertionError: 1 != 2"),
        "tests/test_a.py::T::test_setup": _res("error", "fixture"),
        "tests/test_a.py::T::test_skipped": _res("skipped", "why"),  # unlisted skip
        # tests/test_b.py is listed but missing from the run: a stale entry
    }
    problems = rs.compare(EXPECTED, results, selection=False)
    text = "\n".join(problems)
    assert len(problems) == 7, text
    assert "test_known_failure: passes now" in text
    assert "test_net: listed as deselected but it ran" in text
    assert "test_disabled: passed, listed as expected to skip" not in text  # it passes: says so
    assert "test_disabled: passes now" in text
    assert "test_new: failed, not listed in the expectations: AssertionError: 1 != 2" in text
    assert "test_setup: error, not listed" in text
    assert "test_skipped: skipped, not listed" in text
    assert "tests/test_b.py: listed, but not in the suite any more" in text


def test_a_selection_does_not_report_unselected_entries():
    results = {"tests/test_a.py::T::test_ok": _res("passed")}
    assert rs.compare(EXPECTED, results, selection=True) == []
