"""Turning catalogue objects into the API's JSON answers (plain dicts, checked against the
answer schemas in registry_site.api.schemas on the way out)."""

from django.db.models import Prefetch
from django.http import HttpRequest

from approvals import expiry
from approvals.models import Alias, Review, Signature
from approvals.selectors import version_signatures
from models_app import storage
from models_app.access import Role
from models_app.models import Artifact, ModelVersion, RegisteredModel
from models_app.selectors import link_out, version_links
from models_app.summary import STATUS_COUNTS

from .helpers import api_url


def username(user) -> str | None:
    return user.get_username() if user is not None else None


def model_summary(request: HttpRequest, model: RegisteredModel) -> dict:
    """Needs the model with ``with_summary()`` (owner, team) and its tags prefetched."""
    return {
        "name": model.name,
        "slug": model.slug,
        "description": model.description,
        "task": model.task,
        "visibility": model.visibility,
        "owner": model.owner.get_username(),
        "team": model.team.name if model.team_id else None,
        "tags": {t.key: t.value for t in model.tags.all()},
        "latest_version": model.latest_number or None,
        "version_count": model.version_count,
        "created_at": model.created_at,
        "updated_at": model.updated_at,
        "url": api_url(request, "model", model.slug),
    }


def model_detail(request: HttpRequest, model: RegisteredModel) -> dict:
    summary = (
        RegisteredModel.objects.filter(pk=model.pk).with_summary().prefetch_related("tags").get()
    )
    counts = {status.value: getattr(summary, column) for status, column in STATUS_COUNTS.items()}
    aliases = Alias.objects.filter(model=model).values_list("name", "version__number")
    roles = getattr(model, "user_roles", set())
    return model_summary(request, summary) | {
        "your_roles": [role.value for role in Role if role in roles],
        "aliases": dict(aliases),
        "versions_by_status": counts,
    }


def file_out(request: HttpRequest, artifact: Artifact, version: ModelVersion) -> dict:
    return {
        "path": artifact.path,
        "size": artifact.size,
        "sha256": artifact.sha256,
        "content_type": artifact.content_type,
        "created_at": artifact.created_at,
        "download_url": download_url(request, artifact, version),
    }


def download_url(request: HttpRequest, artifact: Artifact, version: ModelVersion) -> str:
    """The API's download URL (an absolute one, for deployment tools)."""
    return api_url(request, "file", version.model.slug, version.number, artifact.path)


def presigned_or_api_url(request: HttpRequest, artifact: Artifact, version: ModelVersion) -> str:
    """On S3 a short-lived presigned URL (no token needed), else the API's download URL."""
    filename = artifact.path.rsplit("/", 1)[-1]
    url = storage.presigned_url(artifact.storage_key, filename=filename)
    return url or download_url(request, artifact, version)


def version_summary(request: HttpRequest, version: ModelVersion) -> dict:
    """Needs ``created_by`` selected and ``metrics`` prefetched (``for_grid()``)."""
    return {
        "number": version.number,
        "status": version.status,
        "description": version.description,
        "framework": version.framework,
        "framework_version": version.framework_version,
        "created_by": version.created_by.get_username(),
        "created_at": version.created_at,
        "submitted_at": version.submitted_at,
        "decided_at": version.decided_at,
        "content_digest": version.content_digest,
        "metrics": [
            {"name": m.name, "value": m.value, "split": m.split, "step": m.step}
            for m in version.metrics.all()
        ],
        "url": api_url(request, "version", version.model.slug, version.number),
    }


def review_out(review: Review) -> dict:
    return {
        "reviewer": review.reviewer.get_username(),
        "decision": review.decision,
        "reason": review.reason,
        "override_reason": review.override_reason,
        "created_at": review.created_at,
        "discarded": review.discarded_at is not None,
        "gates": review.gates or [],
        "content_digest": review.content_digest,
        "round": review.round,
        "via_token": review.via_token or None,
    }


def signature_out(signature: Signature) -> dict:
    """A signature from approvals.selectors (standing and verification read)."""
    return {
        "printed_name": signature.printed_name,
        "signer": signature.signer_username,
        "signed_at": signature.signed_at,
        "meaning": signature.meaning,
        "reason": signature.reason,
        "action": signature.action,
        "alias": signature.alias_name,
        "content_digest": signature.content_digest,
        "standing": signature.standing,
        "verifies": signature.verifies,
        "problems": signature.problems,
        "audit_seq": signature.audit_seq,
        "audit_hash": signature.audit_hash,
    }


def version_detail(request: HttpRequest, version: ModelVersion, *, file_urls=download_url) -> dict:
    """Everything about one version. Parents in models the caller may not view appear as
    ``{"hidden": true}``, deleted ones as ``{"deleted": true}``, as on the version page."""
    model = version.model
    version = (
        ModelVersion.objects.filter(pk=version.pk)
        .select_related("created_by", "submitted_by")
        .prefetch_related(
            "metrics",
            "params",
            "tags",
            "artifacts",
            "aliases",
            "dataset_links__dataset",
            Prefetch("reviews", Review.objects.select_related("reviewer").order_by("created_at")),
            Prefetch("parent_links", version_links(request.user, "parent")),
        )
        .get()
    )
    version.model = model
    state = expiry.expiry_of(version, expiry.valid_days_of(model))
    return version_summary(request, version) | {
        "revalidation_due": state.due,
        "approval_expires_at": state.expires_at,
        "model": model.name,
        "python_version": version.python_version,
        "requirements": version.requirements,
        "signature": version.signature,
        "source": {
            "run": version.source_run,
            "repository": version.source_repository,
            "commit": version.source_commit,
        },
        "params": {p.key: p.value for p in version.params.all()},
        "tags": {t.key: t.value for t in version.tags.all()},
        "datasets": [
            {"id": link.dataset_id, "name": link.dataset.name, "role": link.role}
            for link in version.dataset_links.all()
        ],
        "parents": [
            link_out(link) | {"relation": link.relation} for link in version.parent_links.all()
        ],
        "submitted_by": username(version.submitted_by),
        "files": [
            file_out(request, a, version) | {"download_url": file_urls(request, a, version)}
            for a in version.artifacts.all()
        ],
        "aliases": sorted(a.name for a in version.aliases.all()),
        "reviews": [review_out(r) for r in version.reviews.all()],
        "signatures": [signature_out(s) for s in version_signatures(version)],
    }
