"""The field-service KPIs written by hand (E3 on-site, E4, E6, E7, P1, P2, T2) over the data of
bench/_report_data_field.py: tests/engine/reports/test_kpi_field.py and bench/reports.py
compare the bundle's reports with these. Each report's period binds its event date
(:low, :high: an instant period)."""

from __future__ import annotations

import _report_data as base  # bench/ is on sys.path (script or test conftest)
import _report_data_exists as exists_sql
from _report_data_sql import count_if, in_period, median, ranked, ratio

POP = base.POP
CUSTOMER = "LEFT JOIN aftersales__customer c ON c.id = t.customer AND c.deleted_at IS NULL"
VISITS = ("FROM aftersales__field_visit v JOIN aftersales__ticket t ON t.id = v.ticket AND "
          f"t.deleted_at IS NULL {CUSTOMER} WHERE v.deleted_at IS NULL AND {POP}")  # fmt: skip
FIRST_REPAIR = ("v.sequence = 1 AND v.visit_type = 'repair' AND v.status IN ('completed', "
                "'incomplete') AND COALESCE(v.incomplete_reason, '') <> 'customer_absent' "
                "AND v.check_out_at IS NOT NULL")  # fmt: skip
FIXED = "v.result = 'fixed' AND t.visit_count = 1"
SHORT = "v.status = 'incomplete' AND v.incomplete_reason = 'needs_parts'"
MET, BREACHED = "t.onsite_state = 'met'", "t.onsite_state = 'breached'"


# report key → (event-date field of the report, hand SQL)
HAND_SQL: dict[str, tuple[str, str]] = {
    "e3_mttr_onsite": ("check_out_at", (
        f"SELECT t.region, COUNT(*), AVG(v.labour_min) {VISITS} AND v.visit_type = 'repair' "
        f"AND v.status = 'completed' AND v.check_out_at IS NOT NULL AND "
        f"{in_period('v.check_out_at')} GROUP BY t.region ORDER BY t.region")),
    "e4_aht": ("at", (
        f"SELECT t.channel, SUM(a.handle_sec), COUNT(DISTINCT a.ticket), "
        f"{ratio('SUM(a.handle_sec)', 'COUNT(DISTINCT a.ticket)')} "
        "FROM aftersales__ticket_activity a JOIN aftersales__ticket t ON t.id = a.ticket AND "
        f"t.deleted_at IS NULL {CUSTOMER} WHERE a.deleted_at IS NULL AND {POP} AND a.kind IN "
        f"('call_in', 'call_out', 'remote_work') AND {in_period('a.at')} "
        "GROUP BY t.channel ORDER BY t.channel")),
    "p1_parts_usage": ("posted_at", (
        "SELECT sp.code, SUM(pc.qty), SUM(pc.cost) FROM aftersales__part_consumption pc "
        "JOIN aftersales__field_visit v ON v.id = pc.visit AND v.deleted_at IS NULL "
        f"JOIN aftersales__ticket t ON t.id = v.ticket AND t.deleted_at IS NULL {CUSTOMER} "
        "LEFT JOIN aftersales__spare_part sp ON sp.id = pc.spare_part AND sp.deleted_at IS NULL "
        f"WHERE pc.deleted_at IS NULL AND {POP} AND {in_period('pc.posted_at')} "
        "GROUP BY sp.code ORDER BY 3 DESC, 1 LIMIT 20")),
    "p2_first_visit_parts": ("check_out_at", (
        f"SELECT t.region, COUNT(*), {count_if(SHORT)}, "
        f"1 - {ratio(count_if(SHORT), 'COUNT(*)')} {VISITS} AND v.sequence = 1 AND "
        "t.ticket_type = 'repair' AND v.status IN ('completed', 'incomplete') AND "
        f"v.check_out_at IS NOT NULL AND {in_period('v.check_out_at')} "
        "GROUP BY t.region ORDER BY t.region")),
    "t2_engineer_workload": ("check_out_at", (
        "SELECT v.engineer, COUNT(*), SUM(v.labour_min / 60.0), SUM(v.travel_min / 60.0), "
        f"{count_if(FIRST_REPAIR)}, {count_if(FIRST_REPAIR + ' AND ' + FIXED)}, "
        f"{ratio(count_if(FIRST_REPAIR + ' AND ' + FIXED), count_if(FIRST_REPAIR))} {VISITS} "
        "AND v.status IN ('completed', 'incomplete') AND v.check_out_at IS NOT NULL AND "
        f"v.engineer IS NOT NULL AND {in_period('v.check_out_at')} "
        "GROUP BY v.engineer ORDER BY 2 DESC, 1")),
}  # fmt: skip

