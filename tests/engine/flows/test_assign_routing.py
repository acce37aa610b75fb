"""match_rule and pick_assignee on a small app of their own (cases, rules, groups, people): rule
order and criteria, exclusions with reasons, the ranking, the pool fallback, publish checks,
and fair assignment under concurrency on PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from engine.flows.runtime_env import FlowEnvironment, use_environment
from engine.storage.form_records import StoredRecord
from engine.storage.uow import UnitOfWork
from tests.engine.flows.conftest import T0, RecordingTasks

FILES = {
    "bundle.yaml": "key: ra\nname: Routing\nversion: 1.0.0\nengine: '>=0.1,<1.0'\n",
    "forms/grp.yaml": """
key: grp
label: Group
fields:
  - {key: code, type: text, required: true}
""",
    "forms/case.yaml": """
key: case
label: Case
fields:
  - {key: subject, type: text, required: true}
  - {key: kind, type: select, options: [{key: repair, label: R}, {key: question, label: Q}]}
  - {key: line, type: select, options: [{key: pump, label: P}, {key: valve, label: V}]}
  - {key: grp, type: relation, form: grp}
  - {key: prio, type: text}
  - {key: assignee, type: user}
  - {key: pooled, type: boolean}
  - key: status
    type: select
    default: open
    options: [{key: open, label: Open}, {key: closed, label: Closed}]
""",
    "forms/rule.yaml": """
key: rule
label: Rule
fields:
  - {key: seq, type: number, required: true}
  - {key: active, type: boolean, default: true}
  - key: match_kind
    type: multiselect
    options: [{key: repair, label: R}, {key: question, label: Q}]
  - key: match_line
    type: multiselect
    options: [{key: pump, label: P}, {key: valve, label: V}]
  - {key: words, type: text}
  - {key: target, type: relation, form: grp, required: true}
  - {key: prio, type: text}
  - key: skills
    type: subform
    fields:
      - {key: skill, type: text, required: true}
      - {key: min_level, type: number, required: true}
""",
    "forms/person.yaml": """
key: person
label: Person
fields:
  - {key: user, type: user, required: true}
  - {key: grps, type: relation, form: grp, multiple: true}
  - key: state
    type: select
    default: in
    options: [{key: in, label: In}, {key: out, label: Out}]
  - key: skills
    type: subform
    fields:
      - {key: skill, type: text, required: true}
      - {key: level, type: number, required: true}
  - {key: cap, type: number}
  - {key: stamp, type: datetime}
""",
    "flows/route.yaml": """
key: route
label: Route
form: case
trigger: {type: record_created}
nodes:
  - {key: start, type: start}
  - key: rule
    type: action
    actions:
      - type: match_rule
        form: rule
        order_by: seq
        active_field: active
        criteria: {match_kind: kind, match_line: line}
        keywords: {field: words, text: subject}
        set: {grp: $rule.target, prio: 'COALESCE($rule.prio, "normal")'}
  - key: pick
    type: action
    actions:
      - type: pick_assignee
        directory: person
        user_field: user
        load: {form: case, user_field: assignee, where: status = "open"}
        filters:
          - {test: includes, reason: not_member, field: grps, value: grp}
          - {test: equals, reason: away, field: state, value: '"in"'}
          - {test: skills, reason: unskilled, field: skills, value: $vars.rule.skills}
          - {test: below, reason: full, field: $load, limit_field: cap, default_limit: 9}
        rank:
          - {by: $load}
          - {by: $skill_level, order: desc}
          - {by: stamp}
        stamp_field: stamp
        set: {assignee: $assignee, pooled: 'false'}
        otherwise: {pooled: 'true'}
        pool_ignores: [full]
  - {key: end, type: end}
edges:
  - {from: start, to: rule}
  - {from: rule, to: pick}
  - {from: pick, to: end}
