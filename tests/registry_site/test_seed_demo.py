import pytest
from django.contrib.auth import authenticate
from django.contrib.auth.models import User
from django.core.management import call_command

from registry_site import demo


@pytest.mark.django_db
def test_seed_demo_is_idempotent_and_prints_working_logins(capsys):
    call_command("seed_demo")
    first = capsys.readouterr().out
    count = User.objects.count()
    call_command("seed_demo")
    assert User.objects.count() == count
    assert demo.DEMO_PASSWORD in first
    for d in demo.DEMO_USERS:
        assert d.username in first
        assert authenticate(username=d.username, password=demo.DEMO_PASSWORD) is not None
    assert User.objects.get(username="admin").is_superuser
    assert User.objects.get(username="dana").groups.filter(name="fraud-team").exists()


@pytest.mark.django_db
def test_seed_demo_keeps_a_changed_password(capsys):
    call_command("seed_demo")
    dana = User.objects.get(username="dana")
    dana.set_password("a-new-password-of-danas")
    dana.save()
    call_command("seed_demo")
    assert authenticate(username="dana", password="a-new-password-of-danas") is not None
