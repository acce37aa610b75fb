"""Routing and auto-assignment actions of flow action nodes (docs/assignment.md).

`match_rule` finds the first matching row of a rules form and copies values from it onto the
flow's record; `pick_assignee` chooses one user among the rows of a directory form with hard
filters and a lexicographic ranking, and writes every excluded candidate with its reason.
Both are generic: the forms and fields they read are named in the definition.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from engine.forms.fields import Expr, FormRef
from engine.spec_base import Key, SpecModel

# Names the rankings may use besides the directory's own fields.
LOAD = "$load"
SKILL_LEVEL = "$skill_level"


class KeywordMatch(SpecModel):
    """A rule field holding a comma list of keywords; a rule matches when one of them is a
    case-insensitive substring of `text` (an expression over the record)."""

    field: Key
    text: Expr


class MatchRule(SpecModel):
    """The first row of `form` (ascending `order_by`, only rows with `active_field` true) whose
    criteria all hold. A criterion maps a rule field to an expression over the record: an empty
    rule value matches anything, a list of values matches any of them (OR), criteria are ANDed.
    `set` writes record fields from expressions that see the row as `$rule` (blank when no row
    matched), `copy_fields` copies rule fields as they are; the row is kept in the instance
    variable `into` (`$vars.<into>`)."""

    type: Literal["match_rule"]
    form: FormRef
    order_by: Key
    active_field: Key | None = None
    criteria: dict[Key, Expr] = {}
    keywords: KeywordMatch | None = None
    set: dict[Key, Expr] = {}
    copy_fields: dict[Key, str] = Field(
        {},
        description="Record field → rule field, or `subform.column` for the list of that "
        "column's values over the rule's subform rows (e.g. the skills a rule requires)",
    )
    into: Key = "rule"


class CandidateFilter(SpecModel):
    """A hard filter of `pick_assignee`; a candidate failing it is excluded with `reason`.

    test `includes`: the candidate's list `field` holds the value of `value` (every one of them
    when it is a list); `includes_or_empty` also passes an empty field; `equals`: the field equals
    `value`; `below`: the field (or `$load`) is below the candidate's `limit_field` (or
    `default_limit` when that is blank); `skills`: the rows of subform `field` cover `value`
    (a list of skill keys, or of rows with `skill_key`/`level_key`) at `min_level` or more;
    `expr`: `value` is TRUE for the candidate (its fields, `$record`, `$load`, `$vars`).
    `when` (over the record) limits the filter to some records."""

    test: Literal["includes", "includes_or_empty", "equals", "below", "skills", "expr"]
    reason: Key
    field: str | None = Field(None, description="A directory field, or $load for `below`")
    value: Expr | None = None
    when: Expr | None = None
    limit_field: Key | None = None
    default_limit: Annotated[int, Field(ge=0)] | None = None
    skill_field: Key = Field("skill", description="Column of the candidate's skills subform")
    level_field: Key = Field("level", description="Level column of that subform")
    skill_key: Key = Field("skill", description="Key of a required-skill row")
    level_key: Key = Field("min_level", description="Minimum-level key of a required-skill row")
    min_level: Annotated[int, Field(ge=0)] = 1

    @model_validator(mode="after")
    def _needs(self) -> CandidateFilter:
        if self.test != "expr" and not self.field:
            raise PydanticCustomError("flow.missing-option", "this filter test needs a field")
        if self.test in ("includes", "includes_or_empty", "equals", "skills", "expr") and (
            self.value is None
        ):
            raise PydanticCustomError("flow.missing-option", "this filter test needs a value")
        if self.test == "below" and self.limit_field is None and self.default_limit is None:
            raise PydanticCustomError(
                "flow.missing-option", "a below filter needs limit_field or default_limit"
            )
        return self


class RankKey(SpecModel):
    """One ranking key: a directory field, `$load` or `$skill_level` (the level held in the
    first required skill of the `skills` filter). Blanks rank first ascending (a person never
    assigned is the least recently assigned), last descending."""

    by: str
    order: Literal["asc", "desc"] = "asc"


class LoadSource(SpecModel):
    """A candidate's load: the live records of `form` whose user field `user_field` is the
    candidate and that meet `where` (an expression over that form's stored fields)."""

    form: FormRef
    user_field: Key
    where: Expr | None = None


class PickAssignee(SpecModel):
    """Choose one user among the rows of the directory form (one row per person)."""

    type: Literal["pick_assignee"]
    directory: FormRef
    user_field: Key = Field(description="The directory's user field")
    filters: tuple[CandidateFilter, ...] = ()
    rank: tuple[RankKey, ...] = ()
    load: LoadSource | None = None
    stamp_field: Key | None = Field(
        None, description="Directory datetime field set to now on the chosen row (round robin)"
    )
    set: dict[Key, Expr] = Field(
        {}, description="Record fields written when someone is chosen ($assignee, $candidate)"
    )
    otherwise: dict[Key, Expr] = Field(
        {}, description="Record fields written when nobody passes (e.g. into a claim pool)"
    )
    pool_ignores: tuple[Key, ...] = Field(
        (), description="Reasons ignored when listing who may claim from the pool"
    )
    into: Key = "assignment"


__all__ = [
    "LOAD",
    "SKILL_LEVEL",
    "CandidateFilter",
    "KeywordMatch",
    "LoadSource",
    "MatchRule",
    "PickAssignee",
    "RankKey",
]
