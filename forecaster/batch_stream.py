"""`forecaster batch --out FILE` in chunks of customers, resumable, written atomically.

Memory is set by the chunk (``--chunk-customers``, default :data:`DEFAULT_CHUNK_CUSTOMERS`)
and the panel, not by the number of rows written: each chunk's rows (features, forecaster,
model) are made and written to disk before the next chunk starts.

Two passes, because the top-20% flag ranks every customer's purchase probability
(:mod:`forecaster.top_share`):

1. every chunk's rows, without the flag, go to ``part-NNNNN.parquet`` in a hidden work
   folder beside the output, ``.NAME.forecaster-batch-KEY`` (KEY: a digest of the model,
   the data as the run sees it, the anchor, ``--limit``, the provider and the chunk size);
   ``progress.json`` there records the chunks finished;
2. the flag is computed once from the purchase probabilities of every part, and the parts
   are copied into a temporary sibling of the output (Parquet row group by row group, or
   CSV appended), which is renamed over ``--out`` at the end (:func:`destination.write_file`).

A killed run leaves ``--out`` untouched and the work folder behind; run the same command
again and it goes on from the first chunk not finished (an LLM's answers are in its
response cache anyway). Population pieces (the seasonal index, the empirical forecaster's
population rates) are always computed from the whole panel, so a chunk's rows are the rows
the whole run gives. When the output is in place, the work folder's files (only the names
this module writes: the parts, their ``.tmp`` siblings and ``progress.json``) are deleted,
then the folder if nothing else is in it.

``--max-failed`` counts the LLM forecasts made by this call: the failures of chunks an
earlier, killed run finished are in the file (``status`` failed) but not counted again.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from forecaster import artifact, destination, progress
from forecaster.batch import BatchJob, check_output, chunk_bounds, flag_top, status_tally, UNFORECAST
from forecaster.providers import Provider
from forecaster.errors import UserError
from forecaster.memory import DEFAULT_CHUNK_CUSTOMERS

PROGRESS = "progress.json"
KIND = "forecaster batch progress"
WORK_TAG = "forecaster-batch"
HASH_ROWS = 1 << 20  # rows of an array hashed at a time
PART_ROW_GROUP = 2048  # rows per row group of a part: a merge holds one of every part


def run_key(job: BatchJob, chunk_customers: int) -> str:
    """A digest of everything that decides the rows: the model (config and boosters), the
    cut panel, the purchase days, the customers without a forecast, the provider, the
    anchor and the chunk size. A rerun with the same arguments on the same data finds it."""
    h = model_digest(job.art, job.provider, job.anchor, chunk_customers)
    panel = job.shown
    h.update(pd.util.hash_array(np.asarray(job.cut.customer_ids, dtype=object)).tobytes())
    h.update(pd.util.hash_array(np.asarray(panel.customer_ids, dtype=object)).tobytes())
    update_digest(h, (job.cut.spend, job.cut.orders, job.cut.first_idx, job.days.code, job.days.day, job.days.amount))
    h.update(pd.util.hash_pandas_object(job.unforecast, index=False).to_numpy().tobytes())
    return h.hexdigest()


def model_digest(art: artifact.Artifact, provider: Provider, anchor: pd.Period, chunk_customers: int) -> "hashlib._Hash":
    """A BLAKE2b of the model (config and boosters), the provider, the anchor and the chunk
    size, to which a run adds its data."""
    h = hashlib.blake2b(digest_size=16)
    h.update(json.dumps(art.config, sort_keys=True, default=str).encode())
    for model in art.models.values():
        for booster in (model.purchase_, model.bucket_):
            h.update(bytes(booster.save_raw("ubj")))
    h.update(json.dumps([provider.info, provider.llm.model, provider.llm.base_url, str(anchor),
                         chunk_customers]).encode())
    return h


def update_digest(h: "hashlib._Hash", arrays: Iterable[np.ndarray]) -> None:
    """``arrays``' bytes into ``h``, HASH_ROWS at a time (an array may be a view: no copy of it whole)."""
    for array in arrays:
        for lo in range(0, max(len(array), 1), HASH_ROWS):
            h.update(memoryview(np.ascontiguousarray(array[lo:lo + HASH_ROWS])).cast("B"))


