"""KPIs of the present written by hand (no period): the backlog by team and wall-clock age
at :now (T1), the nightly backlog snapshot's rows, and the installed base (I5's denominator)."""

from __future__ import annotations

import _report_data as base  # bench/ is on sys.path (script or test conftest)
from _report_data_sql import count_if

AGES = ((86_400, "a <1d"), (3 * 86_400, "b 1-3d"), (7 * 86_400, "c 3-7d"), (30 * 86_400, "d 7-30d"))
OLDEST = "e >30d"
OVERDUE = count_if("t.response_state = 'breached' OR t.resolution_state = 'breached'")
OPEN = f"{base.FROM} {{joins}} WHERE {base.POP} AND t.status_category IN ('open', 'paused')"


def _age(dialect: str, snapshot_labels: bool) -> str:
    """The wall-clock age bucket of t.created_at at :now (DATEDIF in whole hours)."""
    if dialect == "postgresql":
        seconds = "EXTRACT(EPOCH FROM (CAST(:now AS TIMESTAMPTZ) - t.created_at))"
    else:
        seconds = "(strftime('%s', :now) - strftime('%s', t.created_at))"
    labels = [*(label for _, label in AGES), OLDEST]
    if snapshot_labels:  # the snapshot stores keys, not display labels
        labels = ["a_lt_1d", "b_1_3d", "c_3_7d", "d_7_30d", "e_gt_30d"]
    cases = " ".join(
        f"WHEN {seconds} < {limit} THEN '{label}'"
        for (limit, _), label in zip(AGES, labels, strict=False)
    )
    return f"CASE {cases} ELSE '{labels[-1]}' END"


def bench_sql(dialect: str) -> dict[str, tuple[None, str]]:
    """(None: no period, one statement) per report of the present."""
    team = "LEFT JOIN aftersales__team tm ON tm.id = t.team AND tm.deleted_at IS NULL"
    return {
        "t1_backlog": (None, (
            f"SELECT tm.name, {_age(dialect, False)}, COUNT(*), {OVERDUE} "
            f"{OPEN.format(joins=team)} GROUP BY 1, 2 ORDER BY 1, 2")),
        "t1_backlog_snapshot": (None, (
            f"SELECT t.team, t.region, t.priority, t.status_category, {_age(dialect, True)}, "
            f"COUNT(*), {OVERDUE} {OPEN.format(joins='')} GROUP BY 1, 2, 3, 4, 5 "
            "ORDER BY 1, 2, 3, 4, 5")),
        "i5_installed_base": (None, (
            "SELECT m.code, d.batch_no, d.region, COUNT(*) FROM aftersales__device d LEFT JOIN "
            "aftersales__product_model m ON m.id = d.product_model AND m.deleted_at IS NULL "
            "WHERE d.deleted_at IS NULL AND d.install_date IS NOT NULL GROUP BY 1, 2, 3 "
            "ORDER BY 1, 2, 3")),
    }  # fmt: skip


__all__ = ["bench_sql"]
