"""`forecaster llm export` / `forecaster llm import`: an LLM run's requests as batch files
for one's own GPUs (vLLM ``run-batch``), and their answers back into the response cache
(:mod:`forecaster.api.llm_files`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer

from forecaster import destination
from forecaster.verbs.options import DataOptions, dataset_from_options, with_options
from forecaster.verbs.provider_options import LLMEndpointOptions, err

RunOption = Annotated[str, typer.Option(
    "--for", metavar="train|evaluate",
    help="The run the requests are for: its bucket scheme and anchors decide the prompts.")]
SampleOption = Annotated[int | None, typer.Option("--sample-customers", min=100,
                                                  help="The same sample the run will be given.")]
TestAnchorsOption = Annotated[str | None, typer.Option("--test-anchors", metavar="A..B",
                                                       help="With --for evaluate: the run's test anchors.")]

app = typer.Typer(help="Batch files of an LLM run: export the requests, import the answers (vLLM run-batch).",
                  no_args_is_help=True)


@dataclass(frozen=True)
class RunFileOptions:
    """Which run the files are for, and its LLM: the same flags the run itself will get."""

    run: RunOption = "train"
    sample_customers: SampleOption = None
    seed: Annotated[int, typer.Option("--seed")] = 0
    test_anchors: TestAnchorsOption = None
    endpoint: LLMEndpointOptions = field(default_factory=LLMEndpointOptions)

    def arguments(self) -> dict:
        """The API's keyword arguments (forecaster/api/llm_files.py) but the data and files."""
        return {"forecaster": self.endpoint.choice("llm"), "run": self.run,
                "sample_customers": self.sample_customers, "seed": self.seed, "test_anchors": self.test_anchors}


def export(
    out: Annotated[Path, typer.Option("--out", help="New or empty folder for requests-0001.jsonl ...")],
    data: DataOptions = DataOptions(),
    options: RunFileOptions = RunFileOptions(),
) -> None:
    """Write the run's uncached LLM requests as OpenAI batch JSONL files (nothing is sent)."""
    from forecaster.api.llm_files import export_llm_requests  # heavy: only when the verb runs

    destination.check_folder(out, destination.REQUESTS)
    for path in export_llm_requests(dataset_from_options(data), out=out, **options.arguments()):
        print(path)


def import_(
    files: Annotated[list[Path], typer.Argument(help="Batch output JSONL files (vLLM run-batch -o, or OpenAI's).")],
    data: DataOptions = DataOptions(),
    options: RunFileOptions = RunFileOptions(),
) -> None:
    """Read batch answers into the response cache; the run then finds them there."""
    from forecaster.api.llm_files import import_llm_outputs  # heavy: only when the verb runs

    counts = import_llm_outputs(dataset_from_options(data), paths=files, **options.arguments())
    err.print(f"다음 `forecaster {options.run} --provider llm`은 캐시에 있는 답 "
              f"{counts['answered'] + counts['reasked']:,}건을 다시 묻지 않습니다.", soft_wrap=True)


app.command("export")(with_options(export))
app.command("import")(with_options(import_))


def register(parent: typer.Typer) -> None:
    parent.add_typer(app, name="llm")
