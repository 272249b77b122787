"""The fault suite's kill points (core/faults.py) do nothing unless the suite switches them on."""

import signal

import pytest

from core import faults


@pytest.fixture
def kills(monkeypatch) -> list:
    sent = []
    monkeypatch.setattr(faults.os, "kill", lambda pid, sig: sent.append((pid, sig)))
    return sent


@pytest.fixture
def armed(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    (tmp_path / faults.ARMED_FILE).write_text("files-stored\n")
    return tmp_path / faults.ARMED_FILE


def test_an_armed_point_is_inert_while_the_hooks_are_off(settings, armed, kills):
    settings.REGISTRY_FAULT_HOOKS = False
    faults.point("files-stored")
    assert kills == []
    assert armed.exists()


def test_the_hooks_are_off_by_default(settings):
    assert settings.REGISTRY_FAULT_HOOKS is False


def test_with_the_hooks_on_only_the_armed_point_kills_and_only_once(settings, armed, kills):
    settings.REGISTRY_FAULT_HOOKS = True
    faults.point("alias-moved")
    assert kills == []
    faults.point("files-stored")
    assert [sig for _, sig in kills] == [signal.SIGKILL]
    assert not armed.exists()
    faults.point("files-stored")  # the client's retry
    assert len(kills) == 1


def test_with_the_hooks_on_and_nothing_armed_nothing_happens(settings, tmp_path, kills):
    settings.REGISTRY_FAULT_HOOKS = True
    settings.DATA_DIR = tmp_path
    faults.point("files-stored")
    assert kills == []
