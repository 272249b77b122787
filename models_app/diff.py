"""Side-by-side comparison of versions, as plain data for templates.

Pure functions over values (and over versions whose relations are already prefetched): no
queries, no requests. The compare page uses them, and so will the review page (a version
against the one before it).

Every comparison is against the *first* column: a metric's delta is ``value - first value``,
coloured by the metric's direction; a key is "added" when the first column lacks it, "removed"
when this column lacks it, "changed" when both have it with different values.
"""

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

ADDED = "added"
REMOVED = "removed"
CHANGED = "changed"
SAME = "same"

BETTER = "delta-better"
WORSE = "delta-worse"

MetricKey = tuple[str, str]  # (name, split)


def metric_label(key: MetricKey) -> str:
    name, split = key
    return f"{name} ({split})" if split else name


def metric_keys(maps: Iterable[Mapping[MetricKey, float]]) -> list[MetricKey]:
    """The union of metric (name, split) keys, sorted."""
    keys: set[MetricKey] = set()
    for m in maps:
        keys.update(m)
    return sorted(keys)


def delta_class(delta: float | None, higher_is_better: bool) -> str:
    """CSS class of a delta: better, worse, or nothing for no change / no comparison."""
    if delta is None or delta == 0:
        return ""
    improved = delta > 0 if higher_is_better else delta < 0
    return BETTER if improved else WORSE


@dataclass(frozen=True)
class MetricCell:
    value: float | None
    delta: float | None = None
    css: str = ""


@dataclass(frozen=True)
class MetricRow:
    name: str
    split: str
    higher_is_better: bool
    cells: list[MetricCell]

    @property
    def label(self) -> str:
        return metric_label((self.name, self.split))


def metric_table(
    maps: Sequence[Mapping[MetricKey, float]], higher_is_better: Callable[[str], bool]
) -> list[MetricRow]:
    """One row per metric key, one cell per column; deltas against the first column."""
    rows = []
    for key in metric_keys(maps):
        direction = higher_is_better(key[0])
        base = maps[0].get(key) if maps else None
        cells = []
        for i, m in enumerate(maps):
            value = m.get(key)
            if i == 0 or value is None or base is None:
                cells.append(MetricCell(value))
            else:
                delta = value - base
                cells.append(MetricCell(value, delta, delta_class(delta, direction)))
        rows.append(MetricRow(key[0], key[1], direction, cells))
    return rows


@dataclass(frozen=True)
class DiffRow:
    """One key of a two-way diff."""

    key: str
    status: str
    before: str | None
    after: str | None


def dict_diff(before: Mapping[str, str], after: Mapping[str, str]) -> list[DiffRow]:
    """before → after, every key of either side, sorted by key."""
    rows = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        rows.append(DiffRow(key, _status(key in before, key in after, old == new), old, new))
    return rows


def _status(in_base: bool, in_other: bool, equal: bool) -> str:
    if in_base and in_other:
        return SAME if equal else CHANGED
    if in_other:
        return ADDED
    if in_base:
        return REMOVED
    return ""


@dataclass(frozen=True)
class DiffCell:
    value: str | None
    status: str  # "" for the first column and for a key neither side has


@dataclass(frozen=True)
class DiffTableRow:
    key: str
    cells: list[DiffCell]

    @property
    def differs(self) -> bool:
        return any(cell.status not in (SAME, "") for cell in self.cells)


def dict_table(dicts: Sequence[Mapping[str, str]]) -> list[DiffTableRow]:
    """N columns of key → value; each cell's status is against the first column."""
    if not dicts:
        return []
    base = dicts[0]
    rows = []
    for key in sorted(set().union(*dicts)):
        cells = [DiffCell(base.get(key), "")]
        for d in dicts[1:]:
            status = _status(key in base, key in d, base.get(key) == d.get(key))
            cells.append(DiffCell(d.get(key), status))
        rows.append(DiffTableRow(key, cells))
    return rows


def flatten_json(value, prefix: str = "") -> dict[str, str]:
    """A JSON document as dotted paths → JSON-encoded leaves, so signatures can be diffed."""
    if isinstance(value, dict) and value:
        flat: dict[str, str] = {}
        for key, item in value.items():
            flat.update(flatten_json(item, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    if isinstance(value, list) and value:
        flat = {}
        for i, item in enumerate(value):
            flat.update(flatten_json(item, f"{prefix}[{i}]"))
        return flat
    if value is None and not prefix:
        return {}
    return {prefix or "(root)": json.dumps(value, sort_keys=True, ensure_ascii=False)}


def version_facts(version) -> dict[str, dict[str, str]]:
    """The diffable facts of a version (relations prefetched: params, dependencies, tags,
    dataset_links__dataset), by section title."""
    datasets: dict[str, list[str]] = {}
    for link in version.dataset_links.all():
        datasets.setdefault(link.dataset.name, []).append(link.role)
    return {
        "Parameters": {p.key: p.value for p in version.params.all()},
        "Dependencies": {d.name: d.specifier or "(any)" for d in version.dependencies.all()},
        "Datasets": {name: ", ".join(sorted(roles)) for name, roles in datasets.items()},
        "Tags": {t.key: t.value for t in version.tags.all()},
        "Signature": flatten_json(version.signature),
        "Environment": {
            k: v
            for k, v in (
                ("framework", version.framework),
                ("framework version", version.framework_version),
                ("python", version.python_version),
            )
            if v
        },
    }


def compare_sections(versions: Sequence) -> list[tuple[str, list[DiffTableRow]]]:
    """Each section of version_facts() as an N-column diff table."""
    facts = [version_facts(v) for v in versions]
    if not facts:
        return []
    return [(title, dict_table([f[title] for f in facts])) for title in facts[0]]
