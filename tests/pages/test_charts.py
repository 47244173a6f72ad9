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


# --------------------------------------------------------------------------- the pages' charts
# server.web.charts: HTML text, SVG bars without a viewBox (text keeps its size at any width).


def _html(markup) -> ET.Element:
    assert isinstance(markup, Markup)
    return ET.fromstring(f"<div>{markup}</div>")


def test_page_bars_are_html_text_beside_svg_bars_without_a_viewbox():
    from server.web.charts import bar_chart as page_bar_chart

    root = _html(page_bar_chart([("Cengkareng", 50), ("Tambora", 100), ("Kalideres", -3)],
                                title="Selesai"))
    svgs = list(root.iter(f"{NS}svg"))
    assert len(svgs) == 3
    for svg in svgs:
        assert svg.get("viewBox") is None and svg.get("style") is None
        assert "chart" in svg.get("class") and svg.get("role") == "img"
        assert not list(svg.iter(f"{NS}text"))  # no text inside the SVG
    widths = [[r.get("width") for r in svg.iter(f"{NS}rect")][1] for svg in svgs]
    assert widths == ["50%", "100%", "0%"]
    labels = [li.find("span").text for li in root.iter("li")]
    values = [li.findall("span")[1].text for li in root.iter("li")]
    assert labels == ["Cengkareng", "Tambora", "Kalideres"] and values == ["50", "100", "-3"]
    pct = _html(page_bar_chart([("A", 12.5)], title="P", max_value=100, suffix="%"))
    assert [li.findall("span")[1].text for li in pct.iter("li")] == ["12,5%"]
    assert [r.get("width") for r in pct.iter(f"{NS}rect")][1] == "12.5%"
    assert "Belum ada data" in page_bar_chart([], title="Kosong")


def test_page_stacked_bar_has_an_html_legend_and_percent_segments():
    from server.web.charts import stacked_bar as page_stacked_bar

    root = _html(page_stacked_bar([("Selesai", 25), ("Dikunjungi", 25), ("Dikembalikan", 0)],
                                  200, title="Kemajuan <keseluruhan>"))
    svg = root.find(f"{NS}svg")
    assert svg.get("viewBox") is None and svg.get("aria-label") == "Kemajuan <keseluruhan>"
    segs = [(r.get("x"), r.get("width"), r.get("class")) for r in svg.iter(f"{NS}rect")
            if r.find(f"{NS}title") is not None]
    assert segs == [("0%", "12.5%", "s0"), ("12.5%", "12.5%", "s1")]
    legend = [("".join(li.itertext()), li.find("span").get("class"))
              for li in root.find("ul").iter("li")]
    assert legend == [("Selesai 25", "sw s0"), ("Dikunjungi 25", "sw s1"),
                      ("Dikembalikan 0", "sw s2")]
    assert "style=" not in str(page_stacked_bar([("a", 1)], 1, title="t"))
    over = _html(page_stacked_bar([("a", 30), ("b", 30)], 20, title="t", legend=False))
    assert over.find("ul") is None
    assert [r.get("width") for r in over.iter(f"{NS}rect")][1:] == ["50%", "50%"]
    evil = str(page_stacked_bar([("<script>x</script>", 1)], 1, title="t"))
    assert "<script>" not in evil and "&lt;script&gt;" in evil
