"""Internal users and the routing masters (AFTERSALES §1, §2.8, §5 "people"): users with
their roles through the identity service, the seeded teams and routing rules of `data/` with
real managers, and one `staff` row per user with teams, supervisor, skills and regions."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import yaml

from demo.aftersales.catalog import GIVEN, PLACES, REGIONS, SURNAMES
from demo.writer import FormWriter
from engine.identity.accounts import create_user, grant_role
from engine.identity.sessions import SignInPolicy
from engine.settings import Settings

APP = "aftersales"
DESK_TEAMS = [
    "SERVICE-DESK",
    "TS-COMPRESSOR",
    "TS-PURIFIER",
    "TS-CONTROLLER",
    "VIP-DESK",
    "PRESALES",
    "CMP-DESK",
]
LINE_SKILL = {"compressor": "compressor", "purifier": "purifier", "controller": "controller_fw"}


@dataclass
class Person:
    user_id: int
    username: str
    name: str
    role: str
    teams: list[str] = field(default_factory=list)
    region: str | None = None
    supervisor: int | None = None


@dataclass
class People:
    """Who is who, by username, and the team ids by code."""

    by_username: dict[str, Person]
    teams: dict[str, int]
    team_members: dict[str, list[Person]]
    rules: list[dict[str, Any]]  # the routing rules as loaded (target_team as a code)

    def of_role(self, role: str) -> list[Person]:
        return [p for p in self.by_username.values() if p.role == role]


def chinese_name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + rng.choice(GIVEN)


def _users(
    writer: FormWriter, rng: random.Random, agents: int, engineers: int, team_codes: list[str]
) -> list[Person]:
    plan: list[tuple[str, str]] = [
        ("director", "manager"),
        ("exec01", "executive"),
        ("quality01", "product"),
        ("pm01", "product"),
        ("pm02", "product"),
        ("dispatch01", "dispatcher"),
    ]
    plan += [(f"mgr-{code.lower()}", "manager") for code in team_codes]
    plan += [(f"a{n:02d}", "agent") for n in range(1, agents + 1)]
    plan += [(f"e{n:02d}", "engineer") for n in range(1, engineers + 1)]
    plan += [(f"wh{n:02d}", "warehouse") for n in range(1, 10)]
    policy = SignInPolicy.from_settings(Settings()).passwords
    people = []
    for username, role in plan:
        name = chinese_name(rng)
        user = create_user(
            uow=writer.uow,
            actor=None,
            username=f"demo-{username}",
            display_name=name,
            policy=policy,
        )
        grant_role(uow=writer.uow, actor=None, app=APP, role=role, user_id=user.id)
        people.append(Person(user.id, username, name, role))
    return people


def _seed(writer: FormWriter, path: str) -> list[dict[str, Any]]:
    content = writer.uow.bundle_files.get(app=APP, path=path).content or b""
    return list(yaml.safe_load(content)["records"])


def load_people(writer: FormWriter, rng: random.Random, *, tickets: int) -> People:
    teams = _seed(writer, "data/teams.yaml")
    codes = [t["code"] for t in teams]
    agents, engineers = max(8, tickets // 10_000), max(7, tickets // 12_000)
    people = _users(writer, rng, agents, engineers, codes)
    by = {p.username: p for p in people}
    director = by["director"]
    for p in people:  # managers report to the director; everyone else to a team manager below
        p.supervisor = None if p is director else director.user_id
    team_rows = [
        {
            **t,
            "manager": by[f"mgr-{t['code'].lower()}"].user_id,
            "director": director.user_id,
            "dispatcher": by["dispatch01"].user_id,
            "pool_timeout_min": 30,
        }
        for t in teams
    ]
    team_ids = dict(zip(codes, writer.insert("team", team_rows), strict=True))
    members: dict[str, list[Person]] = {code: [] for code in codes}
    for n, agent in enumerate(p for p in people if p.role == "agent"):
        agent.teams = [DESK_TEAMS[n % len(DESK_TEAMS)], DESK_TEAMS[(n + 3) % len(DESK_TEAMS)]]
    regions = list(REGIONS)
    for n, engineer in enumerate(p for p in people if p.role == "engineer"):
        engineer.region = regions[n % len(regions)]
        engineer.teams = [f"FIELD-{engineer.region.upper()}"]
    for p in people:
        for code in p.teams:
            members[code].append(p)
            p.supervisor = by[f"mgr-{code.lower()}"].user_id
    rules = _seed(writer, "data/routing_rules.yaml")
    writer.insert(
        "routing_rule",
        [
            {
                **r,
                "target_team": team_ids[r["target_team"]],
                "active": True,
                "strategy": r.get("strategy", "load_balance"),
            }
            for r in rules
        ],
    )
    return People(by, team_ids, members, rules)


def staff_rows(people: People, vans: dict[str, int], rng: random.Random) -> list[dict[str, Any]]:
    """One staff row per demo user (vans: engineer username → van warehouse id)."""
    rows = []
    for p in people.by_username.values():
        row: dict[str, Any] = {
            "user": p.user_id,
            "display_name": p.name,
            "supervisor": p.supervisor,
            "teams": [people.teams[c] for c in p.teams],
            "availability": "available",
            "calendar": "cn_8x5",
            "max_open_tickets": 25,
            "max_visits_per_day": 6,
        }
        if p.role == "agent":
            row["skills"] = [{"skill": s, "level": rng.randint(2, 4)} for s in LINE_SKILL.values()]
        if p.role == "engineer" and p.region is not None:
            _, _, lng, lat = PLACES[p.region][0]
            row.update(
                regions=[p.region],
                van_warehouse=vans.get(p.username),
                home_location={"lng": lng, "lat": lat, "accuracy": 50.0},
                skills=[
                    {"skill": s, "level": rng.randint(2, 5)}
                    for s in (*LINE_SKILL.values(), "electrical", "installation")
                ],
            )
        rows.append(row)
    return rows


__all__ = ["People", "Person", "chinese_name", "load_people", "staff_rows"]
