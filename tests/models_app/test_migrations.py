"""The data migration that moves the roles granted on models out of guardian's generic tables
into the models' direct ones (models_app 0007), forward and back, on real rows written at the
schema before it. It runs on whichever backend the suite runs on, SQLite and PostgreSQL alike
(migrations need a database outside a test transaction, hence transaction=True)."""

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone
from guardian.core import ObjectPermissionChecker

from models_app.access import Role, roles_for
from models_app.models import (
    Artifact,
    ModelMetricKey,
    ModelVersion,
    RegisteredModel,
    RegisteredModelGroupObjectPermission,
    RegisteredModelUserObjectPermission,
    VersionParent,
)

BEFORE = [("models_app", "0005_move_imports_to_exchange")]

pytestmark = pytest.mark.django_db(transaction=True)


def migrate(targets=()):
    """Migrate to ``targets`` and every other app to its newest migration that does not need a
    later one of the targets' apps; the apps as of there, for reading and writing rows through
    the historical models."""
    executor = MigrationExecutor(connection)
    graph = executor.loader.graph
    moved = dict(targets)

    def fits(node) -> bool:
        return all(
            app not in moved or name <= moved[app] for app, name in graph.forwards_plan(node)
        )

    nodes = list(targets)
    for leaf in graph.leaf_nodes():
        if leaf[0] in moved:
            continue
        node = leaf
        while node is not None and not fits(node):
            earlier = [p for p in graph.node_map[node].parents if p.key[0] == leaf[0]]
            node = earlier[0].key if earlier else None
        nodes.append(node or (leaf[0], None))
    executor.migrate(nodes)
    return executor.loader.project_state([n for n in nodes if n[1] is not None]).apps


def generic_rows(apps, kind: str) -> set[tuple]:
    """(user or team id, permission id, content type id, object_pk) of every generic row."""
    principal = "user_id" if kind == "User" else "group_id"
    rows = apps.get_model("guardian", f"{kind}ObjectPermission").objects.values_list(
        principal, "permission_id", "content_type_id", "object_pk"
    )
    return set(rows)


def direct_rows(model) -> set[tuple]:
    """(user or team id, permission id, model id) of every row of a direct table."""
    principal = "user_id" if model is RegisteredModelUserObjectPermission else "group_id"
    return set(model.objects.values_list(principal, "permission_id", "content_object_id"))


def write_grants_before(apps) -> dict:
    """Users, a team, models and grants as the generic tables held them: roles on models
    directly and through the team, a grant on another kind of object, and two rows that name
    no model (a deleted model's id, an id written with a leading zero). Returns the ids and the
    generic rows that should stay where they are."""
    User = apps.get_model("auth", "User")
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    ContentType = apps.get_model("contenttypes", "ContentType")
    Model = apps.get_model("models_app", "RegisteredModel")
    kinds = {
        "User": apps.get_model("guardian", "UserObjectPermission"),
        "Group": apps.get_model("guardian", "GroupObjectPermission"),
    }
    model_type = ContentType.objects.get(app_label="models_app", model="registeredmodel")
    group_type = ContentType.objects.get(app_label="auth", model="group")
    owner, editor, member = (User.objects.create(username=n) for n in ("owner", "editor", "member"))
    team = Group.objects.create(name="reviewers")
    team.user_set.add(member)
    fraud, churn, unshared = (
        Model.objects.create(name=name, name_key=name, slug=name, owner=owner)
        for name in ("fraud", "churn", "unshared")
    )
    stays: dict[str, set[tuple]] = {"User": set(), "Group": set()}

    def grant(principal, codenames, object_pk, content_type=model_type, *, moves=True):
        kind = "Group" if isinstance(principal, Group) else "User"
        for codename in codenames:
            permission = Permission.objects.get(content_type=content_type, codename=codename)
            row = kinds[kind].objects.create(
                **{kind.lower(): principal},
                permission=permission,
                content_type=content_type,
                object_pk=object_pk,
            )
            if not moves:
                stays[kind].add((principal.pk, permission.pk, content_type.pk, row.object_pk))

    every_role = [role.perm for role in Role]
    grant(owner, every_role, str(fraud.pk))
    grant(owner, every_role, str(churn.pk))
    grant(editor, ["view_registeredmodel", "edit_registeredmodel"], str(fraud.pk))
    grant(team, ["view_registeredmodel", "review_registeredmodel"], str(fraud.pk))
    grant(team, ["view_registeredmodel"], str(churn.pk))
    grant(editor, ["change_group"], str(team.pk), group_type, moves=False)
    grant(editor, ["view_registeredmodel"], str(unshared.pk + 1000), moves=False)
    grant(team, ["view_registeredmodel"], f"0{churn.pk}", moves=False)
    return {
        "users": {u.username: u.pk for u in (owner, editor, member)},
        "models": {m.name: m.pk for m in (fraud, churn, unshared)},
        "generic": {kind: generic_rows(apps, kind) for kind in kinds},
        "stays": stays,
    }


EXPECTED_ROLES = {
    ("owner", "fraud"): set(Role),
    ("owner", "churn"): set(Role),
    ("owner", "unshared"): set(),
    ("editor", "fraud"): {Role.VIEW, Role.EDIT},
    ("editor", "churn"): set(),
    ("editor", "unshared"): set(),
    ("member", "fraud"): {Role.VIEW, Role.REVIEW},
    ("member", "churn"): {Role.VIEW},
    ("member", "unshared"): set(),
}