@dataclass(frozen=True)
class WorkFolder:
    """The hidden folder of one run's finished chunks (module doc)."""

    folder: Path
    key: str
    chunks: int

    @classmethod
    def beside(cls, out: Path, key: str, chunks: int) -> "WorkFolder":
        out = Path(out).absolute()
        return cls(out.parent / f".{out.name}.{WORK_TAG}-{key[:20]}", key, chunks)

    def part(self, k: int) -> Path:
        return self.folder / f"part-{k + 1:05d}.parquet"

    def state(self) -> dict:
        """``progress.json``, or a fresh state when there is none (or it is another run's)."""
        fresh = {"kind": KIND, "key": self.key, "chunks": self.chunks, "done": {}}
        try:
            state = json.loads((self.folder / PROGRESS).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return fresh
        same = isinstance(state, dict) and state.get("kind") == KIND and state.get("key") == self.key
        if not same or not isinstance(state.get("done"), dict):
            return fresh
        state["done"] = {k: v for k, v in state["done"].items() if self.part(int(k)).is_file()}
        return state

    def record(self, state: dict, k: int, frame: pd.DataFrame) -> None:
        """Write chunk ``k``'s part, then mark it done (each file replaced atomically)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        _replace(self.part(k), lambda tmp: frame.to_parquet(tmp, index=False, row_group_size=PART_ROW_GROUP))
        state["done"][str(k)] = {"rows": len(frame), "status": dict(Counter(frame["status"]))}
        _replace(self.folder / PROGRESS, lambda tmp: tmp.write_text(json.dumps(state, ensure_ascii=False, indent=1),
                                                                     encoding="utf-8"))

    def remove(self) -> None:
        """Delete the parts and ``progress.json`` (the files this module wrote), then the
        folder if nothing else is in it."""
        for path in [*(self.part(k) for k in range(self.chunks)), self.folder / PROGRESS]:
            path.unlink(missing_ok=True)
            _temporary(path).unlink(missing_ok=True)  # left by a run killed while writing it
        try:
            self.folder.rmdir()
        except OSError:
            progress.warning(f"작업 폴더 {self.folder}에 forecaster가 쓰지 않은 파일이 있어 폴더를 지우지 않았습니다.")


def _temporary(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


def _replace(path: Path, write: Callable[[Path], object]) -> None:
    # not destination.write_file: its random temporary name would be unknown to remove()
    # after a kill; this one is derived from the part's name, so remove() can find it
    tmp = _temporary(path)
    write(tmp)
    os.replace(tmp, path)


def other_work_folders(work: WorkFolder) -> list[Path]:
    """Work folders of earlier runs for the same output with other arguments or data."""
    prefix = work.folder.name[: -len(work.key[:20])]
    return sorted(p for p in work.folder.parent.glob(prefix + "*") if p != work.folder and p.is_dir())


def resumed_state(work: WorkFolder) -> dict:
    """The work folder's state, with a notice for a resumed run and for the folders of
    earlier runs with other arguments or data."""
    for other in other_work_folders(work):
        progress.notice(f"{other}: 다른 설정이나 데이터로 중단된 이전 실행의 중간 결과입니다. 필요 없으면 지우세요.")
    state = work.state()
    if state["done"]:
        progress.notice(f"중단된 실행을 이어서 합니다: {work.chunks}개 묶음 중 {len(state['done'])}개는 "
                        f"{work.folder}에 있어 다시 계산하지 않습니다.")
    return state


def top_from_parts(work: WorkFolder, job: BatchJob) -> np.ndarray:
    """The top-20% flag of every forecast customer, from the purchase probabilities of all
    parts (read one column at a time: 4 bytes a customer)."""
    from forecaster.top_share import top_share

    probs = []
    for k in range(work.chunks):
        table = pq.read_table(work.part(k), columns=["status", "purchase_prob"])
        status = table.column("status").to_numpy(zero_copy_only=False)
        probs.append(table.column("purchase_prob").to_numpy()[~np.isin(status, UNFORECAST)])
    scores = np.concatenate(probs)
    if len(scores) != len(job):
        raise UserError(f"작업 폴더 {work.folder}의 중간 결과가 이 실행과 맞지 않습니다; 폴더를 지우고 다시 실행하세요")
    return top_share(scores, job.shown.customer_ids)[0]


def _flagged_parts(work: WorkFolder, flags: np.ndarray) -> Iterator[pd.DataFrame]:
    """Every part with its top-20% flags, one part in memory at a time."""
    offset = 0
    for k in range(work.chunks):
        frame = pd.read_parquet(work.part(k))
        n = int((~frame["status"].isin(UNFORECAST)).sum())
        yield flag_top(frame, flags[offset: offset + n])
        offset += n


def write_parquet(frames: Iterator[pd.DataFrame], tmp: Path, schema: pa.Schema | None = None) -> None:
    """The frames into one Parquet file, each cast to ``schema`` (default: the first frame's)."""
    writer = None
    for frame in frames:
        table = pa.Table.from_pandas(frame, preserve_index=False)
        if writer is None:
            writer = pq.ParquetWriter(tmp, schema or table.schema)
        writer.write_table(table.cast(writer.schema) if table.schema != writer.schema else table)
    writer.close()


def write_csv(frames: Iterator[pd.DataFrame], tmp: Path) -> None:
    with open(tmp, "w", encoding="utf-8", newline="") as handle:
        for k, frame in enumerate(frames):
            destination.neutralise_formulas(frame).to_csv(handle, header=k == 0, index=False)


def stream_to_file(job: BatchJob, out: Path, force: bool, chunk_customers: int = DEFAULT_CHUNK_CUSTOMERS) -> Counter:
    """Every customer's row into ``out`` (module doc); returns the status counts. ``out`` is
    checked before any work and again before it is replaced."""
    out = Path(out)
    check_output(out, force)
    job.check_population()
    bounds = chunk_bounds(len(job), chunk_customers)
    work = WorkFolder.beside(out, run_key(job, chunk_customers), len(bounds))
    state = resumed_state(work)
    todo = [k for k in range(len(bounds)) if str(k) not in state["done"]]
    done = sum(hi - lo for k, (lo, hi) in enumerate(bounds) if str(k) in state["done"])
    with job.forecasting(bounds, done) as chunk_rows:
        for k in todo:
            work.record(state, k, chunk_rows(k))
    flags = top_from_parts(work, job)
    check_output(out, force)  # again: the file may have appeared during the run
    write = write_csv if out.suffix.lower() == ".csv" else write_parquet
    destination.write_file(out, lambda tmp: write(_flagged_parts(work, flags), tmp))
    work.remove()
    return status_tally(chunk["status"] for chunk in state["done"].values())
