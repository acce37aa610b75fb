"""User attributes for assignment: skills (a list, or `{name: level}`), regions and the like.

Stored as one JSON object per user; `skill_match` rules and `$candidate` in `candidates`
expressions read them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from engine.errors import FieldError, NotFoundError, SubmissionError
from engine.storage.tables import users
from engine.storage.tables_assign import assign_user_attributes

BAD_ATTRIBUTES = "task.bad-attributes"
MAX_ATTRIBUTE_KEYS = 100


def load_attributes(conn: sa.Connection, user_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """The attributes of each of `user_ids` that has any."""
    ids = list(user_ids)
    if not ids:
        return {}
    query = sa.select(assign_user_attributes.c.user_id, assign_user_attributes.c.attributes).where(
        assign_user_attributes.c.user_id.in_(ids)
    )
    return {int(user): dict(attrs or {}) for user, attrs in conn.execute(query)}


def save_attributes(
    conn: sa.Connection, *, user_id: int, attributes: Mapping[str, Any], now: datetime
) -> dict[str, Any]:
    """Replace a user's attributes (validated) and return them.

    Raises:
        NotFoundError: `storage.user-not-found`.
        SubmissionError: `task.bad-attributes` with the path of each bad value.
    """
    exists = conn.execute(sa.select(users.c.id).where(users.c.id == user_id)).first()
    if exists is None:
        raise NotFoundError(f"user {user_id} does not exist", code="storage.user-not-found")
    clean = check_attributes(attributes)
    table = assign_user_attributes
    updated = conn.execute(
        table.update()
        .where(table.c.user_id == user_id)
        .values(attributes=clean, updated_at=now, version=table.c.version + 1)
    )
    if updated.rowcount == 0:
        conn.execute(table.insert().values(user_id=user_id, attributes=clean, updated_at=now))
    return clean


def check_attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """Keys are short names; `skills` is a list of names or `{name: level}`; `regions` a list."""
    errors: list[FieldError] = []
    if len(attributes) > MAX_ATTRIBUTE_KEYS:
        errors.append(FieldError("", BAD_ATTRIBUTES, f"at most {MAX_ATTRIBUTE_KEYS} attributes"))
    for key, value in attributes.items():
        if not isinstance(key, str) or not key or len(key) > 64:
            errors.append(FieldError(str(key), BAD_ATTRIBUTES, "names are 1 to 64 characters"))
        elif key == "skills" and not _is_skills(value):
            message = "skills are a list of names or an object of name: level (a whole number)"
            errors.append(FieldError(key, BAD_ATTRIBUTES, message))
        elif key == "regions" and not _is_names(value):
            errors.append(FieldError(key, BAD_ATTRIBUTES, "regions are a list of names"))
    if errors:
        raise SubmissionError(errors)
    return dict(attributes)


def skill_level(skills: Any, wanted: Any) -> int:
    """The level held in skill `wanted` (1 for a listed skill without levels, 0 when absent)."""
    if wanted is None:
        return 0
    if isinstance(skills, Mapping):
        level = skills.get(str(wanted))
        return int(level) if isinstance(level, int) else 0
    return 1 if isinstance(skills, list) and str(wanted) in map(str, skills) else 0


def _is_names(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v for v in value)


def _is_skills(value: Any) -> bool:
    if isinstance(value, Mapping):
        return all(
            isinstance(level, int) and not isinstance(level, bool) for level in value.values()
        )
    return _is_names(value)


__all__ = [
    "BAD_ATTRIBUTES",
    "check_attributes",
    "load_attributes",
    "save_attributes",
    "skill_level",
]
