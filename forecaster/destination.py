"""Where a writing verb puts its output, checked before any work and written atomically.

Folder outputs (``train --out DIR``, ``evaluate --out DIR``) carry a marker file,
:data:`MARKER`, holding ``{"kind": ..., "files": [every file written, relative]}``. A folder
may be (re)placed only when it does not exist, is empty, or is this tool's own earlier output
of the same kind holding nothing but the files its marker lists; anything else is refused
with one line naming the folder and, where there is one, a file forecaster did not write.
Folders written before markers existed are recognised by their exact file layout
(:attr:`OutputKind.legacy`).

Replacing is atomic: everything is written into a hidden temporary sibling, the old folder is
renamed aside, the new one renamed into place, and only then are the old folder's listed
files deleted, one by one, so a file forecaster did not write is never removed. A killed run
leaves the old output intact plus at most a hidden ``.NAME.tmp-*`` sibling.

File outputs (``batch --out FILE``) must end in an allowed suffix, may not be a folder, and
an existing file is replaced only with ``--force``; they are written to a temporary sibling
and renamed over the target with :func:`os.replace`.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pandas as pd

from forecaster.errors import UserError

MARKER = ".forecaster-output.json"
# Cells starting with one of these are read as a formula by spreadsheet programs (OWASP
# "CSV injection"); tab and carriage return are on the list because some programs strip them.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

T = TypeVar("T")


@dataclass(frozen=True)
class OutputKind:
    """One kind of folder output. ``legacy``: fnmatch patterns of the files an earlier version
    wrote without a marker (the first one must be present to recognise such a folder)."""

    name: str
    option: str
    legacy: tuple[str, ...]


MODEL = OutputKind("model", "--out", ("config.json", "scheme.json", "features.json",
                                      "xgb_base/*.json", "xgb_augmented/*.json"))
REPORT = OutputKind("report", "--out", ("metrics.json", "report.md", "report.html", "predictions.parquet",
                                        "plots/*.png"))
REQUESTS = OutputKind("batch request", "--out", ("requests-*.jsonl",))


# -- folders -----------------------------------------------------------------------------------


def _tree(folder: Path) -> tuple[set[str], set[str]]:
    """(files, folders) under ``folder``, relative POSIX paths; symlinks count as files and
    are never followed."""
    files, dirs = set(), set()
    for root, dirnames, filenames in os.walk(folder, followlinks=False):
        rel = Path(root).relative_to(folder)
        for name in dirnames:
            path = rel / name
            (files if (Path(root) / name).is_symlink() else dirs).add(path.as_posix())
        files.update((rel / name).as_posix() for name in filenames)
    return files, dirs


def _parents(files: Iterable[str]) -> set[str]:
    return {parent.as_posix() for f in files for parent in Path(f).parents if parent != Path(".")}


def _refuse(folder: Path, kind: OutputKind, why: str, todo: str = "") -> UserError:
    return UserError(f"{kind.option} {folder}: {why}; {todo or f'choose another {kind.option} or move it'}")


def _read_marker(folder: Path, shown: Path, kind: OutputKind) -> dict | None:
    path = folder / MARKER
    if not path.exists():
        return None
    try:
        marker = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise _refuse(shown, kind, f"its {MARKER} cannot be read ({type(exc).__name__})") from None
    files = marker.get("files") if isinstance(marker, dict) else None
    if not (isinstance(files, list) and all(isinstance(f, str) for f in files) and isinstance(marker.get("kind"), str)):
        raise _refuse(shown, kind, f"its {MARKER} is damaged (no kind and list of files)")
    return marker


def _owned_files(folder: Path, shown: Path, kind: OutputKind, files: set[str]) -> set[str]:
    """The files of ``folder`` that forecaster wrote as output of ``kind``; UserError (naming
    ``shown``, the path as the user gave it) if the folder is anything else."""
    marker = _read_marker(folder, shown, kind)
    if marker is not None:
        if marker.get("kind") != kind.name:
            raise _refuse(shown, kind, f"it holds forecaster's {marker.get('kind')} output, not a {kind.name}")
        return set(marker["files"]) | {MARKER}
    strangers = sorted(f for f in files if not any(fnmatch.fnmatch(f, p) for p in kind.legacy))
    if kind.legacy[0] in files and not strangers:
        return files  # written by a version before markers existed: exactly its known files
    example = (strangers or sorted(files) or ["only folders"])[0]
    raise _refuse(shown, kind, f"it holds {example} and is not an earlier forecaster {kind.name} "
                  f"(no {MARKER}), so it is never replaced")


def _is_current_folder_or_above(folder: Path) -> bool:
    cwd = Path.cwd().resolve()
    return folder == cwd or folder in cwd.parents


def _check_creatable(folder: Path, shown: Path, kind: OutputKind) -> None:
    ancestor = folder.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise _refuse(shown, kind, f"{ancestor} is a file, so the folder cannot be created")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise _refuse(shown, kind, f"cannot create it: {ancestor} is not writable")


def check_folder(folder: Path, kind: OutputKind) -> set[str]:
    """Raise UserError unless ``folder`` may receive output of ``kind``; returns the files
    there that forecaster wrote and may delete (empty for a new or empty folder). Creates
    and changes nothing, so a verb calls it first, before loading any data."""
    shown = Path(folder)
    folder = shown.absolute()
    if folder.is_symlink():  # renaming would move the link, deleting would reach through it
        raise _refuse(shown, kind, "it is a symbolic link",
                      f"give the folder it points to, or a new one, to {kind.option}")
    if not folder.exists():
        _check_creatable(folder, shown, kind)
        return set()
    if not folder.is_dir():
        raise _refuse(shown, kind, f"a file of that name exists, and a {kind.name} is a folder",
                      f"give a folder path to {kind.option}")
    if _is_current_folder_or_above(folder.resolve()):
        raise _refuse(shown, kind, "it is the current folder or holds it, which is never replaced",
                      f"give a new subfolder, e.g. {kind.option} {kind.name}")
    files, dirs = _tree(folder)
    if not files and not dirs:
        return set()
    owned = _owned_files(folder, shown, kind, files)
    foreign = sorted((files - owned) | (dirs - _parents(owned)))
    if foreign:
        raise _refuse(shown, kind, f"it holds {foreign[0]}, which forecaster did not write")
    return files


def _write_marker(staging: Path, kind: OutputKind) -> None:
    files, _ = _tree(staging)
    marker = {"kind": kind.name, "files": sorted(files - {MARKER})}
    (staging / MARKER).write_text(json.dumps(marker, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def _usual_mode(kind_of_entry: int) -> int:
    """``kind_of_entry`` (0o777 for a folder, 0o666 for a file) less the umask: mkdtemp and
    mkstemp create private 0700/0600 entries, which would otherwise stay private once renamed."""
    umask = os.umask(0)
    os.umask(umask)
    return kind_of_entry & ~umask


def _sibling(folder: Path, tag: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f".{folder.name}.{tag}-", dir=folder.parent))


def _delete_listed(aside: Path, files: set[str]) -> None:
    """Delete exactly ``files`` under ``aside``, then the folders they leave empty; a file
    that appeared after the check stays, and so does the folder holding it (named)."""
    for rel in files:
        (aside / rel).unlink(missing_ok=True)
    for rel in sorted(_parents(files), key=lambda p: p.count("/"), reverse=True):
        try:
            (aside / rel).rmdir()
        except OSError:
            pass  # not empty: something forecaster did not write is inside; kept below
    try:
        aside.rmdir()
    except OSError:
        left = sorted(_tree(aside)[0]) or ["a folder"]
        raise UserError(f"the new output is in place, but the old copy {aside} was kept because it holds "
                        f"{left[0]}, which forecaster did not write; move what you need and delete it") from None


def _swap(staging: Path, folder: Path, owned: set[str]) -> None:
    if not folder.exists():
        staging.rename(folder)
        return
    aside = _sibling(folder, "old")
    aside.rmdir()  # only the unique name is wanted: rename needs a free name
    folder.rename(aside)
    try:
        staging.rename(folder)
    except BaseException:
        aside.rename(folder)
        raise
    _delete_listed(aside, owned)


def publish_folder(folder: Path, kind: OutputKind, write: Callable[[Path], T]) -> T:
    """``write(staging)`` fills a fresh temporary sibling folder; it then replaces ``folder``
    atomically with a marker listing every file. Returns what ``write`` returned."""
    check_folder(folder, kind)
    shown, folder = Path(folder), Path(folder).absolute()
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = _sibling(folder, "tmp")
        staging.chmod(_usual_mode(0o777))
    except OSError as exc:
        raise _refuse(shown, kind, f"cannot create it ({exc.strerror})") from None
    try:
        result = write(staging)
        _write_marker(staging, kind)
        _swap(staging, folder, check_folder(shown, kind))  # checked again: the run may have taken hours
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return result


# -- files -------------------------------------------------------------------------------------


def check_file(path: Path, suffixes: tuple[str, ...], force: bool, option: str = "--out") -> None:
    """Raise UserError unless ``path`` may be written: an allowed suffix, not a folder, a
    parent that exists or can be created, and no existing file unless ``force``."""
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise UserError(f"{option} {path}: use a file name ending in {' or '.join(suffixes)}")
    if path.is_dir():
        raise UserError(f"{option} {path}: that is a folder; give a file name inside it, "
                        f"e.g. {path / 'forecasts'}{suffixes[0]}")
    if path.exists() and not force:
        raise UserError(f"{option} {path}: the file exists; pass --force to replace it or choose another {option}")
    if path.exists() and not path.is_file():
        raise UserError(f"{option} {path}: not a regular file; choose another {option}")
    ancestor = path.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UserError(f"{option} {path}: {ancestor} is a file, so the folder for it cannot be created")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UserError(f"{option} {path}: cannot write there ({ancestor} is not writable)")


def write_file(path: Path, write: Callable[[Path], None]) -> None:
    """``write(tmp)`` writes a temporary sibling, renamed over ``path`` at the end: a killed
    run never leaves a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        tmp.chmod(_usual_mode(0o666))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy in which text cells starting with ``= + - @`` (or tab / CR) get a leading
    apostrophe, so a spreadsheet shows them as text instead of running them (OWASP CSV
    injection). Numeric columns are untouched: a negative number stays a number."""
    out = frame.copy()
    for name in out.columns:
        column = out[name]
        if not (pd.api.types.is_object_dtype(column) or pd.api.types.is_string_dtype(column)):
            continue
        risky = column.str.startswith(FORMULA_PREFIXES, na=False)
        if risky.any():
            out[name] = column.where(~risky, "'" + column.astype(str))
    return out
