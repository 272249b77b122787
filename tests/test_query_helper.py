"""The query-count helper itself must catch an N+1."""

import pytest
from django.contrib.auth.models import User

from tests import factories


@pytest.mark.django_db
def test_constant_queries_helper_catches_a_query_per_row(assert_constant_queries):
    factories.user("a")

    def n_plus_one():
        for u in User.objects.all():
            list(u.groups.all())

    with pytest.raises(AssertionError, match="query count grew"):
        assert_constant_queries(n_plus_one, lambda: factories.user("b"))


@pytest.mark.django_db
def test_constant_queries_helper_accepts_a_prefetching_loop(assert_constant_queries):
    factories.user("a")

    def prefetched():
        for u in User.objects.prefetch_related("groups"):
            list(u.groups.all())

    assert assert_constant_queries(prefetched, lambda: factories.user("b")) == 2
