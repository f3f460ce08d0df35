"""A seeded synthetic Korean online shop whose per-customer latent parameters are known,
and the oracle: the best possible next-month forecast given those parameters.

Generative model (discrete months, in the spirit of Pareto/NBD (Schmittlein, Morrison &
Colombo 1987) and BG/NBD (Fader, Hardie & Lee 2005) for purchasing and dropout, and of
the gamma-gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV")):

- segment g ~ Categorical(일반 70%, 프리미엄 25%, VIP 5%); each segment has its own
  parameter distributions (the mixture components);
- order rate lambda_i ~ Gamma(shape r_g, mean m_g) orders per month;
- dropout p_i ~ Beta(a_g, b_g): at the start of every month after the first, a customer
  still alive dies with probability p_i, so the death month is D_i = A_i + Geometric(p_i)
  (the first month the customer is gone);
- acquisition month A_i over the first 12 months (weighted by season); the first purchase
  happens then: orders in A_i are 1 + Poisson(lambda_i s_m);
- while alive (A_i < m < D_i): orders ~ Poisson(lambda_i s_m), zero-order months included;
- each order's amount ~ Gamma(shape q_g, mean nu_i), nu_i ~ Gamma(k_g, mean n_g), rounded to
  100원 (at least 100원); one transaction row per order, on a uniform day of the month;
- s_m is Korean retail seasonality: 11월 행사 (코리아세일페스타, 블랙프라이데이, 11.11),
  연말 (December), and 설날 / 추석 boosting the month of the week before the holiday (the
  lunar calendar moves them between January/February and September/October).

The oracle (:func:`oracle_bucket_probabilities`) knows the parameters but not the realised
death month: P(alive at the anchor | parameters, observed monthly orders) is exact by
Bayes over the unknown death month; the next month's spend distribution given a purchase
is Monte Carlo; P(no purchase) is exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.special import logsumexp

from narrator.panel import MonthlyPanel

DEFAULT_CUSTOMERS = 5_000
DEFAULT_SEED = 0
START = pd.Period("2022-01", freq="M")
N_MONTHS = 36
ACQUISITION_MONTHS = 12
MIN_ORDER_WON = 100
_ROWS_PER_CHUNK = 100_000


@dataclass(frozen=True)
class SegmentSpec:
    """Distributions of one mixture component's latent parameters."""

    name: str
    share: float
    rate_shape: float  # Gamma shape of lambda (heterogeneity; smaller = more spread)
    rate_mean: float  # mean orders per month while alive (before seasonality)
    drop_a: float  # Beta(a, b) of the monthly dropout probability
    drop_b: float
    value_shape: float  # Gamma shape of nu across customers
    value_mean: float  # mean of nu, won per order
    order_shape: float  # q: Gamma shape of one order's amount around nu


SEGMENTS = (
    SegmentSpec("일반", 0.70, 0.9, 0.35, 1.5, 13.5, 4.0, 38_000, 2.5),
    SegmentSpec("프리미엄", 0.25, 1.5, 0.90, 1.5, 23.5, 5.0, 85_000, 3.5),
    SegmentSpec("VIP", 0.05, 2.5, 2.20, 2.0, 65.0, 6.0, 210_000, 5.0),
)

_BASE_SEASON = np.array([1.00, 0.92, 0.95, 0.95, 1.00, 0.92, 0.88, 0.90, 0.98, 1.00, 1.35, 1.25])
_HOLIDAY_BOOST = 1.30
_SEOLLAL = ["2020-01-25", "2021-02-12", "2022-02-01", "2023-01-22", "2024-02-10",
            "2025-01-29", "2026-02-17", "2027-02-07"]
_CHUSEOK = ["2020-10-01", "2021-09-21", "2022-09-10", "2023-09-29", "2024-09-17",
            "2025-10-06", "2026-09-25", "2027-09-15"]
# gift shopping happens in the week before the holiday
_HOLIDAY_MONTHS = {
    (pd.Timestamp(day) - pd.Timedelta(days=7)).to_period("M") for day in _SEOLLAL + _CHUSEOK
}
_TABLE_YEARS = {int(day[:4]) for day in _SEOLLAL}


@dataclass(frozen=True)
class SyntheticShop:
    transactions: pd.DataFrame  # customer_id, ts, amount, order_id (one row per order)
    latent: pd.DataFrame  # customer_id, segment, acquisition_month, lambda, p_drop, nu, q, death_month


