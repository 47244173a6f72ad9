"""The monitoring page and its CSV through Flask's test client (the browser test is
test_browser.py), and the SVG it draws."""

from __future__ import annotations

import re

from server.web.monitoring import choropleth, class_breaks, line_chart
from tests.monitoring.conftest import page_login


def test_the_page_shows_aggregates_with_a_map_and_a_weekly_chart(demo, client):
    assert page_login(client, "pemantau-bappeda").status_code == 303
    response = client.get("/review/pemantauan")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    assert "style=" not in html and "<script" not in html and "<style" not in html
    assert 'id="computed-at"' in html
    for section in ("coverage-table", "errors-table", "eligibility-table", "members-table",
                    "map-table", "weekly-table", "map-legend", "weekly-legend"):
        assert f'id="{section}"' in html, section
    # the 58 kelurahan of the ten priority kecamatan, Kepulauan Seribu's in the inset
    codes = re.findall(r'data-code="([\d.]+)"', html)
    assert len(codes) == len(set(codes)) == 58
    inset = html[html.index('<g class="inset">'):]
    inset = inset[:inset.index("</g>")]
    assert set(re.findall(r'data-code="([\d.]+)"', inset)) == {c for c in codes
                                                                 if c.startswith("31.01.")}
    assert "< 5" in html or "&lt; 5" in html
    assert not re.search(r"(?<!\d)\d{16}(?!\d)", html)
    for measure in ("dikunjungi", "inklusi", "eksklusi", "meninggal", "pindah",
                    "dikembalikan", "tidak-ada"):
        assert client.get(f"/review/pemantauan?ukuran={measure}").status_code == 200
    page = client.get("/review/pemantauan?kecamatan=31.73.01").get_data(as_text=True)
    assert len(re.findall(r'data-code="31\.73\.01\.\d{4}"', page)) == 6
    assert client.get("/review/pemantauan?kecamatan=31.71.01").status_code == 404


def test_the_page_csv_is_the_api_csv(demo, client, token):
    page_login(client, "pemantau-bappeda")
    page = client.get("/review/pemantauan.csv")
    assert page.status_code == 200 and page.mimetype == "text/csv"
    api = client.get("/api/v1/exports/monitoring.csv?priority=1",
                     headers=token("pemantau-bappeda"))
    strip = [line.rsplit(",", 1)[0] for line in page.get_data(as_text=True).splitlines()]
    assert strip == [line.rsplit(",", 1)[0] for line in api.get_data(as_text=True).splitlines()]


def test_the_map_classes_escape_and_suppression():
    areas = [{"code": "31.73.01.1001", "name": "Cengkareng <Barat>", "verified": 40},
             {"code": "31.73.01.1002", "name": "Duri Kosambi", "verified": "< 5"},
             {"code": "31.01.02.1001", "name": "Pulau Untung Jawa", "verified": 9},
             {"code": "99.99.99.9999", "name": "Nowhere", "verified": 7}]
    svg = str(choropleth(areas, "terverifikasi"))
    assert "Cengkareng &lt;Barat&gt;" in svg and "<Barat>" not in svg
    assert 'class="kel ch4"' in svg and 'class="kel chs"' in svg
    assert '<g class="inset">' in svg and "99.99.99.9999" not in svg
    assert "style=" not in svg
    assert class_breaks([10, 40]) == [8.0, 16.0, 24.0, 32.0, 40.0]
    chart = str(line_chart([{"week": "2026-W48", "visited": 7, "verified": "< 5",
                             "returned": "< 5", "flagged": "< 5"},
                            {"week": "2026-W49", "visited": 12, "verified": 6,
                             "returned": "< 5", "flagged": "< 5"}]))
    assert chart.count("<polyline") == 1  # only "visited" has two shown points in a row
    assert 'class="pt sup ln1"' in chart and "style=" not in chart
    # A year of weeks: lines and the suppressed points only (the table holds the numbers).
    year = [{"week": f"2026-W{i:02d}", "visited": 100 + i, "verified": 50, "returned": 20,
             "flagged": "< 5" if i % 2 else 6} for i in range(1, 53)]
    long = str(line_chart(year))
    assert long.count("<polyline") == 3 and long.count('class="pt ln') == 0
    assert long.count('class="pt sup ln3"') == 26 and len(long) < 12_000
