"""The loader with stand-in spec models: layout, shape problems, keys, references, collection."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from bundle_helpers import MANIFEST, TINY_KINDS, ThingSpec, located, problems_of, zip_bytes

from engine.bundles import DEFAULT_KINDS, Bundle, load_bundle

Tree = Callable[[Mapping[str, str | bytes]], Path]
THING = "key: ticket\nlabel: Ticket\nitems:\n  - {key: a, type: text}\n"


def load(source: Path | bytes) -> Bundle:
    return load_bundle(source, kinds=TINY_KINDS)


def test_loads_definitions_sources_and_opaque_files(tree: Tree) -> None:
    path = tree(
        {
            "bundle.yaml": MANIFEST,
            "forms/ticket.yaml": THING,
            "forms/asset.json": '{"key": "asset", "label": "Asset"}',
            "flows/intake.yml": "key: intake\nlabel: Intake\nform: ticket\n",
            "data/teams/north.csv": b"a,b\r\n1,2\r\n",
            "pages/home.yaml": "not: [validated\n",
            "demo.yaml": "tickets: 5\n",
            ".DS_Store": b"\x00",
        }
    )
    bundle = load(path)
    assert bundle.manifest.key == "pack"
    assert set(bundle.definitions["forms"]) == {"ticket", "asset"}
    assert isinstance(bundle.definition("forms", "ticket"), ThingSpec)
    assert bundle.sources[("forms", "asset")] == "forms/asset.json"
    assert bundle.sources[("flows", "intake")] == "flows/intake.yml"
    assert bundle.files == {
        "data/teams/north.csv": b"a,b\r\n1,2\r\n",
        "pages/home.yaml": b"not: [validated\n",
        "demo.yaml": b"tickets: 5\n",
    }
    assert bundle.counts() == {"flows": 1, "forms": 2}


def test_zip_and_wrapped_zip_load_like_the_folder(tree: Tree) -> None:
    files = {"bundle.yaml": MANIFEST, "forms/ticket.yaml": THING}
    plain = load(zip_bytes(files))
    wrapped = load(zip_bytes({f"pack-1.0/{k}": v for k, v in files.items()}))
    assert plain.definitions == wrapped.definitions == load(tree(files)).definitions


def test_missing_manifest_and_unexpected_files(tree: Tree) -> None:
    problems = problems_of(
        lambda: load(
            tree(
                {
                    "forms/ticket.yaml": THING,
                    "README.md": "hi",
                    "forms/sub/x.yaml": THING,
                    "widgets/w.yaml": "a: 1",
                    "forms/notes.txt": "x",
                }
            )
        )
    )
    assert located(problems) == {
        ("bundle.missing-manifest", "", ""),
        ("bundle.unexpected-file", "README.md", ""),
        ("bundle.unexpected-file", "forms/sub/x.yaml", ""),
        ("bundle.unexpected-file", "widgets/w.yaml", ""),
        ("bundle.unexpected-file", "forms/notes.txt", ""),
    }


def test_shape_problems_have_codes_paths_and_hints(tree: Tree) -> None:
    thing = (
        "key: ticket\nlabel: Ticket\ncolour: red\nitems:\n"
        "  - {key: a, type: txt}\n  - {key: b}\n  - {key: c, type: text, max_lenght: 3}\n"
        "  - {key: d, type: number, minimum: lots}\n"
    )
    problems = problems_of(
        lambda: load(tree({"bundle.yaml": MANIFEST, "forms/ticket.yaml": thing}))
    )
    assert located(problems) == {
        ("bundle.unknown-key", "forms/ticket.yaml", "/colour"),
        ("bundle.unknown-type", "forms/ticket.yaml", "/items/0/type"),
        ("bundle.missing-key", "forms/ticket.yaml", "/items/1/type"),
        ("bundle.unknown-key", "forms/ticket.yaml", "/items/2/max_lenght"),
        ("bundle.invalid-value", "forms/ticket.yaml", "/items/3/minimum"),
    }
    hints = {p.path: p.hint or "" for p in problems}
    assert "'text'" in hints["/items/0/type"] and "number" in hints["/items/0/type"]
    assert "max_length" in hints["/items/2/max_lenght"]


def test_missing_key_and_bad_label(tree: Tree) -> None:
    problems = problems_of(
        lambda: load(
            tree({"bundle.yaml": MANIFEST, "forms/ticket.yaml": "key: ticket\nlabel: 5\n"})
        )
    )
    assert located(problems) == {("bundle.invalid-value", "forms/ticket.yaml", "/label")}
    problems = problems_of(
        lambda: load(tree({"bundle.yaml": MANIFEST, "forms/ticket.yaml": "key: ticket\n"}))
    )
    assert located(problems) == {("bundle.missing-key", "forms/ticket.yaml", "/label")}


def test_key_must_match_file_name_and_be_unique(tree: Tree) -> None:
    problems = problems_of(
        lambda: load(
            tree(
                {
                    "bundle.yaml": MANIFEST,
                    "forms/ticket.yaml": THING.replace("key: ticket", "key: tickets"),
                    "forms/asset.yaml": "key: asset\nlabel: A\n",
                    "forms/asset.json": '{"key": "asset", "label": "A"}',
                }
            )
        )
    )
    assert located(problems) == {
        ("bundle.key-mismatch", "forms/ticket.yaml", "/key"),
        ("bundle.duplicate-definition", "forms/asset.yaml", ""),
    }


def test_not_a_mapping(tree: Tree) -> None:
    problems = problems_of(
        lambda: load(tree({"bundle.yaml": MANIFEST, "forms/ticket.yaml": "- a\n- b\n"}))
    )
    assert located(problems) == {("bundle.not-a-mapping", "forms/ticket.yaml", "")}


def test_unknown_references_with_closest_key(tree: Tree) -> None:
    files = {
        "bundle.yaml": MANIFEST,
        "forms/ticket.yaml": THING,
        "forms/broken.yaml": "key: broken\n",
        "flows/a.yaml": "key: a\nlabel: A\nform: tickett\n",
        "flows/b.yaml": "key: b\nlabel: B\nform: broken\n"
        "widgets: [{form: nope, options: {form: z}}, {form: x.y}]\npayload: {form: free}\n",
    }
    problems = problems_of(lambda: load(tree(files)))
    assert located(problems) == {
        ("bundle.missing-key", "forms/broken.yaml", "/label"),
        ("bundle.unknown-reference", "flows/a.yaml", "/form"),
        ("bundle.unknown-reference", "flows/b.yaml", "/widgets/0/form"),
    }
    hint = next(p.hint for p in problems if p.source == "flows/a.yaml")
    assert hint is not None and "ticket" in hint


def test_manifest_problems(tree: Tree) -> None:
    manifest = "key: Pack\nname: P\nversion: '1.0'\nengine: '>=0.1'\nhomepage: x\n"
    problems = problems_of(lambda: load(tree({"bundle.yaml": manifest, "bundle.json": "{}"})))
    assert located(problems) == {
        ("bundle.duplicate-manifest", "bundle.json", ""),
        ("bundle.invalid-value", "bundle.yaml", "/key"),
        ("bundle.invalid-value", "bundle.yaml", "/version"),
        ("bundle.unknown-key", "bundle.yaml", "/homepage"),
    }


def test_engine_version_is_checked(tree: Tree) -> None:
    manifest = MANIFEST.replace(">=0.1", ">=2.0,<3")
    path = tree({"bundle.yaml": manifest})
    problems = problems_of(lambda: load(path))
    assert located(problems) == {("bundle.engine-version", "bundle.yaml", "/engine")}
    assert load_bundle(path, kinds=TINY_KINDS, engine_version="2.1.0").manifest.key == "pack"


def test_every_problem_of_every_file_is_reported_together(tree: Tree) -> None:
    files = {
        "bundle.yaml": MANIFEST.replace("1.0.0", "one"),
        "forms/a.yaml": "key: a\nlabel: [\n",
        "forms/b.json": '{"key": "b", "label": "B",}',
        "forms/c.yaml": "key: c\nlabel: C\nlabel: D\n",
        "forms/d.yaml": "key: d\nlabel: D\nitems: [{key: x, type: date}]\n",
        "flows/e.yaml": "key: e\nlabel: E\nform: zz\n",
        "extra.txt": "x",
    }
    problems = problems_of(lambda: load(tree(files)))
    assert {(p.code, p.source) for p in problems} == {
        ("bundle.invalid-value", "bundle.yaml"),
        ("bundle.yaml-syntax", "forms/a.yaml"),
        ("bundle.json-syntax", "forms/b.json"),
        ("bundle.duplicate-key", "forms/c.yaml"),
        ("bundle.unknown-type", "forms/d.yaml"),
        ("bundle.unknown-reference", "flows/e.yaml"),
        ("bundle.unexpected-file", "extra.txt"),
    }


def test_not_found(tmp_path: Path) -> None:
    problems = problems_of(lambda: load(tmp_path / "nothing"))
    assert [p.code for p in problems] == ["bundle.not-found"]


def test_default_registry_is_lazy_and_complete() -> None:
    kinds = {
        "forms",
        "flows",
        "reports",
        "dashboards",
        "roles",
        "menus",
        "views",
        "calendars",
        "slas",
    }
    assert set(DEFAULT_KINDS) == kinds
    names = {kind: DEFAULT_KINDS[kind].__name__ for kind in DEFAULT_KINDS}
    assert names == {
        "forms": "FormSpec",
        "flows": "FlowSpec",
        "reports": "ReportSpec",
        "dashboards": "DashboardSpec",
        "roles": "RoleSpec",
        "menus": "MenuSpec",
        "views": "ViewSpec",
        "calendars": "CalendarSpec",
        "slas": "SlaSpec",
    }


@pytest.mark.parametrize("name", ["bundle.yaml", "bundle.yml", "bundle.json"])
def test_manifest_names(tree: Tree, name: str) -> None:
    text = '{"key": "pack", "name": "Pack", "version": "1.0.0"}'
    assert load(tree({name: text})).manifest.engine == "*"
