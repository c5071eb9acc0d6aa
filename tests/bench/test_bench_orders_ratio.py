"""The orders bench's paired ratio: each deployed round against the baseline's rounds beside it."""

from __future__ import annotations

import pytest

from bench.orders_bench import CONTROL, VARIANTS, _in_order, paired_ratio, schedule

MAIN, BARE = VARIANTS


def test_rounds_alternate_starting_with_the_deployed_variant() -> None:
    assert schedule(3) == [MAIN, BARE, MAIN, BARE, MAIN, BARE]


def test_a_steady_drift_cancels_out_of_the_paired_ratio() -> None:
    # The machine slows by 10 orders/s every round; the deployed variant is always 90% of the baseline.
    order = schedule(3)
    speed = [200.0 - 10 * i for i in range(len(order))]
    rps = [s * (0.9 if v is MAIN else 1.0) for s, v in zip(speed, order, strict=True)]
    assert paired_ratio(order, rps) == pytest.approx(0.9, abs=0.01)
    # Medians of each side alone would not see it: the drift flatters whichever ran first.
    mains = sorted(r for r, v in zip(rps, order, strict=True) if v is MAIN)
    bares = sorted(r for r, v in zip(rps, order, strict=True) if v is BARE)
    assert mains[1] / bares[1] > 0.93


def test_the_first_round_has_only_the_baseline_after_it() -> None:
    order = [MAIN, BARE]
    assert paired_ratio(order, [90.0, 100.0]) == pytest.approx(0.9)


def test_rounds_are_put_back_in_the_order_they_ran() -> None:
    order = schedule(2)
    rounds = {MAIN.label: [{"rps": 1.0}, {"rps": 3.0}], BARE.label: [{"rps": 2.0}, {"rps": 4.0}]}
    assert [r["rps"] for r in _in_order(order, rounds)] == [1.0, 2.0, 3.0, 4.0]


def test_the_control_runs_the_deployed_service_twice_under_two_labels() -> None:
    deployed, again = CONTROL
    assert deployed is MAIN
    assert again.module == MAIN.module
    assert again.label != MAIN.label
    order = schedule(2, CONTROL)
    assert order == [MAIN, again, MAIN, again]
    assert paired_ratio(order, [100.0, 100.0, 100.0, 100.0]) == pytest.approx(1.0)
