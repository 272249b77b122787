"""A version's lineage as a server-rendered graph, and a dataset's impact: which versions, and
which production models, used this data. Read-only; versions of models the viewer may not view
never appear by name."""

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET

from core.rules import LOGIN, access
from models_app import lineage
from models_app.access import Role, version_route
from models_app.lineage import NODE_H, NODE_W, truncate
from models_app.models import Dataset, ModelVersion

IMPACT_PAGE_SIZE = 50


def _svg_nodes(graph: lineage.LineageGraph) -> list[dict]:
    return [
        {
            "node": node,
            "label": truncate(node.label, 25),
            "detail": truncate(node.detail, 32),
            "text_x": node.x + 10,
            "label_y": node.y + 19,
            "detail_y": node.y + 36,
        }
        for node in graph.nodes.values()
    ]


@version_route(Role.VIEW, methods=["GET"])
def version_lineage(request: HttpRequest, version: ModelVersion) -> HttpResponse:
    """Anyone who may view the model (404 otherwise); versions of models they may not view
    appear as "hidden version" and are not followed further."""
    graph = lineage.lineage_graph(version, request.user)
    model = version.model
    return render(
        request,
        "models_app/version_lineage.html",
        {
            "nav_section": "models",
            "breadcrumbs": [
                ("Models", reverse("models_app:model_list")),
                (model.name, model.get_absolute_url()),
                (f"v{version.number}", version.get_absolute_url()),
                ("Lineage", None),
            ],
            "model": model,
            "version": version,
            "graph": graph,
            "svg_nodes": _svg_nodes(graph),
            "node_w": NODE_W,
            "node_h": NODE_H,
            "ancestors": sorted(
                (n for n in graph.of_kind("version", "hidden", "deleted", "more") if n.layer < 0),
                key=lambda n: (-n.layer, n.sort_key),
            ),
            "descendants": [n for n in graph.of_kind("version", "hidden", "more") if n.layer > 0],
            "datasets": graph.of_kind("dataset"),
            "depth": graph.depth,
        },
    )


@access(LOGIN)
@require_GET
def dataset_impact(request: HttpRequest, pk: int) -> HttpResponse:
    """Any signed-in user (datasets are shared); lists only versions of models they may view,
    and says nothing, not even how many, about the others."""
    dataset = get_object_or_404(Dataset.objects.select_related("created_by"), pk=pk)
    page = Paginator(lineage.dataset_links(dataset, request.user), IMPACT_PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    summary = lineage.dataset_summary(dataset, request.user)
    derived = lineage.derived_versions(dataset, request.user)
    return render(
        request,
        "models_app/dataset_impact.html",
        {
            "nav_section": "datasets",
            "breadcrumbs": [
                ("Datasets", reverse("models_app:dataset_list")),
                (dataset.name, dataset.get_absolute_url()),
                ("Impact", None),
            ],
            "dataset": dataset,
            "page": page,
            "summary": summary,
            "derived": derived,
            "derived_in_production": [d for d in derived if d.in_production],
            "in_production": len(summary["production"]) + sum(d.in_production for d in derived),
            "depth": lineage.LINEAGE_DEPTH,
        },
    )
