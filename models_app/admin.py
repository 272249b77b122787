"""Admin for the catalogue. Object permissions (roles) are managed on each model's
"Object permissions" page (django-guardian). Non-superuser staff see only models they may view;
all changes to models go through the services (the admin edits no catalogue rows directly)."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from guardian.admin import GuardedModelAdmin
from guardian.forms import GroupObjectPermissionsForm, UserObjectPermissionsForm

from core.errors import Conflict
from models_app.access import Role, visible_models
from models_app.models import Dataset, RegisteredModel, ReservedName
from models_app.services import name_release
from models_app.sharing import sharing_set
from models_app.teams import team_members_set, user_teams_set


def _roles_form(base, actor):
    """Guardian's object-permission form, limited to the registry's roles and saved through
    sharing_set(): role implications, the last-manager rule and the audit event apply."""

    class RolesForm(base):
        def get_obj_perms_field_choices(self):
            return [(role.perm, role.label) for role in Role]

        def save_obj_perms(self):
            chosen = set(self.cleaned_data[self.get_obj_perms_field_name()])
            roles = {role for role in Role if role.perm in chosen}
            principal = getattr(self, "user", None) or self.group
            sharing_set(actor=actor, model=self.obj, principal=principal, roles=roles)

    return RolesForm


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

    def save_model(self, request, obj, form, change):
        """Nothing to save: every field is read-only here. Saving the row anyway would move
        updated_at, an answer of the MLflow API that no audit event would mark
        (registry_site/mlflow_compat/cache.py)."""

    # Object permissions (roles) in the admin: superusers only; everyone else uses the model's
    # sharing page, which checks the manage role.
    def obj_perms_manage_view(self, request, object_pk):
        self._superuser_only(request)
        return super().obj_perms_manage_view(request, object_pk)

    def obj_perms_manage_user_view(self, request, object_pk, user_id):
        self._superuser_only(request)
        return self._refusals_as_messages(
            request,
            lambda: super(RegisteredModelAdmin, self).obj_perms_manage_user_view(
                request, object_pk, user_id
            ),
        )

    def obj_perms_manage_group_view(self, request, object_pk, group_id):
        self._superuser_only(request)
        return self._refusals_as_messages(
            request,
            lambda: super(RegisteredModelAdmin, self).obj_perms_manage_group_view(
                request, object_pk, group_id
            ),
        )

    @staticmethod
    def _refusals_as_messages(request, view):
        try:
            return view()
        except Conflict as e:
            messages.error(request, str(e))
            return redirect(request.path)

    def get_obj_perms_manage_user_form(self, request):
        return _roles_form(UserObjectPermissionsForm, request.user)

    def get_obj_perms_manage_group_form(self, request):
        return _roles_form(GroupObjectPermissionsForm, request.user)

    @staticmethod
    def _superuser_only(request) -> None:
        if not request.user.is_superuser:
            raise PermissionDenied("Only administrators manage roles here; use the sharing page.")

    def has_add_permission(self, request):
        return False  # models are created in the registry, where creation is audited

    def has_delete_permission(self, request, obj=None):
        return False  # deletion is audited and removes files: use the model's page


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ("name", "uri", "row_count", "created_by", "team", "created_at")
    search_fields = ("name", "uri")
    readonly_fields = (
        "name",
        "uri",
        "digest",
        "row_count",
        "description",
        "created_by",
        "team",
        "created_at",
    )
    fields = readonly_fields

    def has_add_permission(self, request):
        return False  # datasets are registered through the registry, where it is audited

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ReservedName)
class ReservedNameAdmin(admin.ModelAdmin):
    """Names of deleted and renamed models. Deleting one here releases the name (audited as
    name.released): a new model may then take it, and whatever resolves it reaches that
    model. Superusers only."""

    list_display = ("name", "why", "model_id", "reserved_at", "reserved_by")
    list_filter = ("why",)
    search_fields = ("name", "name_key")
    readonly_fields = ("name", "name_key", "why", "model_id", "reserved_at", "reserved_by")
    fields = readonly_fields

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request):
        return False  # names are reserved by deleting or renaming a model

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def delete_model(self, request, obj):
        name_release(actor=request.user, reserved=obj)

    def delete_queryset(self, request, queryset):
        for reserved in queryset:
            name_release(actor=request.user, reserved=reserved)


# Teams are auth groups and their roles reach their members: the admin's two places that change
# membership (a user's teams, a team's members) save it through models_app.teams, audited.


class AuditedUserAdmin(UserAdmin):
    """Django's user admin; the user's teams are saved through user_teams_set()."""

    def save_related(self, request, form, formsets, change):
        teams = form.cleaned_data.pop("groups", None)  # not saved by save_m2m() then
        super().save_related(request, form, formsets, change)
        if teams is not None:
            user_teams_set(actor=request.user, user=form.instance, teams=teams)


class TeamAdminForm(forms.ModelForm):
    members = forms.ModelMultipleChoiceField(
        queryset=User.objects.order_by("username"),
        required=False,
        widget=FilteredSelectMultiple("members", is_stacked=False),
    )

    class Meta:
        model = Group
        fields = ("name", "permissions")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["members"].initial = self.instance.user_set.all()


class AuditedTeamAdmin(GroupAdmin):
    """Django's group admin with the team's members, saved through team_members_set()."""

    form = TeamAdminForm

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        team_members_set(actor=request.user, team=form.instance, users=form.cleaned_data["members"])


admin.site.unregister(User)
admin.site.register(User, AuditedUserAdmin)
admin.site.unregister(Group)
admin.site.register(Group, AuditedTeamAdmin)
