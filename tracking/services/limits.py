"""MLflow's limits on what a run or logged model may hold (mlflow/utils/validation.py of the
3.x client), checked before anything is written: a call over a limit changes nothing."""

import math
import re
import sys

from django.core.exceptions import ValidationError

MAX_KEY = 250
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
MAX_EXPERIMENT_TAG_VALUE = 20000  # an experiment's tags (its description among them) hold more
MAX_EXPERIMENT_NAME = 500
MAX_RUN_NAME = 250
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
MAX_DATASET_NAME = 500
MAX_DATASET_DIGEST = 36
MAX_DATASET_SOURCE_TYPE = 36
MAX_DATASET_SOURCE = 65535
MAX_DATASET_SCHEMA = 1048575
MAX_DATASET_PROFILE = 16777215
MAX_INPUT_TAG_KEY = 255
MAX_INPUT_TAG_VALUE = 500
MAX_DATASETS_PER_BATCH = 1000
KEY = re.compile(r"^[/\w.\- :]*$")
FLOAT_MAX = sys.float_info.max


def check_key(key: str, what: str) -> str:
    if not key:
        raise ValidationError(f"{what} names must not be empty.")
    if len(key) > MAX_KEY:
        raise ValidationError(f"{what} name {key[:60]!r}… is over {MAX_KEY} characters.")
    if not KEY.match(key) or key.startswith("/") or ".." in key.split("/"):
        raise ValidationError(
            f"Invalid {what.lower()} name {key[:80]!r}: use letters, digits, '_', '-', '.', ' ', "
            "':' and '/' (no '..' part, not starting with '/')."
        )
    return key


def check_value(value: str, limit: int, what: str) -> str:
    if len(value) > limit:
        raise ValidationError(
            f"{what} value is {len(value)} characters; MLflow's limit is {limit}."
        )
    return value


def check_batch(*, metrics: int, params: int, tags: int) -> None:
    if metrics > MAX_METRICS_PER_BATCH:
        raise ValidationError(
            f"A batch may hold at most {MAX_METRICS_PER_BATCH} metrics (got {metrics}); "
            "nothing was logged."
        )
    for count, what in ((params, "params"), (tags, "tags")):
        if count > MAX_PARAMS_TAGS_PER_BATCH:
            raise ValidationError(
                f"A batch may hold at most {MAX_PARAMS_TAGS_PER_BATCH} {what} (got {count}); "
                "nothing was logged."
            )
    if metrics + params + tags > MAX_ENTITIES_PER_BATCH:
        raise ValidationError(
            f"A batch may hold at most {MAX_ENTITIES_PER_BATCH} metrics, params and tags in all "
            f"(got {metrics + params + tags}); nothing was logged."
        )


def stored_value(value: float) -> tuple[float, bool]:
    """A metric value as MLflow stores it: (value, is_nan); NaN is kept as a flag, ±infinity
    as the largest finite double of that sign."""
    if math.isnan(value):
        return 0.0, True
    if math.isinf(value):
        return (FLOAT_MAX if value > 0 else -FLOAT_MAX), False
    return value, False
