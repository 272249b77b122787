from django.contrib import admin

from tracking.models import Experiment, LoggedModel, Run


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ["pk", "name", "creator", "lifecycle_stage"]
    search_fields = ["name"]
    readonly_fields = ["name", "creator", "lifecycle_stage", "creation_time", "last_update_time"]

    def has_add_permission(self, request) -> bool:
        return False  # created through the MLflow API, by a service that audits it

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "experiment", "creator", "status", "lifecycle_stage"]
    search_fields = ["id", "name"]
    readonly_fields = [f.name for f in Run._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(LoggedModel)
class LoggedModelAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "experiment", "creator", "status"]
    search_fields = ["id", "name"]
    readonly_fields = [f.name for f in LoggedModel._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
