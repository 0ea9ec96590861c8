"""Weekly demand forecasts for restocking: pure functions on a series of weekly units sold, oldest first.

`forecast(weekly, horizon=h)` chooses a method by the rule below, fits it and returns a `Forecast`: the
forecast of each of the next `h` weeks, their mean, and `sigma`, the standard deviation of the method's
one-week-ahead errors on the history (the spread that safety stock has to cover).

The rule (`choose_method`), after the series is cut to start at its first sale:

1. nothing sold: NONE, a forecast of 0;
2. sporadic demand: the average demand interval ADI = weeks / weeks with a sale above 1.32 (Syntetos and
   Boylan's cut-off: at most about three weeks in four have a sale): TSB, which forecasts the chance of a
   sale in a week times the usual size of one, so the weeks without a sale do not drag a level towards 0
   and back as exponential smoothing would;
3. two full years of history (104 weeks) or more: Holt-Winters with an additive trend and an additive
   52-week season, its initial season read from the first two years;
4. a clear straight-line trend (least-squares slope with p < 0.05 over at least 12 weeks): Holt's linear
   trend;
5. otherwise simple exponential smoothing, a level that follows the recent weeks.

Trend, season and smoothing parameters of 3 to 5 are fitted by statsmodels (least squares of the one-step
errors); TSB's two smoothing constants are chosen here from a small grid by the same criterion. Forecasts
are never below 0.
"""

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import stats
from statsmodels.tsa.holtwinters import ExponentialSmoothing, SimpleExpSmoothing

from inventory.choices import ForecastMethod

ADI_SPORADIC = 1.32
SEASON_WEEKS = 52
SEASONAL_MIN_WEEKS = 2 * SEASON_WEEKS
TREND_MIN_WEEKS = 12
TREND_P_VALUE = 0.05
TSB_GRID = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3)


@dataclass(frozen=True)
class Forecast:
    """`path[i]`: units expected in week i + 1 from now; `mean`: their mean per week; `sigma`: the standard
    deviation of the one-week-ahead errors on the history (units per week)."""

    method: str
    path: np.ndarray = field(repr=False)
    sigma: float
    weeks_of_history: int

    @property
    def mean(self) -> float:
        return float(self.path.mean()) if len(self.path) else 0.0


def as_series(weekly) -> np.ndarray:
    """The weekly units as floats, negative weeks (more returned than sold) counted as 0, cut to start at the
    first week with a sale (the weeks before the product was on sale say nothing about its demand)."""
    values = np.clip(np.nan_to_num(np.asarray(weekly, dtype=float).ravel(), nan=0.0, posinf=0.0), 0.0, None)
    sold = np.flatnonzero(values > 0)
    return values[sold[0]:] if len(sold) else values[:0]


def average_demand_interval(series: np.ndarray) -> float:
    """Weeks per week with a sale (1.0: a sale every week); infinite without any sale."""
    selling = int(np.count_nonzero(series > 0))
    return len(series) / selling if selling else math.inf


def has_trend(series: np.ndarray) -> bool:
    """Whether the least-squares line through the weeks has a slope that is not chance (p < TREND_P_VALUE)."""
    if len(series) < TREND_MIN_WEEKS or np.ptp(series) == 0:
        return False
    return bool(stats.linregress(np.arange(len(series)), series).pvalue < TREND_P_VALUE)


def choose_method(series: np.ndarray) -> str:
    """The method for a series already cut by `as_series` (see the module's rule)."""
    if not len(series) or not series.any():
        return ForecastMethod.NONE
    if average_demand_interval(series) > ADI_SPORADIC:
        return ForecastMethod.TSB
    if len(series) >= SEASONAL_MIN_WEEKS:
        return ForecastMethod.HOLT_WINTERS
    if has_trend(series):
        return ForecastMethod.HOLT
    return ForecastMethod.SES


