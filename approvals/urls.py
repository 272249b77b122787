from django.urls import path

from approvals.views import aliases, audit, inbox, policy, review

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
    path("models/<str:slug>/aliases/", aliases.alias_page, name="aliases"),
    path("models/<str:slug>/aliases/set/", aliases.alias_set, name="alias_set"),
    path("models/<str:slug>/aliases/rollback/", aliases.rollback, name="rollback"),
    path("models/<str:slug>/aliases/<str:name>/delete/", aliases.alias_delete, name="alias_delete"),
    path("models/<str:slug>/policy/", policy.policy_edit, name="policy"),
]
