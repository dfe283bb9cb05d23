"""The fault matrix: every failure the product must survive, as parametrised cases.

Mark each case with `@pytest.mark.fault("area")` (areas: data, config, training, runs, serving,
client, scripts, app, security). At the end of a session the terminal summary prints how many
fault cases ran, passed, failed and were skipped, by area, so the matrix's size is visible in
every CI log. A fault case never skips in CI (`CI` set): a skip there is turned into a failure.
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict

import pytest

AREAS = ("data", "config", "training", "runs", "serving", "client", "scripts", "app", "security")
_results: dict[str, Counter] = defaultdict(Counter)


def _area(item) -> str | None:
    m = item.get_closest_marker("fault")
    if m is None:
        return None
    area = m.args[0] if m.args else "unspecified"
    assert area in AREAS, f"{item.nodeid}: fault area {area!r} is not one of {AREAS}"
    return area


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    area = _area(item)
    if area is None:
        return
    if rep.skipped and os.environ.get("CI") and rep.when in ("setup", "call"):
        rep.outcome = "failed"
        rep.longrepr = f"fault case skipped in CI: {rep.longrepr}"
    if rep.when == "call" or (rep.when == "setup" and rep.outcome != "passed"):
        _results[area][rep.outcome] += 1


def pytest_terminal_summary(terminalreporter):
    if not _results:
        return
    tr = terminalreporter
    total = Counter()
    tr.section("fault matrix")
    for area in sorted(_results):
        c = _results[area]
        total.update(c)
        tr.write_line(f"{area:10} {sum(c.values()):4} cases: {c['passed']} passed, {c['failed']} failed, "
                      f"{c['skipped']} skipped")
    tr.write_line(f"{'total':10} {sum(total.values()):4} cases: {total['passed']} passed, {total['failed']} failed, "
                  f"{total['skipped']} skipped")
