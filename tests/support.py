"""Helpers shared by tests: fixture bundle locations and zip building."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "bundles"


def zip_folder(folder: Path, *, extra: dict[str, bytes] | None = None) -> bytes:
    """The folder as zip bytes, plus `extra` members (which may be hostile)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return buffer.getvalue()
