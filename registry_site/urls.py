from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from core.rules import LOGIN, PUBLIC, access
from registry_site import account, views

admin.site.site_header = "Model registry administration"
admin.site.site_title = "Model registry admin"
# A database that is down answers 503, not 500 (core/errors.py).
handler500 = "registry_site.views.server_error"

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path(
        "accounts/login/",
        access(PUBLIC)(auth_views.LoginView.as_view(redirect_authenticated_user=True)),
        name="login",
    ),
    path("accounts/logout/", access(PUBLIC)(auth_views.LogoutView.as_view()), name="logout"),
    path(
        "accounts/password/",
        access(LOGIN)(auth_views.PasswordChangeView.as_view()),
        name="password_change",
    ),
    path(
        "accounts/password/done/",
        access(LOGIN)(auth_views.PasswordChangeDoneView.as_view()),
        name="password_change_done",
    ),
    path("accounts/profile/", account.profile, name="profile"),
    path("accounts/tokens/<int:pk>/revoke/", account.token_revoke_view, name="token_revoke"),
    path("accounts/teams/", account.teams, name="teams"),
    path("admin/", admin.site.urls),
    path("api/v1/", include("registry_site.api.urls")),
    path("api/2.0/", include("registry_site.mlflow_compat.urls")),
    path("api/3.0/", include("registry_site.mlflow_compat.urls_v3")),
    path("", include("approvals.urls")),
    path("", include("models_app.urls")),
    path("", include("tracking.urls")),
]
