"""Email notifications of the review workflow, sent after the transaction commits.

Who hears what: eligible reviewers on submission; the author on each decision and comment;
participants (author, commenters, reviewers) on comments; promoters when a version is approved
and when production moves. Nobody is told about their own action, and nobody who does not
hold, when the mail is built, the role it is about (view for decisions and comments, review for
review requests, promote for promotions): a past participant whose access was revoked hears
nothing more of the model. A failing mail server is logged, never turned into a failed
request: the change itself has already been committed.
"""

import logging

from django.conf import settings
from django.core.mail import send_mass_mail
from django.db import transaction
from guardian.shortcuts import get_users_with_perms

from approvals.models import Alias, AliasAssignment, Comment, Review
from models_app.access import Role, users_with_role
from models_app.models import ModelVersion

log = logging.getLogger(__name__)


def _holders(model, role: Role):
    return get_users_with_perms(
        model, only_with_perms_in=[role.perm], with_group_users=True
    ).filter(is_active=True)


def _send(subject: str, body: str, candidates, *, model, role: Role, exclude=()) -> int:
    """Mail those of ``candidates`` (user ids, or a queryset of users) who hold ``role`` on
    ``model`` now, but not the ``exclude``d ones; one query."""
    excluded = {u.pk for u in exclude if u is not None}
    recipients = users_with_role(model, role).filter(pk__in=candidates).exclude(pk__in=excluded)
    addresses = sorted({email for email in recipients.values_list("email", flat=True) if email})
    if not addresses:
        return 0
    messages = [(subject, body, settings.DEFAULT_FROM_EMAIL, [a]) for a in addresses]
    try:
        return send_mass_mail(messages, fail_silently=False)
    except Exception:  # noqa: BLE001 (mail is best effort after commit)
        log.exception("could not send %r to %d recipients", subject, len(addresses))
        return 0


def _url(path: str) -> str:
    return settings.SITE_URL + path


def _version(pk):

    return ModelVersion.objects.select_related("model", "created_by", "submitted_by").get(pk=pk)


def submitted(version_pk: int) -> None:
    v = _version(version_pk)
    review_url = _url(f"/models/{v.model.slug}/versions/{v.number}/review/")
    _send(
        f"[registry] Review requested: {v.model.name} v{v.number}",
        f"{v.submitted_by} submitted {v.model.name} version {v.number} for review.\n\n"
        f"Review it: {review_url}\n",
        _holders(v.model, Role.REVIEW),
        model=v.model,
        role=Role.REVIEW,
        exclude=(v.created_by, v.submitted_by),
    )


def decided(review_pk: int) -> None:

    r = Review.objects.select_related("version__model", "reviewer").get(pk=review_pk)
    v = r.version
    verb = "approved" if r.decision == Review.Decision.APPROVE else "rejected"
    body = f"{r.reviewer} {verb} {v.model.name} version {v.number}."
    if r.reason:
        body += f"\n\nReason: {r.reason}"
    body += f"\n\n{_url(v.get_absolute_url())}\n"
    _send(
        f"[registry] {v.model.name} v{v.number} {verb} by {r.reviewer}",
        body,
        {v.created_by_id, v.submitted_by_id} - {None},
        model=v.model,
        role=Role.VIEW,
        exclude=(r.reviewer,),
    )


def approved(version_pk: int) -> None:
    v = _version(version_pk)
    _send(
        f"[registry] Ready to promote: {v.model.name} v{v.number} approved",
        f"{v.model.name} version {v.number} is approved and may be promoted.\n\n"
        f"{_url(v.model.get_absolute_url())}\n",
        _holders(v.model, Role.PROMOTE),
        model=v.model,
        role=Role.PROMOTE,
    )


def commented(comment_pk: int) -> None:

    c = Comment.objects.select_related("version__model", "author").get(pk=comment_pk)
    v = c.version
    participant_ids = set(
        Comment.objects.filter(version=v).values_list("author_id", flat=True)
    ) | set(Review.objects.filter(version=v).values_list("reviewer_id", flat=True))
    participant_ids |= {v.created_by_id, v.submitted_by_id} - {None}
    about = f" about {c.metric}" if c.metric else ""
    _send(
        f"[registry] New comment on {v.model.name} v{v.number}",
        f"{c.author} commented{about}:\n\n{c.body}\n\n{_url(v.get_absolute_url())}\n",
        participant_ids,
        model=v.model,
        role=Role.VIEW,
        exclude=(c.author,),
    )


def alias_moved(entry_pk: int) -> None:

    e = AliasAssignment.objects.select_related("model", "assigned_by").get(pk=entry_pk)
    if e.alias_name not in Alias.PROTECTED_NAMES:
        return
    what = "rolled back" if e.kind == AliasAssignment.Kind.ROLLBACK else "moved"
    _send(
        f"[registry] {e.model.name}@{e.alias_name} {what} to v{e.version_number}",
        f"{e.assigned_by} {what} {e.alias_name} of {e.model.name} from version "
        f"{e.previous_number} to {e.version_number}.\n\nNote: {e.note or '–'}\n\n"
        f"{_url(e.model.get_absolute_url())}\n",
        _holders(e.model, Role.PROMOTE),
        model=e.model,
        role=Role.PROMOTE,
        exclude=(e.assigned_by,),
    )


def alias_moved_on_commit(entry_pk: int) -> None:
    transaction.on_commit(lambda: alias_moved(entry_pk))
