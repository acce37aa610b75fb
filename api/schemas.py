"""Response models shared by routes (the OpenAPI document shows them)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ProblemDetail(BaseModel):
    """One problem of a definition: where, what, and how to fix it."""

    code: str
    source: str = ""
    path: str
    message: str
    hint: str | None = None


class FieldErrorOut(BaseModel):
    path: str
    code: str
    message: str


class ProblemOut(BaseModel):
    """An `application/problem+json` body carrying the engine's error code."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    code: str
    problems: list[ProblemDetail] | None = None
    errors: list[FieldErrorOut] | None = None


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries documenting problem+json bodies for `statuses`."""
    return {
        status: {"model": ProblemOut, "content": {"application/problem+json": {}}}
        for status in statuses
    }


class HealthOut(BaseModel):
    status: str = Field(examples=["ok"])
    version: str
    database: str = Field(description="Backend name: sqlite or postgresql")
    migrations: str | None = Field(description="Alembic revision of the database, if any")


__all__ = ["FieldErrorOut", "HealthOut", "ProblemDetail", "ProblemOut", "problem_responses"]
