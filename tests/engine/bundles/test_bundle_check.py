"""`check_bundle` and the terminal format of problems; pydantic error conversion details."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from bundle_helpers import MANIFEST, TINY_KINDS, problems_of

from engine.bundles import check_bundle, format_problem, format_problems
from engine.errors import Problem

Tree = Callable[[Mapping[str, str | bytes]], Path]
ROOT = Path(__file__).resolve().parents[3]


def test_check_reports_counts_and_manifest() -> None:
    report = check_bundle(ROOT / "tests" / "fixtures" / "bundles" / "service_desk")
    assert report.manifest.key == "service_desk"
    assert report.counts == {
        "calendars": 0,
        "dashboards": 1,
        "flows": 1,
        "forms": 3,
        "menus": 1,
        "reports": 1,
        "roles": 1,
        "slas": 0,
        "views": 0,
    }
    assert report.total == 8


def test_check_raises_every_problem(tree: Tree) -> None:
    path = tree({"bundle.yaml": MANIFEST, "forms/a.yaml": "key: b\nlabel: A\n", "x.txt": ""})
    problems = problems_of(lambda: check_bundle(path, kinds=TINY_KINDS))
    assert {p.code for p in problems} == {"bundle.key-mismatch", "bundle.unexpected-file"}


def test_format_one_line_per_problem() -> None:
    problems = [
        Problem(
            "bundle.unknown-key",
            "/fields/0/lenght",
            "unknown key",
            "did you mean 'length'?",
            "forms/ticket.yaml",
        ),
        Problem("bundle.missing-manifest", "", "no bundle.yaml\nat all"),
    ]
    assert format_problem(problems[0]) == (
        "forms/ticket.yaml#/fields/0/lenght  bundle.unknown-key  unknown key "
        "(did you mean 'length'?)"
    )
    assert format_problems(problems).splitlines() == [
        format_problem(problems[0]),
        "#  bundle.missing-manifest  no bundle.yaml at all",
    ]


def test_validator_codes_pass_through(tree: Tree) -> None:
    menu = "key: main\nlabel: M\nitems:\n  - {key: a, label: A, form: x, report: y}\n"
    from engine.bundles import load_bundle

    problems = problems_of(
        lambda: load_bundle(tree({"bundle.yaml": MANIFEST, "menus/main.yaml": menu}))
    )
    assert [(p.code, p.source, p.path) for p in problems] == [
        ("menu.bad-item", "menus/main.yaml", "/items/0")
    ]


def test_every_bundle_code_is_documented() -> None:
    import re

    used = set()
    for path in (ROOT / "engine" / "bundles").glob("*.py"):
        used |= set(re.findall(r'"(bundle\.[a-z]+(?:-[a-z]+)+|bundle\.[a-z]+)"', path.read_text()))
    used -= {"bundle.yaml", "bundle.yml", "bundle.json"}  # manifest file names, not codes
    documented = set(re.findall(r"`(bundle\.[a-z-]+)`", (ROOT / "docs" / "errors.md").read_text()))
    assert used and used <= documented
