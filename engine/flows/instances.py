"""`FlowStore`: rows of flow instances, their tokens and their history (the timeline)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from engine.errors import NotFoundError
from engine.storage.tables_flows import flow_history, flow_instances, flow_tokens

INSTANCE_NOT_FOUND = "flow.instance-not-found"
TOKEN_NOT_FOUND = "flow.token-not-found"
LIVE = ("active", "waiting")


@dataclass(frozen=True, slots=True)
class InstanceRow:
    id: int
    app: str
    flow: str
    version: int
    form: str | None
    record_id: int | None
    status: str
    initiator_id: int | None
    parent_token_id: int | None
    depth: int
    variables: dict[str, Any]
    error_code: str | None
    error_detail: dict[str, Any] | None
    started_at: datetime
    ended_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class TokenRow:
    id: int
    instance_id: int
    node: str
    status: str
    came_from: str | None
    due_at: datetime | None
    child_instance_id: int | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class HistoryRow:
    id: int
    instance_id: int
    step: int
    node: str | None
    event: str
    actor_id: int | None
    at: datetime
    detail: dict[str, Any]


class FlowStore:
    """Flow state in the caller's transaction."""

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn
        self._pending: list[dict[str, Any]] = []  # history rows not written yet

    # --- instances ------------------------------------------------------------------------------

    def create_instance(
        self,
        *,
        app: str,
        flow: str,
        version: int,
        form: str | None,
        record_id: int | None,
        initiator_id: int | None,
        now: datetime,
        depth: int = 0,
        parent_token_id: int | None = None,
        variables: Mapping[str, Any] | None = None,
    ) -> InstanceRow:
        """Insert a running instance (not locked: nobody else can see it before commit)."""
        values: dict[str, Any] = {
            "app": app,
            "flow": flow,
            "version": version,
            "form": form,
            "record_id": record_id,
            "status": "running",
            "initiator_id": initiator_id,
            "parent_token_id": parent_token_id,
            "depth": depth,
            "variables": dict(variables or {}),
            "started_at": now,
            "updated_at": now,
        }
        result = self._conn.execute(
            sa.insert(flow_instances).values(values).returning(flow_instances.c.id)
        )
        return InstanceRow(
            id=int(result.scalar_one()),
            error_code=None,
            error_detail=None,
            ended_at=None,
            **values,
        )

    def instance(self, instance_id: int, *, lock: bool = False) -> InstanceRow:
        """The instance; `lock` holds its row until commit, so steps on it run one at a time."""
        query = sa.select(flow_instances).where(flow_instances.c.id == instance_id)
        if lock:
            query = query.with_for_update()
        row = self._conn.execute(query).one_or_none()
        if row is None:
            raise NotFoundError(f"no flow instance {instance_id}", code=INSTANCE_NOT_FOUND)
        return InstanceRow(**row._mapping)

    def set_status(
        self,
        instance_id: int,
        *,
        status: str,
        now: datetime,
        error_code: str | None = None,
        error_detail: Mapping[str, Any] | None = None,
    ) -> None:
        ended = now if status in ("completed", "terminated") else None
        self._conn.execute(
            sa.update(flow_instances)
            .where(flow_instances.c.id == instance_id)
            .values(
                status=status,
                ended_at=ended,
                updated_at=now,
                error_code=error_code,
                error_detail=None if error_detail is None else dict(error_detail),
            )
        )

    def set_variables(self, instance_id: int, variables: Mapping[str, Any], now: datetime) -> None:
        self._conn.execute(
            sa.update(flow_instances)
            .where(flow_instances.c.id == instance_id)
            .values(variables=dict(variables), updated_at=now)
        )

    def instances(
        self,
        *,
        app: str,
        flow: str | None = None,
        form: str | None = None,
        record_id: int | None = None,
        status: str | None = None,
        limit: int = 100,
        before_id: int | None = None,
    ) -> list[InstanceRow]:
        """Newest first."""
        c = flow_instances.c
        query = sa.select(flow_instances).where(c.app == app)
        for column, value in ((c.flow, flow), (c.form, form), (c.record_id, record_id)):
            if value is not None:
                query = query.where(column == value)
        if status is not None:
            query = query.where(c.status == status)
        if before_id is not None:
            query = query.where(c.id < before_id)
        rows = self._conn.execute(query.order_by(c.id.desc()).limit(limit))
        return [InstanceRow(**row._mapping) for row in rows]

    # --- tokens ---------------------------------------------------------------------------------

    def add_token(
        self,
        *,
        instance_id: int,
        node: str,
        now: datetime,
        came_from: str | None = None,
        status: str = "active",
    ) -> TokenRow:
        values = {
            "instance_id": instance_id,
            "node": node,
            "status": status,
            "came_from": came_from,
            "created_at": now,
            "updated_at": now,
        }
        result = self._conn.execute(
            sa.insert(flow_tokens).values(values).returning(flow_tokens.c.id)
        )
        token_id = int(result.scalar_one())
        return TokenRow(
            id=token_id,
            instance_id=instance_id,
            node=node,
            status=status,
            came_from=came_from,
            due_at=None,
            child_instance_id=None,
            created_at=now,
            updated_at=now,
        )

    def instance_of_token(self, token_id: int) -> InstanceRow:
        """The instance of a token, row-locked (one statement instead of token then instance)."""
        owner = sa.select(flow_tokens.c.instance_id).where(flow_tokens.c.id == token_id)
        query = (
            sa.select(flow_instances)
            .where(flow_instances.c.id == owner.scalar_subquery())
            .with_for_update()
        )
        row = self._conn.execute(query).one_or_none()
        if row is None:
            raise NotFoundError(f"no flow token {token_id}", code=TOKEN_NOT_FOUND)
        return InstanceRow(**row._mapping)

    def token(self, token_id: int) -> TokenRow:
        row = self._conn.execute(
            sa.select(flow_tokens).where(flow_tokens.c.id == token_id)
        ).one_or_none()
        if row is None:
            raise NotFoundError(f"no flow token {token_id}", code=TOKEN_NOT_FOUND)
        return TokenRow(**row._mapping)

    def update_token(self, token_id: int, *, now: datetime, **values: Any) -> None:
        self._conn.execute(
            sa.update(flow_tokens)
            .where(flow_tokens.c.id == token_id)
            .values(**values, updated_at=now)
        )

    def set_tokens(self, token_ids: Sequence[int], *, status: str, now: datetime) -> None:
        if token_ids:
            self._conn.execute(
                sa.update(flow_tokens)
                .where(flow_tokens.c.id.in_(list(token_ids)))
                .values(status=status, updated_at=now)
            )

    def tokens(self, instance_id: int, *, live_only: bool = False) -> list[TokenRow]:
        query = sa.select(flow_tokens).where(flow_tokens.c.instance_id == instance_id)
        if live_only:
            query = query.where(flow_tokens.c.status.in_(LIVE))
        rows = self._conn.execute(query.order_by(flow_tokens.c.id))
        return [TokenRow(**row._mapping) for row in rows]

    def waiting_on_record(
        self, *, app: str, form: str, record_id: int
    ) -> list[tuple[InstanceRow, TokenRow]]:
        """Waiting tokens of running instances on one record (wait nodes re-check these)."""
        i, t = flow_instances.c, flow_tokens.c
        query = (
            sa.select(flow_tokens, *[col.label(f"i_{col.name}") for col in flow_instances.c])
            .select_from(flow_tokens.join(flow_instances, t.instance_id == i.id))
            .where(i.app == app, i.form == form, i.record_id == record_id)
            .where(i.status == "running", t.status == "waiting")
            .order_by(t.id)
        )
        found: list[tuple[InstanceRow, TokenRow]] = []
        for row in self._conn.execute(query):
            data = dict(row._mapping)
            inst = {k[2:]: data.pop(k) for k in list(data) if k.startswith("i_")}
            found.append((InstanceRow(**inst), TokenRow(**data)))
        return found

    # --- history --------------------------------------------------------------------------------

    def add_history(
        self,
        *,
        instance_id: int,
        node: str | None,
        event: str,
        at: datetime,
        actor_id: int | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        """Buffer a step of the timeline; `flush_history` writes the buffer in one statement."""
        self._pending.append(
            {
                "instance_id": instance_id,
                "node": node,
                "event": event,
                "actor_id": actor_id,
                "at": at,
                "detail": dict(detail or {}),
            }
        )

    @property
    def pending_history(self) -> int:
        return len(self._pending)

    def discard_history(self, keep: int) -> None:
        """Forget the steps buffered after the first `keep` (their work was rolled back)."""
        del self._pending[keep:]

    def flush_history(self) -> None:
        """Write the buffered steps, numbered after each instance's last step. Whoever writes
        an instance's steps holds its row lock, so the numbers read here stay free."""
        if not self._pending:
            return
        h = flow_history.c
        ids = sorted({row["instance_id"] for row in self._pending})
        last = dict(
            self._conn.execute(
                sa.select(h.instance_id, sa.func.max(h.step))
                .where(h.instance_id.in_(ids))
                .group_by(h.instance_id)
            ).all()
        )
        rows = []
        for row in self._pending:
            step = int(last.get(row["instance_id"]) or 0) + 1
            last[row["instance_id"]] = step
            rows.append({**row, "step": step})
        self._pending.clear()
        self._conn.execute(sa.insert(flow_history), rows)

    def history(self, instance_ids: Sequence[int]) -> list[HistoryRow]:
        self.flush_history()
        if not instance_ids:
            return []
        rows = self._conn.execute(
            sa.select(flow_history)
            .where(flow_history.c.instance_id.in_(list(instance_ids)))
            .order_by(flow_history.c.at, flow_history.c.instance_id, flow_history.c.step)
        )
        return [HistoryRow(**row._mapping) for row in rows]


__all__ = [
    "INSTANCE_NOT_FOUND",
    "TOKEN_NOT_FOUND",
    "FlowStore",
    "HistoryRow",
    "InstanceRow",
    "TokenRow",
]
