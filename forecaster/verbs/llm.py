"""`forecaster llm export` / `forecaster llm import`: an LLM run's requests as batch files
for one's own GPUs (vLLM ``run-batch``), and their answers back into the response cache
(:mod:`forecaster.api.llm_files`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from forecaster import destination
from forecaster.verbs.options import DataOptions, dataset_from_options, with_options
from forecaster.verbs.provider_options import BaseURLOption, CacheDirOption, LLMModelOption, err, llm_choice

RunOption = Annotated[str, typer.Option(
    "--for", metavar="train|evaluate",
    help="The run the requests are for: its bucket scheme and anchors decide the prompts.")]
SampleOption = Annotated[int | None, typer.Option("--sample-customers", min=100,
                                                  help="The same sample the run will be given.")]
TestAnchorsOption = Annotated[str | None, typer.Option("--test-anchors", metavar="A..B",
                                                       help="With --for evaluate: the run's test anchors.")]

app = typer.Typer(help="Batch files of an LLM run: export the requests, import the answers (vLLM run-batch).",
                  no_args_is_help=True)


def export(
    out: Annotated[Path, typer.Option("--out", help="New or empty folder for requests-0001.jsonl ...")],
    data: DataOptions = DataOptions(),
    run: RunOption = "train",
    sample_customers: SampleOption = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    test_anchors: TestAnchorsOption = None,
    llm_model: LLMModelOption = None,
    base_url: BaseURLOption = None,
    cache_dir: CacheDirOption = None,
) -> None:
    """Write the run's uncached LLM requests as OpenAI batch JSONL files (nothing is sent)."""
    from forecaster.api.llm_files import export_llm_requests  # heavy: only when the verb runs

    destination.check_folder(out, destination.REQUESTS)
    files = export_llm_requests(dataset_from_options(data), llm_choice("llm", llm_model, base_url, cache_dir), out,
                                run=run, sample_customers=sample_customers, seed=seed, test_anchors=test_anchors)
    for path in files:
        print(path)


def import_(
    files: Annotated[list[Path], typer.Argument(help="Batch output JSONL files (vLLM run-batch -o, or OpenAI's).")],
    data: DataOptions = DataOptions(),
    run: RunOption = "train",
    sample_customers: SampleOption = None,
    seed: Annotated[int, typer.Option("--seed")] = 0,
    test_anchors: TestAnchorsOption = None,
    llm_model: LLMModelOption = None,
    base_url: BaseURLOption = None,
    cache_dir: CacheDirOption = None,
) -> None:
    """Read batch answers into the response cache; the run then finds them there."""
    from forecaster.api.llm_files import import_llm_outputs  # heavy: only when the verb runs

    counts = import_llm_outputs(dataset_from_options(data), llm_choice("llm", llm_model, base_url, cache_dir), files,
                                run=run, sample_customers=sample_customers, seed=seed, test_anchors=test_anchors)
    err.print(f"다음 `forecaster {run} --provider llm`은 캐시에 있는 답 {counts['answered'] + counts['reasked']:,}건을 "
              "다시 묻지 않습니다.", soft_wrap=True)


app.command("export")(with_options(export))
app.command("import")(with_options(import_))


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="llm")
