"""The rate search finds the highest rate that keeps the budget, whatever the service's limit."""

from __future__ import annotations

import pytest

from bench.ratesearch import RateSearch


def search_against(limit: int, **kwargs: int | float) -> tuple[RateSearch, list[int]]:
    """Run the search against a service that keeps the budget up to ``limit`` requests/s."""
    finder = RateSearch(**kwargs)  # type: ignore[arg-type]
    tried = []
    while (rate := finder.next_rate()) is not None:
        assert rate not in tried, "a rate is never tried twice"
        tried.append(rate)
        finder.record(rate, rate <= limit)
    return finder, tried


@pytest.mark.parametrize("limit", [60, 385, 999, 1000, 2500])
def test_finds_the_limit_within_the_resolution(limit: int) -> None:
    finder, _ = search_against(limit, start=50, ceiling=4000, resolution=0.1)
    assert finder.best <= limit
    assert finder.best >= limit / 1.1


def test_doubles_until_a_rate_fails_then_bisects() -> None:
    _, tried = search_against(385, start=50, ceiling=4000, resolution=0.1)
    assert tried[:5] == [50, 100, 200, 400, 300]


def test_stops_at_the_ceiling_when_everything_passes() -> None:
    finder, tried = search_against(10**9, start=50, ceiling=300)
    assert tried == [50, 100, 200, 300]
    assert finder.best == 300


def test_goes_down_when_the_first_rate_fails_and_gives_up_below_the_minimum() -> None:
    finder, tried = search_against(0, start=50, ceiling=4000, minimum=10)
    assert tried == [50, 25, 12]
    assert finder.best == 0


def test_a_noisy_failure_below_a_pass_does_not_stop_the_search_upwards() -> None:
    finder = RateSearch(start=100, ceiling=1000)
    finder.record(100, True)
    finder.record(50, False)
    assert finder.next_rate() == 200
