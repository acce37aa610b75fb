"""The engine's exceptions and the problem records they carry.

Hierarchy::

    EngineError                 every error the engine raises on purpose; has a stable `code`
    ├── DefinitionError         a definition or bundle is malformed; carries all `Problem`s at once
    ├── SubmissionError         end-user data fails validation; carries one `FieldError` per problem
    ├── TransitionError         a flow step or action is not allowed in the current state
    ├── NotFoundError           a definition, record or other object does not exist
    ├── ConflictError           a uniqueness, foreign-key or version (optimistic lock) conflict
    └── PermissionDenied        the actor may not do this

Errors carry no HTTP status: `api/errors.py` maps them. Codes are `"<area>.<kebab-name>"`,
never reused, and listed in docs/errors.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a definition: where it is, what it is, and how to fix it."""

    code: str
    path: str
    message: str
    hint: str | None = None
    source: str | None = None

    def located(self, *, source: str | None = None, prefix: str = "") -> Problem:
        """Return a copy placed in `source`, with `prefix` prepended to the JSON pointer."""
        return Problem(
            code=self.code,
            path=prefix + self.path,
            message=self.message,
            hint=self.hint,
            source=source if source is not None else self.source,
        )

    def where(self) -> str:
        """`file#/json/pointer`, the address shown to users."""
        return f"{self.source or ''}#{self.path}"

    def to_dict(self) -> dict[str, str]:
        out = {"code": self.code, "source": self.source or "", "path": self.path}
        out["message"] = self.message
        if self.hint:
            out["hint"] = self.hint
        return out


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with submitted data, at `loc` (e.g. `items/2/qty`)."""

    loc: str
    code: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"path": self.loc, "code": self.code, "message": self.message}


class EngineError(Exception):
    """Base of every error the engine raises on purpose."""

    code: str = "engine.error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.code


class DefinitionError(EngineError):
    """A definition or bundle is invalid; `problems` lists everything found, not just the first."""

    code = "definition.invalid"

    def __init__(self, problems: Iterable[Problem], message: str | None = None) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        first = self.problems[0].message if self.problems else "invalid definition"
        count = len(self.problems)
        super().__init__(message or (first if count == 1 else f"{count} problems: {first} …"))


class SubmissionError(EngineError):
    """Submitted data is invalid; `errors` lists one `FieldError` per problem."""

    code = "submission.invalid"

    def __init__(self, errors: Iterable[FieldError], message: str | None = None) -> None:
        self.errors: tuple[FieldError, ...] = tuple(errors)
        super().__init__(message or f"{len(self.errors)} invalid value(s)")


class TransitionError(EngineError):
    code = "flow.transition-not-allowed"


class NotFoundError(EngineError):
    code = "engine.not-found"


class ConflictError(EngineError):
    code = "storage.conflict"


class PermissionDenied(EngineError):
    code = "identity.permission-denied"


__all__ = [
    "ConflictError",
    "DefinitionError",
    "EngineError",
    "FieldError",
    "NotFoundError",
    "PermissionDenied",
    "Problem",
    "SubmissionError",
    "TransitionError",
]
