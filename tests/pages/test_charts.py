"""The dashboard's SVG charts: well-formed, scaled, escaped."""

import xml.etree.ElementTree as ET

from markupsafe import Markup

from server.charts import bar_chart, stacked_bar

NS = "{http://www.w3.org/2000/svg}"


def parse(svg) -> ET.Element:
    assert isinstance(svg, Markup)
    return ET.fromstring(str(svg))


def bars(root: ET.Element) -> list[float]:
    """Widths of the value bars (the rects that carry a title), in order."""
    return [float(r.get("width")) for r in root.iter(f"{NS}rect")
            if r.find(f"{NS}title") is not None]


def test_bar_chart_scales_to_the_largest_value_and_prints_values():
    root = parse(bar_chart([("Cengkareng", 50), ("Tambora", 100), ("Kalideres", 0)],
                           title="Selesai", width=340))
    assert root.get("viewBox").startswith("0 0 340 ") and root.get("width") == "100%"
    assert root.get("role") == "img" and root.find(f"{NS}title").text == "Selesai"
    track = 340 - 64
    assert bars(root) == [track / 2, track, 0]
    texts = [t.text for t in root.iter(f"{NS}text")]
    assert texts == ["Cengkareng", "50", "Tambora", "100", "Kalideres", "0"]


def test_bar_chart_with_a_fixed_scale_and_suffix():
    root = parse(bar_chart([("A", 25.5), ("B", 150)], title="Persen", max_value=100,
                           suffix="%", width=200))
    assert bars(root) == [round(136 * 25.5 / 150, 1), 136]  # 150 > max: the scale grows
    assert [t.text for t in root.iter(f"{NS}text")][1::2] == ["25,5%", "150%"]
    root = parse(bar_chart([("A", 25)], title="Persen", max_value=100, width=164))
    assert bars(root) == [25]


def test_negative_and_missing_values_draw_as_zero():
    root = parse(bar_chart([("A", -5), ("B", None), ("C", 10)], title="t"))
    assert bars(root)[:2] == [0, 0]


def test_text_is_escaped_so_labels_cannot_inject_markup():
    evil = '<script>alert(1)</script>" onload="x'
    svg = bar_chart([(evil, 3)], title=evil)
    assert "<script>" not in svg and 'onload="x' not in svg
    root = parse(svg)
    assert root.find(f"{NS}title").text == evil  # the text survives, as text
    svg = stacked_bar([(evil, 1)], 2, title=evil)
    assert "<script>" not in svg
    parse(svg)


def test_an_empty_chart_says_so():
    root = parse(bar_chart([], title="Konflik"))
    assert [t.text for t in root.iter(f"{NS}text")] == ["Belum ada data"]


def test_stacked_bar_segments_add_up_to_their_share_of_the_total():
    root = parse(stacked_bar([("Selesai", 30), ("Dikunjungi", 20), ("Dikembalikan", 10)],
                             100, title="Kemajuan", width=300))
    segs = [r for r in root.iter(f"{NS}rect") if r.find(f"{NS}title") is not None]
    assert [float(r.get("width")) for r in segs] == [90, 60, 30]
    assert [float(r.get("x")) for r in segs] == [0, 90, 150]
    legend = [t.text for t in root.iter(f"{NS}text")]
    assert legend == ["Selesai 30", "Dikunjungi 20", "Dikembalikan 10"]
    # more than the total is scaled to fit; nothing assigned draws only the track
    over = parse(stacked_bar([("a", 30), ("b", 30)], 40, title="t", width=120, legend=False))
    assert [float(r.get("width")) for r in over.iter(f"{NS}rect")
            if r.find(f"{NS}title") is not None] == [60, 60]
    empty = parse(stacked_bar([("a", 0)], 0, title="t", legend=False))
    assert len(list(empty.iter(f"{NS}rect"))) == 1
