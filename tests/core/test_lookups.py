"""``field__among=ids``: the rows ``__in`` finds, with the ids written into the statement (no
parameter per id), integers only."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from models_app.models import ModelVersion, RegisteredModel
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture
def models(owner):
    made = [factories.registered_model(owner, f"m{i}") for i in range(4)]
    for m in made:
        factories.version(m, owner)
    return made


def test_among_finds_what_in_finds_on_keys_and_foreign_keys(models):
    ids = [models[0].pk, models[2].pk]
    assert set(RegisteredModel.objects.filter(pk__among=ids)) == {models[0], models[2]}
    found = ModelVersion.objects.filter(model_id__among=ids)
    assert set(found) == set(ModelVersion.objects.filter(model_id__in=ids))
    assert set(ModelVersion.objects.filter(model__among=ids)) == set(found)
    assert list(RegisteredModel.objects.filter(pk__among=[])) == []
    assert RegisteredModel.objects.exclude(pk__among=[]).count() == 4


def test_the_ids_are_written_in_not_bound(models):
    ids = [m.pk for m in models]
    with CaptureQueriesContext(connection) as queries:
        list(ModelVersion.objects.filter(model_id__among=ids, number=1))
    sql = queries.captured_queries[0]["sql"]
    assert ",".join(map(str, ids)) in sql  # one list in the text, whatever its length


@pytest.mark.parametrize("bad", [["1"], [1.0], [True], [None]])
def test_anything_but_integers_is_refused(bad):
    with pytest.raises(TypeError, match="integer ids"):
        list(RegisteredModel.objects.filter(pk__among=bad))


def test_one_id_is_an_equality(models):
    with CaptureQueriesContext(connection) as queries:
        found = list(RegisteredModel.objects.filter(pk__among=[models[1].pk]))
    assert found == [models[1]]
    assert f'= {models[1].pk}' in queries.captured_queries[0]["sql"]
