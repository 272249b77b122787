"""Admin for the catalogue. Object permissions (roles) are managed on each model's
"Object permissions" page (django-guardian). Non-superuser staff see only models they may view;
all changes to models go through the services (the admin edits no catalogue rows directly)."""

from django.contrib import admin
from guardian.admin import GuardedModelAdmin

from models_app.access import visible_models
from models_app.models import Dataset, RegisteredModel


@admin.register(RegisteredModel)
class RegisteredModelAdmin(GuardedModelAdmin):
    list_display = ("name", "owner", "team", "visibility", "task", "updated_at")
    list_filter = ("visibility", "task", "team")
    search_fields = ("name", "description")
    readonly_fields = (
        "name",
        "slug",
        "owner",
        "team",
        "task",
        "visibility",
        "description",
        "next_version_number",
        "created_at",
        "updated_at",
    )
    fields = readonly_fields

    def get_queryset(self, request):
        return visible_models(request.user).select_related("owner", "team")

    def has_add_permission(self, request):
        return False  # models are created in the registry, where creation is audited

    def has_delete_permission(self, request, obj=None):
        return False  # deletion is audited and removes files: use the model's page


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ("name", "uri", "row_count", "created_by", "created_at")
    search_fields = ("name", "uri")
    readonly_fields = (
        "name",
        "uri",
        "digest",
        "row_count",
        "description",
        "created_by",
        "created_at",
    )
    fields = readonly_fields

    def has_add_permission(self, request):
        return False  # datasets are registered through the registry, where it is audited

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
