"""Query features and permissions on generated after-sales data, on each database."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from engine.errors import PermissionDenied
from engine.identity.actor import Actor
from engine.identity.permissions import FormAccess, compile_form_access
from engine.identity.spec import RoleSpec
from engine.reports.compiler import CompiledReport, compile_report
from engine.reports.query import FilterClause, ReportQueryError
from engine.reports.runner import run_report, stream_rows
from engine.reports.service import ReportService
from engine.reports.spec import ReportSpec

NOW = datetime(2025, 12, 20, tzinfo=UTC)
ACTOR = Actor(user_id=4242, username="analyst")
TICKETS = "aftersales__ticket"


def _compiled(engine: sa.Engine, forms: Mapping[str, Any], **parts: Any) -> CompiledReport:
    body: dict[str, Any] = {"key": "r", "label": "R", "dataset": {"form": "ticket"}}
    body.update(parts)
    spec = ReportSpec.model_validate(body)
    return compile_report(spec, app="aftersales", forms=forms, dialect=engine.dialect.name)


def _access(**permissions: dict[str, Any]) -> dict[str, FormAccess]:
    """The analyst's access to the forms reports read, from one role's permissions by form."""
    role = RoleSpec.model_validate(
        {
            "key": "analyst",
            "label": "Analyst",
            "permissions": [{"form": form, **grant} for form, grant in permissions.items()],
        }
    )
    keys = ("ticket", "customer", "team", "device", "product_model")
    return {
        k: compile_form_access(actor=ACTOR, app="aftersales", form=k, roles=[role]) for k in keys
    }


ALL = {"scope": "all"}


@pytest.fixture(scope="module")
def db(aftersales_data: sa.Engine) -> Iterator[sa.Connection]:
    with aftersales_data.connect() as conn:
        yield conn


def _scalar(conn: sa.Connection, sql: str, **params: Any) -> Any:
    return conn.execute(sa.text(sql), params).scalar()


def test_scope_is_injected(db: sa.Connection, aftersales_data: sa.Engine, forms: Any) -> None:
    compiled = _compiled(
        aftersales_data,
        forms,
        dimensions=[{"key": "region", "field": "region"}],
        measures=[{"key": "n", "aggregate": "count"}],
    )
    access = _access(ticket={"scope": "expr", "scope_expr": 'region = "east"'}, customer=ALL)
    result = run_report(db, compiled, actor=ACTOR, now=NOW, access=access)
    expected = _scalar(db, f"SELECT COUNT(*) FROM {TICKETS} WHERE region = 'east'")
    assert result.rows == (("east", expected),)
    everyone = run_report(db, compiled, actor=None, now=NOW)
    assert len(everyone.rows) == 7


def test_joined_form_scope_blanks_what_it_cannot_read(
    db: sa.Connection, aftersales_data: sa.Engine, forms: Any
) -> None:
    compiled = _compiled(
        aftersales_data,
        forms,
        dimensions=[{"key": "tier", "field": "customer.tier"}],
        measures=[{"key": "n", "aggregate": "count"}],
    )
    access = _access(ticket=ALL, customer={"scope": "expr", "scope_expr": 'tier = "vip"'})
    result = run_report(db, compiled, actor=ACTOR, now=NOW, access=access)
    tiers = {row[0] for row in result.rows}
    assert tiers == {"vip", None}
    assert sum(row[1] for row in result.rows) == _scalar(db, f"SELECT COUNT(*) FROM {TICKETS}")


@pytest.mark.parametrize(
    "parts",
    [
        {"dimensions": [{"key": "f", "field": "frt_bsec"}]},
        {"measures": [{"key": "f", "aggregate": "avg", "field": "frt_bsec"}]},
        {"measures": [{"key": "f", "aggregate": "count", "filter": "frt_bsec > 10"}]},
        {"filters": [{"expr": "frt_bsec > 10"}], "measures": [{"key": "n", "aggregate": "count"}]},
        {"dimensions": [{"key": "t", "field": "customer.internal"}]},
    ],
)
def test_hidden_fields_are_refused(
    db: sa.Connection, aftersales_data: sa.Engine, forms: Any, parts: dict[str, Any]
) -> None:
    compiled = _compiled(aftersales_data, forms, **parts)
    access = _access(
        ticket={"scope": "all", "fields": {"frt_bsec": "hidden"}},
        customer={"scope": "all", "fields": {"internal": "hidden"}},
    )
    with pytest.raises(PermissionDenied) as caught:
        run_report(db, compiled, actor=ACTOR, now=NOW, access=access)
    assert caught.value.code == "identity.hidden-field"


def test_hidden_field_in_a_request_filter(
    db: sa.Connection, aftersales_data: sa.Engine, forms: Any
) -> None:
    compiled = _compiled(aftersales_data, forms, measures=[{"key": "n", "aggregate": "count"}])
    access = _access(ticket={"scope": "all", "fields": {"region": "hidden"}}, customer=ALL)
    with pytest.raises(PermissionDenied) as caught:
        run_report(
            db,
            compiled,
            actor=ACTOR,
            now=NOW,
            access=access,
            extra_filters=[FilterClause("region", "eq", "east")],
        )
    assert caught.value.code == "identity.hidden-field"


def test_no_read_permission(db: sa.Connection, aftersales_data: sa.Engine, forms: Any) -> None:
    compiled = _compiled(
        aftersales_data,
        forms,
        dimensions=[{"key": "t", "field": "customer.tier"}],
        measures=[{"key": "n", "aggregate": "count"}],
    )
    for access in (_access(customer=ALL), _access(ticket=ALL)):  # the base, then the join
        with pytest.raises(PermissionDenied) as caught:
            run_report(db, compiled, actor=ACTOR, now=NOW, access=access)
        assert caught.value.code == "identity.permission-denied"


def test_service_refuses_an_actor_without_roles(aftersales_data: sa.Engine) -> None:
    service = ReportService(aftersales_data, clock=lambda: NOW)
    with pytest.raises(PermissionDenied):
        service.run(app="aftersales", key="e2_art", actor=ACTOR)
    with pytest.raises(Exception) as missing:
        service.run(app="aftersales", key="no_such_report", actor=None)
    assert getattr(missing.value, "code", None) == "report.not-found"


def test_injection_strings_match_nothing(
    db: sa.Connection, aftersales_data: sa.Engine, forms: Any
) -> None:
    compiled = _compiled(aftersales_data, forms, measures=[{"key": "n", "aggregate": "count"}])
    evil = "east' OR '1'='1"
    for clause in (
        FilterClause("region", "eq", evil),
        FilterClause("region", "in", [evil]),
        FilterClause("number", "contains", "%' OR 1=1 --"),
    ):
        result = run_report(db, compiled, actor=None, now=NOW, extra_filters=[clause])
        assert result.rows == ((0,),)
    assert _scalar(db, f"SELECT COUNT(*) FROM {TICKETS}") > 0


def test_bad_request_filters(db: sa.Connection, aftersales_data: sa.Engine, forms: Any) -> None:
    compiled = _compiled(aftersales_data, forms, measures=[{"key": "n", "aggregate": "count"}])
    cases = [
        (FilterClause("nowhere", "eq", 1), "/filters/0/field", "report.unknown-field"),
        (FilterClause("frt_bsec", "eq", "ten"), "/filters/0/value", "report.bad-filter"),
        (
            FilterClause("created_at", "between", ["2025-01-01"]),
            "/filters/0/value",
            "report.bad-filter",
        ),
        (FilterClause("priority", "contains", 3), "/filters/0/value", "report.bad-filter"),
    ]
    for clause, path, code in cases:
        with pytest.raises(ReportQueryError) as caught:
            run_report(db, compiled, actor=None, now=NOW, extra_filters=[clause])
        assert (caught.value.errors[0].loc, caught.value.code) == (path, code)


def test_zero_denominator_is_null(
    db: sa.Connection, aftersales_data: sa.Engine, forms: Any
) -> None:
    compiled = _compiled(
        aftersales_data,
        forms,
        measures=[
            {"key": "n", "aggregate": "count"},
            {"key": "none", "aggregate": "count", "filter": 'status = "no such status"'},
            {"key": "ratio", "expr": "n / none"},
        ],
    )
    result = run_report(db, compiled, actor=None, now=NOW)
    assert result.rows[0][1:] == (0, None)


def test_date_grains_in_a_time_zone(
    db: sa.Connection, aftersales_data: sa.Engine, forms: Any
) -> None:
    # a ticket created after 16:00 UTC is on the next day in Shanghai
    late = db.execute(
        sa.text(
            f"SELECT id, created_at FROM {TICKETS} WHERE created_at >= :a AND created_at < :b "
            "ORDER BY id LIMIT 1"
        ),
        {
            "a": datetime(2025, 3, 31, 16, 30, tzinfo=UTC),
            "b": datetime(2025, 3, 31, 23, 59, tzinfo=UTC),
        },
    ).one()
    grains = [
        {"key": g, "field": "created_at", "grain": g}
        for g in ("day", "week", "month", "quarter", "year")
    ]
    shanghai = _compiled(aftersales_data, forms, dimensions=grains, timezone="Asia/Shanghai")
    utc = _compiled(aftersales_data, forms, dimensions=grains)
    only = [FilterClause("id", "eq", late.id)]
    local = run_report(db, shanghai, actor=None, now=NOW, extra_filters=only).rows[0]
    plain = run_report(db, utc, actor=None, now=NOW, extra_filters=only).rows[0]
    assert local == (
        date(2025, 4, 1),
        date(2025, 3, 31),
        date(2025, 4, 1),
        date(2025, 4, 1),
        date(2025, 1, 1),
    )
    assert plain == (
        date(2025, 3, 31),
        date(2025, 3, 31),
        date(2025, 3, 1),
        date(2025, 1, 1),
        date(2025, 1, 1),
    )
    weekly = _compiled(
        aftersales_data,
        forms,
        timezone="Asia/Shanghai",
        dimensions=[{"key": "w", "field": "created_at", "grain": "week"}],
        measures=[{"key": "n", "aggregate": "count"}],
    )
    weeks = run_report(db, weekly, actor=None, now=NOW).rows
    assert all(row[0].weekday() == 0 for row in weeks)
    assert sum(row[1] for row in weeks) == _scalar(db, f"SELECT COUNT(*) FROM {TICKETS}")


def test_date_range_filter_uses_local_days(
    db: sa.Connection, aftersales_data: sa.Engine, forms: Any
) -> None:
    compiled = _compiled(
        aftersales_data,
        forms,
        timezone="Asia/Shanghai",
        measures=[{"key": "n", "aggregate": "count"}],
    )
    period = [FilterClause("created_at", "between", ["2025-04-01", "2025-04-30"])]
    result = run_report(db, compiled, actor=None, now=NOW, extra_filters=period)
    expected = _scalar(
        db,
        f"SELECT COUNT(*) FROM {TICKETS} WHERE created_at >= :a AND created_at < :b",
        a=datetime(2025, 3, 31, 16, tzinfo=UTC),
        b=datetime(2025, 4, 30, 16, tzinfo=UTC),
    )
    assert result.rows == ((expected,),)


def test_buckets_sort_by_bound(db: sa.Connection, aftersales_data: sa.Engine, forms: Any) -> None:
    compiled = _compiled(
        aftersales_data,
        forms,
        dimensions=[{"key": "b", "field": "frt_bsec", "buckets": [600, 1800, 3600]}],
        measures=[{"key": "n", "aggregate": "count"}],
    )
    rows = run_report(db, compiled, actor=None, now=NOW).rows
    assert [row[0] for row in rows] == ["< 600", "600 – 1800", "1800 – 3600", "≥ 3600", None]
    below = _scalar(db, f"SELECT COUNT(*) FROM {TICKETS} WHERE frt_bsec < 600")
    assert rows[0][1] == below


def test_compare_previous_period_and_year(
    db: sa.Connection, aftersales_data: sa.Engine, forms: Any
) -> None:
    parts: dict[str, Any] = {
        "timezone": "Asia/Shanghai",
        "dimensions": [{"key": "p", "field": "priority"}],
        "measures": [{"key": "n", "aggregate": "count"}],
    }
    june = [FilterClause("created_at", "between", ["2025-06-01", "2025-06-30"])]
    for compare, previous in (
        ("previous_period", ["2025-05-02", "2025-05-31"]),
        ("previous_year", ["2024-06-01", "2024-06-30"]),
    ):
        compiled = _compiled(aftersales_data, forms, compare=compare, **parts)
        result = run_report(db, compiled, actor=None, now=NOW, extra_filters=june)
        plain = _compiled(aftersales_data, forms, **parts)
        before = [FilterClause("created_at", "between", previous)]
        assert (
            result.compare == run_report(db, plain, actor=None, now=NOW, extra_filters=before).rows
        )
    assert result.compare == ()  # no tickets in 2024


def test_drill_having_and_others(db: sa.Connection, aftersales_data: sa.Engine, forms: Any) -> None:
    compiled = _compiled(
        aftersales_data,
        forms,
        dimensions=[{"key": "c", "field": "channel"}],
        measures=[
            {"key": "n", "aggregate": "count"},
            {"key": "med", "aggregate": "median", "field": "frt_bsec"},
        ],
        filters=[{"expr": "n > 100", "stage": "having"}],
        sort=[{"by": "n", "direction": "desc"}],
    )
    rows = run_report(db, compiled, actor=None, now=NOW).rows
    assert rows and all(row[1] > 100 for row in rows)
    phone = run_report(db, compiled, actor=None, now=NOW, drill={"c": "phone"}).rows
    assert [row[0] for row in phone] == ["phone"]
    top = _compiled(
        aftersales_data,
        forms,
        dimensions=[{"key": "c", "field": "channel"}],
        measures=[
            {"key": "med", "aggregate": "median", "field": "frt_bsec"},
            {"key": "n", "aggregate": "count"},
        ],
        sort=[{"by": "med", "direction": "desc"}],
        limit=3,
        others=True,
    )
    result = run_report(db, top, actor=None, now=NOW)
    assert result.others and len(result.rows) == 4
    assert sum(row[2] for row in result.rows) == _scalar(db, f"SELECT COUNT(*) FROM {TICKETS}")
    assert result.rows[-1][0] is None


def test_detail_rows_stream_and_truncate(
    db: sa.Connection, aftersales_data: sa.Engine, forms: Any
) -> None:
    compiled = _compiled(
        aftersales_data,
        forms,
        dimensions=[
            {"key": "id", "field": "id"},
            {"key": "number", "field": "number"},
            {"key": "tier", "field": "customer.tier"},
        ],
    )
    page = run_report(db, compiled, actor=None, now=NOW, limit=50)
    assert page.truncated and len(page.rows) == 50
    streamed = list(stream_rows(db, compiled, actor=None, now=NOW))
    assert len(streamed) == _scalar(db, f"SELECT COUNT(*) FROM {TICKETS}")
    assert tuple(streamed[:50]) == page.rows
    assert [row[0] for row in streamed] == sorted(row[0] for row in streamed)


def test_expression_dimension_and_value_measure(
    db: sa.Connection, aftersales_data: sa.Engine, forms: Any
) -> None:
    compiled = _compiled(
        aftersales_data,
        forms,
        dimensions=[{"key": "late", "expr": "frt_bsec > 3600"}],
        measures=[
            {"key": "n", "aggregate": "count"},
            {
                "key": "hours",
                "aggregate": "sum",
                "value": 'DATEDIF(created_at, first_response_at, "hour")',
            },
        ],
    )
    rows = run_report(db, compiled, actor=None, now=NOW).rows
    assert [row[0] for row in rows] == [False, True, None]
    assert all(isinstance(row[2], float) for row in rows[:2])


def test_dates_of_min_and_max(db: sa.Connection, aftersales_data: sa.Engine, forms: Any) -> None:
    compiled = _compiled(
        aftersales_data,
        forms,
        measures=[
            {"key": "first", "aggregate": "min", "field": "created_at"},
            {"key": "last", "aggregate": "max", "field": "created_at"},
        ],
    )
    first, last = run_report(db, compiled, actor=None, now=NOW).rows[0]
    assert first.tzinfo is not None and last - first > timedelta(days=300)


def test_request_filter_through_a_relation_checks_that_form(
    db: sa.Connection, aftersales_data: sa.Engine, forms: Any
) -> None:
    compiled = _compiled(aftersales_data, forms, measures=[{"key": "n", "aggregate": "count"}])
    access = {"ticket": _access(ticket=ALL)["ticket"]}  # the caller loaded the base form only
    with pytest.raises(PermissionDenied):  # the analyst's real roles: none on customer
        run_report(
            db,
            compiled,
            actor=ACTOR,
            now=NOW,
            access=access,
            extra_filters=[FilterClause("customer.tier", "eq", "vip")],
        )
    vip = run_report(
        db,
        compiled,
        actor=None,
        now=NOW,
        extra_filters=[FilterClause("customer.tier", "eq", "vip")],
    ).rows[0][0]
    expected = _scalar(
        db,
        f"SELECT COUNT(*) FROM {TICKETS} t JOIN aftersales__customer c "
        "ON c.id = t.customer WHERE c.tier = 'vip'",
    )
    assert vip == expected


def test_statements_without_request_conditions_are_reused(
    db: sa.Connection, aftersales_data: sa.Engine, forms: Any
) -> None:
    plain = _compiled(
        aftersales_data,
        forms,
        dimensions=[{"key": "p", "field": "priority"}],
        measures=[{"key": "n", "aggregate": "count"}],
    )
    first = run_report(db, plain, actor=None, now=NOW)
    assert plain.clock_free and len(plain.statements) == 1
    assert run_report(db, plain, actor=None, now=NOW + timedelta(days=1)) == first
    filtered = [FilterClause("priority", "eq", "high")]
    assert len(run_report(db, plain, actor=None, now=NOW, extra_filters=filtered).rows) == 1
    assert len(plain.statements) == 1
    aging = _compiled(
        aftersales_data,
        forms,
        dimensions=[{"key": "old", "expr": 'DATEDIF(created_at, NOW(), "day") > 30'}],
        measures=[{"key": "n", "aggregate": "count"}],
    )
    now_rows = run_report(db, aging, actor=None, now=datetime(2025, 1, 2, tzinfo=UTC)).rows
    later_rows = run_report(db, aging, actor=None, now=NOW).rows
    assert not aging.clock_free and not aging.statements and now_rows != later_rows
