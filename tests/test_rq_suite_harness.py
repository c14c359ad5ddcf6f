"""The comparison that decides whether RQ's own suite, run with Offload's workers, passes
(``scripts/rq_suite``): a new failure or a departure that starts passing must fail it."""

from __future__ import annotations

from scripts.rq_suite.__main__ import compare, departures

LISTED = {
    "t::departs": {"test": "t::departs", "kind": "fails", "reason": "on purpose"},
    "t::kills": {"test": "t::kills", "kind": "cannot run", "reason": "kills the runner"},
}


def test_only_listed_failures_pass_the_run():
    assert compare({"t::ok": "passed", "t::departs": "failed", "t::slow": "skipped"}, LISTED) == 0


def test_an_unlisted_failure_fails_the_run(capsys):
    assert compare({"t::ok": "failed", "t::departs": "failed"}, LISTED) == 1
    assert "unexpected failure: t::ok" in capsys.readouterr().out


def test_a_departure_that_passes_now_fails_the_run(capsys):
    assert compare({"t::departs": "passed"}, LISTED) == 1
    assert "passes now" in capsys.readouterr().out


def test_a_departure_that_did_not_run_fails_the_run(capsys):
    assert compare({"t::ok": "passed"}, LISTED) == 1
    assert "not run" in capsys.readouterr().out


def test_every_departure_says_why():
    listed = departures()
    assert listed, "departures.toml lists nothing"
    for test, entry in listed.items():
        assert test.startswith("tests/test_") and "::" in test
        assert entry["kind"] in ("fails", "cannot run")
        assert len(entry["reason"]) > 30, test
