"""The access helpers read grants with hand-written SQL (models_app/access.py says why). These
tests hold them to guardian's own answers, and the model/token lookups to the ORM's, on every
backend the suite runs on."""

import pytest
from django.contrib.auth.models import User
from guardian.core import ObjectPermissionChecker
from guardian.shortcuts import assign_perm, get_objects_for_user

from models_app.access import (
    Role,
    get_model_by_name_for_user,
    get_model_for_user,
    granted_pairs,
    models_with_role,
    roles_for,
    users_with_role,
    visible_models,
)
from models_app.models import RegisteredModel
from registry_site.models import ApiToken
from registry_site.tokens import authenticate_token, token_create
from tests import factories


@pytest.fixture
def world(owner, editor, reviewer, viewer, outsider):
    """Private and internal models, roles granted directly and through teams, a team that
    grants nothing, and a global permission that must open nothing."""
    private = factories.registered_model(owner, "private-model")
    internal = factories.registered_model(owner, "internal-model", visibility="internal")
    other = factories.registered_model(outsider, "outsiders-model")
    factories.grant(editor, private, "edit")
    factories.grant(factories.team("reviewers", reviewer, viewer), private, "review")
    factories.grant(viewer, other, "view")
    factories.team("empty-team", outsider)
    assign_perm("models_app.view_registeredmodel", outsider)  # global: grants nothing here
    return [private, internal, other]


def guardian_roles(user: User, model: RegisteredModel) -> set[Role]:
    perms = set(ObjectPermissionChecker(user).get_perms(model))
    roles = {role for role in Role if role.perm in perms}
    if model.visibility == RegisteredModel.Visibility.INTERNAL:
        roles.add(Role.VIEW)
    return roles


def guardian_models(user: User, role: Role) -> set[int]:
    granted = get_objects_for_user(
        user, role.perm, klass=RegisteredModel, accept_global_perms=False, with_superuser=False
    )
    return {m.pk for m in granted}


PERSONAS = ["owner", "editor", "reviewer", "viewer", "outsider"]


@pytest.mark.parametrize("persona", PERSONAS)
def test_roles_match_guardians_answer_for_every_model(request, world, persona):
    user = request.getfixturevalue(persona)
    for model in world:
        assert roles_for(user, model) == guardian_roles(user, model), model.name


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("role", list(Role))
def test_models_with_a_role_match_guardians_answer(request, world, persona, role):
    user = request.getfixturevalue(persona)
    expected = guardian_models(user, role)
    if role == Role.VIEW:
        expected |= {m.pk for m in world if m.visibility == RegisteredModel.Visibility.INTERNAL}
    assert {m.pk for m in models_with_role(user, role)} == expected
    if role == Role.VIEW:
        assert {m.pk for m in visible_models(user)} == expected


def test_a_revoked_grant_stops_counting_at_once(world, editor):
    from guardian.shortcuts import remove_perm

    private = world[0]
    assert Role.EDIT in roles_for(editor, private)
    remove_perm(Role.EDIT.perm, editor, private)
    assert Role.EDIT not in roles_for(editor, private)
    assert Role.VIEW in roles_for(editor, private)


def test_model_lookup_loads_the_same_row_as_the_orm(world, owner, reviewer):
    team = factories.team("owners-team", owner)
    RegisteredModel.objects.filter(pk=world[0].pk).update(team=team)
    expected = RegisteredModel.objects.select_related("owner", "team").get(pk=world[0].pk)
    for found in (
        get_model_for_user(owner, expected.slug),
        get_model_by_name_for_user(owner, "PRIVATE-model"),
    ):
        for field in RegisteredModel._meta.concrete_fields:
            assert getattr(found, field.attname) == getattr(expected, field.attname), field.name
        assert found.owner == owner and found.owner.username == "owner"
        assert found.team == team and found.team.name == "owners-team"
        assert found.user_roles == set(Role)
    assert get_model_by_name_for_user(reviewer, "internal-model").team is None


def test_token_lookup_loads_the_token_and_its_user(owner):
    token, secret = token_create(actor=owner, user=owner, name="ci", scope="write")
    found = authenticate_token(secret)
    expected = ApiToken.objects.select_related("user").get(pk=token.pk)
    for field in ApiToken._meta.concrete_fields:
        if field.name != "last_used_at":  # the lookup itself records the use
            assert getattr(found, field.attname) == getattr(expected, field.attname), field.name
    assert found.user == owner and found.user.get_username() == "owner"
    assert found.user.date_joined == owner.date_joined


def test_the_batch_questions_give_the_same_answers_as_roles_for(world, superuser):
    """users_with_role (whom to notify) and granted_pairs (the webhook worker's batch check)
    ask the other way round; both agree with roles_for."""
    users = list(User.objects.all())
    for model in world:
        for role in Role:
            expected = {u.pk for u in users if role in roles_for(u, model)}
            assert set(users_with_role(model, role).values_list("pk", flat=True)) == expected
    pairs = granted_pairs(Role.REVIEW, [u.pk for u in users], [m.pk for m in world])
    assert pairs == {
        (u.pk, m.pk)
        for u in users
        for m in world
        if not u.is_superuser and Role.REVIEW in roles_for(u, m)
    }
