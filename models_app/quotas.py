"""Storage quotas: how many bytes one account's uploads, and one model's files, may add up to.

``settings.REGISTRY_QUOTA_USER_BYTES`` and ``REGISTRY_QUOTA_MODEL_BYTES`` (0: unlimited). A
user's usage is the size of the artifacts they uploaded (``Artifact.uploaded_by``); a model's is
the size of its versions' artifacts. Usage counts what storage holds: several rows may name the
same stored bytes (one upload or run file registered as several versions), so each storage key
counts once per user and once per model (``charged_keys``). Other apps add what they hold on
top through ``count`` (the MLflow API's staged uploads, the runs' files, registered in their
AppConfig.ready(): this module imports no higher layer), leaving out keys an artifact charged to
the same user already counts.

A version may also adopt files already stored (``adopted``: MLflow uploads, a run's files,
registered by reference): their uploader was charged when uploading, so they count against the
model only, and only the keys the model does not count yet (the same files registered again
add nothing).

Each upload is checked twice: ``precheck`` from the size the request declares, before its body
is read, and ``check`` inside the transaction that records the files, after locking the model's
row and then the user's row, so two uploads at once cannot both take the last free bytes. Over
quota raises ``core.errors.QuotaExceeded`` (413 when this upload is larger than what is left,
507 when nothing is left); the callers delete what they stored.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Exists, Max, OuterRef, QuerySet, Sum

from core.errors import QuotaExceeded
from models_app.models import Artifact, RegisteredModel

# (bytes held for a user id, bytes held for a model id), from other apps.
_counters: list[tuple[Callable[[int], int], Callable[[int], int]]] = []
# The rows (with ``storage_key``) whose bytes those counters count for a model id.
_model_rows: list[Callable[[int], QuerySet]] = []


def count(
    *,
    by_user: Callable[[int], int],
    by_model: Callable[[int], int],
    model_rows: Callable[[int], QuerySet] | None = None,
) -> None:
    """Add bytes another app stores for users and models (call from AppConfig.ready()).
    ``model_rows``: the rows ``by_model`` counts, so that a version adopting their keys does
    not count them again."""
    _counters.append((by_user, by_model))
    if model_rows is not None:
        _model_rows.append(model_rows)


def user_limit() -> int:
    return settings.REGISTRY_QUOTA_USER_BYTES


def model_limit() -> int:
    return settings.REGISTRY_QUOTA_MODEL_BYTES


def distinct_bytes(rows: QuerySet) -> int:
    """The bytes ``rows`` (of any table with ``storage_key`` and ``size``) name, each stored key
    once: one query, grouped by key in SQL."""
    per_key = rows.order_by().values("storage_key").annotate(key_size=Max("size"))
    return per_key.aggregate(n=Sum("key_size"))["n"] or 0


def charged_to(user_id: int) -> Exists:
    """For other apps' counters (filter or exclude on it): an artifact charged to ``user_id``
    names the row's storage key, so its bytes count there already."""
    return Exists(
        Artifact.objects.filter(uploaded_by_id=user_id, storage_key=OuterRef("storage_key"))
    )


def user_usage(user_id: int) -> int:
    own = distinct_bytes(Artifact.objects.filter(uploaded_by_id=user_id))
    return own + sum(by_user(user_id) for by_user, _ in _counters)


def model_usage(model_id: int) -> int:
    own = distinct_bytes(Artifact.objects.filter(version__model_id=model_id))
    return own + sum(by_model(model_id) for _, by_model in _counters)


def new_to_model(model_id: int, adopted: Sequence) -> int:
    """The bytes files a version adopts (``storage.StoredFile``) add to the model's usage: those
    of keys that neither its versions' artifacts nor the rows other apps count for it name, each
    key once. One query."""
    sizes: dict[str, int] = {}
    for f in adopted:
        sizes[f.storage_key] = max(sizes.get(f.storage_key, 0), f.size)
    if not sizes:
        return 0
    holding = [Artifact.objects.filter(version__model_id=model_id)]
    holding += [rows(model_id) for rows in _model_rows]
    held = [
        rows.filter(storage_key__in=sizes).order_by().values_list("storage_key", flat=True)
        for rows in holding
    ]
    # (The union takes the first model's Meta.ordering again unless told otherwise.)
    counted = set(held[0].union(*held[1:]).order_by())
    return sum(size for key, size in sizes.items() if key not in counted)


