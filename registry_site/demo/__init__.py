"""Demo data for `make run`: users and teams, then a living catalogue with history, lineage,
sharing, cards and a review story. Idempotent: what exists already is left as it is.

users.py holds the users and teams, catalogue.py the models and their versions, reviews.py
their review history and files.py the artifact files the versions carry.
"""

from registry_site.demo.catalogue import seed_catalogue
from registry_site.demo.reviews import HISTORY_STARTS_DAYS_AGO, days_ago
from registry_site.demo.users import DEMO_PASSWORD, DEMO_USERS, seed_users

__all__ = [
    "DEMO_PASSWORD",
    "DEMO_USERS",
    "HISTORY_STARTS_DAYS_AGO",
    "days_ago",
    "seed_catalogue",
    "seed_users",
]