def _rms(errors: np.ndarray) -> float:
    errors = errors[np.isfinite(errors)]
    return float(math.sqrt(np.mean(errors ** 2))) if len(errors) else 0.0


def _statsmodels(series: np.ndarray, horizon: int, method: str) -> tuple[np.ndarray, float]:
    if len(series) < 2:  # nothing to fit: the one week is the level
        return np.full(horizon, series[-1] if len(series) else 0.0), 0.0
    if method == ForecastMethod.SES:
        model = SimpleExpSmoothing(series, initialization_method="estimated")
    elif method == ForecastMethod.HOLT:
        model = ExponentialSmoothing(series, trend="add", initialization_method="estimated")
    else:
        model = ExponentialSmoothing(series, trend="add", seasonal="add", seasonal_periods=SEASON_WEEKS,
                                     initialization_method="heuristic")
    # A flat or perfectly fitted series has zero error: the fit's information criteria then divide by zero.
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore")
        result = model.fit()
        path = np.asarray(result.forecast(horizon), dtype=float)
        fitted = np.asarray(result.fittedvalues, dtype=float)
    return path, _rms(series - fitted)


def tsb_filter(series: np.ndarray, alpha: float, beta: float) -> tuple[np.ndarray, float]:
    """Teunter-Syntetos-Babai: the one-week-ahead forecast before each week, and the forecast after the last.

    Two smoothed figures: `chance`, the probability that a week has a sale, updated every week towards 1
    (a sale) or 0 (none) with constant `beta`; `size`, the units of a week with a sale, updated only in
    weeks with a sale with constant `alpha`. The forecast is chance × size. Unlike Croston's method, which
    smooths the interval between sales and so changes only when a sale comes, the chance decays in every
    week without one, so a product that stopped selling is forecast less and less. Both start from the
    whole series (share of weeks with a sale, mean size of a sale).
    """
    selling = series[series > 0]
    chance, size = len(selling) / len(series), float(selling.mean())
    before = np.empty(len(series))
    for week, units in enumerate(series):
        before[week] = chance * size
        if units > 0:
            chance += beta * (1 - chance)
            size += alpha * (units - size)
        else:
            chance -= beta * chance
    return before, chance * size


def _tsb(series: np.ndarray, horizon: int) -> tuple[np.ndarray, float]:
    best = None
    for alpha in TSB_GRID:
        for beta in TSB_GRID:
            before, ahead = tsb_filter(series, alpha, beta)
            error = _rms(series - before)
            if best is None or error < best[0]:
                best = (error, ahead)
    return np.full(horizon, best[1]), best[0]


def forecast(weekly, *, horizon: int = 1, method: str | None = None) -> Forecast:
    """Forecast the next `horizon` weeks of a product's weekly demand (units per week, oldest first).

    `method`: force one of ForecastMethod instead of the rule (e.g. to compare them); Holt-Winters needs
    SEASONAL_MIN_WEEKS of history and falls back to the rule's choice without them.
    """
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
        raise ValueError("horizon must be a whole number of weeks, at least 1.")
    series = as_series(weekly)
    chosen = choose_method(series)
    if method is not None and chosen != ForecastMethod.NONE:
        if method not in ForecastMethod.values:
            raise ValueError(f"Unknown forecast method {method!r}.")
        if method != ForecastMethod.HOLT_WINTERS or len(series) >= SEASONAL_MIN_WEEKS:
            chosen = method
    if chosen == ForecastMethod.NONE:
        path, sigma = np.zeros(horizon), 0.0
    elif chosen == ForecastMethod.TSB:
        path, sigma = _tsb(series, horizon)
    else:
        path, sigma = _statsmodels(series, horizon, chosen)
    path = np.clip(np.nan_to_num(path, nan=0.0, posinf=0.0), 0.0, None)
    return Forecast(method=str(chosen), path=path, sigma=sigma if math.isfinite(sigma) else 0.0,
                    weeks_of_history=len(series))