@dataclass
class Usage:
    used: int
    limit: int  # 0: unlimited

    @property
    def percent(self) -> int:
        return min(100, round(100 * self.used / self.limit)) if self.limit else 0


def usage_of(user) -> Usage:
    """The account page's figure."""
    return Usage(user_usage(user.pk), user_limit())


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:,} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    raise AssertionError


def _lower(whose: str) -> str:
    return whose[0].lower() + whose[1:]


def _refuse(
    whose: str, used: int, limit: int, incoming: int, setting: str, what: str = "This upload"
) -> None:
    left = max(limit - used, 0)
    if incoming <= left:
        return
    who = f"An administrator can raise the limit ({setting})."
    if left == 0:
        raise QuotaExceeded(
            f"{whose} storage quota is used up: {_size(used)} of {_size(limit)} are stored. "
            f"Nothing was stored. Delete files or drafts you no longer need. {who}",
            exhausted=True,
        )
    raise QuotaExceeded(
        f"{what} ({_size(incoming)}) is larger than what is left of {_lower(whose)} "
        f"storage quota: {_size(used)} of {_size(limit)} are used, {_size(left)} left. "
        f"Nothing was stored. {who}",
        exhausted=False,
    )


def precheck(
    *,
    user,
    model: RegisteredModel | None,
    incoming: int,
    adopted: Sequence = (),
    freed_user: int = 0,
    freed_model: int = 0,
) -> None:
    """Refuse an upload of ``incoming`` bytes, or the ``adopted`` files, that cannot fit, before
    reading or storing anything (no locks: ``check`` decides for good)."""
    if incoming == 0 and not adopted:
        return
    _compare(user, model, incoming, adopted, freed_user, freed_model)


def enabled() -> bool:
    return bool(user_limit() or model_limit())


def lock(*, user, model: RegisteredModel) -> None:
    """Lock what the quotas in force count against: the model's row, then the user's (always in
    this order, so two uploads never wait on each other crosswise). ``user=None``: the model's
    row only."""
    if model_limit():
        RegisteredModel.objects.select_for_update().filter(pk=model.pk).values_list("pk").first()
    if user_limit() and user is not None:
        get_user_model().objects.select_for_update().filter(pk=user.pk).values_list("pk").first()


def check(
    *,
    user,
    model: RegisteredModel,
    incoming: int,
    adopted: Sequence = (),
    freed_user: int = 0,
    freed_model: int = 0,
) -> None:
    """Inside the transaction that records ``incoming`` new bytes and the ``adopted`` files
    (``freed_*``: bytes the same change removes, e.g. a replaced file): lock the model's row,
    then the user's (only if new bytes come in: adopted files are not charged again), and
    refuse if the quota does not leave room. Nothing is locked while quotas are off."""
    if not (user_limit() or model_limit()) or (incoming == 0 and not adopted):
        return
    lock(user=user if incoming else None, model=model)
    _compare(user, model, incoming, adopted, freed_user, freed_model)


def _compare(
    user, model, incoming: int, adopted: Sequence, freed_user: int, freed_model: int
) -> None:
    """Refuse ``incoming`` bytes and the ``adopted`` files' bytes new to the model if the
    model's quota leaves no room, then ``incoming`` if the user's leaves none."""
    if model_limit() and model is not None:
        to_model = incoming + new_to_model(model.pk, adopted)
        if to_model:
            _refuse(
                f"The model {model.name}'s",
                model_usage(model.pk) - freed_model,
                model_limit(),
                to_model,
                "REGISTRY_QUOTA_MODEL_BYTES",
                "This upload" if incoming else "This registration",
            )
    if user_limit() and incoming:
        _refuse(
            "Your",
            user_usage(user.pk) - freed_user,
            user_limit(),
            incoming,
            "REGISTRY_QUOTA_USER_BYTES",
        )
