"""Apps: menu definitions."""

from engine.apps.spec import MenuItem, MenuSpec

__all__ = ["MenuItem", "MenuSpec"]
