"""A small form covering the field types import and export handle, for transfer tests."""

from __future__ import annotations

from typing import Any

from engine.forms import FormSpec, compile_form

ORDER_FORM: dict[str, Any] = {
    "schema_version": 1,
    "key": "order",
    "label": {"en": "Order", "zh": "订单"},
    "title_field": "title",
    "fields": [
        {"type": "autonumber", "key": "number", "label": "No.", "pattern": "OR-{####}"},
        {
            "type": "text",
            "key": "title",
            "label": {"en": "Title", "zh": "标题"},
            "required": True,
            "unique": True,
            "max_length": 200,
        },
        {
            "type": "textarea",
            "key": "notes",
            "label": {"en": "Notes", "zh": "备注"},
            "max_length": 1_000_000,
        },
        {"type": "number", "key": "qty", "label": {"en": "Quantity", "zh": "数量"}, "min": 0},
        {"type": "money", "key": "amount", "label": {"en": "Amount", "zh": "金额"}},
        {"type": "date", "key": "due", "label": {"en": "Due date", "zh": "到期日"}},
        {"type": "datetime", "key": "seen_at", "label": {"en": "Seen at", "zh": "查看时间"}},
        {
            "type": "select",
            "key": "level",
            "label": {"en": "Level", "zh": "级别"},
            "options": [
                {"key": "low", "label": {"en": "Low", "zh": "低"}},
                {"key": "high", "label": {"en": "High", "zh": "高"}},
            ],
        },
        {
            "type": "multiselect",
            "key": "tags",
            "label": {"en": "Tags", "zh": "标签"},
            "options": [
                {"key": "a", "label": {"en": "Alpha", "zh": "甲"}},
                {"key": "b", "label": {"en": "Beta", "zh": "乙"}},
            ],
        },
        {"type": "boolean", "key": "urgent", "label": {"en": "Urgent", "zh": "紧急"}},
        {"type": "phone", "key": "phone", "label": {"en": "Phone", "zh": "电话"}},
        {
            "type": "subform",
            "key": "items",
            "label": {"en": "Items", "zh": "明细"},
            "fields": [
                {"type": "text", "key": "sku", "label": "SKU", "required": True},
                {"type": "number", "key": "count", "label": "Count"},
            ],
        },
        {
            "type": "formula",
            "key": "double_qty",
            "label": {"en": "Double", "zh": "双倍"},
            "expr": "qty * 2",
            "result_type": "number",
        },
    ],
}


def order_form(**changes: Any) -> Any:
    """The compiled order form, with top-level keys of the document replaced by `changes`."""
    return compile_form(FormSpec.model_validate({**ORDER_FORM, **changes}))
