"""``export_llm_requests`` / ``import_llm_outputs``: an LLM run's requests as batch
files for one's own GPUs (vLLM ``run-batch`` reads and writes OpenAI's batch format), and
their answers back into the response cache, so that the run itself then asks nothing.

A run's prompts depend on its bucket scheme, which ``train`` and ``evaluate`` fit on
different months: say which run the files are for (``run="train"`` or ``"evaluate"``,
with the same data, sample, seed and test anchors the run will be given).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator, Sequence

from forecaster import artifact, destination, evaluation, pipeline, progress
from forecaster.datasets import Dataset
from forecaster.errors import UserError
from forecaster.providers import ForecasterChoice, Provider, registration, resolve
from narrator.panel import HistoryBatch

RUNS = ("train", "evaluate")


def _provider_and_histories(dataset: Dataset, forecaster: ForecasterChoice, run: str, sample_customers: int | None,
                            seed: int, test_anchors: str | None) -> tuple[Provider, Iterator[HistoryBatch]]:
    """The provider the run would open and the histories it would ask, anchor by anchor."""
    if run not in RUNS:
        raise UserError(f"--for {run}: choose one of {', '.join(RUNS)}")
    if not registration(resolve(forecaster)[0]).is_llm:
        raise UserError("batch files are for an LLM forecaster: pass --provider llm (fc.LLMForecaster in Python)")
    if run == "evaluate":
        setup = evaluation.prepare(dataset, test_anchors, sample_customers, seed, forecaster=forecaster)
        return setup.forecaster, setup.histories()
    if test_anchors is not None:
        raise UserError("--test-anchors belongs to --for evaluate; train asks every anchor with an outcome")
    panel = artifact.training_panel(dataset.panel, sample_customers, seed)
    provider, _ = artifact.training_provider(forecaster, panel, artifact.training_scheme(panel))
    return provider, (panel.histories(a) for a in pipeline.anchors_with_outcome(panel))


def export_llm_requests(dataset: Dataset, forecaster: ForecasterChoice, out: str | Path, *, run: str = "train",
                        sample_customers: int | None = None, seed: int = 0,
                        test_anchors: str | None = None) -> list[Path]:
    """Write the request files (``requests-0001.jsonl``...: at most 50,000 lines and 200 MB
    each, one line per distinct prompt not yet in the cache, ``custom_id`` the request's
    cache key, never a customer id) of ``run`` into the new folder ``out``; returns them.

    Example::

        from forecaster.api.llm_files import export_llm_requests
        export_llm_requests(fc.load_dataset("cdnow"), fc.LLMForecaster(model="my-model"), "requests")
        # vllm run-batch -i requests/requests-0001.jsonl -o out-0001.jsonl --model my-model
    """
    from llm.batch import export_batch_requests  # heavy (openai): only when asked

    provider, histories = _provider_and_histories(dataset, forecaster, run, sample_customers, seed, test_anchors)
    files = destination.publish_folder(Path(out), destination.REQUESTS, lambda staging: [
        Path(f.path).name for f in export_batch_requests(provider.forecaster, *histories, folder=staging)])
    progress.notice(f"요청 파일 {len(files):,}개를 {out}에 썼습니다.")
    return [Path(out) / name for name in files]


def import_llm_outputs(dataset: Dataset, forecaster: ForecasterChoice, paths: Sequence[str | Path] | Iterable[Path], *,
                       run: str = "train", sample_customers: int | None = None, seed: int = 0,
                       test_anchors: str | None = None) -> dict:
    """Read batch output files (vLLM ``run-batch`` or OpenAI's) for ``run``'s prompts into
    the response cache, each line validated as a live answer (an unusable answer is re-asked
    live, a failed line is left for the run to ask); returns the counts."""
    from llm.batch import import_batch_outputs  # heavy (openai): only when asked

    provider, histories = _provider_and_histories(dataset, forecaster, run, sample_customers, seed, test_anchors)
    outcome = import_batch_outputs(provider.forecaster, *histories, paths=[Path(p) for p in paths])
    counts = {"lines": outcome.prompts, "answered": outcome.answered, "reasked": outcome.reasked,
              "already_cached": outcome.already_cached, "unmatched": outcome.unmatched,
              "failed": len(outcome.failures)}
    progress.notice(f"답 {counts['answered'] + counts['reasked']:,}건을 캐시에 넣었습니다(재질문 {counts['reasked']:,}건, "
                    f"이미 있던 답 {counts['already_cached']:,}건, 이 실행의 요청이 아닌 줄 {counts['unmatched']:,}건, "
                    f"실패 {counts['failed']:,}건).")
    return counts
