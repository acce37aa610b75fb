"""Tests for other rows: a dataset's `exists` entries as correlated subqueries.

`dataset.exists: [{key, form, joins, where, result}]` names a test over the rows of `form`
(the other row, `other.<path>` in `where`) against the current row (plain paths). The key
becomes a field of the dataset: a boolean `EXISTS (SELECT 1 FROM other … WHERE …)`, or with
`result: count` the number of such rows. The other form's sources are registered in the outer
dataset under `<key>:<name>` with kind "exists": they are never joined, but the runner checks
read access to their forms and computes their read scope, which `with_exists_scope` puts inside
the subquery per request (the compiled subquery has none: an unrestricted actor's statement).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import ColumnElement

from engine.errors import DefinitionError, Problem
from engine.expr import ExpressionError, check, parse, references
from engine.expr.nodes import Binary, Call, Expression, Node, Ref, children
from engine.expr.sql import compile_filter, compile_sql, type_of
from engine.forms.listing import BOOLEAN, DATETIME, NUMBER, resolve_field
from engine.reports.dataset import EXISTS_KIND, Column, Dataset, Source, shared_form_tables
from engine.reports.spec import Exists

Sql = ColumnElement[Any]
OTHER = "other."
BAD_EXPR = "report.bad-expr"
UNKNOWN_FIELD = "report.unknown-field"
DUPLICATE_KEY = "report.duplicate-key"
_MARK = "tangram_exists"  # annotation naming the test an element was built for
_CLOCK = datetime(2000, 1, 1, tzinfo=UTC)  # unused: `where` may not read the clock


@dataclass(frozen=True, slots=True)
class ExistsTest:
    """One compiled test: the other form's dataset and the correlated condition."""

    key: str
    inner: Dataset
    condition: tuple[Sql, ...]
    result: str  # exists, count or sum
    value: Sql | None  # summed, with result "sum"
    column: Column

    def shadow(self, name: str) -> str:
        """The outer dataset's name of the inner source `name`."""
        return f"{self.key}:{name}"

    def element(self, scopes: Mapping[str, list[Sql]]) -> Sql:
        """The subquery, with the read scope of each inner source from `scopes` (outer names)."""
        inner = self.inner
        on_extra = {name: scopes.get(self.shadow(name), []) for name in inner.sources}
        joined = inner.from_clause(set(inner.sources), on_extra)
        base = inner.base.table
        where = [*self.condition, base.c.deleted_at.is_(None), *on_extra[inner.base.name]]
        tables = [source.table for source in inner.sources.values()]
        selected: Sql = sa.literal_column("1")
        if self.result != "exists":
            selected = sa.func.count() if self.value is None else sa.func.coalesce(
                sa.func.sum(self.value), 0)  # fmt: skip
        query = sa.select(selected).select_from(joined).where(*where).correlate_except(*tables)
        found: Sql = query.exists() if self.result == "exists" else query.scalar_subquery()
        return found._annotate({_MARK: self.mark})

    @property
    def mark(self) -> tuple[str, int]:
        """Names this compiled test in a statement (a blend's populations may reuse keys)."""
        return self.key, id(self.inner)


def add_exists(dataset: Dataset, specs: tuple[Exists, ...], *, dialect: str) -> None:
    """Compile each test of `specs` into `dataset` (errors at `/dataset/exists/<i>/…`)."""
    problems: list[Problem] = []
    for index, spec in enumerate(specs):
        try:
            test = _compile(dataset, spec, f"/dataset/exists/{index}", dialect)
        except DefinitionError as err:
            problems.extend(err.problems)
            continue
        dataset.exists[spec.key] = test
        for name, source in test.inner.sources.items():
            shadow = test.shadow(name)
            dataset.sources[shadow] = replace(source, name=shadow, kind=EXISTS_KIND, parent=None)
    if problems:
        raise DefinitionError(problems)


def _compile(dataset: Dataset, spec: Exists, where: str, dialect: str) -> ExistsTest:
    _check_key(dataset, spec.key, f"{where}/key")
    form = str(spec.form).removeprefix(f"{dataset.app}.")
    if form not in dataset.forms:
        raise _problem(UNKNOWN_FIELD, f"{where}/form", f"unknown form {spec.form!r}")
    tables = shared_form_tables(dataset.app, dataset.forms[form], dataset.forms)
    prefix = f"x_{spec.key}"
    base = Source("", form, dataset.forms[form], tables, tables.main.alias(prefix))
    inner = Dataset(dataset.app, dataset.forms, base, {"": base}, alias_prefix=f"{prefix}_")
    for index, join in enumerate(spec.joins):
        inner.add_join(join.relation, join.alias, join.kind, f"{where}/joins/{index}")
    expression = _parsed(spec.where, f"{where}/where")
    columns = _columns(dataset, inner, expression, f"{where}/where")
    condition = _condition(expression, columns, dialect, f"{where}/where")
    value = None
    if spec.value is not None:
        summed = _parsed(spec.value, f"{where}/value")
        more = _columns(dataset, inner, summed, f"{where}/value")
        value = _number(summed, more, dialect, f"{where}/value")
        columns |= more
    reads = {pair for column in columns.values() for pair in column.reads}
    sources = {source for name, column in columns.items() if not name.startswith(OTHER)
               for source in column.sources}  # fmt: skip
    family = BOOLEAN if spec.result == "exists" else NUMBER
    placeholder = Column(spec.key, sa.null(), family, tuple(sorted(sources)), tuple(sorted(reads)))
    test = ExistsTest(spec.key, inner, condition, spec.result, value, placeholder)
    column = replace(placeholder, sql=test.element({}))
    return replace(test, column=column)


