"""Paths in the artifact proxy's namespace and the ``source`` of a new version.

The proxy's namespace has one folder, ``registry/<model>/``, holding:
- ``registry/<model>/<number>/…``: the files of that version (read-only);
- ``registry/<model>/<upload id>/…`` (any id that is not a number): files staged by PUT for a
  version still to be registered, visible to the model's editors.
Runs' and logged models' files live at ``<experiment id>/…`` (``locate_tracked``). Any other
path (``team-x/uploads/abc/model.pkl``) is an upload owned by whoever first uploaded to it,
seen by them and superusers only (``locate_upload``).

A version's ``source`` may be ``mlflow-artifacts:/registry/<model>/<upload id>[/sub]`` (the
staged files under it become the version's files), ``mlflow-artifacts:/<any upload path>`` (the
caller's uploads under it, shared by reference), a run's or logged model's files in the
tracking store (``runs:/…``, ``models:/m-…`` or their ``mlflow-artifacts:`` location: the version
adopts them by reference, see ``tracking_source``) or an external object-store URI (recorded,
unverified, no files). Local paths, ``file:`` and ``http(s):`` URLs are refused: the registry
never reads its own disk or fetches a URL on a client's behalf.
"""

import re
from dataclasses import dataclass
from urllib.parse import unquote

from django.conf import settings
from django.core.exceptions import ValidationError

from models_app.metadata import validate_artifact_path
from registry_site.mlflow_compat.protocol import invalid

MAX_SOURCE_LENGTH = 1000
EXTERNAL_SCHEMES = {
    "s3", "s3a", "s3n", "gs", "wasb", "wasbs", "abfs", "abfss", "adl", "hdfs", "viewfs", "oss",
}  # fmt: skip
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
_DRIVE = re.compile(r"^[A-Za-z]:")


def _decodings(text: str) -> list[str]:
    """The text and what it becomes when percent-decoded again and again (``%252e`` is ``%2e``
    once decoded, ``.`` twice): a check must hold for every form a later layer might see."""
    forms = [text]
    for _ in range(4):
        decoded = unquote(forms[-1])
        if decoded == forms[-1]:
            break
        forms.append(decoded)
    return forms


def refuse_traversal(text: str, what: str, *, uri: bool = False) -> None:
    """Refuse NUL, backslashes, '..' segments and (unless ``uri``) absolute paths."""
    for form in _decodings(text):
        if "\x00" in form:
            raise invalid(f"The {what} must not contain NUL characters.")
        if "\\" in form:
            raise invalid(f"The {what} must use forward slashes, not backslashes ({text[:100]!r}).")
        if not uri and (form.startswith("/") or _DRIVE.match(form)):
            raise invalid(f"The {what} must be relative, not absolute ({text[:100]!r}).")
        if ".." in form.split("/"):
            raise invalid(f"The {what} must not contain '..' ({text[:100]!r}).")


def check_path(raw: str, what: str = "artifact path") -> str:
    """A path in the proxy's namespace: relative, no traversal in any decoding, no empty or
    '.' parts, no control characters (each part as strict as a version's file paths)."""
    refuse_traversal(raw, what)
    if raw == "":
        return raw
    if len(raw) > 1000:
        raise invalid(f"The {what} is at most 1,000 characters.")
    for part in raw.split("/"):
        if part in ("", "."):
            raise invalid(f"The {what} must not contain empty or '.' parts ({raw[:100]!r}).")
        try:
            validate_artifact_path(part)
        except ValidationError as e:
            raise invalid(" ".join(e.messages)) from None
    return raw


@dataclass(frozen=True)
class Location:
    """A path under registry/: the model as named, then a version number or an upload."""

    model_ref: str
    number: int | None = None  # a version's files
    upload: str = ""  # staged files: "<upload id>[/sub/…]" relative to registry/<model>/
    rest: str = ""  # for versions: the path inside the version


def locate(path: str) -> Location | None:
    """Where a path points, or None when it is not under registry/<model>/<something>."""
    parts = path.split("/") if path else []
    if len(parts) < 3 or parts[0] != "registry":
        return None
    if parts[2].isdigit():
        return Location(parts[1], number=int(parts[2]), rest="/".join(parts[3:]))
    return Location(parts[1], upload="/".join(parts[2:]))


@dataclass(frozen=True)
class Tracked:
    """A path under a run's or a logged model's artifact location:
    ``<experiment>/<run id>/artifacts/…`` or ``<experiment>/models/<model id>/artifacts/…``."""

    experiment_id: str
    run_id: str = ""
    model_id: str = ""
    rest: str = ""  # the path inside the artifact location ("" for its root)


def locate_tracked(path: str) -> Tracked | None:
    """Where a path in the tracking namespace points, or None when it is not one."""
    parts = path.split("/") if path else []
    if not parts or not parts[0].isdigit():
        return None
    if len(parts) >= 3 and parts[2] == "artifacts" and parts[1] != "models":
        return Tracked(parts[0], run_id=parts[1], rest="/".join(parts[3:]))
    if len(parts) >= 4 and parts[1] == "models" and parts[3] == "artifacts":
        return Tracked(parts[0], model_id=parts[2], rest="/".join(parts[4:]))
    return Tracked(parts[0])  # above any run's or model's files: nothing to list or fetch


def locate_upload(path: str) -> str | None:
    """The path itself when it is an upload's (outside registry/ and outside every run's and
    logged model's location), else None."""
    if not path or path.split("/", 1)[0] == "registry" or locate_tracked(path) is not None:
        return None
    return path


@dataclass(frozen=True)
class FromTracking:
    """A source in the tracking store: a run's files under ``path``, or a logged model's files
    (under ``path`` inside them). ``experiment_id`` when the URI names one (it must match)."""

    run_id: str = ""
    model_id: str = ""
    path: str = ""
    experiment_id: str = ""


