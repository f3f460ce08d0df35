"""The prompt templates (Jinja, ``prompts/*.j2``, shipped as package data) and their versions.

A version string names the wording of a template; it goes into LLM cache keys and reports,
so bump it whenever a bundled template's text changes. A user's own template folder gets a
version derived from the file's content, so two different custom wordings never share a
cache entry or a report label.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from prompts.errors import TemplateNotFound

PROMPTS_DIR = Path(__file__).resolve().parent

NARRATIVE_TEMPLATE = "narrative.j2"
NARRATIVE_VERSION = "narrative-v2"  # v2: each mean rounded once from exact totals (issue 8)
SYSTEM_TEMPLATE = "system.j2"
SYSTEM_VERSION = "system-v2"  # v2: the population base rates, when the scheme has them


def template_dir_or_default(template_dir: Path | str | None) -> Path:
    """The folder templates are read from: the user's folder, or the bundled one."""
    return PROMPTS_DIR if template_dir is None else Path(template_dir).expanduser().resolve()


def template_version(name: str, bundled_version: str, template_dir: Path | str | None = None) -> str:
    """``bundled_version`` for the bundled template; for a user's folder
    ``<stem>-custom-<first 12 hex of sha256(file)>`` (e.g. ``narrative-custom-3f2a9c01b7de``).

    Raises FileNotFoundError naming the missing file.
    """
    folder = template_dir_or_default(template_dir)
    if folder == PROMPTS_DIR:
        return bundled_version
    path = folder / name
    if not path.is_file():
        raise TemplateNotFound(f"template folder {folder} has no {name}")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return f"{Path(name).stem}-custom-{digest}"
