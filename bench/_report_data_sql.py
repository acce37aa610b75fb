"""SQL fragments the hand-written KPIs share, and medians in one statement (percentile_cont
semantics, nulls ignored): on PostgreSQL percentile_cont; on SQLite each row is ranked within
its group in a subquery and the two middle values are interpolated. Both read the subquery
`t` that `ranked` builds."""

from __future__ import annotations


def in_period(column: str) -> str:
    """`column` within the instant period [:low, :high)."""
    return f"{column} >= :low AND {column} < :high"


def count_if(condition: str) -> str:
    return f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)"


def ratio(numerator: str, denominator: str) -> str:
    return f"CAST({numerator} AS FLOAT) / NULLIF({denominator}, 0)"


def ranked(dialect: str, *, select: str, value: str, group: str, source: str) -> str:
    """`(SELECT {select}, {value} AS v_[, rank and count in the group] {source}) t`."""
    if dialect == "postgresql":
        return f"(SELECT {select}, {value} AS v_ {source}) t"
    order = f"{value} IS NULL, {value}"  # SQLite sorts NULL first; count only the values
    return (
        f"(SELECT {select}, {value} AS v_, ROW_NUMBER() OVER (PARTITION BY {group} ORDER BY "
        f"{order}) AS rn_, COUNT({value}) OVER (PARTITION BY {group}) AS n_ {source}) t"
    )


def median(dialect: str) -> str:
    """The median of the subquery's v_ within the outer GROUP BY (the groups of `ranked`)."""
    if dialect == "postgresql":
        return "percentile_cont(0.5) WITHIN GROUP (ORDER BY t.v_)"
    position = "((t.n_ - 1) * 0.5)"
    below = f"CAST({position} AS INTEGER)"
    low = f"MAX(CASE WHEN t.rn_ = {below} + 1 THEN t.v_ END)"
    high = f"MAX(CASE WHEN t.rn_ = {below} + 2 THEN t.v_ END)"
    fraction = f"MAX({position} - {below})"
    return f"CASE WHEN {fraction} > 0 THEN {low} + ({high} - {low}) * {fraction} ELSE {low} END"


__all__ = ["count_if", "in_period", "median", "ranked", "ratio"]
