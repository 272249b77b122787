"""Rows of the permission matrix for this area's routes (see tests/test_permission_matrix.py)."""

ROUTES: dict = {}
