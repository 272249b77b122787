"""Rows of the permission matrix for model cards, inspection and lineage pages."""

ROUTES: dict = {}
