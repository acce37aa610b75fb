"""`compile_flow`: a checked flow graph with its expressions parsed and its edges indexed.

Every problem is collected (checks.py) and raised at once as a `DefinitionError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from engine.errors import DefinitionError
from engine.expr import Expression, parse, references
from engine.flows.checks import FlowContext, check_flow
from engine.flows.spec import ConditionNode, FlowSpec, JoinNode, NodeSpec

SPLIT_TYPES = frozenset({"parallel_split"})


@dataclass(frozen=True, slots=True)
class CompiledEdge:
    """A way out of a node: an edge, or a branch of a condition node."""

    source: str
    to: str
    condition: Expression | None = None
    outcome: str | None = None
    branch: str | None = None
    default: bool = False

    @property
    def is_guarded(self) -> bool:
        return self.condition is not None or self.outcome is not None


@dataclass(frozen=True, slots=True)
class CompiledFlow:
    """A flow version ready to run: nodes by key, ways out and in, and parsed expressions."""

    spec: FlowSpec
    nodes: Mapping[str, NodeSpec]
    outgoing: Mapping[str, tuple[CompiledEdge, ...]]
    incoming: Mapping[str, tuple[str, ...]]
    # Parsed expressions by the JSON pointer of their text in the definition.
    expressions: Mapping[str, Expression]
    # For each join: the nodes from which it can be reached (tokens there are cancelled when
    # an `any`/`count` join fires).
    upstream: Mapping[str, frozenset[str]]
    paths: Mapping[str, str]
    # `relation.field` names the expressions read: loaded with the record when it runs
    related_paths: frozenset[str] = frozenset()

    @property
    def key(self) -> str:
        return self.spec.key

    @property
    def start(self) -> str:
        return next(n.key for n in self.spec.nodes if n.type == "start")

    def node(self, key: str) -> NodeSpec:
        return self.nodes[key]

    def expr(self, path: str) -> Expression:
        return self.expressions[path]

    def join_needs(self, join: JoinNode) -> int:
        """How many distinct incoming branches must arrive before the join fires."""
        if join.mode == "any":
            return 1
        if join.mode == "count":
            return join.count or 1
        return len(self.incoming.get(join.key, ()))


def compile_flow(spec: FlowSpec, *, ctx: FlowContext | None = None) -> CompiledFlow:
    """Check `spec` (graph; expressions and names as far as `ctx` knows them) and index it.

    Raises:
        DefinitionError: every problem found, with paths like `/nodes/3/branches/0/expr`.
    """
    problems, texts = check_flow(spec, ctx)
    if problems:
        raise DefinitionError(problems)
    expressions = {path: parse(text) for path, text in texts.items()}
    paths = {node.key: f"/nodes/{i}" for i, node in enumerate(spec.nodes)}
    outgoing = _outgoing(spec, expressions, paths)
    incoming: dict[str, list[str]] = {}
    for edges in outgoing.values():
        for edge in edges:
            incoming.setdefault(edge.to, []).append(edge.source)
    nodes = {node.key: node for node in spec.nodes}
    upstream = {key: _reaching(key, incoming) for key, node in nodes.items() if node.type == "join"}
    return CompiledFlow(
        spec=spec,
        nodes=MappingProxyType(nodes),
        outgoing=MappingProxyType(outgoing),
        incoming=MappingProxyType({k: tuple(v) for k, v in incoming.items()}),
        expressions=MappingProxyType(expressions),
        upstream=MappingProxyType(upstream),
        paths=MappingProxyType(paths),
        related_paths=frozenset(
            name
            for expression in expressions.values()
            for name in references(expression)
            if "." in name and not name.startswith("$")
        ),
    )


def _outgoing(
    spec: FlowSpec, expressions: Mapping[str, Expression], paths: Mapping[str, str]
) -> dict[str, tuple[CompiledEdge, ...]]:
    found: dict[str, list[CompiledEdge]] = {node.key: [] for node in spec.nodes}
    for node in spec.nodes:
        if isinstance(node, ConditionNode):
            for b, branch in enumerate(node.branches):
                path = f"{paths[node.key]}/branches/{b}/expr"
                found[node.key].append(
                    CompiledEdge(
                        source=node.key,
                        to=branch.to,
                        condition=expressions.get(path),
                        branch=branch.key,
                        default=branch.default,
                    )
                )
    for e, edge in enumerate(spec.edges):
        if edge.from_ not in found:
            continue
        found[edge.from_].append(
            CompiledEdge(
                source=edge.from_,
                to=edge.to,
                condition=expressions.get(f"/edges/{e}/condition"),
                outcome=edge.outcome,
            )
        )
    return {key: tuple(edges) for key, edges in found.items()}


def _reaching(target: str, incoming: Mapping[str, list[str]]) -> frozenset[str]:
    seen: set[str] = set()
    stack = list(incoming.get(target, ()))
    while stack:
        key = stack.pop()
        if key in seen or key == target:
            continue
        seen.add(key)
        stack.extend(incoming.get(key, ()))
    return frozenset(seen)


__all__ = ["SPLIT_TYPES", "CompiledEdge", "CompiledFlow", "compile_flow"]
