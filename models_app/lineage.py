"""Where a version came from and what came of it: bounded graph queries, a layered layout for
the server-rendered SVG, the same graph as JSON, and a dataset's impact.

Every walk does at most one query per generation, up to LINEAGE_DEPTH generations each way.
Versions of models the viewer may not view appear as "hidden version" (never with a name, a
link or an id) and are not walked past.
"""

from dataclasses import dataclass, field

from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from models_app.access import visible_models
from models_app.models import Dataset, ModelVersion, VersionDataset, VersionParent
from models_app.selectors import deleted_parent_named, version_links

LINEAGE_DEPTH = 5
MAX_PER_LAYER = 25  # nodes drawn per column; the rest are summed up in one "+N more" node
MAX_DERIVED = 500  # versions listed per generation on a dataset's impact page

# Geometry of the SVG (user units): generations are rows, top to bottom; a generation wider
# than PER_ROW nodes wraps onto more rows, so the graph grows down the page, not sideways.
NODE_W, NODE_H, GAP_X, GAP_Y, ROW_GAP, PAD, PER_ROW = 200, 46, 24, 58, 16, 12, 4


# ---------------------------------------------------------------------------------------------
# Generations (the JSON API and the list under the graph)


@dataclass(frozen=True)
class LineageNode:
    version: ModelVersion | None  # None when the user may not view it, or it was deleted
    note: str  # how it is linked to the previous generation, e.g. "fine-tuned from fraud v2"
    deleted: bool = False
    # A deleted version's model name and number, when the user may know them.
    deleted_model: str = ""
    deleted_number: int | None = None

    @property
    def deleted_name(self) -> str:
        return f"{self.deleted_model} v{self.deleted_number}" if self.deleted_model else ""


def walk_lineage(version: ModelVersion, user, *, up: bool) -> list[list[LineageNode]]:
    """Ancestors (up) or descendants, breadth-first, one query per generation, at most
    LINEAGE_DEPTH generations. A hidden version is shown but not walked past."""
    near, far = ("child", "parent") if up else ("parent", "child")
    labels = {version.pk: f"{version.model.name} v{version.number}"}
    frontier = {version.pk}
    seen = {version.pk}
    generations = []
    for _ in range(LINEAGE_DEPTH):
        links = version_links(user, far).filter(**{f"{near}_id__in": frontier})
        generation, frontier = [], set()
        for link in links:
            node = getattr(link, far)
            via = labels[getattr(link, f"{near}_id")]
            relation = link.get_relation_display().lower()
            if node is None:  # a deleted parent (children are deleted with their links)
                note = f"{via} was {relation} it"
                kept = (link.parent_model_name, link.parent_number) if link.name_known else ()
                generation.append(LineageNode(None, note, True, *kept))
                continue
            if node.pk in seen:
                continue
            seen.add(node.pk)
            if link.is_visible:
                labels[node.pk] = f"{node.model.name} v{node.number}"
                frontier.add(node.pk)
            note = f"{via} was {relation} it" if up else f"{relation} {via}"
            generation.append(LineageNode(node if link.is_visible else None, note))
        if generation:
            generations.append(generation)
        if not frontier:
            break
    return generations


# ---------------------------------------------------------------------------------------------
# The graph

RELATION_SHORT = {
    VersionParent.Relation.FINE_TUNED: "fine-tuned",
    VersionParent.Relation.RETRAINED: "retrained",
    VersionParent.Relation.DISTILLED: "distilled",
}


@dataclass
class Node:
    id: str  # "v<pk>" for versions, "d<pk>" for datasets, "hidden-<n>", "deleted-<link pk>",
    # "more-<layer>"
    kind: str  # "focus", "version", "hidden", "deleted", "dataset" or "more"
    layer: int  # rows: ancestors and their data < 0 (the version) < descendants
    label: str = ""
    detail: str = ""
    url: str = ""
    title: str = ""
    version: ModelVersion | None = None
    dataset: Dataset | None = None
    count: int = 0  # for "more"
    x: int = 0
    y: int = 0

    @property
    def generation(self) -> int:
        return abs(self.layer)

    @property
    def sort_key(self):
        order = {"focus": 0, "version": 1, "hidden": 2, "deleted": 2, "more": 3, "dataset": 4}
        order = order[self.kind]
        return (order, self.label.lower(), -(self.version.number if self.version else 0))


