"""What the live fault suite runs after a fault, in one process (a Django start-up costs
seconds on a loaded machine): ``sweep_orphans`` with no grace period when ``--sweep`` is given,
then ``check_invariants``. Exits 1 when the checker names a violation."""

import argparse
import sys

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.core.management.base import CommandError  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--sweep", action="store_true")
parser.add_argument("--grace-minutes", type=int, default=0)
options = parser.parse_args()
if options.sweep:
    call_command("sweep_orphans", min_age_minutes=0)
try:
    call_command("check_invariants", grace_minutes=options.grace_minutes)
except CommandError as e:
    print(e, file=sys.stderr)
    sys.exit(1)
