"""Form definitions over HTTP: list, read, versions, plan and publish one form."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel

from api.deps import DatabaseDep
from api.schemas import ProblemDetail, problem_responses
from engine.errors import DefinitionError, Problem
from engine.forms.publish import (
    FormPublishPlan,
    get_form,
    list_form_versions,
    list_forms,
    plan_form_publish,
    publish_form,
)
from engine.forms.spec import FormSpec
from engine.schemas import validate_definition

router = APIRouter(tags=["forms"])

DefinitionBody = Annotated[
    dict[str, Any],
    Body(description="The form definition as JSON (the same shape as a bundle's forms/*.yaml)"),
]


class FormOut(BaseModel):
    key: str
    version: int
    digest: str
    updated_at: datetime


class FormVersionOut(BaseModel):
    version: int
    digest: str
    created_at: datetime
    created_by: int | None


class FormDefinitionOut(FormVersionOut):
    app: str
    key: str
    definition: dict[str, Any]


class FormPlanOut(BaseModel):
    app: str
    form: str
    version_from: int | None
    version_to: int | None
    noop: bool
    applied: bool
    lines: list[str]
    problems: list[ProblemDetail]


def _problem_out(problem: Problem) -> ProblemDetail:
    return ProblemDetail(
        code=problem.code,
        source=problem.source or "",
        path=problem.path,
        message=problem.message,
        hint=problem.hint,
    )


def _plan_out(plan: FormPublishPlan) -> FormPlanOut:
    return FormPlanOut(
        app=plan.app,
        form=plan.form,
        version_from=plan.version_from,
        version_to=plan.version_to,
        noop=plan.is_noop,
        applied=plan.applied,
        lines=list(plan.lines),
        problems=[_problem_out(p) for p in plan.problems],
    )


def _parse(form: str, body: dict[str, Any]) -> FormSpec:
    """The body as a `FormSpec` whose key is the one in the URL."""
    spec = validate_definition("form", body)
    if not isinstance(spec, FormSpec):  # pragma: no cover - the kind registry says FormSpec
        raise TypeError("forms are FormSpec")
    if spec.key != form:
        message = f"the definition's key {spec.key!r} is not {form!r} of the URL"
        raise DefinitionError([Problem(code="form.key-mismatch", path="/key", message=message)])
    return spec


@router.get("/apps/{app}/forms", response_model=list[FormOut], responses=problem_responses(404))
def read_forms(app: str, db: DatabaseDep) -> list[FormOut]:
    """The app's published forms with their current version."""
    return [
        FormOut(
            key=d.key, version=d.current_version, digest=d.current_digest, updated_at=d.updated_at
        )
        for d in list_forms(db=db, app=app)
    ]


@router.get(
    "/apps/{app}/forms/{form}",
    response_model=FormDefinitionOut,
    responses=problem_responses(404),
)
def read_form(
    app: str,
    form: str,
    db: DatabaseDep,
    version: Annotated[int | None, Query(ge=1, description="A past version")] = None,
) -> FormDefinitionOut:
    """The current definition of a form (or one version of it)."""
    record = get_form(db=db, app=app, form=form, version=version)
    return FormDefinitionOut(
        app=record.app,
        key=record.key,
        version=record.version,
        digest=record.digest,
        created_at=record.created_at,
        created_by=record.created_by,
        definition=record.body,
    )


@router.get(
    "/apps/{app}/forms/{form}/versions",
    response_model=list[FormVersionOut],
    responses=problem_responses(404),
)
def read_form_versions(app: str, form: str, db: DatabaseDep) -> list[FormVersionOut]:
    """Every published version of a form, oldest first."""
    return [
        FormVersionOut(
            version=v.version, digest=v.digest, created_at=v.created_at, created_by=v.created_by
        )
        for v in list_form_versions(db=db, app=app, form=form)
    ]


@router.post(
    "/apps/{app}/forms/{form}/plan",
    response_model=FormPlanOut,
    responses=problem_responses(404, 422),
)
def plan_form(app: str, form: str, body: DefinitionBody, db: DatabaseDep) -> FormPlanOut:
    """What publishing this definition would change, and every problem; nothing is written."""
    return _plan_out(plan_form_publish(db=db, app=app, spec=_parse(form, body)))


@router.put(
    "/apps/{app}/forms/{form}",
    response_model=FormPlanOut,
    responses=problem_responses(404, 409, 422),
)
def put_form(
    app: str,
    form: str,
    body: DefinitionBody,
    db: DatabaseDep,
    dry_run: Annotated[bool, Query(description="Stop after the plan")] = False,
    base_version: Annotated[
        int | None, Query(ge=0, description="The version edited; 409 if another came since")
    ] = None,
) -> FormPlanOut:
    """Publish the definition as a new version and change the form's table, atomically."""
    plan = publish_form(
        db=db,
        app=app,
        spec=_parse(form, body),
        actor=None,
        dry_run=dry_run,
        base_version=base_version,
    )
    return _plan_out(plan)
