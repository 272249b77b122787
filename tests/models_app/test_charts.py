"""Server-rendered SVG charts."""

import re
import xml.etree.ElementTree as ET

from models_app.charts import Point, line_chart, series

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 (our own output)


def test_one_point_renders_a_single_dot_with_its_tooltip():
    root = parse(line_chart([Point("v1", 0.91)], title="accuracy", higher_is_better=True))
    circles = root.findall(f"{SVG}circle")
    assert len(circles) == 1
    assert circles[0].find(f"{SVG}title").text == "v1: 0.91"
    assert root.find(f"{SVG}polyline") is None


def test_many_points_draw_a_line_with_min_max_labels_and_direction():
    points = [Point(f"v{i}", 0.5 + i / 100) for i in range(1, 51)]
    svg = line_chart(points, title="loss", higher_is_better=False)
    root = parse(svg)
    assert len(root.findall(f"{SVG}circle")) == 50
    assert len(root.find(f"{SVG}polyline").get("points").split()) == 50
    texts = {t.get("class"): t.text for t in root.findall(f"{SVG}text")}
    assert texts["axis-min"] == "0.51" and texts["axis-max"] == "1"
    assert texts["axis-first"] == "v1" and texts["axis-last"] == "v50"
    assert texts["chart-direction"] == "↓ lower is better"


def test_metric_names_and_labels_are_escaped():
    svg = line_chart(
        [Point("<b>v1</b>", 1.0)], title='<script>alert("x")</script>', higher_is_better=True
    )
    assert "<script>" not in svg and "<b>" not in svg
    assert "&lt;script&gt;" in svg
    parse(svg)  # still well-formed


def test_chart_needs_no_javascript():
    svg = line_chart([Point("v1", 1.0), Point("v2", 2.0)], title="x")
    assert "<script" not in svg and "onload" not in svg and "onmouse" not in svg
    assert 'role="img"' in svg and "<title>" in svg


def test_flat_and_empty_series_still_render():
    flat = parse(line_chart([Point("v1", 3.0), Point("v2", 3.0)], title="flat"))
    ys = {c.get("cy") for c in flat.findall(f"{SVG}circle")}
    assert len(ys) == 1
    empty = line_chart([], title="empty")
    assert "No values yet" in empty


def test_series_groups_rows_by_metric_and_orders_by_version():
    rows = [(3, "acc", "test", 0.7), (1, "acc", "test", 0.5), (2, "loss", "", 0.1)]
    result = series(rows)
    assert list(result) == [("acc", "test"), ("loss", "")]
    assert [p.label for p in result[("acc", "test")]] == ["v1", "v3"]
    assert re.fullmatch(r"v\d+", result[("loss", "")][0].label)
