"""Server-rendered pages (Jinja2): the runtime UI and, later, the designers."""

from web.pages import mount_pages

__all__ = ["mount_pages"]