@dataclass
class Edge:
    source: str
    target: str
    label: str
    kind: str  # "lineage" or "data"
    path: str = ""
    label_x: int = 0
    label_y: int = 0


@dataclass
class LineageGraph:
    focus: ModelVersion
    depth: int
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)
    ancestors: int = 0  # generations found each way
    descendants: int = 0
    width: int = 0
    height: int = 0

    def of_kind(self, *kinds: str) -> list[Node]:
        return sorted(
            (n for n in self.nodes.values() if n.kind in kinds), key=lambda n: (n.layer, n.sort_key)
        )


def _version_node(version: ModelVersion, layer: int, kind: str = "version") -> Node:
    return Node(
        id=f"v{version.pk}",
        kind=kind,
        layer=layer,
        label=f"{version.model.name} v{version.number}",
        url=version.get_absolute_url(),
        title=f"{version.model.name} v{version.number} ({version.get_status_display().lower()})",
        version=version,
    )


class _Builder:
    def __init__(self, focus: ModelVersion, user, depth: int, per_layer: int):
        self.graph = LineageGraph(focus=focus, depth=depth)
        self.user, self.depth, self.per_layer = user, depth, per_layer
        self.layer_counts: dict[int, int] = {}
        self.hidden_ids: dict[int, str] = {}  # pk -> opaque id, never shown
        self.add(_version_node(focus, 0, "focus"))

    def add(self, node: Node) -> bool:
        """Place a node in its layer unless the layer is full (then it counts as "more")."""
        count = self.layer_counts.get(node.layer, 0)
        if count >= self.per_layer:
            more_id = f"more-{node.layer}"
            more = self.graph.nodes.setdefault(
                more_id, Node(id=more_id, kind="more", layer=node.layer)
            )
            more.count += 1
            more.label = f"+{more.count} more"
            more.detail = "see the version pages"
            return False
        self.layer_counts[node.layer] = count + 1
        self.graph.nodes[node.id] = node
        return True

    def walk(self) -> None:
        """Ancestors and descendants together: one query per generation for both ways."""
        frontiers = {True: {self.graph.focus.pk}, False: {self.graph.focus.pk}}  # up, down
        for generation in range(1, self.depth + 1):
            where = Q()
            if frontiers[True]:
                where |= Q(child_id__in=frontiers[True])
            if frontiers[False]:
                where |= Q(parent_id__in=frontiers[False])
            links = (
                VersionParent.objects.filter(where)
                .select_related("parent__model", "child__model")
                .annotate(
                    parent_visible=Exists(
                        visible_models(self.user).filter(pk=OuterRef("parent__model_id"))
                    ),
                    child_visible=Exists(
                        visible_models(self.user).filter(pk=OuterRef("child__model_id"))
                    ),
                    name_known=deleted_parent_named(self.user),
                )
            )
            current = {True: frontiers[True], False: frontiers[False]}
            frontiers = {True: set(), False: set()}
            steps = []
            for link in links:
                if link.child_id in current[True]:
                    steps.append((True, link))
                if link.parent_id in current[False]:
                    steps.append((False, link))
            steps.sort(key=lambda s: self._order(*s))
            for up, link in steps:
                if self._step(up, link, generation):
                    frontiers[up].add((link.parent if up else link.child).pk)
            if not frontiers[True] and not frontiers[False]:
                break

    @staticmethod
    def _order(up: bool, link: VersionParent):
        far = link.parent if up else link.child
        if far is None:  # a deleted parent: after the others
            return (not up, "\uffff", 0, link.pk)
        return (not up, far.model.name_key, -far.number, link.pk)

    def _step(self, up: bool, link: VersionParent, generation: int) -> bool:
        """Draw the far end of a link; True if it is a new visible node to walk on from."""
        far = link.parent if up else link.child
        visible = link.parent_visible if up else link.child_visible
        layer = -generation if up else generation
        near_id = f"v{link.child_id if up else link.parent_id}"
        if far is None:  # a deleted parent: drawn, never walked past
            node = Node(
                id=f"deleted-{link.pk}",
                kind="deleted",
                layer=layer,
                label=f"{link.parent_label} (deleted)" if link.name_known else "deleted version",
                detail="deleted",
            )
            if self.add(node):
                self.graph.ancestors = max(self.graph.ancestors, generation)
                relation = RELATION_SHORT.get(link.relation, link.relation)
                self.graph.edges.append(Edge(node.id, near_id, relation, "lineage"))
            return False
        node_id = self.hidden_ids.get(far.pk, f"v{far.pk}")
        new = False
        if node_id not in self.graph.nodes:
            if visible:
                node = _version_node(far, layer)
            else:
                node_id = self.hidden_ids[far.pk] = f"hidden-{len(self.hidden_ids) + 1}"
                node = Node(
                    id=node_id,
                    kind="hidden",
                    layer=layer,
                    label="hidden version",
                    detail="you cannot view its model",
                )
            if not self.add(node):
                return False
            new = visible
            if up:
                self.graph.ancestors = max(self.graph.ancestors, generation)
            else:
                self.graph.descendants = max(self.graph.descendants, generation)
        relation = RELATION_SHORT.get(link.relation, link.relation)
        source, target = (node_id, near_id) if up else (near_id, node_id)
        self.graph.edges.append(Edge(source, target, relation, "lineage"))
        return new

    def datasets_and_aliases(self) -> None:
        versions = {n.version.pk: n for n in self.graph.nodes.values() if n.version is not None}
        held: dict[int, list[str]] = {}
        # Aliases (approvals, which builds on this app) through their reverse relation.
        held_rows = ModelVersion.objects.filter(pk__in=versions).values_list("pk", "aliases__name")
        for version_id, name in held_rows:
            if name is not None:
                held.setdefault(version_id, []).append(name)
        for pk, node in versions.items():
            parts = [node.version.get_status_display().lower()]
            parts += [f"@{name}" for name in sorted(held.get(pk, []))]
            node.detail = " · ".join(parts)
        # Data is shown for the version and its ancestors (where it came from); descendants'
        # data is on their own pages, so the graph stays readable.
        upstream = [pk for pk, node in versions.items() if node.layer <= 0]
        links = (
            VersionDataset.objects.filter(version_id__in=upstream)
            .select_related("dataset")
            .order_by("dataset__name", "role", "version_id")
        )
        # A dataset goes one row above the first version that uses it.
        for link in sorted(links, key=lambda lk: (versions[lk.version_id].layer, lk.dataset.name)):
            node_id = f"d{link.dataset_id}"
            if node_id not in self.graph.nodes:
                placed = self.add(
                    Node(
                        id=node_id,
                        kind="dataset",
                        layer=versions[link.version_id].layer - 1,
                        label=link.dataset.name,
                        detail="dataset"
                        + (
                            f" · {link.dataset.row_count:,} rows" if link.dataset.row_count else ""
                        ),  # fmt: skip
                        url=link.dataset.get_absolute_url(),
                        title=link.dataset.uri or link.dataset.name,
                        dataset=link.dataset,
                    )
                )
                if not placed:
                    continue
            self.graph.edges.append(Edge(node_id, f"v{link.version_id}", link.role, "data"))


