"""The kelurahan map: pure SVG from the shipped boundaries, points kept in view, escaped."""

import xml.etree.ElementTree as ET

from server.svg import kelurahan_map_svg

NS = "{http://www.w3.org/2000/svg}"


def test_polygon_point_accuracy_and_registered_point():
    svg = kelurahan_map_svg("31.73.01.1001", point=(-6.15, 106.74), accuracy_m=50,
                            registered=(-6.151, 106.741))
    root = ET.fromstring(svg)
    _, _, width, height = (float(v) for v in root.get("viewBox").split())
    assert width == 320 and height >= 120
    assert root.find(f"{NS}path").get("d").startswith("M")
    circles = root.findall(f"{NS}circle")
    assert {c.get("class") for c in circles} == {"akurasi", "titik-kunjungan"}
    for c in circles:
        assert 0 <= float(c.get("cx")) <= width and 0 <= float(c.get("cy")) <= height
    accuracy = next(c for c in circles if c.get("class") == "akurasi")
    wider = ET.fromstring(kelurahan_map_svg("31.73.01.1001", point=(-6.15, 106.74),
                                            accuracy_m=100, registered=(-6.151, 106.741)))
    r100 = float(next(c for c in wider.findall(f"{NS}circle")
                      if c.get("class") == "akurasi").get("r"))
    assert abs(r100 - 2 * float(accuracy.get("r"))) <= 0.2  # metres to the map's scale
    assert root.find(f"{NS}rect").get("class") == "titik-terdaftar"
    assert svg == kelurahan_map_svg("31.73.01.1001", point=(-6.15, 106.74), accuracy_m=50,
                                    registered=(-6.151, 106.741))


def test_a_far_point_stays_in_view_and_the_outline_is_simplified():
    far = kelurahan_map_svg("31.73.01.1001", point=(-6.30, 106.90))
    root = ET.fromstring(far)
    _, _, width, height = (float(v) for v in root.get("viewBox").split())
    dot = root.find(f"{NS}circle")
    assert 0 <= float(dot.get("cx")) <= width and 0 <= float(dot.get("cy")) <= height
    plain = kelurahan_map_svg("31.73.01.1001")
    assert len(plain) < 20_000 and "circle" not in plain


def test_unknown_codes_are_escaped_and_drawn_without_a_polygon():
    svg = kelurahan_map_svg('<script>"x"</script>')
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    ET.fromstring(svg)
    only_point = kelurahan_map_svg("99.99.99.9999", point=(-6.2, 106.8), accuracy_m=10)
    assert "titik-kunjungan" in ET.tostring(ET.fromstring(only_point)).decode()
