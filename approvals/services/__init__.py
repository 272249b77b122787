"""The review workflow, aliases and comments: every transition one function, one transaction.

The state machine: draft → in_review → approved | rejected → archived; in_review → draft by
withdrawal. Each transition locks the version row, checks the state it expects, and answers a
move the machine does not allow with ``Conflict`` (HTTP 409). Role checks are repeated here (not
only in views) because the JSON and MLflow APIs call the same functions.

One module per concern; callers use the package: ``services.review_approve(...)``."""

from approvals.services.aliases import (
    ALIAS_NAME,
    alias_delete,
    alias_rollback,
    alias_set,
)
from approvals.services.policies import policy_update
from approvals.services.reviews import (
    GateFailure,
    S,
    comment_add,
    revalidation_mark_due,
    review_approve,
    review_reject,
    review_revalidate,
    version_archive,
    version_mark_revalidation_due,
    version_submit,
    version_withdraw,
)
from approvals.services.signatures import SignatureInput

__all__ = [
    "ALIAS_NAME",
    "GateFailure",
    "S",
    "SignatureInput",
    "alias_delete",
    "alias_rollback",
    "alias_set",
    "comment_add",
    "policy_update",
    "revalidation_mark_due",
    "review_approve",
    "review_reject",
    "review_revalidate",
    "version_archive",
    "version_mark_revalidation_due",
    "version_submit",
    "version_withdraw",
]
