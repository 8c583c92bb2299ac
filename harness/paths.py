"""Paths of a repository: its root, paths that must stay inside it, how they are shown, and
file hashes. One home for what suites, data, models and baselines all need."""

from __future__ import annotations

import hashlib
from pathlib import Path

from harness.errors import SpecError

#: (resolved path, size, mtime_ns) -> sha256: a file is hashed once per process while unchanged.
_FILE_HASHES: dict[tuple[str, int, int], str] = {}


def display_path(path: Path | str) -> str:
    """``path`` relative to the working directory when it lies below it, else absolute."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


def repo_path(path: Path, root: Path) -> str:
    """``path`` relative to the repository ``root`` (POSIX), as reports name files; else as is."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def find_root(start: Path) -> Path:
    """The repository root: the nearest folder at or above ``start`` with pyproject.toml or .git."""
    here = start.resolve()
    if here.is_file():
        here = here.parent
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").exists() or (folder / ".git").exists():
            return folder
    return here


def resolve_path(
    value: str, *, source: Path, root: Path, field: str, must_exist: bool = True,
    outside: str = "",
) -> Path:
    """Resolve ``value`` against the folder of ``source``; refuse paths outside ``root``
    (symlinks followed). ``outside`` ends that error: what to do instead."""
    p = Path(value)
    target = (p if p.is_absolute() else source.parent / p).resolve()
    root = root.resolve()
    if target != root and root not in target.parents:
        raise SpecError(
            f"path {value!r} leaves the repository root ({root}){outside}",
            file=display_path(source),
            field=field,
        )
    if must_exist and not target.exists():
        raise SpecError(f"{value!r} not found (resolved to {display_path(target)})",
                        file=display_path(source), field=field)
    return target


def file_sha256(path: Path) -> str:
    """The hex sha256 of a file's bytes, cached per (path, size, mtime) in this process."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    cached = _FILE_HASHES.get(key)
    if cached is not None:
        return cached
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    digest = h.hexdigest()
    _FILE_HASHES[key] = digest
    return digest
