from django.contrib import admin

from audit.models import AuditEvent, FailedSignIn


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the audit log is append-only and hash-chained."""

    list_display = ("seq", "created_at", "actor_username", "action", "target_label", "ip_address")
    list_filter = ("action",)
    search_fields = ("actor_username", "target_label", "action")
    ordering = ("-seq",)

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs if request.user.is_superuser else qs.none()

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(FailedSignIn)
class FailedSignInAdmin(admin.ModelAdmin):
    """Read-only counts of failed sign-ins per hour; pruned by manage.py prune_failed_sign_ins."""

    list_display = ("window_start", "user", "address", "failures", "first_at", "last_at")
    ordering = ("-window_start",)

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs if request.user.is_superuser else qs.none()

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
