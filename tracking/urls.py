from django.urls import path

from tracking.views import experiments, runs, sharing

app_name = "tracking"

urlpatterns = [
    path("experiments/", experiments.experiment_list, name="experiment_list"),
    path(
        "experiments/<str:experiment_id>/",
        experiments.experiment_detail,
        name="experiment_detail",
    ),
    path(
        "experiments/<str:experiment_id>/sharing/",
        sharing.experiment_sharing,
        name="experiment_sharing",
    ),
    path(
        "experiments/<str:experiment_id>/sharing/remove/",
        sharing.experiment_sharing_remove,
        name="experiment_sharing_remove",
    ),
    path("runs/<str:run_id>/", runs.run_detail, name="run_detail"),
]
