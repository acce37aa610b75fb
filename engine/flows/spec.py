"""Flow definitions: a trigger, nodes (a union discriminated on `type`) and the edges between them.

The flow engine fills in the semantics later; these models fix the file format.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, JsonValue, model_validator
from pydantic_core import PydanticCustomError

from engine.flows.spec_assign import MatchRule, PickAssignee
from engine.forms.fields import Expr, FormRef
from engine.labels import Label
from engine.spec_base import Key, SpecModel

FLOW_SCHEMA_VERSION = 1

Cron = Annotated[str, Field(pattern=r"^\S+( \S+){4,5}$", description="Five or six cron fields")]
Duration = Annotated[
    str,
    Field(
        pattern=r"^P((\d+[YMWD])+(T(\d+[HMS])+)?|T(\d+[HMS])+)$",
        description="ISO 8601 duration, e.g. PT4H or P1D",
    ),
]


class Trigger(SpecModel):
    """What starts an instance."""

    type: Literal[
        "record_created",
        "record_updated",
        "field_changed",
        "record_deleted",
        "schedule",
        "date_reached",
        "manual",
        "webhook",
    ]
    form: FormRef | None = None
    fields: tuple[Key, ...] = Field((), description="For field_changed: the fields watched")
    condition: Expr | None = None
    cron: Cron | None = None
    timezone: str | None = None
    date_field: Key | None = None
    offset: Duration | None = None

    @model_validator(mode="after")
    def _needs(self) -> Trigger:
        if self.type == "schedule" and self.cron is None:
            raise PydanticCustomError("flow.missing-option", "a schedule trigger needs cron")
        if self.type == "field_changed" and not self.fields:
            raise PydanticCustomError("flow.missing-option", "field_changed needs fields")
        return self


class _Node(SpecModel):
    key: Key
    label: Label | None = None
    description: Label | None = None


class StartNode(_Node):
    type: Literal["start"]


class EndNode(_Node):
    type: Literal["end"]
    outcome: Key | None = None


class AssigneeRule(SpecModel):
    """Who gets a task. `value` is a user/role/department key or an expression, by `type`."""

    type: Literal[
        "user",
        "role",
        "department",
        "department_head",
        "field",
        "initiator",
        "expr",
        "round_robin",
        "least_loaded",
        "skill_match",
        "pool",
    ]
    value: str | None = None
    levels_up: Annotated[int, Field(ge=0, le=10)] = 0
    candidates: Expr | None = Field(None, description="Expression narrowing the candidates")


class Timeout(SpecModel):
    after: Duration
    business_time: bool = False
    calendar: str | None = None
    remind_every: Duration | None = None
    action: Literal["remind", "escalate", "approve", "reject", "goto"] = "remind"
    goto: Key | None = None
    escalate_to: AssigneeRule | None = None


class UserTaskNode(_Node):
    type: Literal["user_task"]
    kind: Literal["fill", "handle", "approve", "cc"] = "handle"
    assignees: Annotated[tuple[AssigneeRule, ...], Field(min_length=1)]
    mode: Literal["all", "any", "sequential", "ratio"] = "any"
    ratio: Annotated[float, Field(gt=0, le=1)] | None = None
    if_empty: Literal["skip", "admin", "fail"] | AssigneeRule = "admin"
    field_permissions: dict[Key, Literal["hidden", "read", "edit", "required"]] = {}
    operations: tuple[
        Literal[
            "approve",
            "reject",
            "return",
            "transfer",
            "add_signer",
            "delegate",
            "withdraw",
            "comment",
        ],
        ...,
    ] = ()
    timeout: Timeout | None = None
    on_claim: dict[Key, Expr] = Field(
        {},
        description="Values set on the flow's record when someone claims a pool task "
        "($claimant is the claimant's user id), e.g. the record's assignee",
    )

    @model_validator(mode="after")
    def _ratio(self) -> UserTaskNode:
        if (self.mode == "ratio") != (self.ratio is not None):
            raise PydanticCustomError(
                "flow.missing-option", "ratio is given exactly for mode ratio"
            )
        return self


class Branch(SpecModel):
    key: Key
    label: Label | None = None
    expr: Expr | None = None
    default: bool = False
    to: Key


class ConditionNode(_Node):
    type: Literal["condition"]
    branches: Annotated[tuple[Branch, ...], Field(min_length=1)]


class ParallelSplitNode(_Node):
    type: Literal["parallel_split"]


class JoinNode(_Node):
    type: Literal["join"]
    mode: Literal["all", "any", "count"] = "all"
    count: Annotated[int, Field(ge=1)] | None = None


class SetFields(SpecModel):
    type: Literal["set_fields"]
    values: dict[Key, Expr]


class CreateRecord(SpecModel):
    type: Literal["create_record"]
    form: FormRef
    values: dict[Key, Expr]
    link_field: Key | None = Field(None, description="Store the new record's id in this field")


class UpdateRecord(SpecModel):
    type: Literal["update_record"]
    form: FormRef
    where: Expr
    values: dict[Key, Expr]


class DeleteRecord(SpecModel):
    type: Literal["delete_record"]
    form: FormRef
    where: Expr


class Notify(SpecModel):
    type: Literal["notify"]
    to: Annotated[tuple[AssigneeRule, ...], Field(min_length=1)]
    channels: tuple[Literal["in_app", "email", "sms", "wechat"], ...] = ("in_app",)
    template: Key | None = None
    subject: Label | None = None
    body: Label | None = None


class Webhook(SpecModel):
    type: Literal["webhook"]
    url: Annotated[str, Field(pattern=r"^https?://")]
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    payload: dict[str, JsonValue] = {}
    secret: str | None = Field(None, description="Name of a configured secret, never the value")
    retries: Annotated[int, Field(ge=0, le=20)] = 5


class AnswerLink(SpecModel):
    """Issue a one-time link (`/a/{token}`) letting someone without an account fill `fields`
    of the flow's record once before it expires (docs/public-links.md, "Answer links")."""

    type: Literal["answer_link"]
    fields: Annotated[tuple[Key, ...], Field(min_length=1)]
    required: tuple[Key, ...] = ()
    show_if: dict[Key, Expr] = Field(
        {}, description="A field is offered only if this holds when the link is issued"
    )
    valid_for: Duration = "P7D"
    on_answer: dict[Key, Expr] = Field(
        {}, description="Values set with the answer ($now is the answer time)"
    )
    purpose: Key = Field("answer", description="One live link per record and purpose")
    send_to: Expr | None = Field(None, description="An e-mail address to send the link to")
    subject: Label | None = None
    body: Label | None = Field(None, description="{link} is replaced by the link's address")


