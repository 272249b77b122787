"""Rows of the permission matrix for the webhook pages (see tests/test_permission_matrix.py)."""

ROUTES: dict = {}
