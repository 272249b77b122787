from django.urls import path

from approvals.views import aliases, inbox, policy, review, signatures
from audit import views as audit

app_name = "approvals"

version = "models/<str:slug>/versions/<int:number>/"

urlpatterns = [
    path("reviews/", inbox.inbox, name="inbox"),
    path("audit/", audit.audit_list, name="audit"),
    path("audit.csv", audit.audit_csv, name="audit_csv"),
    path(version + "review/", review.review_page, name="review"),
    path(version + "submit/", review.submit, name="submit"),
    path(version + "withdraw/", review.withdraw, name="withdraw"),
    path(version + "approve/", review.approve, name="approve"),
    path(version + "reject/", review.reject, name="reject"),
    path(version + "comments/", review.comment, name="comment"),
    path(version + "archive/", review.archive, name="archive"),
    path(version + "signatures/", signatures.signature_sheet, name="signatures"),
    path("models/<str:slug>/aliases/", aliases.alias_page, name="aliases"),
    path("models/<str:slug>/aliases/set/", aliases.alias_set, name="alias_set"),
    path("models/<str:slug>/aliases/rollback/", aliases.rollback, name="rollback"),
    path("models/<str:slug>/aliases/<str:name>/delete/", aliases.alias_delete, name="alias_delete"),
    path("models/<str:slug>/policy/", policy.policy_edit, name="policy"),
]

# Webhooks: a model's subscriptions (manage role), and global ones (staff only).
from approvals.views import webhooks  # noqa: E402

hook = "webhooks/<int:pk>/"
urlpatterns += [
    path("models/<str:slug>/webhooks/", webhooks.webhooks_page, name="webhooks"),
    path("models/<str:slug>/" + hook, webhooks.webhook_detail, name="webhook_detail"),
    path("models/<str:slug>/" + hook + "edit/", webhooks.webhook_edit, name="webhook_edit"),
    path("models/<str:slug>/" + hook + "delete/", webhooks.webhook_delete, name="webhook_delete"),
    path("models/<str:slug>/" + hook + "test/", webhooks.webhook_test, name="webhook_test"),
    path(
        "models/<str:slug>/" + hook + "deliveries/<int:delivery>/redeliver/",
        webhooks.webhook_redeliver,
        name="webhook_redeliver",
    ),
    path("webhooks/", webhooks.global_webhooks, name="global_webhooks"),
    path(hook, webhooks.global_webhook_detail, name="global_webhook_detail"),
    path(hook + "edit/", webhooks.global_webhook_edit, name="global_webhook_edit"),
    path(hook + "delete/", webhooks.global_webhook_delete, name="global_webhook_delete"),
    path(hook + "test/", webhooks.global_webhook_test, name="global_webhook_test"),
    path(
        hook + "deliveries/<int:delivery>/redeliver/",
        webhooks.global_webhook_redeliver,
        name="global_webhook_redeliver",
    ),
]
