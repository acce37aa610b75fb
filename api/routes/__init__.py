"""JSON routes under /api/v1, thin over engine services."""
