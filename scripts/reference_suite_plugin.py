"""pytest plugin of scripts/reference-suite: writes each test's outcome to the JSON file named
by ``REFERENCE_SUITE_RESULTS`` as ``{node id: {"outcome": ..., "message": ...}}``.

The outcome of a test is the worst of its phases and subtests (error > failed > skipped >
passed): a failure in setup or teardown is an error, one in the test body a failure. A test
module that cannot be imported is recorded under its path (``tests/test_http.py``) as an
error.
"""

import json
import os

_RANK = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}
_results = {}


def _message(report):
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        text = crash.message
    elif isinstance(report.longrepr, tuple):  # a skip: (file, line, reason)
        text = report.longrepr[2]
    else:
        text = str(report.longrepr or "")
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


def _record(nodeid, outcome, report):
    old = _results.get(nodeid)
    if old is None or _RANK[outcome] > _RANK[old["outcome"]]:
        _results[nodeid] = {"outcome": outcome, "message": "" if outcome == "passed" else _message(report)}


def pytest_runtest_logreport(report):
    if report.passed:
        _record(report.nodeid, "passed", report)
    elif report.skipped:
        _record(report.nodeid, "skipped", report)
    else:
        _record(report.nodeid, "failed" if report.when == "call" else "error", report)


def pytest_collectreport(report):
    if report.failed:
        _record(report.nodeid, "error", report)


def pytest_sessionfinish(session):
    path = os.environ.get("REFERENCE_SUITE_RESULTS")
    if path:
        with open(path, "w") as f:
            json.dump(_results, f, indent=1, sort_keys=True)
