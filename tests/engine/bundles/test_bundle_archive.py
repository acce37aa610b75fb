"""Zip and folder safety: nothing leaves the bundle, nothing is trusted from headers."""

from __future__ import annotations

import io
import os
import stat
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from bundle_helpers import (
    MANIFEST,
    TINY_KINDS,
    located,
    problems_of,
    set_encrypted_flag,
    zip_bytes,
)

from engine.bundles import BundleLimits, load_bundle

Tree = Callable[[Mapping[str, str | bytes]], Path]
BASE = {"bundle.yaml": MANIFEST, "forms/ticket.yaml": "key: ticket\nlabel: T\n"}


def with_member(info: zipfile.ZipInfo, data: bytes = b"x") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in BASE.items():
            archive.writestr(name, content)
        archive.writestr(info, data)
    return buffer.getvalue()


def load(source: object, **kwargs: object) -> object:
    return load_bundle(source, kinds=TINY_KINDS, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("../evil.yaml", "bundle.path-traversal"),
        ("forms/../../evil.yaml", "bundle.path-traversal"),
        ("..\\evil.yaml", "bundle.path-traversal"),
        ("/etc/evil.yaml", "bundle.absolute-path"),
        ("C:/evil.yaml", "bundle.absolute-path"),
        ("C:\\evil.yaml", "bundle.absolute-path"),
    ],
)
def test_unsafe_member_names(name: str, code: str) -> None:
    info = zipfile.ZipInfo("placeholder")
    info.filename = name  # ZipInfo() would normalise some of these away; a hostile zip need not
    problems = problems_of(lambda: load(with_member(info)))
    assert located(problems) == {(code, name, "")}


def test_symlink_member() -> None:
    info = zipfile.ZipInfo("forms/link.yaml")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    problems = problems_of(lambda: load(with_member(info, b"/etc/passwd")))
    assert located(problems) == {("bundle.symlink", "forms/link.yaml", "")}


def test_encrypted_member() -> None:
    data = set_encrypted_flag(zip_bytes({**BASE, "forms/secret.yaml": "x"}), "forms/secret.yaml")
    problems = problems_of(lambda: load(data))
    assert located(problems) == {("bundle.encrypted-member", "forms/secret.yaml", "")}


def test_oversized_member_is_caught_while_reading() -> None:
    # 5 MB of spaces compresses to a few KB: only reading with a cap finds the real size.
    big = b"key: ticket\nlabel: T\n" + b" " * (5 * 1024 * 1024)
    data = zip_bytes({**BASE, "forms/ticket.yaml": big})
    assert len(data) < 100_000
    problems = problems_of(lambda: load(data))
    assert located(problems) == {("bundle.file-too-large", "forms/ticket.yaml", "")}


def test_header_lying_about_size_does_not_help() -> None:
    data = bytearray(zip_bytes({**BASE, "data/blob.bin": b"\0" * 50_000}))
    archive = zipfile.ZipFile(io.BytesIO(bytes(data)))
    info = archive.getinfo("data/blob.bin")
    assert info.file_size == 50_000  # a real header; the cap below still reads, never trusts
    problems = problems_of(lambda: load(bytes(data), limits=BundleLimits(max_file_bytes=10_000)))
    assert located(problems) == {("bundle.file-too-large", "data/blob.bin", "")}


def test_total_size_and_member_count_caps() -> None:
    files = {**BASE, **{f"data/{i}.bin": b"x" * 1000 for i in range(20)}}
    problems = problems_of(
        lambda: load(zip_bytes(files), limits=BundleLimits(max_total_bytes=5000))
    )
    assert [p.code for p in problems] == ["bundle.too-large"]
    problems = problems_of(lambda: load(zip_bytes(files), limits=BundleLimits(max_members=10)))
    assert [p.code for p in problems] == ["bundle.too-many-files"]


def test_not_a_zip(tmp_path: Path) -> None:
    (tmp_path / "pack.zip").write_bytes(b"not a zip")
    problems = problems_of(lambda: load(tmp_path / "pack.zip"))
    assert [p.code for p in problems] == ["bundle.bad-archive"]
    problems = problems_of(lambda: load(b"PK\x03\x04 truncated"))
    assert [p.code for p in problems] == ["bundle.bad-archive"]


def test_zip_file_path_and_stream(tmp_path: Path) -> None:
    (tmp_path / "pack.zip").write_bytes(zip_bytes(BASE))
    assert load(tmp_path / "pack.zip").manifest.key == "pack"  # type: ignore[attr-defined]
    assert load(str(tmp_path / "pack.zip")).manifest.key == "pack"  # type: ignore[attr-defined]
    with (tmp_path / "pack.zip").open("rb") as handle:
        assert load(handle).manifest.key == "pack"  # type: ignore[attr-defined]


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_folder_symlinks_are_refused(tree: Tree, tmp_path: Path) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text("key: ticket\nlabel: T\n")
    root = tree({"bundle.yaml": MANIFEST})
    (root / "forms").mkdir()
    (root / "forms" / "ticket.yaml").symlink_to(outside)
    (root / "data").symlink_to(tmp_path, target_is_directory=True)
    problems = problems_of(lambda: load(root))
    assert located(problems) == {
        ("bundle.symlink", "forms/ticket.yaml", ""),
        ("bundle.symlink", "data", ""),
    }


def test_folder_file_cap(tree: Tree) -> None:
    root = tree({**BASE, "data/big.bin": b"x" * 2000})
    problems = problems_of(lambda: load(root, limits=BundleLimits(max_file_bytes=1000)))
    assert located(problems) == {("bundle.file-too-large", "data/big.bin", "")}


def test_litter_is_ignored(tree: Tree) -> None:
    files = {**BASE, ".git/HEAD": "ref", "forms/.ticket.yaml.swp": b"\0", "__MACOSX/x": "y"}
    assert load(zip_bytes(files)).counts() == {"flows": 0, "forms": 1}  # type: ignore[attr-defined]
    assert load(tree(files)).counts() == {"flows": 0, "forms": 1}  # type: ignore[attr-defined]
