from django.urls import path

from models_app.views import browse, compare, datasets, files, model_settings, register, sharing

app_name = "models_app"

version = "models/<str:slug>/versions/<int:number>/"

urlpatterns = [
    path("models/", browse.model_list, name="model_list"),
    path("models/new/", model_settings.model_create, name="model_create"),
    path("models/<str:slug>/", browse.model_detail, name="model_detail"),
    path("models/<str:slug>/edit/", model_settings.model_edit, name="model_edit"),
    path("models/<str:slug>/delete/", model_settings.model_delete, name="model_delete"),
    path("models/<str:slug>/sharing/", sharing.model_sharing, name="model_sharing"),
    path(
        "models/<str:slug>/sharing/remove/",
        sharing.model_sharing_remove,
        name="model_sharing_remove",
    ),
    path("models/<str:slug>/versions.csv", browse.versions_csv, name="versions_csv"),
    path("models/<str:slug>/versions/new/", register.version_create, name="version_create"),
    path(version, browse.version_detail, name="version_detail"),
    path(version + "edit/", register.version_edit, name="version_edit"),
    path(version + "delete/", register.version_delete, name="version_delete"),
    path(version + "files/add/", register.artifact_add, name="artifact_add"),
    path(version + "files/delete/<path:path>", register.artifact_delete, name="artifact_delete"),
    path(version + "files/<path:path>", files.artifact_download, name="artifact_download"),
    path(version + "download.zip", files.version_zip, name="version_zip"),
    path("compare/", compare.compare, name="compare"),
    path("datasets/", datasets.dataset_list, name="dataset_list"),
    path("datasets/new/", datasets.dataset_create, name="dataset_create"),
    path("datasets/<int:pk>/", datasets.dataset_detail, name="dataset_detail"),
    path("datasets/<int:pk>/edit/", datasets.dataset_edit, name="dataset_edit"),
]

# Model cards, lineage graph and dataset impact (views/cards.py, views/lineage.py).
from models_app.views import cards, lineage  # noqa: E402

urlpatterns += [
    path(version + "lineage/", lineage.version_lineage, name="version_lineage"),
    path(version + "card/", cards.version_card, name="version_card"),
    path(version + "card/edit/", cards.card_edit, name="card_edit"),
    path(version + "card.md", cards.card_markdown, name="card_markdown"),
    path(version + "card/print/", cards.card_print, name="card_print"),
    path("datasets/<int:pk>/impact/", lineage.dataset_impact, name="dataset_impact"),
]
