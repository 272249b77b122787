"""Experiment 0 ("Default") takes the runs of MLflow clients that set no experiment; it must
survive `manage.py flush` (also run by `seed_scale --reset` and by transactional tests)."""

import pytest
from django.core.management import call_command

from tracking.models import DEFAULT_EXPERIMENT_ID, Experiment


@pytest.mark.django_db(transaction=True)
def test_a_flushed_database_still_has_the_default_experiment():
    call_command("flush", interactive=False, verbosity=0)
    default = Experiment.objects.get(pk=DEFAULT_EXPERIMENT_ID)
    assert default.name == "Default"