# The two median reports: (event date, the other columns with {median} in the median's place,
# what the median reads, the rows: FROM … WHERE …, GROUP BY … ORDER BY …)
E7_COLUMNS = (f"t.region, COUNT(*), {{median}}, {count_if(MET)}, {count_if(BREACHED)}, "
              f"{ratio(count_if(MET), count_if(MET) + ' + ' + count_if(BREACHED))}")  # fmt: skip
E7_SOURCE = (f"{base.FROM} WHERE {POP} AND t.first_check_in_at IS NOT NULL AND t.onsite_state "
             f"IN ('met', 'breached') AND {in_period('t.first_check_in_at')}")  # fmt: skip
DESK = "t.ticket_type IN ('tech_support', 'consultation', 'repair') AND t.channel <> 'system'"
FIRST_CONTACT = (f"{DESK} AND t.agent_reply_count <= 1 AND t.reopen_count = 0 AND t.visit_count"
                 " = 0 AND t.transfer_count = 0 AND t.escalation_level = 0")  # fmt: skip
T2_COLUMNS = ", ".join([
    "t.assignee", "COUNT(*)", "{median}",
    count_if("t.response_state = 'met'"), count_if("t.response_state IN ('met', 'breached')"),
    ratio(count_if("t.response_state = 'met'"),
          count_if("t.response_state IN ('met', 'breached')")),
    count_if("t.resolution_state = 'met'"), count_if("t.resolution_state IN ('met', 'breached')"),
    ratio(count_if("t.resolution_state = 'met'"),
          count_if("t.resolution_state IN ('met', 'breached')")),
    count_if(DESK), count_if(FIRST_CONTACT), ratio(count_if(FIRST_CONTACT), count_if(DESK)),
    count_if("t.reopen_count >= 1"), ratio(count_if("t.reopen_count >= 1"), "COUNT(*)"),
])  # fmt: skip
T2_SOURCE = (f"{base.FROM} WHERE {POP} AND t.first_resolved_at IS NOT NULL AND t.assignee IS NOT "
             f"NULL AND {in_period('t.first_resolved_at')}")  # fmt: skip
MEDIANS: dict[str, tuple[str, str, str, str, str]] = {
    "e7_onsite": ("first_check_in_at", E7_COLUMNS, "t.onsite_bsec", E7_SOURCE,
                  "GROUP BY t.region ORDER BY t.region"),
    "t2_workload": ("first_resolved_at", T2_COLUMNS, "t.frt_bsec", T2_SOURCE,
                    "GROUP BY t.assignee ORDER BY 2 DESC, 1"),
}  # fmt: skip
# what the outer query reads of each median report's rows (SQLite ranks them in a subquery)
_READS = {
    "e7_onsite": "t.region, t.onsite_state",
    "t2_workload": "t.assignee, t.response_state, t.resolution_state, t.ticket_type, "
    "t.channel, t.agent_reply_count, t.reopen_count, t.visit_count, t.transfer_count, "
    "t.escalation_level",
}


def e6_sql(dialect: str) -> str:
    """E6 exact: fixed also needs no re-failure on the device within 30 d (dialect's dates);
    tests/engine/reports/test_kpi_exists.py checks it."""
    fixed = f"{FIXED} AND NOT {exists_sql.refailed_sql(dialect)}"
    return (f"SELECT t.region, COUNT(*), {count_if(fixed)}, {ratio(count_if(fixed), 'COUNT(*)')} "
            f"{VISITS} AND {FIRST_REPAIR} AND {in_period('v.check_out_at')} "
            "GROUP BY t.region ORDER BY t.region")  # fmt: skip


def bench_sql(dialect: str) -> dict[str, tuple[str, str]]:
    """Every field KPI as (event date, one statement), the medians computed in SQL."""
    out = dict(HAND_SQL) | {"e6_ftfr": ("check_out_at", e6_sql(dialect))}
    for key, (event, columns, value, source, tail) in MEDIANS.items():
        group = tail.split()[2]  # GROUP BY <one column> …
        rows = ranked(dialect, select=_READS[key], value=value, group=group, source=source)
        out[key] = (event, f"SELECT {columns.format(median=median(dialect))} FROM {rows} {tail}")
    return out


__all__ = ["HAND_SQL", "MEDIANS", "bench_sql", "e6_sql"]
