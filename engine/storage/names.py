"""Names of form tables and their constraints, kept inside PostgreSQL's 63-byte identifiers."""

from __future__ import annotations

import hashlib

MAX_IDENTIFIER = 63
SEPARATOR = "__"


def fit_identifier(name: str) -> str:
    """`name`, or when longer than 63 bytes a stable truncation ending in a short hash."""
    if len(name.encode()) <= MAX_IDENTIFIER:
        return name
    suffix = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: MAX_IDENTIFIER - 9]}_{suffix}"


def form_table_name(app: str, form: str) -> str:
    """`<app>__<form>`; `form` may be `other_app.form` for a form of another app."""
    if "." in form:
        app, form = form.split(".", 1)
    return fit_identifier(f"{app}{SEPARATOR}{form}")


def child_table_name(parent: str, field: str) -> str:
    """`<parent table>__<field>`: a subform's rows or a multiple relation's links."""
    return fit_identifier(f"{parent}{SEPARATOR}{field}")


def unique_index_name(table: str, columns: list[str] | tuple[str, ...]) -> str:
    """The naming convention's `uq_<table>_<columns>`, also used to name SQLite violations."""
    return fit_identifier(f"uq_{table}_{'_'.join(columns)}")


def index_name(table: str, columns: list[str] | tuple[str, ...]) -> str:
    return fit_identifier(f"ix_{table}_{'_'.join(columns)}")


__all__ = [
    "MAX_IDENTIFIER",
    "child_table_name",
    "fit_identifier",
    "form_table_name",
    "index_name",
    "unique_index_name",
]
