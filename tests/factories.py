"""Small explicit factories for tests."""

from django.contrib.auth.models import Group, User

PASSWORD = "correct-horse-battery-staple"


def user(username: str, **fields) -> User:
    u = User.objects.create_user(
        username=username, email=f"{username}@example.org", password=PASSWORD, **fields
    )
    return u


def team(name: str, *members: User) -> Group:
    g = Group.objects.create(name=name)
    g.user_set.add(*members)
    return g


def registered_model(owner: User, name: str = "fraud-detector", *, signatures=False, **fields):
    """A model created through the service, so its owner holds manage.

    Its review policy has electronic signatures off unless ``signatures=True`` (tests of signing
    ask for them; the others decide without a password, as before signatures existed)."""
    from approvals.models import ReviewPolicy
    from models_app import services

    model = services.model_create(actor=owner, name=name, **fields)
    # By id: the model instance the test holds then caches no policy.
    ReviewPolicy.objects.update_or_create(
        model_id=model.pk, defaults={"signatures_required": signatures}
    )
    return model


def signing(meaning: str = "", password: str = PASSWORD):
    """A signature as its signer gives it (the first meaning of the action's default list
    unless one is named)."""
    from approvals.services import SignatureInput

    return SignatureInput(password=password, meaning=meaning or "Approved for production use")


def version(model, actor: User, *, metrics=None, files=None, **metadata):
    """A version with optional metrics ({"accuracy": 0.9} or rows) and files ({path: bytes})."""
    from models_app import services, storage
    from models_app.metadata import parse_metadata

    if metrics is not None:
        metadata["metrics"] = metrics
    incoming = [storage.incoming_from_bytes(p, c) for p, c in (files or {}).items()]
    return services.version_create(
        actor=actor, model=model, metadata=parse_metadata(metadata), files=incoming
    )


def grant(principal, model, role) -> None:
    """Give a user or group a role (and the roles it implies) on a model."""
    from guardian.shortcuts import assign_perm

    from models_app.access import Role

    for r in Role(role).implied:
        assign_perm(r.perm, principal, model)