def season_factors(start: pd.Period, n_months: int) -> np.ndarray:
    """Seasonal multiplier of the order rate for ``n_months`` months from ``start``.

    Outside the holiday table's years 설날 is taken as January and 추석 as September."""
    periods = pd.period_range(start, periods=n_months, freq="M")
    factors = _BASE_SEASON[periods.month - 1].astype(np.float64)
    in_table = np.isin(periods.year, list(_TABLE_YEARS))
    holiday = np.array([p in _HOLIDAY_MONTHS for p in periods], dtype=bool)
    holiday |= ~in_table & np.isin(periods.month, [1, 9])
    return factors * np.where(holiday, _HOLIDAY_BOOST, 1.0)


def order_amounts(rng: np.random.Generator, shape: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Amounts of single orders: Gamma(shape, mean) rounded to 100원, at least 100원."""
    raw = rng.gamma(shape, mean / shape)
    return np.maximum(MIN_ORDER_WON, np.round(raw / 100.0) * 100.0)


def generate(n_customers: int = DEFAULT_CUSTOMERS, seed: int = DEFAULT_SEED) -> SyntheticShop:
    """A shop of ``n_customers`` over ``N_MONTHS`` months from ``START``; same seed, same shop."""
    rng = np.random.default_rng(seed)
    season = season_factors(START, N_MONTHS)
    latent = _draw_latent(rng, n_customers, season)
    customer, month = _draw_order_months(rng, latent, season)
    seg = latent["segment_code"].to_numpy()
    shape = np.array([s.order_shape for s in SEGMENTS])[seg]
    amount = order_amounts(rng, shape[customer], latent["nu"].to_numpy()[customer])
    first_day, day = _random_days(rng, month)
    # rows come grouped by month, customers ascending; a stable radix sort on the small
    # (month, day) key puts them in time order, customers ascending within a day
    order = np.argsort((month * 31 + day).astype(np.int16), kind="stable")
    ts = (first_day[month] + day).astype("datetime64[ns]")
    ids = pd.array(latent["customer_id"].to_numpy(), dtype="str")
    transactions = pd.DataFrame({
        "customer_id": ids.take(customer[order]),
        "ts": ts[order],
        "amount": amount[order],
        "order_id": np.arange(1, len(order) + 1, dtype=np.int64),
    })
    return SyntheticShop(transactions, _public_latent(latent))


def _draw_latent(rng: np.random.Generator, n: int, season: np.ndarray) -> pd.DataFrame:
    shares = np.array([s.share for s in SEGMENTS])
    seg = rng.choice(len(SEGMENTS), size=n, p=shares / shares.sum())

    def per_segment(field: str) -> np.ndarray:
        return np.array([getattr(s, field) for s in SEGMENTS], dtype=np.float64)[seg]

    rate_shape, value_shape = per_segment("rate_shape"), per_segment("value_shape")
    lam = rng.gamma(rate_shape, per_segment("rate_mean") / rate_shape)
    p_drop = rng.beta(per_segment("drop_a"), per_segment("drop_b"))
    nu = rng.gamma(value_shape, per_segment("value_mean") / value_shape)
    weights = season[:ACQUISITION_MONTHS] / season[:ACQUISITION_MONTHS].sum()
    acquisition = rng.choice(ACQUISITION_MONTHS, size=n, p=weights)
    death = acquisition + rng.geometric(p_drop)
    width = max(6, len(str(n)))
    ids = "C" + pd.Series(np.arange(1, n + 1)).astype(str).str.zfill(width)
    return pd.DataFrame({
        "customer_id": ids.astype(str), "segment_code": seg, "acquisition": acquisition,
        "lambda": lam, "p_drop": p_drop, "nu": nu, "q": per_segment("order_shape"),
        "death": death,
    })


def _draw_order_months(rng: np.random.Generator, latent: pd.DataFrame,
                       season: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(customer index, month index) of every order; a loop over months, vectorised inside."""
    acquisition = latent["acquisition"].to_numpy()
    death = latent["death"].to_numpy()
    lam = latent["lambda"].to_numpy()
    customers, months = [], []
    for m in range(len(season)):
        alive = np.flatnonzero((acquisition <= m) & (m < death))
        counts = rng.poisson(lam[alive] * season[m]) + (acquisition[alive] == m)
        customers.append(np.repeat(alive, counts))
        months.append(np.full(int(counts.sum()), m, dtype=np.int64))
    return np.concatenate(customers), np.concatenate(months)


def _random_days(rng: np.random.Generator, month: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first day of each month index, a uniform day offset within its month per order)."""
    first = np.datetime64(START.start_time.date(), "M") + np.arange(N_MONTHS + 1)
    first_day = first.astype("datetime64[D]")
    days_in = np.diff(first_day).astype(np.int64)
    return first_day, (rng.random(len(month)) * days_in[month]).astype(np.int64)


def _public_latent(latent: pd.DataFrame) -> pd.DataFrame:
    names = np.array([s.name for s in SEGMENTS], dtype=object)
    base = START.ordinal
    return pd.DataFrame({
        "customer_id": latent["customer_id"],
        "segment": names[latent["segment_code"].to_numpy()],
        "acquisition_month": pd.PeriodIndex.from_ordinals(base + latent["acquisition"].to_numpy(), freq="M"),
        "lambda": latent["lambda"],
        "p_drop": latent["p_drop"],
        "nu": latent["nu"],
        "q": latent["q"],
        "death_month": pd.PeriodIndex.from_ordinals(base + latent["death"].to_numpy(), freq="M"),
    })


def _aligned(latent: pd.DataFrame, customer_ids: np.ndarray) -> pd.DataFrame:
    params = latent.set_index("customer_id").reindex(customer_ids)
    missing = params["lambda"].isna().to_numpy()
    if missing.any():
        raise ValueError(f"{int(missing.sum())} customers of the panel have no latent "
                         f"parameters (e.g. {customer_ids[np.argmax(missing)]})")
    return params


def _posterior_alive(orders: np.ndarray, lam: np.ndarray, p_drop: np.ndarray,
                     season: np.ndarray) -> np.ndarray:
    """P(D >= A | orders in months 0..A-1), A = orders.shape[1], every row with an order.

    With L the last month with an order, D is in {L+1, .., A-1} (died in the gap) or >= A.
    Relative to the common factor (1-p)^(L-A_i), the weights are
      died at d:  (1-p)^(d-L-1) p exp(-lambda sum_{L<m<d} s_m)
      alive:      (1-p)^(A-L-1)   exp(-lambda sum_{L<m<A} s_m)
    (a month alive with no order has probability exp(-lambda s_m); a dead month has 1).
    """
    n, a = orders.shape
    cum = np.concatenate([[0.0], np.cumsum(season)])  # cum[j] = sum of s_m for m < j
    last = a - 1 - np.argmax(orders[:, ::-1] > 0, axis=1)
    log_stay = np.log1p(-p_drop)
    log_alive = (a - last - 1) * log_stay - lam * (cum[a] - cum[last + 1])
    d = np.arange(a)
    k = d[None, :] - last[:, None] - 1
    with np.errstate(divide="ignore"):
        log_died = (k * log_stay[:, None] + np.log(p_drop)[:, None]
                    - lam[:, None] * (cum[d][None, :] - cum[last + 1][:, None]))
    log_died = np.where(k >= 0, log_died, -np.inf)
    log_total = np.logaddexp(log_alive, logsumexp(log_died, axis=1))
    return np.exp(log_alive - log_total)


def probability_alive(latent: pd.DataFrame, cut: MonthlyPanel, anchor: pd.Period) -> np.ndarray:
    """P(alive in the anchor month | parameters, orders before it), per row of ``cut``."""
    a = _check_cut(cut, anchor)
    params = _aligned(latent, cut.customer_ids)
    p_drop = params["p_drop"].to_numpy()
    season = season_factors(cut.first_month, a)
    lam = params["lambda"].to_numpy()
    before = np.empty(len(lam))
    for lo in range(0, len(lam), _ROWS_PER_CHUNK):  # bounds the (rows x months) temporaries
        part = slice(lo, lo + _ROWS_PER_CHUNK)
        before[part] = _posterior_alive(cut.orders[part], lam[part], p_drop[part], season)
    return before * (1.0 - p_drop)  # and survives the anchor month's own dropout draw


def _check_cut(cut: MonthlyPanel, anchor: pd.Period) -> int:
    a = cut.column(anchor)
    if a != cut.n_months:
        raise ValueError(f"the panel must be cut at {anchor} (panel.before(anchor)); it ends "
                         f"at {cut.last_month}")
    return a


def _positive_month(rng: np.random.Generator, mu: np.ndarray, q: np.ndarray, nu: np.ndarray,
                    edges: np.ndarray, n_sims: int) -> tuple[np.ndarray, np.ndarray]:
    """Monte Carlo of a month's spend given at least one order: (bucket frequencies over
    the positive buckets (n, len(edges)+1), add-1/2 smoothed, and mean spend).

    N ~ Poisson(mu) | N >= 1 is drawn exactly: the first event time of a unit-rate-mu
    Poisson process given one in [0, 1] is T = -log(1 + u expm1(-mu)) / mu, and the
    remaining events are Poisson(mu (1 - T))."""
    n = len(mu)
    mu_ = np.maximum(mu, 1e-12)[:, None]
    first = -np.log1p(rng.random((n, n_sims)) * np.expm1(-mu_)) / mu_
    counts = 1 + rng.poisson(mu_ * (1.0 - first))
    cell = np.repeat(np.arange(n * n_sims), counts.ravel())
    owner = cell // n_sims
    spend = np.bincount(cell, weights=order_amounts(rng, q[owner], nu[owner]), minlength=n * n_sims)
    n_positive = len(edges) + 1
    bucket = np.searchsorted(edges, spend, side="right")  # positive bucket k -> k - 1
    row = np.repeat(np.arange(n), n_sims)
    freq = np.bincount(row * n_positive + bucket, minlength=n * n_positive).reshape(n, n_positive)
    # Krichevsky-Trofimov (add-1/2) estimate: a bucket the draws missed keeps a small
    # positive probability, so log loss stays finite
    return (freq + 0.5) / (n_sims + 0.5 * n_positive), spend.reshape(n, n_sims).mean(axis=1)


def oracle_bucket_probabilities(
    latent: pd.DataFrame,
    cut: MonthlyPanel,
    anchor: pd.Period,
    edges: np.ndarray,
    n_sims: int = 2000,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The best forecast of the anchor month for every customer of ``cut``
    (= ``panel.before(anchor)``): (customer_ids, probs (n, len(edges) + 2), expected spend).

    Bucket 0 is no purchase; spend s > 0 is bucket 1 + #(edges <= s).
    P(purchase) = P(alive) (1 - exp(-lambda s_anchor)) exactly; the split of a purchase
    over the positive buckets and its mean are Monte Carlo with ``n_sims`` draws.
    """
    edges = np.asarray(edges, dtype=np.float64)
    if edges.ndim != 1 or np.any(np.diff(edges) <= 0):
        raise ValueError("edges must be a strictly increasing 1-d array")
    a = _check_cut(cut, anchor)
    params = _aligned(latent, cut.customer_ids)
    lam, q, nu = (params[c].to_numpy(dtype=np.float64) for c in ("lambda", "q", "nu"))
    mu = lam * season_factors(cut.first_month, a + 1)[a]
    p_buy = probability_alive(latent, cut, anchor) * -np.expm1(-mu)

    rng = np.random.default_rng(seed)
    n = len(lam)
    given_buy = np.empty((n, len(edges) + 1))
    mean_given_buy = np.empty(n)
    chunk = max(1, 2_000_000 // n_sims)  # bounds memory at ~2M simulated months at once
    for lo in range(0, n, chunk):
        part = slice(lo, lo + chunk)
        given_buy[part], mean_given_buy[part] = _positive_month(
            rng, mu[part], q[part], nu[part], edges, n_sims)
    probs = np.column_stack([1.0 - p_buy, p_buy[:, None] * given_buy])
    return cut.customer_ids, probs, p_buy * mean_given_buy


def write_parquet(n_customers: int, seed: int, folder: Path, customers_per_chunk: int = 100_000,
                  lines_per_order: int = 1) -> int:
    """Write a shop of ``n_customers`` to ``folder`` as one Parquet file per chunk of
    ``customers_per_chunk`` customers (``part-00000.parquet`` ...), never holding more than
    one chunk; returns the rows written. For shops larger than memory (``forecaster --data
    FOLDER`` reads them in chunks).

    Chunk ``i`` is :func:`generate` of its customers with the seed ``SeedSequence([seed, i])``
    draws, ids renumbered ``C…`` from the chunk's offset and order ids continued: the same
    model, but **not** the same draw as ``generate(n_customers, seed)`` (one generator there,
    one per chunk here). ``lines_per_order`` > 1 splits every order into that many rows of
    equal amount (same order id and time, a ``line`` column numbering them): the same panel
    and purchase days from that many times the rows.
    """
    folder.mkdir(parents=True, exist_ok=True)
    width = max(6, len(str(n_customers)))
    rows = 0
    for i, start in enumerate(range(0, n_customers, customers_per_chunk)):
        k = min(customers_per_chunk, n_customers - start)
        chunk_seed = int(np.random.SeedSequence([seed, i]).generate_state(1)[0])
        tx = generate(k, chunk_seed).transactions
        number = tx["customer_id"].str.slice(1).astype(np.int64) + start
        tx = tx.assign(customer_id=("C" + number.astype(str).str.zfill(width)).astype(str),
                       order_id=tx["order_id"].to_numpy() + rows)
        if lines_per_order > 1:
            # a line number keeps the lines of an order from being identical rows (duplicates)
            tx = tx.loc[tx.index.repeat(lines_per_order)].assign(
                amount=lambda t: t["amount"] / lines_per_order,
                line=np.tile(np.arange(1, lines_per_order + 1, dtype=np.int8), len(tx))).reset_index(drop=True)
        pq.write_table(pa.Table.from_pandas(tx, preserve_index=False), folder / f"part-{i:05d}.parquet")
        rows += len(tx)
    return rows
