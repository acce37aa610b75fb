"""Saved views as definitions: shape, and semantic checks against the view's form."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from engine.bundles import load_bundle
from engine.forms.views import ViewSpec, view_problems

BUNDLE = Path(__file__).resolve().parents[2] / "fixtures" / "lists_bundle"


@pytest.fixture(scope="module")
def bundle() -> Any:
    return load_bundle(BUNDLE)


def test_fixture_views_load_and_check(bundle: Any) -> None:
    views = bundle.definitions["views"]
    assert set(views) == {"open_items", "board"}
    forms = bundle.definitions["forms"]
    assert all(view_problems(view, forms) == [] for view in views.values())
    assert views["open_items"].page_size == 50


def _view(**kw: Any) -> ViewSpec:
    return ViewSpec.model_validate({"key": "v", "label": "V", "form": "item", **kw})


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({"form": "nope"}, [("list.unknown-form", "/form")]),
        ({"columns": ["title", "ghost"]}, [("list.unknown-field", "/columns/1")]),
        ({"group_by": "qty"}, [("list.bad-group-by", "/group_by")]),
        ({"sort": ["-ghost"]}, [("list.unknown-field", "/sort/0")]),
        ({"filter": {"or": [{"field": "qty", "op": "eq", "value": "x"}]}},
         [("list.bad-value", "/filter/or/0/value")]),
        ({"filter_expr": "qty +* 2"}, [("list.bad-filter-expr", "/filter_expr")]),
    ],
)  # fmt: skip
def test_view_problems(bundle: Any, kw: Any, expected: Any) -> None:
    problems = view_problems(_view(**kw), bundle.definitions["forms"])
    assert [(p.code, p.path) for p in problems] == expected


@pytest.mark.parametrize(
    "kw", [{"page_size": 0}, {"page_size": 201}, {"sort": ["a b"]}, {"colour": "red"}]
)
def test_view_shape(kw: Any) -> None:
    with pytest.raises(ValidationError):
        _view(**kw)


def test_check_views_locates_problems_in_their_file(bundle: Any) -> None:
    from engine.bundles.limits import BundleLimits
    from engine.bundles.semantics import BundleView
    from engine.forms.views import check_views

    bad = _view(key="bad", columns=["ghost"])
    definitions = {**bundle.definitions, "views": {**bundle.definitions["views"], "bad": bad}}
    sources = {**bundle.sources, ("views", "bad"): "views/bad.yaml"}
    present = {kind: set(items) for kind, items in definitions.items()}
    view = BundleView(definitions, sources, bundle.files, present, BundleLimits())
    problems = check_views("views", view)
    assert [(p.code, p.source, p.path) for p in problems] == [
        ("list.unknown-field", "views/bad.yaml", "/columns/0")
    ]