@dataclass(frozen=True)
class Source:
    uri: str
    external: bool
    location: Location | None = None
    upload: str = ""  # an upload outside registry/: its path in the proxy's namespace
    tracked: FromTracking | None = None


# ---------------------------------------------------------------------------------------------
# Sources in the tracking store (runs:/, models:/m-…, a run's or logged model's mlflow-artifacts
# location): kept apart from the upload folders above.

_MODEL_ID = re.compile(r"^m-[0-9a-f]{32}$")
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


def tracking_source(uri: str, scheme: str, rest: str) -> Source | None:
    """``runs:/<run id>[/<path>]``, ``models:/m-<id>`` or (``rest`` a checked proxy path)
    ``<experiment>/<run id>/artifacts[/<path>]`` or
    ``<experiment>/models/<m-id>/artifacts[/<path>]``; None for anything else."""
    if scheme == "mlflow-artifacts":
        tracked = locate_tracked(rest)
        if tracked is None:
            return None
        if not (tracked.run_id or tracked.model_id):
            raise invalid(
                f"Source {uri[:100]!r} is not a run's or a logged model's artifact location "
                "(<experiment>/<run id>/artifacts/… or <experiment>/models/<model id>/artifacts)."
            )
        return Source(
            uri,
            external=False,
            tracked=FromTracking(
                run_id=tracked.run_id,
                model_id=tracked.model_id,
                path=tracked.rest,
                experiment_id=tracked.experiment_id,
            ),
        )
    if scheme not in ("runs", "models"):
        return None
    path = check_path(rest.lstrip("/").rstrip("/"), "source path")
    head, _, tail = path.partition("/")
    if scheme == "models" and _MODEL_ID.match(head) and not tail:
        return Source(uri, external=False, tracked=FromTracking(model_id=head))
    if scheme == "runs" and _RUN_ID.match(head):
        return Source(uri, external=False, tracked=FromTracking(run_id=head, path=tail))
    if scheme == "models":
        raise invalid(
            f"Source {uri[:100]!r}: a models: source is a logged model, models:/m-<32 hex "
            "digits>. To copy a registered version, download it and register the files."
        )
    raise invalid(f"Source {uri[:100]!r}: a runs: source is runs:/<run id>/<path in the run>.")


def _allowed_external(uri: str, scheme: str, rest: str) -> str:
    """An object-store URI under one of the locations the administrator allows
    (REGISTRY_EXTERNAL_SOURCES): deployment tools that resolve a version fetch from its source
    with their own credentials, so a version must not point them at anyone's bucket."""
    allowed = settings.REGISTRY_EXTERNAL_SOURCES
    if any(f"{scheme}:{rest}".startswith(prefix) for prefix in allowed):
        return uri
    listed = ", ".join(allowed) if allowed else "none are allowed"
    raise invalid(
        f"Source {uri[:100]!r} is outside the object-store locations this registry accepts "
        f"({listed}). Upload the files through the artifact proxy "
        "(mlflow-artifacts:/registry/<model>/<upload id>/…), or ask an administrator to add the "
        "bucket to REGISTRY_EXTERNAL_SOURCES (e.g. s3://your-bucket/)."
    )


def parse_source(raw: str, *, host: str) -> Source:
    uri = raw.strip()
    if not uri:
        raise invalid("Missing value for required parameter 'source'.")
    if len(uri) > MAX_SOURCE_LENGTH:
        raise invalid(f"'source' is at most {MAX_SOURCE_LENGTH} characters.")
    match = _SCHEME.match(uri)
    if match is None or _DRIVE.match(uri):
        raise invalid(
            f"Source {uri[:100]!r} is a local path: the registry cannot read files on your "
            "machine or its own disk. Upload them through the artifact proxy "
            "(mlflow-artifacts:/registry/<model>/<upload id>/…) and register that URI."
        )
    scheme = match.group(1).lower()
    rest = uri[match.end() :]
    if scheme == "mlflow-artifacts":
        if rest.startswith("//"):
            netloc, _, rest = rest[2:].partition("/")
            if netloc and netloc.lower() != host.lower():
                raise invalid(
                    f"Source {uri[:100]!r} names another server ({netloc}); this registry can "
                    "only register files uploaded to it."
                )
        path = check_path(rest.lstrip("/"), "source path")
        if (tracked := tracking_source(uri, scheme, path)) is not None:
            return tracked
        upload = locate_upload(path)
        if upload is not None:  # files uploaded anywhere else (owner checked on registering)
            return Source(uri, external=False, upload=upload)
        location = locate(path)
        if location is None or location.number is not None:
            raise invalid(
                f"Source {uri[:100]!r} is not a folder of uploaded files. Upload the files to "
                "mlflow-artifacts:/registry/<model>/<upload id>/ (an id that is not a number) "
                "and register that URI."
            )
        return Source(uri, external=False, location=location)
    refuse_traversal(rest, "source", uri=True)
    if scheme in EXTERNAL_SCHEMES:
        return Source(_allowed_external(uri, scheme, rest), external=True)
    if scheme in ("http", "https", "file", "ftp", "sftp"):
        raise invalid(
            f"'{scheme}' sources are refused: the registry does not fetch URLs or read local "
            "files for a client. Upload the files through the artifact proxy "
            "(mlflow-artifacts:/registry/<model>/<upload id>/…) and register that URI."
        )
    if (tracked := tracking_source(uri, scheme, rest)) is not None:
        return tracked
    raise invalid(
        f"Unsupported source scheme '{scheme}'. Use mlflow-artifacts:/registry/<model>/<upload "
        f"id> or an object-store URI ({', '.join(sorted(EXTERNAL_SCHEMES))})."
    )
