"""How much memory a run needs, estimated before it starts (``forecaster data``).

Each verb's peak is a sum of parts that grow with what the data holds, with coefficients
measured on synthetic shops (peak RSS of each verb in a child process, ``resource`` /
``os.wait4``, on ``synthetic:100000`` and ``synthetic:300000``; the figures are in
docs/architecture.md, section "Memory"):

* every verb: the interpreter and its libraries (:data:`BASE_BYTES`), the data as loaded
  (bytes per transaction and per customer-month of the panel);
* ``train``: that, plus the (customer, anchor) rows of the training customers (all, or
  ``--sample-customers``) over every anchor with an outcome;
* ``evaluate``: the same with more bytes a row (every arm and origin);
* ``batch``: the larger of the load and what the scoring holds: what it keeps of everyone
  (the log, the cut panel, the purchase days; per transaction) plus one chunk of
  ``--chunk-customers`` customers' features, answers and rows
  (:mod:`forecaster.batch_stream`); for data read in chunks (a Parquet folder, a large
  file, ``--chunk-rows``), two spill files of about ``--chunk-rows`` rows reduced and scored
  at a time plus what the run keeps of everyone (:mod:`forecaster.batch_partitioned`),
  measured on the 1M and 10M shops of ``bench/scale.py``.

The synthetic shops have 10.6 transactions and 36 months a customer; a shop with other
ratios is estimated from the same coefficients. Synthetic data is generated in memory,
so its load is dearer than reading a file: the estimate leans high there.

:data:`DEFAULT_CHUNK_CUSTOMERS` is the chunk of ``forecaster batch``, kept here so that the
command line reads it without importing the heavy modules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from forecaster.errors import UserError

DEFAULT_CHUNK_CUSTOMERS = 200_000
MEMINFO = Path("/proc/meminfo")
GB = 1024 ** 3

# measured coefficients (module doc); bytes. MiB = 2**20.
MIB = 1024 ** 2
BASE_BYTES = 188 * MIB  # the interpreter and the libraries `data` imports
PER_TRANSACTION = 174.0  # the rows as loaded (and, for synthetic data, generated)
PER_CELL = 24.0  # a customer-month of the panels
TRAIN_PER_ROW = 1_600.0  # a (customer, anchor) row of train
EVALUATE_PER_ROW = 2_100.0  # of evaluate (more arms and columns)
BATCH_BASE_BYTES = 600 * MIB  # batch also imports xgboost and pyarrow
BATCH_PER_TRANSACTION = 169.0  # what batch holds of everyone: the log, the cut panel, the purchase days
BATCH_PER_CHUNK_CUSTOMER = 4_900.0  # one chunk's features, answers and rows
# batch over spill files, two at a time (bench/scale.py --steps batch at 15d8539: 1.72 GiB for 10.6M rows,
# 3.23 GiB for 105.9M; --chunk-rows 250,000 on 10.6M rows: 1.04 GiB)
PARTITIONED_BASE_BYTES = 1590 * MIB  # imports, the model, two spill files of 1,000,000 rows reduced and scored
PARTITIONED_PER_TRANSACTION = 17.0  # kept of everyone: the summaries while summed, the merge's ids and order
PARTITIONED_PER_CHUNK_ROW = 970.0  # the spill files' (and scanned chunks') rows beyond or below 1,000,000
DEFAULT_CHUNK_ROWS = 1_000_000  # the chunked reader's rows per chunk (forecaster.ingest), a spill file's


@dataclass(frozen=True)
class Workload:
    """What decides a run's memory: the data's size and the options that bound the work."""

    customers: int
    months: int
    transactions: int
    sample_customers: int | None = None
    chunk_customers: int = DEFAULT_CHUNK_CUSTOMERS
    chunk_rows: int | None = None  # read in chunks: batch goes one spill file at a time

    @property
    def anchors(self) -> int:
        """Anchors with an outcome (the rows per training customer)."""
        return max(self.months - 1, 1)

    @property
    def modelled_customers(self) -> int:
        return min(self.sample_customers or self.customers, self.customers)


def loaded_bytes(work: Workload) -> float:
    """The interpreter, its libraries and the data as loaded (every verb)."""
    return BASE_BYTES + PER_TRANSACTION * work.transactions + PER_CELL * work.customers * work.months


def estimate(work: Workload) -> dict[str, float]:
    """Estimated peak bytes per verb (``data``, ``train``, ``evaluate``, ``batch``)."""
    loaded = loaded_bytes(work)
    rows = work.modelled_customers * work.anchors
    chunk = min(work.chunk_customers, work.customers)
    return {
        "data": loaded,
        "train": loaded + TRAIN_PER_ROW * rows,
        "evaluate": loaded + EVALUATE_PER_ROW * rows,
        "batch": partitioned_bytes(work) if work.chunk_rows else
        max(loaded, BATCH_BASE_BYTES + BATCH_PER_TRANSACTION * work.transactions + BATCH_PER_CHUNK_CUSTOMER * chunk),
    }


def partitioned_bytes(work: Workload) -> float:
    """``batch`` one spill file at a time (module doc); a file holds about ``chunk_rows`` rows."""
    return (PARTITIONED_BASE_BYTES + PARTITIONED_PER_TRANSACTION * work.transactions
            + PARTITIONED_PER_CHUNK_ROW * (min(work.chunk_rows, work.transactions) - DEFAULT_CHUNK_ROWS))


# the flag that lowers each verb's estimate
REMEDY = {"train": "--sample-customers", "evaluate": "--sample-customers", "batch": "--chunk-customers"}


def available_bytes(meminfo: Path = MEMINFO) -> int | None:
    """``MemAvailable`` of /proc/meminfo (None where there is no such file)."""
    try:
        text = meminfo.read_text()
    except OSError:
        return None
    found = re.search(r"^MemAvailable:\s+(\d+)\s*kB", text, re.MULTILINE)
    return int(found.group(1)) * 1024 if found else None


_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?\s*", re.IGNORECASE)


def parse_size(text: str) -> int:
    """``"8G"``, ``"512MB"``, ``"1.5GiB"``, ``"2000000000"`` -> bytes (K/M/G/T are powers of 1024)."""
    found = _SIZE.fullmatch(text)
    if not found:
        raise UserError(f"--memory-limit {text}: give a size such as 8G, 512M or 1.5GB")
    number, unit = float(found.group(1)), found.group(2).upper()
    size = int(number * 1024 ** " KMGT".index(unit or " "))
    if size <= 0:
        raise UserError(f"--memory-limit {text}: give a size above zero, such as 8G")
    return size


def size_text(size: float) -> str:
    """``"6.7 GB"``, or ``"450 MB"`` below a gigabyte."""
    return f"{size / GB:,.1f} GB" if size >= GB else f"{size / 1024 ** 2:,.0f} MB"


def check_fits(estimates: dict[str, float], budget: int, work: Workload, stated: bool) -> None:
    """UserError naming the first verb whose estimate is above ``budget`` and the flag that
    lowers it; ``stated``: the budget is ``--memory-limit`` (else the machine's available memory)."""
    where = "--memory-limit" if stated else "이 기계의 사용 가능한 메모리(/proc/meminfo MemAvailable)"
    for verb, need in estimates.items():
        if need <= budget:
            continue
        if verb not in REMEDY or estimates["data"] > budget:
            raise UserError(f"데이터를 읽는 데만 약 {size_text(estimates['data'])}가 필요해 {where} "
                            f"{size_text(budget)}를 넘습니다; 메모리가 더 큰 기계에서 실행하세요")
        flag, now = _remedy(verb, work)
        raise UserError(f"`forecaster {verb}`의 예상 최대 메모리는 약 {size_text(need)}로 {where} {size_text(budget)}보다 "
                        f"큽니다; {flag} 값(지금 {f'{now:,}' if now else '전체 고객'})을 줄여 다시 확인하세요")


def _remedy(verb: str, work: Workload) -> tuple[str, int | None]:
    """The flag that lowers ``verb``'s estimate and its value now."""
    if verb == "batch" and work.chunk_rows:
        return "--chunk-rows", work.chunk_rows
    return REMEDY[verb], work.chunk_customers if verb == "batch" else work.sample_customers
