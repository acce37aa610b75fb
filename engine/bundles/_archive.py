"""Reading a bundle's files into memory from a folder, a zip file, or zip bytes.

Nothing is extracted to disk. Zip members are checked before they are read (unsafe names,
symlinks, encryption, member count) and read with a real byte cap, since the sizes in a zip's
headers are whatever its author wrote.
"""

from __future__ import annotations

import io
import os
import re
import stat
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, BinaryIO

from engine.bundles.kinds import MANIFEST_NAMES
from engine.bundles.limits import BundleLimits
from engine.errors import DefinitionError, Problem

BundleSource = Path | str | bytes | BinaryIO
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(slots=True)
class RawBundle:
    """The files of a bundle as bytes, keyed by POSIX path, and the problems met reading them."""

    files: dict[str, bytes] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    total: int = 0
    fatal: bool = False  # a cap was hit: the files read so far are not the whole bundle

    def add(self, name: str, data: bytes, limits: BundleLimits) -> bool:
        """Keep one file; False once the bundle's total size cap is passed."""
        self.total += len(data)
        if self.total > limits.max_total_bytes:
            self.fatal = True
            self.problems.append(
                Problem(
                    "bundle.too-large",
                    "",
                    f"the bundle is larger than {limits.max_total_bytes} bytes",
                    source=name,
                )
            )
            return False
        self.files[name] = data
        return True


def _is_ignored(name: str) -> bool:
    """Editor and OS litter (`.DS_Store`, `.git/`, `__MACOSX/`) is skipped, never loaded."""
    parts = name.replace("\\", "/").split("/")
    hidden = any(p.startswith(".") and p not in (".", "..") for p in parts)
    return hidden or parts[0] == "__MACOSX"


def _too_large(name: str, limits: BundleLimits) -> Problem:
    return Problem(
        "bundle.file-too-large",
        "",
        f"file is larger than {limits.max_file_bytes} bytes",
        source=name,
    )


def _too_many(limits: BundleLimits) -> Problem:
    return Problem("bundle.too-many-files", "", f"more than {limits.max_members} files")


def _read_capped(handle: IO[bytes], cap: int) -> bytes | None:
    data = handle.read(cap + 1)
    return None if len(data) > cap else data


def _folder_entries(root: Path) -> Iterator[tuple[str, Path]]:
    """Files (and symlinked folders) under `root`, skipping hidden folders such as `.git`."""
    for directory, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        here = Path(directory)
        for name in sorted(filenames) + [d for d in dirnames if (here / d).is_symlink()]:
            path = here / name
            relative = path.relative_to(root).as_posix()
            if not _is_ignored(relative):
                yield relative, path


def read_folder(root: Path, limits: BundleLimits) -> RawBundle:
    """Read every file under `root`; symlinks are refused rather than followed."""
    raw = RawBundle()
    for count, (name, path) in enumerate(_folder_entries(root), start=1):
        if count > limits.max_members:
            raw.problems.append(_too_many(limits))
            raw.fatal = True
            break
        if path.is_symlink():
            raw.problems.append(_symlink(name))
            continue
        with path.open("rb") as handle:
            data = _read_capped(handle, limits.max_file_bytes)
        if data is None:
            raw.problems.append(_too_large(name, limits))
        elif not raw.add(name, data, limits):
            break
    return raw


def _symlink(name: str) -> Problem:
    return Problem("bundle.symlink", "", "symbolic links are not allowed in a bundle", source=name)


def _name_problem(name: str) -> Problem | None:
    """Refuse member names that could point outside the bundle."""
    unix = name.replace("\\", "/")
    if unix.startswith("/") or _DRIVE.match(unix):
        return Problem("bundle.absolute-path", "", "zip member has an absolute path", source=name)
    if ".." in unix.split("/"):
        return Problem("bundle.path-traversal", "", "zip member name contains '..'", source=name)
    return None


def _member_problem(info: zipfile.ZipInfo) -> Problem | None:
    problem = _name_problem(info.filename)
    if problem is not None:
        return problem
    if stat.S_ISLNK(info.external_attr >> 16):
        return _symlink(info.filename)
    if info.flag_bits & 0x1:
        return Problem(
            "bundle.encrypted-member", "", "zip member is encrypted", source=info.filename
        )
    return None


def _normalise(name: str) -> str:
    return "/".join(p for p in name.replace("\\", "/").split("/") if p not in ("", "."))


def _read_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, limits: BundleLimits
) -> bytes | Problem:
    try:
        with archive.open(info) as handle:
            data = _read_capped(handle, limits.max_file_bytes)
    except (zipfile.BadZipFile, NotImplementedError, zlib.error, OSError, EOFError) as err:
        return Problem("bundle.bad-archive", "", f"cannot read member: {err}", source=info.filename)
    return _too_large(info.filename, limits) if data is None else data


def read_zip(archive: zipfile.ZipFile, limits: BundleLimits) -> RawBundle:
    """Read every member of `archive` into memory, checking each one first."""
    raw = RawBundle()
    members = [i for i in archive.infolist() if not i.is_dir()]
    if len(members) > limits.max_members:
        raw.problems.append(_too_many(limits))
        raw.fatal = True
        return raw
    for info in members:
        problem = _member_problem(info)
        name = _normalise(info.filename)
        if problem is None and _is_ignored(name):
            continue
        if problem is None and name in raw.files:
            problem = Problem("bundle.duplicate-file", "", "zip holds this path twice", source=name)
        if problem is not None:
            raw.problems.append(problem)
            continue
        data = _read_member(archive, info, limits)
        if isinstance(data, Problem):
            raw.problems.append(data)
        elif not raw.add(name, data, limits):
            break
    _strip_wrapper_folder(raw)
    return raw


def _strip_wrapper_folder(raw: RawBundle) -> None:
    """A zip of the folder (`pack/bundle.yaml`) reads like a zip of its contents."""
    if any(name in MANIFEST_NAMES for name in raw.files) or not raw.files:
        return
    tops = {name.split("/", 1)[0] for name in raw.files}
    if len(tops) == 1 and all("/" in name for name in raw.files):
        prefix = tops.pop() + "/"
        raw.files = {name[len(prefix) :]: data for name, data in raw.files.items()}


def _open_zip(source: Path | bytes | BinaryIO, limits: BundleLimits) -> RawBundle:
    handle: BinaryIO
    if isinstance(source, bytes):
        handle = io.BytesIO(source)
    elif isinstance(source, Path):
        handle = source.open("rb")
    else:
        handle = source
    try:
        with zipfile.ZipFile(handle) as archive:
            return read_zip(archive, limits)
    except zipfile.BadZipFile as err:
        raise DefinitionError(
            [Problem("bundle.bad-archive", "", f"not a zip file: {err}")]
        ) from err
    finally:
        if isinstance(source, Path):
            handle.close()


def read_source(source: BundleSource, limits: BundleLimits) -> RawBundle:
    """Read a bundle folder, zip file, zip bytes or binary stream.

    Raises:
        DefinitionError: the source does not exist or is not a zip (other problems are
            returned in `RawBundle.problems` so they are reported with the rest).
    """
    if isinstance(source, str):
        source = Path(source)
    if isinstance(source, Path):
        if source.is_dir():
            return read_folder(source, limits)
        if not source.is_file():
            raise DefinitionError(
                [Problem("bundle.not-found", "", f"no bundle folder or zip at {source}")]
            )
    return _open_zip(source, limits)


__all__ = ["BundleSource", "RawBundle", "read_folder", "read_source", "read_zip"]
