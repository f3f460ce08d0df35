"""Shared pytest fixtures: the loopback OpenAI-compatible server and the vcrpy settings.

Cassettes (pytest-recording, ``@pytest.mark.vcr``) replay only: record mode ``none``, so a
request missing from a cassette raises ``CannotOverwriteExistingCassetteException`` and
never reaches the network. ``FORECASTER_RECORD=1`` switches to re-recording (docs/llm.md).
"""

from __future__ import annotations

import os
from typing import Any, Iterator

from forecaster.cli import wait_passively_for_openmp

# Before anything loads OpenMP (scikit-learn and xgboost share one libgomp), as the command line does.
wait_passively_for_openmp()

import pytest

from llm_server import LoopbackLLMServer

RECORDING = os.environ.get("FORECASTER_RECORD") == "1"

# Never written to a cassette, in requests or responses.
SECRET_HEADERS = ("authorization", "api-key", "x-api-key", "openai-organization", "openai-project",
                  "cookie", "set-cookie")


def _scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    # vcrpy's filter_headers only touches requests; a real API also answers with
    # set-cookie and openai-organization, so strip those from responses here.
    headers = response.get("headers", {})
    for name in [n for n in headers if n.lower() in SECRET_HEADERS]:
        del headers[name]
    return response


@pytest.fixture
def vcr_config() -> dict[str, Any]:
    return {
        "record_mode": "rewrite" if RECORDING else "none",
        "match_on": ["method", "path", "body"],
        "filter_headers": list(SECRET_HEADERS),
        "decode_compressed_response": True,
        "before_record_response": _scrub_response,
    }


@pytest.fixture
def llm_server() -> Iterator[LoopbackLLMServer]:
    """A fresh loopback server per test (stops itself after a minute at the latest)."""
    with LoopbackLLMServer(lifetime_s=60.0) as server:
        yield server


# Short timeouts and backoffs so fault tests run in milliseconds, not minutes.
FAST_RETRY = dict(max_attempts=3, initial_backoff_s=0.01, max_backoff_s=0.05, max_retry_after_s=2.0)


@pytest.fixture
def make_llm_forecaster(tmp_path: Any) -> Any:
    """``make(server, **overrides)`` -> an ``LLMForecaster`` on the loopback server with the
    stand-in narrator, a per-test cache folder and fast retries."""
    from llm.config import RetryPolicy
    from llm.forecaster import LLMForecaster
    from llm_server import STAND_IN_NARRATIVE_VERSION, stand_in_narrate
    from structurer.schema import BucketScheme

    def make(server: LoopbackLLMServer, **overrides: Any) -> LLMForecaster:
        options: dict[str, Any] = dict(
            scheme=BucketScheme(edges=(15.0, 29.3), currency="USD"),
            model="loopback-test-model",
            base_url=server.base_url,
            concurrency=1,
            timeout=2.0,  # only the hang tests rely on timing out, and they set their own
            cache_dir=tmp_path / "llm-cache",
            narrate=stand_in_narrate,
            narrative_version=STAND_IN_NARRATIVE_VERSION,
            retry=RetryPolicy(**FAST_RETRY),
        )
        options.update(overrides)
        return LLMForecaster(**options)

    return make


@pytest.fixture(scope="module")
def small_xgb_grid() -> Iterator[None]:
    """Runs searching the product's XGBoost grid search a one-setting grid instead, for the
    module (tests/small_grid.py: for tests whose subject is not the tuning). Apply it with
    ``pytestmark = pytest.mark.usefixtures("small_xgb_grid")`` (module-scoped: it is set up
    before the module's fixtures that train) or on one test."""
    from small_grid import small_xgb_grid as context

    with context():
        yield


# The modules that take minutes, longest first (durations of a full run under load: the
# docs example's setup 324 s, the tuning's grid of one 94 s, ...). With ``--dist loadfile``
# a worker takes a whole module; started last, the longest one was the run's tail, so they go
# first (pyproject's addopts keep this order: ``--no-loadscope-reorder``).
SLOW_FIRST = ("test_python_api_example.py", "test_tuning.py", "test_power.py", "test_provider_registry.py",
              "test_api.py", "test_dask_train.py", "test_llm_narrate_once.py", "test_bayes.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return SLOW_FIRST.index(name) if name in SLOW_FIRST else len(SLOW_FIRST)
    items.sort(key=rank)  # stable: every module's own order is kept
