"""Server-rendered SVG line charts of a metric across versions: no JavaScript needed.

Every label is escaped; each point carries a <title> so hovering shows the version and value;
the axis shows the minimum and maximum and the chart says which direction is better.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from models_app.diff import MetricKey, metric_label
from models_app.templatetags.registry import metric as format_metric

WIDTH = 560
HEIGHT = 200
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 28, 30


@dataclass(frozen=True)
class Point:
    label: str  # e.g. "v12"
    value: float


@dataclass(frozen=True)
class Chart:
    key: MetricKey
    higher_is_better: bool
    points: list[Point]

    @property
    def title(self) -> str:
        return metric_label(self.key)

    def svg(self) -> SafeString:
        return line_chart(self.points, title=self.title, higher_is_better=self.higher_is_better)


def series(rows: Iterable[tuple[int, str, str, float]]) -> dict[MetricKey, list[Point]]:
    """(version number, metric name, split, value) rows → points per metric, by version."""
    by_key: dict[MetricKey, list[tuple[int, float]]] = {}
    for number, name, split, value in rows:
        by_key.setdefault((name, split), []).append((number, value))
    return {
        key: [Point(f"v{number}", value) for number, value in sorted(values)]
        for key, values in sorted(by_key.items())
    }


def line_chart(
    points: Sequence[Point],
    *,
    title: str,
    higher_is_better: bool | None = None,
    width: int = WIDTH,
    height: int = HEIGHT,
    unit: str = "version",
) -> SafeString:
    """An accessible SVG line chart; one point is drawn as a single dot. ``unit`` names what
    the points are, for the summary read out ("3 versions", "200 points")."""
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    values = [p.value for p in points]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    span = high - low or abs(high) or 1.0  # a flat line sits in the middle

    def x(i: int) -> float:
        if len(points) == 1:
            return LEFT + plot_w / 2
        return LEFT + plot_w * i / (len(points) - 1)

    def y(value: float) -> float:
        if high == low:
            return TOP + plot_h / 2
        return TOP + plot_h * (1 - (value - low) / span)

    direction = ""
    if higher_is_better is not None:
        direction = "↑ higher is better" if higher_is_better else "↓ lower is better"
    summary = f"{title}: {len(points)} {unit}{'s' if len(points) != 1 else ''}"
    if values:
        summary += f", from {format_metric(low)} to {format_metric(high)}"
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}"'
        f' role="img" aria-label="{escape(summary)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(summary)}</title>",
        f'<text class="chart-title" x="{LEFT}" y="16">{escape(title)}</text>',
        f'<text class="chart-direction" x="{width - RIGHT}" y="16" text-anchor="end">'
        f"{escape(direction)}</text>",
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}"/>',
        f'<line class="axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}"'
        f' y2="{TOP + plot_h}"/>',
    ]
    if values:
        parts += [
            f'<text class="axis-max" x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end">'
            f"{escape(format_metric(high))}</text>",
            f'<text class="axis-min" x="{LEFT - 6}" y="{TOP + plot_h + 4}" text-anchor="end">'
            f"{escape(format_metric(low))}</text>",
            f'<text class="axis-first" x="{x(0):.1f}" y="{height - 8}" text-anchor="middle">'
            f"{escape(points[0].label)}</text>",
        ]
        if len(points) > 1:
            parts.append(
                f'<text class="axis-last" x="{x(len(points) - 1):.1f}" y="{height - 8}"'
                f' text-anchor="middle">{escape(points[-1].label)}</text>'
            )
            coords = " ".join(f"{x(i):.1f},{y(p.value):.1f}" for i, p in enumerate(points))
            parts.append(f'<polyline class="line" points="{coords}"/>')
        for i, p in enumerate(points):
            parts.append(
                f'<circle class="point" cx="{x(i):.1f}" cy="{y(p.value):.1f}" r="3.5">'
                f"<title>{escape(p.label)}: {escape(format_metric(p.value))}</title></circle>"
            )
    else:
        parts.append(
            f'<text x="{LEFT + plot_w / 2}" y="{TOP + plot_h / 2}" text-anchor="middle">'
            "No values yet</text>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 (every interpolated label is escaped)