def test_grants_move_to_the_direct_tables_and_back():
    try:
        before = write_grants_before(migrate(BEFORE))

        apps = migrate()  # forward: 0005 creates the direct tables, 0006 moves the rows
        for kind, direct in (
            ("User", RegisteredModelUserObjectPermission),
            ("Group", RegisteredModelGroupObjectPermission),
        ):
            moved = before["generic"][kind] - before["stays"][kind]
            assert direct_rows(direct) == {(p, perm, int(pk)) for p, perm, _, pk in moved}
            assert generic_rows(apps, kind) == before["stays"][kind]
        for (username, name), roles in EXPECTED_ROLES.items():
            user = User.objects.get(pk=before["users"][username])
            model = RegisteredModel.objects.get(pk=before["models"][name])
            assert roles_for(user, model) == roles, (username, name)
            perms = set(ObjectPermissionChecker(user).get_perms(model))  # guardian's reading
            assert perms == {role.perm for role in roles}, (username, name)

        apps = migrate(BEFORE)  # back: every row in the generic tables again, as it was
        assert generic_rows(apps, "User") == before["generic"]["User"]
        assert generic_rows(apps, "Group") == before["generic"]["Group"]
    finally:
        migrate()


def test_existing_lineage_links_get_their_parents_name_and_number():
    """models_app 0008-0010 (issue 15, finding 3): every link keeps its parent's model name
    and number, and whether the parent was in the child's model, for when it is deleted."""
    try:
        apps = migrate([("models_app", "0007_move_grants_to_direct_tables")])
        User = apps.get_model("auth", "User")
        Model = apps.get_model("models_app", "RegisteredModel")
        Version = apps.get_model("models_app", "ModelVersion")
        Link = apps.get_model("models_app", "VersionParent")
        user = User.objects.create(username="maker")
        base, child = (
            Model.objects.create(name=n, name_key=n, slug=n, owner=user) for n in ("base", "kid")
        )
        b1, k1, k2 = (
            Version.objects.create(model=m, number=n, created_by=user)
            for m, n in ((base, 1), (child, 1), (child, 2))
        )
        across = Link.objects.create(child=k1, parent=b1, relation="fine_tuned").pk
        within = Link.objects.create(child=k2, parent=k1, relation="retrained").pk

        migrate()
        rows = VersionParent.objects.values_list(
            "pk", "parent_model_name", "parent_number", "parent_in_child_model"
        )
        assert set(rows) == {(across, "base", 1, False), (within, "kid", 1, True)}
    finally:
        migrate()


def test_existing_artifacts_count_against_their_versions_creator():
    """0014: files uploaded before uploaders were recorded count for whoever registered their
    version (storage quotas, issue 15 finding 20)."""
    try:
        apps = migrate([("models_app", "0013_reservedname")])
        user = apps.get_model("auth", "User").objects.create(username="maker")
        model = apps.get_model("models_app", "RegisteredModel").objects.create(
            name="m", name_key="m", slug="m", owner=user
        )
        version = apps.get_model("models_app", "ModelVersion").objects.create(
            model=model, number=1, created_by=user
        )
        apps.get_model("models_app", "Artifact").objects.create(
            version=version, path="a.bin", size=5, sha256="0" * 64, storage_key="k/1"
        )
        migrate()
        assert Artifact.objects.get().uploaded_by_id == user.pk
    finally:
        migrate()


def test_versions_registered_from_a_logged_model_get_its_id_from_their_audit_event():
    """0028: MLflow 3's ModelVersion.model_id for versions registered before it was kept."""
    try:
        apps = migrate([("models_app", "0027_model_metric_key")])
        user = apps.get_model("auth", "User").objects.create(username="maker")
        model = apps.get_model("models_app", "RegisteredModel").objects.create(
            name="m", name_key="m", slug="m", owner=user
        )
        versions = [
            apps.get_model("models_app", "ModelVersion").objects.create(
                model=model, number=n, created_by=user
            )
            for n in (1, 2, 3)
        ]
        logged = "m-" + "a" * 32
        for seq, (version, after) in enumerate(
            [
                (versions[0], {"source": f"models:/{logged}", "run": "", "logged_model": logged}),
                (versions[1], {"source": "runs:/r1/files", "run": "r1", "logged_model": ""}),
            ],
            start=1,
        ):
            apps.get_model("audit", "AuditEvent").objects.create(
                seq=seq, created_at=timezone.now(), action="version.registered_from_run",
                target_type="modelversion", target_id=str(version.pk), after=after,
                prev_hash="0" * 64, hash=f"{seq:064d}",
            )  # fmt: skip
        migrate()
        assert dict(ModelVersion.objects.values_list("number", "source_model")) == {
            1: logged, 2: "", 3: ""
        }  # fmt: skip
    finally:
        migrate()


def test_each_model_gets_the_counts_of_the_metrics_its_versions_carry():
    """0027: ModelMetricKey rows from the metrics already there."""
    try:
        apps = migrate([("models_app", "0026_version_dataset_model")])
        user = apps.get_model("auth", "User").objects.create(username="maker")
        Model = apps.get_model("models_app", "RegisteredModel")
        Version = apps.get_model("models_app", "ModelVersion")
        Metric = apps.get_model("models_app", "Metric")
        for name, metrics in (("a", [["auc@test", "loss"], ["auc@test"]]), ("b", [["auc@test"]])):
            model = Model.objects.create(name=name, name_key=name, slug=name, owner=user)
            for number, keys in enumerate(metrics, start=1):
                version = Version.objects.create(model=model, number=number, created_by=user)
                for key in keys:
                    metric, _, split = key.partition("@")
                    Metric.objects.create(version=version, name=metric, split=split, value=0.5)
        migrate()
        assert set(
            ModelMetricKey.objects.values_list("model__name", "name", "split", "versions")
        ) == {("a", "auc", "test", 2), ("a", "loss", "", 1), ("b", "auc", "test", 1)}
    finally:
        migrate()