def _columns(
    dataset: Dataset, inner: Dataset, expression: Expression, where: str
) -> dict[str, Column]:
    """The columns of the names `expression` reads: `other.` paths on the other form."""
    columns: dict[str, Column] = {}
    for name in sorted(n for n in references(expression) if not n.startswith("$")):
        if name.startswith(OTHER):
            columns[name] = inner.resolve(name.removeprefix(OTHER), where=where)
        else:
            columns[name] = dataset.resolve(name, where=where)
    return columns


def _number(expression: Expression, columns: Mapping[str, Column], dialect: str, where: str) -> Sql:
    sql = {name: _typed(column) for name, column in columns.items()}
    try:
        kind = check(expression, {name: type_of(column) for name, column in sql.items()})
        if kind.kind not in ("number", "null"):
            raise ExpressionError(f"a sum needs a number, not {kind}", code="expr.type-mismatch")
        return compile_sql(expression, sql, dialect=dialect, now=_CLOCK)
    except ExpressionError as err:
        raise _problem(BAD_EXPR, where, f"{err.code}: {err}") from err


def _check_key(dataset: Dataset, key: str, where: str) -> None:
    taken = (
        key in dataset.exists
        or key in dataset.sources
        or resolve_field(dataset.base.spec, key, dataset.forms) is not None
        or key == OTHER.rstrip(".")
    )
    if taken:
        message = f"exists key {key!r} is already a field, join or test of the dataset"
        raise _problem(DUPLICATE_KEY, where, message)


def _parsed(text: str, where: str) -> Expression:
    try:
        expression = parse(text)
    except ExpressionError as err:
        raise _problem(BAD_EXPR, where, f"{err.code}: {err}") from err
    if _reads_clock(expression.root):
        # The subquery is built once per report; a clock would need it rebuilt per request.
        raise _problem(BAD_EXPR, where, "an exists test cannot read NOW() or TODAY()")
    return expression


def _reads_clock(node: Node) -> bool:
    if isinstance(node, Call) and node.name in ("NOW", "TODAY"):
        return True
    if isinstance(node, Ref) and node.name in ("$now", "$today"):
        return True
    return any(_reads_clock(child) for child in children(node))


def _condition(
    expression: Expression, columns: Mapping[str, Column], dialect: str, where: str
) -> tuple[Sql, ...]:
    """The WHERE conditions of `expression`'s top-level AND terms.

    A term `other.<path> = <this row's value>` becomes SQL `=`: blank never matches (two
    tickets without a device are not "on the same device"), and the other side's index serves
    the lookup, which the null-safe `=` of the expression language (IS NOT DISTINCT FROM) on
    PostgreSQL does not allow.
    """
    sql = {name: _typed(column) for name, column in columns.items()}
    try:
        compile_filter(expression, sql, dialect=dialect, now=_CLOCK)  # the whole: types
        found: list[Sql] = []
        for term in _terms(expression.root):
            part = Expression(expression.text, term, expression.node_count)
            pair = _correlation(term)
            if pair is None:
                found.append(compile_filter(part, sql, dialect=dialect, now=_CLOCK))
                continue
            left, right = (compile_sql(replace(part, root=side), sql, dialect=dialect,
                                       now=_CLOCK) for side in pair)  # fmt: skip
            found.append(left == right)
    except ExpressionError as err:
        raise _problem(BAD_EXPR, where, f"{err.code}: {err}") from err
    return tuple(found)


def _terms(node: Node) -> list[Node]:
    if isinstance(node, Binary) and node.op == "and":
        return _terms(node.left) + _terms(node.right)
    if isinstance(node, Call) and node.name == "AND":
        return [term for arg in node.args for term in _terms(arg)]
    return [node]


def _correlation(node: Node) -> tuple[Node, Node] | None:
    """(other side, this side) of `other.x = value-of-this-row`, else None."""
    if not (isinstance(node, Binary) and node.op == "="):
        return None
    for mine, theirs in ((node.left, node.right), (node.right, node.left)):
        if isinstance(mine, Ref) and mine.name.startswith(OTHER) and not _reads_other(theirs):
            return mine, theirs
    return None


def _reads_other(node: Node) -> bool:
    if isinstance(node, Ref) and node.name.startswith(OTHER):
        return True
    return any(_reads_other(child) for child in children(node))


def _typed(column: Column) -> Sql:
    # the expression compiler reads types from columns; datetimes are aware (rows.py)
    if column.family == DATETIME:
        return sa.type_coerce(column.sql, sa.DateTime(timezone=True))
    return column.sql


def with_exists_scope(
    statement: sa.Select[Any], dataset: Dataset, scopes: Mapping[str, list[Sql]]
) -> sa.Select[Any]:
    """`statement` with each exists subquery rebuilt to hold the actor's read scope of its
    forms (`scopes`: source name -> conditions, as for joins' ON clauses)."""
    rebuilt = {
        test.mark: test.element(scopes)
        for test in dataset.exists.values()
        if any(scopes.get(test.shadow(name)) for name in test.inner.sources)
    }
    if not rebuilt:
        return statement

    def swap(element: Any, **_: Any) -> Any:
        return rebuilt.get(element._annotations.get(_MARK))

    return cast(sa.Select[Any], visitors.replacement_traverse(statement, {}, swap))


def _problem(code: str, path: str, message: str) -> DefinitionError:
    return DefinitionError([Problem(code=code, path=path, message=message)])


__all__ = ["ExistsTest", "add_exists", "with_exists_scope"]
