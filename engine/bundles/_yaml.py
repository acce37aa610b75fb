"""A guarded YAML reader and a canonical YAML writer for definition files.

Reading refuses what PyYAML lets through silently: duplicate mapping keys (it keeps the last),
alias bombs (a few lines that expand to billions of nodes), nesting deep enough to crash the C
composer, and non-text keys. Scalars follow JSON's types: only `true`/`false` are booleans (not
`yes`/`no`/`on`) and dates stay text, so YAML and JSON definitions mean the same thing.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from engine.bundles._pointer import escape_segment
from engine.bundles.limits import BundleLimits
from engine.errors import Problem

_BaseLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR_TAG = "tag:yaml.org,2002:str"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_DROPPED_TAGS = {_BOOL_TAG, "tag:yaml.org,2002:timestamp"}


class _Loader(_BaseLoader):  # type: ignore[misc]
    """Safe loader with JSON-like implicit types."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in _DROPPED_TAGS]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    _BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


class _Rejected(Exception):
    """Internal: stops reading a file at the first problem that makes the rest meaningless."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


def _syntax_problem(err: yaml.YAMLError) -> Problem:
    mark = getattr(err, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    detail = getattr(err, "problem", None) or str(err)
    context = getattr(err, "context", None)
    message = f"YAML syntax error{where}: {detail}" + (f" ({context})" if context else "")
    return Problem("bundle.yaml-syntax", "", message)


def _check_events(text: str, limits: BundleLimits) -> None:
    """Scan the event stream (libyaml parses iteratively) to bound nesting before composing."""
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > limits.max_depth:
                line = event.start_mark.line + 1 if event.start_mark else 0
                raise _Rejected(
                    Problem(
                        "bundle.too-deep",
                        "",
                        f"nesting deeper than {limits.max_depth} levels at line {line}",
                    )
                )
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _expanded_size(node: yaml.Node, memo: dict[int, int], active: set[int], cap: int) -> int:
    """Node count once aliases are expanded, computed without expanding them."""
    key = id(node)
    if key in memo:
        return memo[key]
    if key in active:
        raise _Rejected(
            Problem("bundle.yaml-alias", "", "an alias refers to a node that contains it")
        )
    active.add(key)
    total = 1
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            total += _expanded_size(k, memo, active, cap) + _expanded_size(v, memo, active, cap)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            total += _expanded_size(item, memo, active, cap)
    active.discard(key)
    memo[key] = total
    if total > cap:
        raise _Rejected(
            Problem(
                "bundle.yaml-alias",
                "",
                f"the document expands to more than {cap} nodes",
                hint="anchors and aliases may not multiply the document's size",
            )
        )
    return total


def _check_keys(node: yaml.Node, pointer: str, problems: list[Problem]) -> None:
    """Report duplicate and non-scalar keys; make scalar keys text, as JSON keys are."""
    if isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _check_keys(item, f"{pointer}/{index}", problems)
        return
    if not isinstance(node, yaml.MappingNode):
        return
    seen: dict[str, int] = {}
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            problems.append(_key_problem("bundle.yaml-key-type", pointer, key_node, None))
            continue
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key_node.tag = _STR_TAG
        name = str(key_node.value)
        child = f"{pointer}/{escape_segment(name)}"
        if name in seen:
            problems.append(_key_problem("bundle.duplicate-key", child, key_node, seen[name]))
        seen.setdefault(name, key_node.start_mark.line + 1)
        _check_keys(value_node, child, problems)


def _key_problem(code: str, path: str, node: yaml.Node, first_line: int | None) -> Problem:
    line = node.start_mark.line + 1
    column = node.start_mark.column + 1
    if code == "bundle.duplicate-key":
        return Problem(
            code,
            path,
            f"key {node.value!r} at line {line}, column {column} repeats the key on line "
            f"{first_line}",
            hint="remove one of them: YAML would silently keep only the last",
        )
    return Problem(code, path, f"mapping key at line {line}, column {column} is not a scalar")


def parse_yaml(text: str, limits: BundleLimits) -> tuple[Any, list[Problem]]:
    """Parse one YAML document; return its value and the problems found (value None if fatal)."""
    try:
        _check_events(text, limits)
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None, []
            _expanded_size(node, {}, set(), limits.max_yaml_nodes)
            problems: list[Problem] = []
            _check_keys(node, "", problems)
            if problems:
                return None, problems
            return loader.construct_document(node), []
        finally:
            loader.dispose()
    except _Rejected as rejected:
        return None, [rejected.problem]
    except yaml.YAMLError as err:
        return None, [_syntax_problem(err)]


class _Dumper(yaml.SafeDumper):
    """Block style, sequences indented under their key, multi-line text as literal blocks.

    The pure-Python dumper is used because the C emitter ignores `increase_indent`.
    """

    def ignore_aliases(self, data: Any) -> bool:
        return True

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> Any:
        return super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None  # the emitter falls back to quotes when needed
    return dumper.represent_scalar(_STR_TAG, value, style=style)


_Dumper.add_representer(str, _represent_str)


def dump_yaml(value: Any) -> str:
    """Canonical YAML text: stable, unicode kept, never wrapped, no anchors."""
    return str(
        yaml.dump(
            value,
            Dumper=_Dumper,
            allow_unicode=True,
            sort_keys=False,
            default_flow_style=False,
            width=1 << 30,
            indent=2,
        )
    )


__all__ = ["dump_yaml", "parse_yaml"]
