"""Static checks of a flow definition: the graph, the expressions and the names it refers to.

`check_flow` returns every problem found (never stops at the first) and the expression texts
by JSON pointer, so the compiler parses each once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from engine.errors import Problem
from engine.expr import ExpressionError, ExprType, check, parse, to_problem
from engine.flows.spec import (
    ActionNode,
    AssigneeRule,
    ConditionNode,
    CreateRecord,
    DeleteRecord,
    FlowSpec,
    JoinNode,
    Notify,
    SetFields,
    SubflowNode,
    TimerNode,
    UpdateRecord,
    UserTaskNode,
    WaitNode,
)

# Names every flow expression may use besides the record's fields (types as catalogs spell them).
FLOW_VARIABLES = {
    "$initiator": "number",
    "$outcome": "text",
    "$instance": "number",
    "$claimant": "number",  # only set while a pool task's `on_claim` values are computed
}
BOOLEAN = ExprType.BOOLEAN
MOMENT = ExprType.DATETIME  # accepts dates too


@dataclass(frozen=True, slots=True)
class FlowContext:
    """What the checks may know beyond the file: each is None when unknown (then unchecked)."""

    catalog: Mapping[str, ExprType] | None = None  # the flow form's expression names
    forms: frozenset[str] | None = None
    flows: frozenset[str] | None = None
    roles: frozenset[str] | None = None
    users: frozenset[str] | None = None
    departments: frozenset[str] | None = None
    # field keys of the app's forms, for actions that read other forms (assign_checks.py)
    form_fields: Mapping[str, frozenset[str]] | None = None


@dataclass
class _Run:
    spec: FlowSpec
    ctx: FlowContext
    problems: list[Problem] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)

    def report(self, code: str, path: str, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(code=code, path=path, message=message, hint=hint))

    def expr(self, text: str | None, path: str, expected: ExprType | None) -> None:
        if text is None:
            return
        self.texts[path] = text
        catalog = self.ctx.catalog
        try:
            parsed = parse(text)
            actual = check(parsed, catalog) if catalog is not None else None
        except ExpressionError as err:
            self.problems.append(to_problem(err, path=path))
            return
        if actual is not None and expected is not None and not expected.accepts(actual):
            self.report("flow.expression-type", path, f"gives {actual}, expected {expected}")


def check_flow(
    spec: FlowSpec, ctx: FlowContext | None = None
) -> tuple[list[Problem], dict[str, str]]:
    """All problems of `spec`, and its expression texts by JSON pointer."""
    run = _Run(spec=spec, ctx=ctx or FlowContext())
    keys = _node_keys(run)
    _check_edges(run, keys)
    if not any(p.code in ("flow.unknown-node", "flow.start-count") for p in run.problems):
        _check_graph(run)
    _check_trigger(run)
    for i, node in enumerate(spec.nodes):
        _check_node(run, node, f"/nodes/{i}")
    return run.problems, run.texts


def _node_keys(run: _Run) -> set[str]:
    keys: set[str] = set()
    for i, node in enumerate(run.spec.nodes):
        if node.key in keys:
            run.report("flow.duplicate-node", f"/nodes/{i}/key", f"node {node.key!r} repeats")
        keys.add(node.key)
    starts = [i for i, n in enumerate(run.spec.nodes) if n.type == "start"]
    if len(starts) != 1:
        run.report("flow.start-count", "/nodes", f"a flow has one start node, not {len(starts)}")
    return keys


def _links(spec: FlowSpec) -> Iterator[tuple[str, str, str]]:
    """(from, to, path of `to`) for every edge and every condition branch."""
    for i, node in enumerate(spec.nodes):
        if isinstance(node, ConditionNode):
            for b, branch in enumerate(node.branches):
                yield node.key, branch.to, f"/nodes/{i}/branches/{b}/to"
        timeout = getattr(node, "timeout", None)
        if timeout is not None and timeout.goto is not None:
            yield node.key, timeout.goto, f"/nodes/{i}/timeout/goto"
    for e, edge in enumerate(spec.edges):
        yield edge.from_, edge.to, f"/edges/{e}/to"


def _check_edges(run: _Run, keys: set[str]) -> None:
    for e, edge in enumerate(run.spec.edges):
        if edge.from_ not in keys:
            run.report("flow.unknown-node", f"/edges/{e}/from", f"no node {edge.from_!r}")
        run.expr(edge.condition, f"/edges/{e}/condition", BOOLEAN)
    for _source, target, path in _links(run.spec):
        if target not in keys:
            run.report("flow.unknown-node", path, f"no node {target!r}")


def _check_graph(run: _Run) -> None:
    spec = run.spec
    forward: dict[str, set[str]] = {n.key: set() for n in spec.nodes}
    backward: dict[str, set[str]] = {n.key: set() for n in spec.nodes}
    for source, target, _path in _links(spec):
        forward[source].add(target)
        backward[target].add(source)
    start = next(n.key for n in spec.nodes if n.type == "start")
    reached = _closure({start}, forward)
    ends = {n.key for n in spec.nodes if n.type == "end"}
    finishing = _closure(ends, backward)
    splits = {n.key for n in spec.nodes if n.type == "parallel_split"}
    for i, node in enumerate(spec.nodes):
        path = f"/nodes/{i}"
        if node.key not in reached:
            run.report("flow.unreachable", path, f"node {node.key!r} cannot be reached")
        elif node.key not in finishing:
            run.report("flow.dead-end", path, f"no path from {node.key!r} reaches an end node")
        if isinstance(node, JoinNode):
            _check_join(run, node, path, len(backward[node.key]), splits, backward)


def _check_join(
    run: _Run,
    node: JoinNode,
    path: str,
    fed_by: int,
    splits: set[str],
    backward: Mapping[str, set[str]],
) -> None:
    needs = {"any": 1, "count": node.count or 1, "all": fed_by}[node.mode]
    if needs > fed_by:
        run.report(
            "flow.join-impossible",
            path,
            f"join {node.key!r} waits for {needs} branches but only {fed_by} lead to it",
        )
    elif needs > 1 and not (_closure(set(backward[node.key]), backward) & splits):
        run.report(
            "flow.join-impossible",
            path,
            f"join {node.key!r} needs {needs} branches but no parallel split feeds it",
            hint="branches of a condition are exclusive: only one of them ever arrives",
        )


def _closure(seeds: set[str], links: Mapping[str, set[str]]) -> set[str]:
    seen = set(seeds)
    stack = list(seeds)
    while stack:
        for nxt in links.get(stack.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def _check_trigger(run: _Run) -> None:
    trigger = run.spec.trigger
    run.expr(trigger.condition, "/trigger/condition", BOOLEAN)
    if trigger.form is not None:
        _check_form(run, trigger.form, "/trigger/form")
    if trigger.type == "date_reached" and trigger.date_field is None:
        run.report("flow.missing-option", "/trigger", "date_reached needs date_field")
    catalog = run.ctx.catalog
    for f, key in enumerate(trigger.fields):
        if catalog is not None and key not in catalog:
            run.report("flow.unknown-field", f"/trigger/fields/{f}", f"no field {key!r}")
    if trigger.date_field is not None and catalog is not None:
        found = catalog.get(trigger.date_field)
        if found is None or not found.is_temporal:
            run.report("flow.unknown-field", "/trigger/date_field", "not a date field")


def _check_form(run: _Run, form: str, path: str) -> None:
    forms = run.ctx.forms
    if forms is not None and "." not in form and form not in forms:
        run.report("flow.unknown-form", path, f"no form {form!r}")


def _check_node(run: _Run, node: object, path: str) -> None:
    if isinstance(node, ConditionNode):
        for b, branch in enumerate(node.branches):
            run.expr(branch.expr, f"{path}/branches/{b}/expr", BOOLEAN)
            if branch.expr is None and not branch.default:
                run.report("flow.branch-without-expr", f"{path}/branches/{b}", "give expr")
        if sum(b.default for b in node.branches) != 1:
            run.report(
                "flow.no-default-branch",
                f"{path}/branches",
                "a condition needs exactly one default branch",
                hint="add `default: true` to the branch taken when no expression holds",
            )
    elif isinstance(node, ActionNode):
        for a, action in enumerate(node.actions):
            _check_action(run, action, f"{path}/actions/{a}")
    elif isinstance(node, TimerNode):
        run.expr(node.until, f"{path}/until", MOMENT)
        if node.business_time and (node.delay is None or node.calendar is None):
            run.report(
                "flow.missing-option",
                f"{path}/calendar",
                "a business-time timer needs a delay and a calendar",
            )
    elif isinstance(node, WaitNode):
        run.expr(node.condition, f"{path}/condition", BOOLEAN)
    elif isinstance(node, SubflowNode):
        flows = run.ctx.flows
        if flows is not None and node.flow not in flows:
            run.report("flow.unknown-flow", f"{path}/flow", f"no flow {node.flow!r}")
        for key, text in node.inputs.items():
            run.expr(text, f"{path}/inputs/{key}", None)
    elif isinstance(node, UserTaskNode):
        # With `if_empty: admin` (the default) or a fallback rule an administrator or that rule
        # still gets the task, so an unknown key is a problem only when nobody else would.
        fallback = node.if_empty
        strict = fallback in ("fail", "skip")
        for r, rule in enumerate(node.assignees):
            _check_rule(run, rule, f"{path}/assignees/{r}", strict=strict)
        if isinstance(fallback, AssigneeRule):
            _check_rule(run, fallback, f"{path}/if_empty", strict=True)
        _check_values(run, node.on_claim, f"{path}/on_claim")


def _check_values(run: _Run, values: Mapping[str, str], path: str) -> None:
    """Values written to the flow's record: known fields, expressions of the field's type."""
    catalog = run.ctx.catalog
    for key, text in values.items():
        expected = None if catalog is None else catalog.get(key)
        if catalog is not None and expected is None:
            run.report("flow.unknown-field", f"{path}/{key}", f"no field {key!r}")
        run.expr(text, f"{path}/{key}", expected)


def _check_action(run: _Run, action: object, path: str) -> None:
    if isinstance(action, SetFields):
        _check_values(run, action.values, f"{path}/values")
    elif isinstance(action, CreateRecord | UpdateRecord | DeleteRecord):
        _check_form(run, action.form, f"{path}/form")
        for key, text in getattr(action, "values", {}).items():
            run.expr(text, f"{path}/values/{key}", None)
        if not isinstance(action, CreateRecord):
            _parse_only(run, action.where, f"{path}/where")
    elif isinstance(action, Notify):
        for r, rule in enumerate(action.to):
            _check_rule(run, rule, f"{path}/to/{r}")
    else:
        from engine.flows.assign_checks import check_assign_action
        from engine.public.answer_links import check_answer_link

        check_assign_action(run, action, path)
        check_answer_link(run, action, path)


def _parse_only(run: _Run, text: str, path: str) -> None:
    """`where` runs against another form's records: only its syntax is checked here."""
    run.texts[path] = text
    try:
        parse(text)
    except ExpressionError as err:
        run.problems.append(to_problem(err, path=path))


def _check_rule(run: _Run, rule: AssigneeRule, path: str, *, strict: bool = True) -> None:
    known = {
        "role": run.ctx.roles,
        "user": run.ctx.users,
        "department": run.ctx.departments,
        "department_head": run.ctx.departments,
    }.get(rule.type)
    if rule.type in ("user", "role", "department", "field", "expr") and not rule.value:
        run.report("flow.no-assignee", f"{path}/value", f"a {rule.type} rule needs a value")
    elif (
        strict
        and known is not None
        and rule.value
        and "." not in rule.value
        and rule.value not in known
    ):
        run.report(
            "flow.no-assignee", f"{path}/value", f"no {rule.type} {rule.value!r}: nobody to assign"
        )
    if rule.type == "field" and rule.value and run.ctx.catalog is not None:
        if rule.value not in run.ctx.catalog:
            run.report("flow.unknown-field", f"{path}/value", f"no field {rule.value!r}")
    if rule.type == "expr" and rule.value:
        run.expr(rule.value, f"{path}/value", None)
    if rule.candidates is not None:
        _parse_only(run, rule.candidates, f"{path}/candidates")


__all__ = ["FLOW_VARIABLES", "FlowContext", "check_flow"]