""",
}


class Kit:
    def __init__(self, engine: sa.Engine, env: FlowEnvironment, make_user: Any) -> None:
        self.engine, self.env, self.make_user = engine, env, make_user

    def write(self, form: str, at: Any = T0, record_id: int | None = None, **values: Any) -> Any:
        from engine.forms.record_writer import RecordWriter

        with UnitOfWork(self.engine, clock=lambda: at) as uow:
            writer = RecordWriter(uow, self.env.kit, source="api", depth=0)
            if record_id is None:
                found = writer.create("ra", form, values, actor=None)
            else:
                found = writer.update("ra", form, record_id, values, actor=None)
            uow.commit()
        return found

    def get(self, form: str, record_id: int) -> StoredRecord:
        from engine.forms.record_writer import RecordWriter

        with UnitOfWork(self.engine) as uow:
            return RecordWriter(uow, self.env.kit, source="api", depth=0).get("ra", form, record_id)

    def history(self, case_id: int) -> dict[str, Any]:
        """The pick step's summary of the case's instance."""
        from engine.flows.instances import FlowStore

        with UnitOfWork(self.engine) as uow:
            store = FlowStore(uow.conn)
            [instance] = store.instances(app="ra", record_id=case_id)
            assert instance.status == "completed", instance.error_detail
            rows = store.history([instance.id])
        [acted] = [h for h in rows if h.node == "pick" and h.event == "acted"]
        return dict(acted.detail["changes"][0])

    def person(self, name: str, grp: int, level: int, **values: Any) -> int:
        user = self.make_user(name, password=None)
        skills = [{"skill": "pump", "level": level}]
        self.write("person", user=user.id, grps=[grp], skills=skills, **values)
        return int(user.id)


@pytest.fixture
def kit(migrated_engine: sa.Engine, tmp_path: Path, make_user: Any) -> Iterator[Kit]:
    from engine.bundles import load_bundle
    from engine.installer import import_bundle

    for name, text in FILES.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text.lstrip(), encoding="utf-8")
    import_bundle(db=migrated_engine, bundle=load_bundle(tmp_path))
    env = FlowEnvironment(tasks=RecordingTasks())
    use_environment(env)
    yield Kit(migrated_engine, env, make_user)
    use_environment(None)


def _rules(kit: Kit) -> dict[str, int]:
    groups = {c: kit.write("grp", code=c).id for c in ("any", "pumps", "repairs", "words")}
    kit.write("rule", seq=99, target=groups["any"])
    kit.write("rule", seq=30, match_kind=["repair", "question"], target=groups["repairs"])
    kit.write("rule", seq=20, match_line=["pump"], match_kind=["repair"], target=groups["pumps"],
              prio="high", skills=[{"skill": "pump", "min_level": 2}])  # fmt: skip
    kit.write("rule", seq=10, words="Leak, 漏水", target=groups["words"])
    kit.write("rule", seq=5, active=False, target=groups["any"])  # inactive: never matches
    return groups


def test_the_first_matching_active_rule_wins(kit: Kit) -> None:
    groups = _rules(kit)
    cases = {
        "pump repair": dict(subject="noise", kind="repair", line="pump"),
        "valve repair": dict(subject="noise", kind="repair", line="valve"),
        "keyword": dict(subject="big LEAK here", kind="repair", line="pump"),
        "chinese keyword": dict(subject="设备漏水了", kind="question"),
        "question": dict(subject="how?", kind="question"),
        "nothing": dict(subject="hello"),
    }
    found = {name: kit.write("case", **values) for name, values in cases.items()}
    got = {name: kit.get("case", c.id).values for name, c in found.items()}
    assert {n: v["grp"] for n, v in got.items()} == {
        "pump repair": groups["pumps"],
        "valve repair": groups["repairs"],  # criteria are ANDed: line valve fails rule 20
        "keyword": groups["words"],  # case-insensitive substring
        "chinese keyword": groups["words"],
        "question": groups["repairs"],  # values of one criterion are ORed
        "nothing": groups["any"],  # empty criteria match anything
    }
    assert got["pump repair"]["prio"] == "high" and got["nothing"]["prio"] == "normal"


def test_exclusions_have_reasons_and_the_ranking_is_load_level_then_stamp(kit: Kit) -> None:
    groups = _rules(kit)
    pumps = groups["pumps"]
    ann = kit.person("ann", pumps, 3)
    bob = kit.person("bob", pumps, 4, stamp=T0 - timedelta(hours=1))
    cat = kit.person("cat", pumps, 4)  # never assigned: ranks before bob on the stamp
    kit.person("dan", pumps, 5, state="out")
    kit.person("eve", pumps, 1)
    kit.person("fay", groups["any"], 5)
    kit.person("gus", pumps, 5, cap=0)
    old = kit.write("case", subject="old")
    kit.write("case", record_id=old.id, assignee=ann)  # ann's load is 1
    case = kit.write("case", T0 + timedelta(minutes=1), subject="x", kind="repair", line="pump")
    summary = kit.history(case.id)
    reasons = {e["username"]: (e["reason"], e["detail"]) for e in summary["excluded"]}
    assert reasons == {
        "dan": ("away", "state is out, not in"),
        "eve": ("unskilled", "pump 1 < 2"),
        "fay": ("not_member", f"grps lacks {pumps}"),
        "gus": ("full", "$load 0 >= 0"),
    }
    assert [r["username"] for r in summary["ranked"]] == ["cat", "bob", "ann"]
    assert kit.get("case", case.id).values["assignee"] == cat
    stamp = [p for p in _people(kit) if p.values["user"] == cat][0].values["stamp"]
    assert stamp is not None
    second = kit.write("case", T0 + timedelta(minutes=2), subject="y", kind="repair", line="pump")
    assert kit.get("case", second.id).values["assignee"] == bob  # cat has load 1 now
    third = kit.write("case", T0 + timedelta(minutes=3), subject="z", kind="repair", line="pump")
    # all at load 1; ann has the lower level; cat was assigned less recently than bob
    assert [r["username"] for r in kit.history(third.id)["ranked"]] == ["cat", "bob", "ann"]


def test_nobody_passing_writes_otherwise_and_lists_who_may_claim(kit: Kit) -> None:
    groups = _rules(kit)
    kit.person("hal", groups["pumps"], 3, cap=0)  # only full: may claim from the pool
    kit.person("ivy", groups["pumps"], 3, state="out")
    case = kit.write("case", subject="x", kind="repair", line="pump")
    values = kit.get("case", case.id).values
    assert (values["assignee"], values["pooled"]) == (None, True)
    summary = kit.history(case.id)
    hal = [e["user"] for e in summary["excluded"] if e["username"] == "hal"]
    assert summary["assignee"] is None and summary["pool"] == hal


def test_a_disabled_user_is_excluded(kit: Kit, uow_factory: Callable[[], UnitOfWork]) -> None:
    from engine.storage.tables import users

    groups = _rules(kit)
    jon = kit.person("jon", groups["pumps"], 3)
    with uow_factory() as uow:
        uow.conn.execute(sa.update(users).where(users.c.id == jon).values(status="disabled"))
        uow.commit()
    case = kit.write("case", subject="x", kind="repair", line="pump")
    [excluded] = kit.history(case.id)["excluded"]
    assert (excluded["username"], excluded["reason"]) == ("jon", "inactive_user")


def _people(kit: Kit) -> list[StoredRecord]:
    with UnitOfWork(kit.engine) as uow:
        _definition, store = kit.env.kit.open(uow, "ra", "person")
        ids = list(uow.conn.execute(sa.select(store.layout.main.c.id)).scalars())
        return store.get_many(ids=ids)


def test_concurrent_assignments_pick_different_people(kit: Kit, backend: str) -> None:
    if backend != "postgresql":
        pytest.skip("SQLite runs one writer at a time: no concurrent assignment to race")
    groups = _rules(kit)
    people = {kit.person(f"p{i}", groups["pumps"], 3) for i in range(4)}
    barrier = threading.Barrier(4)
    made: list[int] = []
    errors: list[BaseException] = []

    def create(n: int) -> None:
        try:
            barrier.wait(timeout=10)
            made.append(kit.write("case", subject=f"c{n}", kind="repair", line="pump").id)
        except BaseException as err:  # reported below, in the test's thread
            errors.append(err)

    threads = [threading.Thread(target=create, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assignees = [kit.get("case", case_id).values["assignee"] for case_id in made]
    # without the row lock every case would see the same loads and stamps and pick the same one
    assert sorted(assignees) == sorted(people)


def test_a_rules_form_changed_after_publish_is_a_clear_run_time_error(kit: Kit) -> None:
    import yaml

    from engine.flows.instances import FlowStore

    text = FILES["flows/route.yaml"].replace("order_by: seq", "order_by: priority_order")
    body = yaml.safe_load(text)
    with UnitOfWork(kit.engine) as uow:  # published without knowing the rule form's fields
        uow.definitions.publish(
            app="ra", kind="flows", key="route", body=body, digest="changed", actor=None
        )
        uow.commit()
    case = kit.write("case", subject="x")
    with UnitOfWork(kit.engine) as uow:
        [instance] = FlowStore(uow.conn).instances(app="ra", record_id=case.id)
    assert (instance.status, instance.error_code) == ("error", "flow.unknown-field")
    assert instance.error_detail and "priority_order" in instance.error_detail["message"]
