"""Storage: the engine's tables and migrations, the unit of work, repositories, form tables."""

from engine.storage.audit import AuditLog
from engine.storage.conflicts import ConstraintConflict, translate_integrity_error
from engine.storage.database import create_database_engine, is_postgresql, normalise_url
from engine.storage.definitions import BundleFileStore, DefinitionStore
from engine.storage.form_tables import (
    FormTablePlan,
    FormTables,
    apply_form_table_plan,
    apply_form_table_plans,
    form_tables,
    plan_form_table,
    plan_form_tables,
)
from engine.storage.identity import DepartmentStore, RoleStore, UserStore
from engine.storage.migrate import current_revision, head_revision, upgrade_database
from engine.storage.records import (
    AppRecord,
    AuditEntry,
    BundleFileRecord,
    DefinitionRecord,
    DefinitionVersionRecord,
    DepartmentRecord,
    PublishResult,
    RoleRecord,
    UserRecord,
)
from engine.storage.uow import UnitOfWork

__all__ = [
    "AppRecord",
    "AuditEntry",
    "AuditLog",
    "BundleFileRecord",
    "BundleFileStore",
    "ConstraintConflict",
    "DefinitionRecord",
    "DefinitionStore",
    "DefinitionVersionRecord",
    "DepartmentRecord",
    "DepartmentStore",
    "FormTablePlan",
    "FormTables",
    "PublishResult",
    "RoleRecord",
    "RoleStore",
    "UnitOfWork",
    "UserRecord",
    "UserStore",
    "apply_form_table_plan",
    "apply_form_table_plans",
    "create_database_engine",
    "current_revision",
    "form_tables",
    "head_revision",
    "is_postgresql",
    "normalise_url",
    "plan_form_table",
    "plan_form_tables",
    "translate_integrity_error",
    "upgrade_database",
]
