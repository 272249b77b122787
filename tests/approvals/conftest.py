import pytest

from models_app.models import RegisteredModel
from tests import factories


@pytest.fixture
def promoter(db):
    return factories.user("promoter")


@pytest.fixture
def reviewer2(db):
    return factories.user("reviewer2")


@pytest.fixture
def model(owner, editor, reviewer, reviewer2, promoter, viewer) -> RegisteredModel:
    m = factories.registered_model(owner, "fraud")
    factories.grant(editor, m, "edit")
    factories.grant(reviewer, m, "review")
    factories.grant(reviewer2, m, "review")
    factories.grant(promoter, m, "promote")
    factories.grant(viewer, m, "view")
    return m


def good_version(model, actor, auc=0.9, **extra):
    """A version that passes the default gates."""
    return factories.version(
        model,
        actor,
        description="Retrained on Q1",
        metrics=[{"name": "auc", "value": auc, "split": "test"}],
        datasets=[{"name": "claims", "role": "train"}],
        files={"model.bin": f"weights-{auc}".encode()},
        **extra,
    )


@pytest.fixture
def make_version(model, editor):
    def make(auc=0.9, **extra):
        return good_version(model, editor, auc=auc, **extra)

    return make
