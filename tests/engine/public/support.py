"""A small intake app for public link tests: devices with QR tokens, and service requests."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

BUNDLE = {
    "bundle.yaml": 'key: desk\nname: Desk\nversion: 1.0.0\nengine: ">=0.1,<1.0"\n',
    "forms/device.yaml": """
key: device
label: Device
title_field: serial
fields:
  - {key: serial, type: text, label: Serial, required: true, unique: true}
  - {key: qr_token, type: text, label: QR token, unique: true}
  - {key: model, type: text, label: Model}
""",
    "forms/request.yaml": """
key: request
label: {en: Repair request, zh: 报修}
fields:
  - {key: subject, type: text, label: Subject, required: true, max_length: 200}
  - {key: description, type: textarea, label: Description}
  - {key: phone, type: phone, label: Mobile}
  - key: status
    type: select
    label: Status
    options: [{key: new, label: New}, {key: done, label: Done}]
    default: new
  - {key: channel, type: text, label: Channel}
  - {key: device, type: relation, form: device, label: Device}
  - {key: model, type: text, label: Model}
  - {key: internal_note, type: text, label: Internal note}
""",
}

LINK = {
    "label": "Report a fault",
    "fields": ["subject", "description", "phone"],
    "prefill": {"channel": {"value": "qr"}},
    "lookup": {"relation": "device", "by": "qr_token", "param": "qr", "copy": {"model": "model"}},
    "trackable": ["subject", "status"],
}


def install(engine: sa.Engine, folder: Path) -> str:
    """Import the bundle into `engine`; returns the app key."""
    from engine.bundles import load_bundle
    from engine.installer import import_bundle

    for name, text in BUNDLE.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text.lstrip(), encoding="utf-8")
    import_bundle(db=engine, bundle=load_bundle(folder))
    return "desk"


__all__ = ["BUNDLE", "LINK", "install"]
