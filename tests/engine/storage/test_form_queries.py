"""List queries on real form tables (SQLite and PostgreSQL): every operator on every family,
checked against the same rows filtered in Python; sort, cursors, search, counts and kanban."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine.bundles import load_bundle
from engine.forms.compiler import CompiledForm, compile_form
from engine.forms.listing import ListQueryError, build_list_query
from engine.installer import import_bundle
from engine.storage._fts import ensure_search_index
from engine.storage.form_queries import (
    QueryTarget,
    count_records,
    fetch_kanban,
    fetch_page,
    query_target,
)
from tests.conftest import _clean_committed_data

BUNDLE = Path(__file__).resolve().parents[2] / "fixtures" / "lists_bundle"
NOW = dt.datetime(2026, 11, 18, 9, 30, tzinfo=dt.UTC)  # a Wednesday
STATUSES = ["new", "open", "done", None]
INJECTION = "x'); DROP TABLE lists__item; --"
ROWS = 40


def _row(i: int) -> dict[str, Any]:
    return {
        "number": f"IT-{i:05d}",
        "title": [f"item {i}", f"打印机 故障 {i}", INJECTION, None, "100% _done_"][i % 5],
        "notes": "paper jam in tray" if i % 7 == 0 else None,
        "email": f"u{i}@example.com" if i % 2 else "",
        "status": STATUSES[i % 4],
        "colors": [["red"], ["red", "blue"], [], None, ["green"]][i % 5],
        "qty": None if i % 9 == 0 else i,
        "price": i * 2.5 if i % 6 else None,
        "stars": i % 6,
        "due": None if i % 8 == 0 else dt.date(2026, 11, 1) + dt.timedelta(days=i),
        "seen_at": NOW - dt.timedelta(hours=5 * i),
        "slot": dt.time(8 + i % 10, 30),
        "urgent": None if i % 10 == 0 else i % 3 == 0,
        "place__province": ["北京市", "上海市", None][i % 3],
        "place__city": "海淀区" if i % 3 == 0 else None,
        "period__start": dt.date(2026, 1, 1) + dt.timedelta(days=i),
        "period__end": dt.date(2026, 2, 1) + dt.timedelta(days=i),
        "owner_user": None,
        "watchers": [1, 2] if i % 4 == 0 else ([2] if i % 4 == 1 else []),
        "vendor": (i % 3) + 1 if i % 3 else None,
        "total": None,
        "created_at": NOW - dt.timedelta(days=ROWS - i),
        "updated_at": NOW,
    }


class World:
    def __init__(self, engine: sa.Engine, target: QueryTarget, form: CompiledForm, forms: Any):
        self.engine, self.target, self.form, self.forms = engine, target, form, forms
        self.rows = [{**_row(i), "id": i + 1} for i in range(ROWS)]

    def query(self, **kw: Any) -> Any:
        return build_list_query(self.form, forms=self.forms, **kw)

    def ids(self, extra: Any = (), **kw: Any) -> list[int]:
        query = self.query(limit=200, **kw)
        with self.engine.connect() as conn:
            page = fetch_page(
                conn, target=self.target, query=query, now=NOW, extra_conditions=extra
            )
        return [row["id"] for row in page.items]


@pytest.fixture(scope="module")
def world(migrated_engine: sa.Engine) -> Iterator[World]:
    bundle = load_bundle(BUNDLE)
    import_bundle(db=migrated_engine, bundle=bundle)
    forms = bundle.definitions["forms"]
    form = compile_form(forms["item"], forms=forms)
    target = query_target(app="lists", form=form, forms=forms)
    world = World(migrated_engine, target, form, forms)
    with migrated_engine.begin() as conn:
        ensure_search_index(conn, form=form.spec, tables=target.tables)
        vendors = target.related["vendor"].main
        names = ["Acme 公司", "Bolt Ltd", "Cog & Co"]
        conn.execute(vendors.insert(), [_system(name=n, tier="gold") for n in names])
        conn.execute(target.main.insert(), [_row(i) for i in range(ROWS)])
        links = target.tables.children["tags"]
        tags = target.related["tag"].main
        conn.execute(tags.insert(), [_system(name=n) for n in ("a", "b")])
        conn.execute(
            links.insert(), [{"source_id": 1, "target_id": 1}, {"source_id": 2, "target_id": 2}]
        )
    yield world
    _clean_committed_data(migrated_engine)


def _system(**values: Any) -> dict[str, Any]:
    return {"created_at": NOW, "updated_at": NOW, **values}


def _expected(world: World, keep: Any) -> list[int]:
    return sorted((row["id"] for row in world.rows if keep(row)), reverse=True)


BLANK = (None, "", [])


def L(field: str, op: str, value: Any = None) -> dict[str, Any]:  # noqa: N802
    return (
        {"field": field, "op": op} if value is None else {"field": field, "op": op, "value": value}
    )


CASES: list[tuple[str, dict[str, Any], Any]] = [
    ("text eq", L("title", "eq", "item 5"), lambda r: r["title"] == "item 5"),
    ("text ne", L("title", "ne", "item 5"), lambda r: r["title"] != "item 5"),
    ("text contains", L("title", "contains", "ITEM"),
     lambda r: r["title"] is not None and "item" in r["title"]),
    ("text contains %", L("title", "contains", "100%"),
     lambda r: r["title"] == "100% _done_"),
    ("text contains _", L("title", "contains", "_d"),
     lambda r: r["title"] == "100% _done_"),
    ("text starts_with", L("title", "starts_with", "打印"),
     lambda r: (r["title"] or "").startswith("打印")),
    ("text injection", L("title", "eq", INJECTION),
     lambda r: r["title"] == INJECTION),
    ("text in", L("title", "in", ["item 0", "item 5", INJECTION]),
     lambda r: r["title"] in ("item 0", "item 5", INJECTION)),
    ("text blank", L("email", "is_blank"), lambda r: r["email"] in BLANK),
    ("text not blank", L("notes", "is_not_blank"), lambda r: r["notes"]),
    ("choice eq", L("status", "eq", "open"), lambda r: r["status"] == "open"),
    ("choice ne", L("status", "ne", "open"), lambda r: r["status"] != "open"),
    ("choice in", L("status", "in", ["new", "done"]),
     lambda r: r["status"] in ("new", "done")),
    ("choice not_in", L("status", "not_in", ["new", "done"]),
     lambda r: r["status"] not in ("new", "done")),
    ("choice blank", L("status", "is_blank"), lambda r: r["status"] is None),
    ("number lt", L("qty", "lt", 10), lambda r: r["qty"] is not None and r["qty"] < 10),
    ("number le", L("qty", "le", 10), lambda r: r["qty"] is not None and r["qty"] <= 10),
    ("number gt", L("qty", "gt", 30.5), lambda r: r["qty"] is not None and r["qty"] > 30.5),
    ("number ge", L("qty", "ge", 30), lambda r: r["qty"] is not None and r["qty"] >= 30),
    ("number between", L("price", "between", [10, 20]),
     lambda r: r["price"] is not None and 10 <= r["price"] <= 20),
    ("number in", L("stars", "in", [0, 5]), lambda r: r["stars"] in (0, 5)),
    ("number ne", L("qty", "ne", 3), lambda r: r["qty"] != 3),
    ("number blank", L("qty", "is_blank"), lambda r: r["qty"] is None),
    ("date eq", L("due", "eq", "2026-11-05"),
     lambda r: r["due"] == dt.date(2026, 11, 5)),
    ("date between", L("due", "between", ["2026-11-10", "2026-11-20"]),
     lambda r: r["due"] is not None and dt.date(2026, 11, 10) <= r["due"] <= dt.date(2026, 11, 20)),
    ("date today", L("due", "eq", "today"), lambda r: r["due"] == NOW.date()),
    ("date this_week", L("due", "eq", "this_week"),
     lambda r: r["due"] is not None and dt.date(2026, 11, 16) <= r["due"] <= dt.date(2026, 11, 22)),
    ("date before this_month", L("due", "lt", "this_month"),
     lambda r: r["due"] is not None and r["due"] < dt.date(2026, 11, 1)),
    ("date after this_month", L("due", "gt", "this_month"),
     lambda r: r["due"] is not None and r["due"] > dt.date(2026, 11, 30)),
    ("date not next_n_days", L("due", "ne", {"next_n_days": 7}),
     lambda r: r["due"] is None or not dt.date(2026, 11, 18) <= r["due"] <= dt.date(2026, 11, 24)),
    ("datetime last_n_days", L("seen_at", "eq", {"last_n_days": 2}),
     lambda r: r["seen_at"] >= dt.datetime(2026, 11, 17, tzinfo=dt.UTC)),
    ("datetime ge iso", L("seen_at", "ge", "2026-11-17T12:00:00+08:00"),
     lambda r: r["seen_at"] >= dt.datetime(2026, 11, 17, 4, tzinfo=dt.UTC)),
    ("datetime yesterday", L("seen_at", "eq", "yesterday"),
     lambda r: r["seen_at"].date() == dt.date(2026, 11, 17)),
    ("time gt", L("slot", "gt", "12:00"), lambda r: r["slot"] > dt.time(12)),
    ("boolean eq", L("urgent", "eq", True), lambda r: r["urgent"] is True),
    ("boolean ne", L("urgent", "ne", True), lambda r: r["urgent"] is not True),
    ("boolean blank", L("urgent", "is_blank"), lambda r: r["urgent"] is None),
    ("address part", L("place.province", "eq", "北京市"),
     lambda r: r["place__province"] == "北京市"),
    ("address part blank", L("place.city", "is_blank"), lambda r: r["place__city"] is None),
    ("date range part", L("period.start", "lt", "2026-01-05"),
     lambda r: r["period__start"] < dt.date(2026, 1, 5)),
    ("multiselect contains", L("colors", "contains", "blue"),
     lambda r: "blue" in (r["colors"] or [])),
    ("multiselect contains all", L("colors", "contains", ["red", "blue"]),
     lambda r: {"red", "blue"} <= set(r["colors"] or [])),
    ("multiselect in", L("colors", "in", ["blue", "green"]),
     lambda r: bool({"blue", "green"} & set(r["colors"] or []))),
    ("multiselect not_in", L("colors", "not_in", ["red"]),
     lambda r: "red" not in (r["colors"] or [])),
    ("multiselect blank", L("colors", "is_blank"), lambda r: not r["colors"]),
    ("multi user contains", L("watchers", "contains", 2), lambda r: 2 in r["watchers"]),
    ("multi user in", L("watchers", "in", [1]), lambda r: 1 in r["watchers"]),
    ("multi user blank", L("watchers", "is_not_blank"), lambda r: bool(r["watchers"])),
    ("relation eq", L("vendor", "eq", 2), lambda r: r["vendor"] == 2),
    ("relation in", L("vendor", "in", [2, 3]), lambda r: r["vendor"] in (2, 3)),
    ("relation blank", L("vendor", "is_blank"), lambda r: r["vendor"] is None),
    ("lookup contains", L("vendor_name", "contains", "bolt"),
     lambda r: r["vendor"] == 2),
    ("relation path", L("vendor.name", "starts_with", "Cog"),
     lambda r: r["vendor"] == 3),
    ("links contains", L("tags", "contains", 2), lambda r: r["id"] == 2),
    ("links blank", L("tags", "is_blank"), lambda r: r["id"] > 2),
    ("system id in", L("id", "in", [1, 2, 999]), lambda r: r["id"] in (1, 2)),
    ("system created_at", L("created_at", "ge", "last_week"),
     lambda r: r["created_at"] >= dt.datetime(2026, 11, 9, tzinfo=dt.UTC)),
    ("and", {"and": [L("status", "eq", "open"), L("qty", "gt", 20)]},
     lambda r: r["status"] == "open" and (r["qty"] or 0) > 20),
    ("or", {"or": [L("status", "eq", "open"), L("qty", "is_blank")]},
     lambda r: r["status"] == "open" or r["qty"] is None),
    ("not", {"not": L("status", "in", ["open", "new"])},
     lambda r: r["status"] not in ("open", "new")),
]  # fmt: skip


@pytest.mark.parametrize(("name", "tree", "keep"), CASES, ids=[c[0] for c in CASES])
def test_filter_matches_python(world: World, name: str, tree: dict[str, Any], keep: Any) -> None:
    assert world.ids(filter=tree) == _expected(world, keep)


EXPRESSIONS = [
    ('status = "open" AND qty > 20', lambda r: r["status"] == "open" and (r["qty"] or 0) > 20),
    ("ISBLANK(qty)", lambda r: r["qty"] is None),
    ('place.province = "上海市"', lambda r: r["place__province"] == "上海市"),
    ('CONTAINS(title, "DROP TABLE")', lambda r: r["title"] == INJECTION),
]


@pytest.mark.parametrize(("text", "keep"), EXPRESSIONS, ids=[e[0] for e in EXPRESSIONS])
def test_expression_filter(world: World, text: str, keep: Any) -> None:
    assert world.ids(filter_expr=text) == _expected(world, keep)


def test_sort_keys_with_blanks_and_pages(world: World) -> None:
    sort = ["status", "-qty"]
    everything = world.ids(sort=sort)
    rank = {"done": 0, "new": 1, "open": 2, None: 3}  # text order, blanks last
    rows = sorted(world.rows, key=lambda r: -r["id"])
    rows.sort(key=lambda r: (r["qty"] is not None, -(r["qty"] or 0)))  # desc, blanks first
    rows.sort(key=lambda r: rank[r["status"]])
    assert everything == [r["id"] for r in rows]
    assert _walk(world, sort=sort, limit=7) == everything


def _walk(world: World, **kw: Any) -> list[int]:
    seen: list[int] = []
    cursor = None
    with world.engine.connect() as conn:
        for _ in range(100):
            query = world.query(cursor=cursor, **kw)
            page = fetch_page(conn, target=world.target, query=query, now=NOW)
            seen += [row["id"] for row in page.items]
            cursor = page.next_cursor
            if cursor is None:
                return seen
    raise AssertionError("no last page")


@pytest.mark.parametrize(
    "sort", [["title"], ["-due", "title"], ["vendor_name", "-id"], ["urgent", "-seen_at"], []]
)
def test_cursor_pages_cover_every_row_once(world: World, sort: list[str]) -> None:
    assert _walk(world, sort=sort, limit=6) == world.ids(sort=sort)


def test_cursor_is_stable_across_inserts(world: World) -> None:
    query = world.query(sort=["-created_at"], limit=10)
    with world.engine.connect() as conn:
        first = fetch_page(conn, target=world.target, query=query, now=NOW)
    ids_before = world.ids(sort=["-created_at"])
    with world.engine.begin() as conn:
        later = NOW + dt.timedelta(days=1)
        new_rows = [{**_row(5), "number": f"new-{n}", "created_at": later} for n in range(3)]
        inserted = conn.execute(
            world.target.main.insert().returning(world.target.main.c.id), new_rows
        )
        new_ids = [row[0] for row in inserted]
    try:
        following = world.query(sort=["-created_at"], limit=10, cursor=first.next_cursor)
        with world.engine.connect() as conn:
            second = fetch_page(conn, target=world.target, query=following, now=NOW)
        assert [row["id"] for row in second.items] == ids_before[10:20]
    finally:
        with world.engine.begin() as conn:
            conn.execute(world.target.main.delete().where(world.target.main.c.id.in_(new_ids)))


def test_cursor_of_another_query_is_refused(world: World) -> None:
    query = world.query(sort=["title"], limit=5)
    with world.engine.connect() as conn:
        page = fetch_page(conn, target=world.target, query=query, now=NOW)
    with pytest.raises(ListQueryError) as caught:
        world.query(sort=["-title"], limit=5, cursor=page.next_cursor)
    assert caught.value.errors[0].code == "list.cursor-mismatch"
    # the same query with another page size may continue
    assert world.query(sort=["title"], limit=9, cursor=page.next_cursor).after is not None


@pytest.mark.parametrize(
    ("text", "keep"),
    [
        ("打印机", lambda r: (r["title"] or "").startswith("打印机")),
        ("PAPER jam", lambda r: r["notes"] is not None),
        ("drop table", lambda r: r["title"] == INJECTION),
        ("'); DROP", lambda r: r["title"] == INJECTION),
        ('"', lambda r: False),
        ("100%", lambda r: r["title"] == "100% _done_"),
        ("it", lambda r: True),  # every number is IT-…
        ("u3@example", lambda r: r["email"].startswith("u3@example")),
    ],
)
def test_search(world: World, text: str, keep: Any) -> None:
    assert world.ids(search=text) == _expected(world, keep)


def test_search_index_is_idempotent_and_follows_inserts(world: World) -> None:
    with world.engine.begin() as conn:
        ensure_search_index(conn, form=world.form.spec, tables=world.target.tables)
        row = conn.execute(
            world.target.main.insert().returning(world.target.main.c.id),
            [{**_row(1), "number": "zebra", "title": "zebra crossing 斑马线"}],
        ).scalar_one()
    try:
        assert world.ids(search="斑马线") == [row]
        with world.engine.begin() as conn:
            table = world.target.main
            conn.execute(table.update().where(table.c.id == row).values(title="plain"))
        assert world.ids(search="斑马线") == []
    finally:
        with world.engine.begin() as conn:
            conn.execute(world.target.main.delete().where(world.target.main.c.id == row))


def test_trash_and_extra_conditions(world: World) -> None:
    table = world.target.main
    with world.engine.begin() as conn:
        conn.execute(table.update().where(table.c.id.in_([1, 2])).values(deleted_at=NOW))
    try:
        assert world.ids(trash=True) == [2, 1]
        assert 1 not in world.ids()
        assert world.ids(extra=[table.c.id <= 5]) == [5, 4, 3]
    finally:
        with world.engine.begin() as conn:
            conn.execute(table.update().values(deleted_at=None))


def test_counts_exact_and_estimated(world: World, backend: str) -> None:
    query = world.query(filter=L("status", "eq", "open"))
    expected = len([r for r in world.rows if r["status"] == "open"])
    with world.engine.connect() as conn:
        exact = count_records(conn, target=world.target, query=query, now=NOW)
        small = count_records(conn, target=world.target, query=query, now=NOW, exact_limit=0)
        plain = count_records(
            conn, target=world.target, query=world.query(), now=NOW, exact_limit=0
        )
    assert (exact.value, exact.exact) == (expected, True)
    if backend == "postgresql":
        assert not small.exact and not plain.exact and small.value >= 0
    else:
        assert (small.value, small.exact) == (expected, True)
        assert (plain.value, plain.exact) == (ROWS, True)


def test_kanban_columns(world: World) -> None:
    query = world.query(sort=["qty"])
    with world.engine.connect() as conn:
        columns = fetch_kanban(
            conn, target=world.target, query=query, group_by="status", now=NOW, per_column=3
        )
    assert [c.value for c in columns] == ["new", "open", "done", None]
    for column in columns:
        matching = [r for r in world.rows if r["status"] == column.value]
        assert column.count == len(matching)
        ordered = sorted(matching, key=lambda r: (r["qty"] is None, r["qty"] or 0, r["id"]))
        assert [row["id"] for row in column.items] == [r["id"] for r in ordered[:3]]


def test_kanban_needs_a_select(world: World) -> None:
    with world.engine.connect() as conn, pytest.raises(ListQueryError) as caught:
        fetch_kanban(conn, target=world.target, query=world.query(), group_by="qty", now=NOW)
    assert caught.value.errors[0].code == "list.bad-group-by"


def test_tables_survive_injection(world: World) -> None:
    with world.engine.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(world.target.main)).scalar() == ROWS
        )


def test_search_without_trigrams_matches_words(world: World, backend: str) -> None:
    from engine.storage._fts import search_condition

    if backend != "postgresql":
        pytest.skip("the tsvector fallback is PostgreSQL's")
    table = world.target.main
    with world.engine.connect() as conn:
        condition = search_condition(conn, table, world.target.searched, "JAM paper", index="tsv")
        found = conn.execute(sa.select(table.c.id).where(condition).order_by(table.c.id))
        assert [row[0] for row in found] == [r["id"] for r in world.rows if r["notes"]]