Action = Annotated[
    SetFields
    | CreateRecord
    | UpdateRecord
    | DeleteRecord
    | Notify
    | Webhook
    | AnswerLink
    | MatchRule
    | PickAssignee,
    Field(discriminator="type"),
]


class ActionNode(_Node):
    type: Literal["action"]
    actions: Annotated[tuple[Action, ...], Field(min_length=1)]


class TimerNode(_Node):
    type: Literal["timer"]
    delay: Duration | None = None
    until: Expr | None = None
    business_time: bool = False
    calendar: Key | None = Field(None, description="The business calendar of a business-time delay")

    @model_validator(mode="after")
    def _one(self) -> TimerNode:
        if (self.delay is None) == (self.until is None):
            raise PydanticCustomError("flow.missing-option", "give delay or until, exactly one")
        return self


class WaitNode(_Node):
    type: Literal["wait"]
    condition: Expr
    timeout: Timeout | None = None


class SubflowNode(_Node):
    type: Literal["subflow"]
    flow: Key
    wait: bool = True
    inputs: dict[Key, Expr] = {}


NodeSpec = Annotated[
    StartNode
    | UserTaskNode
    | ConditionNode
    | ParallelSplitNode
    | JoinNode
    | ActionNode
    | TimerNode
    | WaitNode
    | SubflowNode
    | EndNode,
    Field(discriminator="type"),
]


class Edge(SpecModel):
    """A transition; `condition` guards it (branches of condition nodes use `Branch`)."""

    model_config = ConfigDict(**SpecModel.model_config, serialize_by_alias=True)

    from_: Key = Field(alias="from")
    to: Key
    condition: Expr | None = None
    outcome: Literal["approved", "rejected", "done", "returned"] | None = Field(
        None, description="Taken only when the user task it leaves ended with this outcome"
    )
    label: Label | None = None


class FlowSpec(SpecModel):
    """A versioned process graph over one form's records."""

    schema_version: Annotated[int, Field(ge=1, le=FLOW_SCHEMA_VERSION)] = FLOW_SCHEMA_VERSION
    key: Key
    label: Label
    description: Label | None = None
    form: FormRef | None = Field(None, description="The form whose records the flow runs on")
    trigger: Trigger
    nodes: Annotated[tuple[NodeSpec, ...], Field(min_length=1)]
    edges: tuple[Edge, ...] = ()
    enabled: bool = True

    @model_validator(mode="after")
    def _record_trigger_form(self) -> FlowSpec:
        is_record = self.trigger.type.startswith(("record_", "field_", "date_"))
        if is_record and self.trigger.form is None and self.form is None:
            raise PydanticCustomError(
                "flow.missing-option", "a record trigger needs trigger.form or the flow's form"
            )
        return self


__all__ = [
    "FLOW_SCHEMA_VERSION",
    "Action",
    "ActionNode",
    "AnswerLink",
    "AssigneeRule",
    "Branch",
    "ConditionNode",
    "CreateRecord",
    "DeleteRecord",
    "Edge",
    "EndNode",
    "FlowSpec",
    "JoinNode",
    "MatchRule",
    "NodeSpec",
    "Notify",
    "ParallelSplitNode",
    "PickAssignee",
    "SetFields",
    "StartNode",
    "SubflowNode",
    "TimerNode",
    "Timeout",
    "Trigger",
    "UpdateRecord",
    "UserTaskNode",
    "WaitNode",
    "Webhook",
]