def lineage_graph(
    version: ModelVersion, user, *, depth: int = LINEAGE_DEPTH, per_layer: int = MAX_PER_LAYER
) -> LineageGraph:
    """The version, its ancestors and descendants up to ``depth`` generations, and the datasets
    of the version and its visible ancestors: 2 queries plus at most one per generation (both
    ways at once)."""
    builder = _Builder(version, user, depth, per_layer)
    builder.walk()
    builder.datasets_and_aliases()
    _layout(builder.graph)
    return builder.graph


def _layout(graph: LineageGraph) -> None:
    layers: dict[int, list[Node]] = {}
    for node in graph.nodes.values():
        layers.setdefault(node.layer, []).append(node)
    widest = min(PER_ROW, max(len(nodes) for nodes in layers.values()))
    full_width = widest * (NODE_W + GAP_X) - GAP_X
    y = PAD
    for layer in sorted(layers):
        nodes = sorted(layers[layer], key=lambda n: n.sort_key)
        for start in range(0, len(nodes), PER_ROW):
            row = nodes[start : start + PER_ROW]
            row_width = len(row) * (NODE_W + GAP_X) - GAP_X
            x = PAD + (full_width - row_width) // 2
            for node in row:
                node.x, node.y = x, y
                x += NODE_W + GAP_X
            y += NODE_H + ROW_GAP
        y += GAP_Y - ROW_GAP
    graph.width = PAD * 2 + full_width
    graph.height = y - GAP_Y + PAD
    for edge in graph.edges:
        a, b = graph.nodes.get(edge.source), graph.nodes.get(edge.target)
        if a is None or b is None:
            continue
        if b.y > a.y:  # downwards: the usual case
            x1, y1, x2, y2 = a.x + NODE_W // 2, a.y + NODE_H, b.x + NODE_W // 2, b.y
            bend = max((y2 - y1) // 2, 20)
            edge.path = f"M{x1},{y1} C{x1},{y1 + bend} {x2},{y2 - bend} {x2},{y2}"
        else:  # same row or upwards (a cycle): from one side to the other
            left = b.x < a.x
            x1, y1 = (a.x if left else a.x + NODE_W), a.y + NODE_H // 2
            x2, y2 = (b.x + NODE_W if left else b.x), b.y + NODE_H // 2
            bend = 40 if not left else -40
            edge.path = f"M{x1},{y1} C{x1 + bend},{y1} {x2 - bend},{y2} {x2},{y2}"
        edge.label_x, edge.label_y = (x1 + x2) // 2 + 4, (y1 + y2) // 2 + 4


def truncate(value: str, limit: int = 28) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


# ---------------------------------------------------------------------------------------------
# Dataset impact: which versions (and which production models) used this data?


def _production(field: str = "pk"):
    """Whether the version holds the production alias (read through the alias's reverse
    relation: approvals builds on this app)."""
    return Exists(ModelVersion.objects.filter(pk=OuterRef(field), aliases__name="production"))


@dataclass
class DerivedVersion:
    version: ModelVersion
    parent: ModelVersion
    relation: str
    generation: int
    in_production: bool


def dataset_links(dataset: Dataset, user) -> QuerySet:
    """Every use of the dataset by a version the user may view, with ``in_production``."""
    return (
        VersionDataset.objects.filter(dataset=dataset, model__in=visible_models(user))
        .select_related("version__model", "version__created_by")
        .annotate(in_production=_production("version_id"))
        .order_by("version__model__name_key", "-version__number", "role")
    )


def dataset_summary(dataset: Dataset, user) -> dict:
    versions = ModelVersion.objects.filter(
        model__in=visible_models(user), dataset_links__dataset=dataset
    )
    counts = versions.aggregate(
        versions=Count("pk", distinct=True),
        models=Count("model", distinct=True),
        approved=Count("pk", filter=Q(status=ModelVersion.Status.APPROVED), distinct=True),
    )
    production = list(
        versions.filter(aliases__name="production")
        .select_related("model")
        .distinct()
        .order_by("model__name_key")[:100]
    )
    return counts | {"production": production}


def derived_versions(dataset: Dataset, user, *, depth: int = LINEAGE_DEPTH) -> list:
    """Versions descended (fine-tuned, retrained, distilled) from a version that used the
    dataset, up to ``depth`` generations, among models the user may view: one query each."""
    visible = visible_models(user)
    direct = ModelVersion.objects.filter(model__in=visible, dataset_links__dataset=dataset)
    frontier = direct.values("pk")
    seen: set[int] = set()
    found: list[DerivedVersion] = []
    for generation in range(1, depth + 1):
        links = (
            VersionParent.objects.filter(parent_id__in=frontier, child__model__in=visible)
            .exclude(child_id__in=direct.values("pk"))
            .select_related("child__model", "parent__model")
            .annotate(in_production=_production("child_id"))
            .order_by("child__model__name_key", "-child__number", "pk")[:MAX_DERIVED]
        )
        ids = []
        for link in links:
            if link.child_id in seen:
                continue
            seen.add(link.child_id)
            ids.append(link.child_id)
            found.append(
                DerivedVersion(
                    link.child,
                    link.parent,
                    link.get_relation_display().lower(),
                    generation,
                    link.in_production,
                )  # fmt: skip
            )
        if not ids:
            break
        frontier = ids
    return found
