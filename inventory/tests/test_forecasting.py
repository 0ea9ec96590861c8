"""Weekly demand forecasts (inventory.forecasting) on series whose right answer is known."""

import numpy as np
import pytest

from inventory import forecasting
from inventory.choices import ForecastMethod


def test_a_constant_series_is_forecast_as_that_constant_with_no_spread():
    result = forecasting.forecast([7] * 30, horizon=4)
    assert result.method == ForecastMethod.SES
    assert result.path == pytest.approx([7, 7, 7, 7])
    assert result.mean == pytest.approx(7)
    assert result.sigma == pytest.approx(0, abs=1e-6)
    assert result.weeks_of_history == 30


def test_a_long_constant_series_stays_constant_under_holt_winters():
    result = forecasting.forecast([5] * 120, horizon=3)
    assert result.method == ForecastMethod.HOLT_WINTERS
    assert result.path == pytest.approx([5, 5, 5], abs=1e-6)


def test_a_linear_trend_is_followed_by_holt():
    weekly = [4 + 2 * week for week in range(30)]  # 4, 6, ..., 62
    result = forecasting.forecast(weekly, horizon=3)
    assert result.method == ForecastMethod.HOLT
    assert result.path == pytest.approx([64, 66, 68], abs=0.05)
    assert result.mean == pytest.approx(66, abs=0.05)


def test_trend_and_yearly_season_are_followed_by_holt_winters():
    weeks = np.arange(156 + 8)
    truth = 30 + 0.2 * weeks + 10 * np.sin(2 * np.pi * weeks / 52)
    noisy = truth[:156] + np.random.default_rng(7).normal(0, 0.5, 156)
    result = forecasting.forecast(noisy, horizon=8)
    assert result.method == ForecastMethod.HOLT_WINTERS
    assert result.path == pytest.approx(truth[156:], abs=2.0)  # the season's swing is ±10
    assert 0.3 < result.sigma < 1.0  # about the noise's 0.5


def test_tsb_finds_the_true_rate_of_sporadic_sales():
    rng = np.random.default_rng(4)
    weeks = 400
    chance, size = 0.2, 3.0
    weekly = np.where(rng.random(weeks) < chance, 1 + rng.poisson(size - 1, weeks), 0)
    result = forecasting.forecast(weekly)
    assert result.method == ForecastMethod.TSB
    assert result.mean == pytest.approx(chance * size, rel=0.2)
    assert result.sigma > 0


def test_the_tsb_filter_converges_on_a_regular_pattern():
    weekly = np.array([4.0, 0, 0, 0, 0] * 200)  # 4 units every fifth week: 0.8 a week
    before, ahead = forecasting.tsb_filter(weekly, 0.05, 0.02)
    assert ahead == pytest.approx(0.8, rel=0.15)
    assert before[0] == pytest.approx(0.8)  # starts from the whole series' share and size


def test_tsb_forecasts_less_and_less_once_sales_stop():
    sold = [0, 0, 3, 0, 0, 2, 0, 0, 0, 4] * 6
    stopped = forecasting.forecast(sold + [0] * 20).mean
    assert forecasting.forecast(sold).method == ForecastMethod.TSB
    assert stopped < forecasting.forecast(sold).mean


def test_nothing_sold_forecasts_nothing():
    for weekly in ([], [0, 0, 0], [0, -2, 0]):
        result = forecasting.forecast(weekly, horizon=2)
        assert result.method == ForecastMethod.NONE
        assert list(result.path) == [0, 0] and result.sigma == 0


@pytest.mark.parametrize(("weekly", "method"), [
    ([3] * 10, ForecastMethod.SES),
    ([0] * 50 + [3] * 10, ForecastMethod.SES),  # weeks before the first sale do not count
    ([3, 0] * 10, ForecastMethod.TSB),  # ADI 2
    ([3, 3, 3, 0] * 24 + [3] * 4, ForecastMethod.SES),  # ADI 100/76 = 1.316: not sporadic
    ([3, 3, 3, 0] * 25, ForecastMethod.TSB),  # ADI 100/75 = 1.333: sporadic
    ([3 + week for week in range(11)], ForecastMethod.SES),  # a trend needs 12 weeks
    ([3 + week for week in range(12)], ForecastMethod.HOLT),
    ([5, 6] * 6, ForecastMethod.SES),  # no significant slope
    ([5, 6] * 52, ForecastMethod.HOLT_WINTERS),  # two full years
    ([5, 6] * 51 + [5], ForecastMethod.SES),  # 103 weeks: not yet
    ([5, 0, 0] * 40, ForecastMethod.TSB),  # sporadic wins over the season
])
def test_the_method_is_chosen_by_the_rule(weekly, method):
    assert forecasting.choose_method(forecasting.as_series(weekly)) == method


def test_the_average_demand_interval():
    assert forecasting.average_demand_interval(np.array([1.0, 0, 0, 2.0])) == 2
    assert forecasting.average_demand_interval(np.array([0.0, 0])) == float("inf")


def test_weeks_with_more_returns_than_sales_count_as_none_and_forecasts_are_never_negative():
    assert list(forecasting.as_series([0, 2, -3, 4])) == [2, 0, 4]
    falling = [60 - 5 * week for week in range(13)]  # 60 ... 0, heading below zero
    assert min(forecasting.forecast(falling, horizon=10).path) >= 0


def test_a_method_can_be_forced_but_holt_winters_needs_two_years():
    assert forecasting.forecast([3, 0] * 20, method=ForecastMethod.SES).method == ForecastMethod.SES
    assert forecasting.forecast([3] * 20, method=ForecastMethod.HOLT_WINTERS).method == ForecastMethod.SES


@pytest.mark.parametrize("horizon", [0, -1, 1.5, True, "2"])
def test_a_bad_horizon_is_refused(horizon):
    with pytest.raises(ValueError, match="horizon"):
        forecasting.forecast([1, 2, 3], horizon=horizon)


def test_an_unknown_forced_method_is_refused():
    with pytest.raises(ValueError, match="Unknown forecast method"):
        forecasting.forecast([1, 2, 3], method="arima")
