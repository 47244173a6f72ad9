"""An XForm submission instance mapped back to a Tapak visit (hand-made instances)."""

from __future__ import annotations

import pytest

import forms
from forms.xform import XFormError, submission_to_visit

INSTANCE = """<?xml version='1.0' ?>
<data id="verifikasi_keluarga" version="1" xmlns:jr="http://openrosa.org/javarosa"
      xmlns:orx="http://openrosa.org/xforms">
  <_mulai>2026-01-05T09:12:00.000+07:00</_mulai>
  <_selesai>2026-01-05T09:40:00.000+07:00</_selesai>
  <_keluarga>KLG-3173010000001</_keluarga>
  <_base_version>3</_base_version>
  <_catatan_kunjungan_ulang/>
  <_kunjungan_ulang/>
  <hasil_kunjungan>2</hasil_kunjungan>
  <lokasi>-6.1402 106.7361 12.5 8</lokasi>
  <foto_depan>1767579123456.jpg</foto_depan>
  <persetujuan>yes</persetujuan>
  <nama_responden>Siti Aminah</nama_responden>
  <foto_dalam>1767579200000.jpg</foto_dalam>
  <foto_kk/>
  <no_kk>3173011203150001</no_kk>
  <alamat>Jl. Kamal Raya No. 12</alamat>
  <rt>003</rt>
  <rw>007</rw>
  <_anggota_baru>1</_anggota_baru>
  <anggota_count>2</anggota_count>
  <anggota>
    <status_keberadaan>1</status_keberadaan><nik>3173011003950001</nik><nama>Budi Santoso</nama>
    <jenis_kelamin>L</jenis_kelamin><tanggal_lahir>1995-03-10</tanggal_lahir><umur>30</umur>
    <hubungan>1</hubungan><status_kawin>2</status_kawin><sekolah>2</sekolah>
    <pekerjaan>4</pekerjaan><disabilitas>no</disabilitas><penyakit_kronis>yes</penyakit_kronis>
    <hamil/>
  </anggota>
  <anggota>
    <status_keberadaan>5</status_keberadaan><nik>3173015506950002</nik><nama>Siti Aminah</nama>
    <jenis_kelamin>P</jenis_kelamin><tanggal_lahir>1995-06-15</tanggal_lahir><umur>30</umur>
    <hubungan>2</hubungan><status_kawin>2</status_kawin><sekolah>2</sekolah>
    <pekerjaan>0</pekerjaan><disabilitas>no</disabilitas><penyakit_kronis>no</penyakit_kronis>
    <hamil>yes</hamil>
  </anggota>
  <rumah>
    <status_bangunan>1</status_bangunan><luas_lantai_m2>36.5</luas_lantai_m2><lantai>2</lantai>
    <dinding>1</dinding><atap>2</atap><air_minum>1</air_minum><penerangan>2</penerangan>
    <daya_va/><bahan_bakar>4</bahan_bakar><fasilitas_bab>1</fasilitas_bab>
    <njop_di_atas_1m>no</njop_di_atas_1m>
  </rumah>
  <aset><mobil>no</mobil><sepeda_motor>yes</sepeda_motor><lemari_es>yes</lemari_es><ac>no</ac>
    <emas_10g>no</emas_10g><lahan>no</lahan><rumah_lain>no</rumah_lain></aset>
  <program><pkh>yes</pkh><bpnt>no</bpnt><pbi_jk>yes</pbi_jk><bansos_daerah>no</bansos_daerah></program>
  <eksklusi><air_kemasan_bermerek>yes</air_kemasan_bermerek></eksklusi>
  <catatan>Rumah di gang sempit</catatan>
  <meta><instanceID>uuid:5b1f0f8e-2c4d-4f6b-9a51-0c7f3b0e6d21</instanceID>
    <instanceName>KLG-3173010000001 Budi</instanceName></meta>
</data>
"""


def test_instance_maps_to_a_valid_visit(v1):
    visit, problems = submission_to_visit(v1, INSTANCE.encode())
    assert problems == []
    assert visit["uuid"] == "5b1f0f8e-2c4d-4f6b-9a51-0c7f3b0e6d21"
    assert visit["form_id"] == "verifikasi_keluarga" and visit["form_version"] == 1
    assert visit["household_id"] == "KLG-3173010000001"
    assert visit["base_version"] == 3
    assert visit["started_at"] == "2026-01-05T09:12:00.000+07:00"
    assert visit["ended_at"] == "2026-01-05T09:40:00.000+07:00"
    a = visit["answers"]
    assert a["hasil_kunjungan"] == 2
    assert a["lokasi"] == {"lat": -6.1402, "lon": 106.7361, "altitude_m": 12.5, "accuracy_m": 8.0}
    assert a["persetujuan"] is True
    assert "foto_kk" not in a and "catatan" in a
    assert a["rumah"]["luas_lantai_m2"] == 36.5 and "daya_va" not in a["rumah"]
    assert a["rumah"]["njop_di_atas_1m"] is False
    assert a["aset"]["sepeda_motor"] is True
    assert len(a["anggota"]) == 2
    first, second = a["anggota"]
    assert first == {
        "status_keberadaan": 1,
        "nik": "3173011003950001",
        "nama": "Budi Santoso",
        "jenis_kelamin": "L",
        "tanggal_lahir": "1995-03-10",
        "hubungan": 1,
        "status_kawin": 2,
        "sekolah": 2,
        "pekerjaan": 4,
        "disabilitas": False,
        "penyakit_kronis": True,
    }
    assert second["status_keberadaan"] == 5 and second["hamil"] is True
    # XForm-only nodes are not answers: the family, helpers, counts, meta
    for key in ("_keluarga", "_anggota_baru", "anggota_count", "meta", "_mulai"):
        assert key not in a
    assert "umur" not in first
    assert visit["photos"] == [
        {"field": "foto_depan", "filename": "1767579123456.jpg"},
        {"field": "foto_dalam", "filename": "1767579200000.jpg"},
    ]
    # with the photos' hashes added (the server does it as files arrive) it validates
    for i, p in enumerate(visit["photos"]):
        p["sha256"] = f"{i:064x}"
    result = forms.validate_visit(forms.get_form("verifikasi_keluarga", 1), visit)
    assert result.errors == []
    assert result.answers["foto_depan"] == f"{0:064x}"


def test_bad_values_are_reported_not_dropped(v1):
    xml = INSTANCE.replace("<hasil_kunjungan>2</", "<hasil_kunjungan>dua</").replace(
        "<persetujuan>yes</", "<persetujuan>ya</"
    )
    visit, problems = submission_to_visit(v1, xml)
    assert {p["path"] for p in problems} == {"answers.persetujuan"}
    # a code that is not a number stays text, and validation reports it as not a code
    assert visit["answers"]["hasil_kunjungan"] == "dua"
    result = forms.validate_visit(forms.get_form("verifikasi_keluarga", 1), visit)
    assert "answers.hasil_kunjungan" in {e["path"] for e in result.errors}


@pytest.mark.parametrize(
    ("xml", "why"),
    [
        (b"<data id='verifikasi_keluarga' version='1'><a>", "not acceptable XML"),
        (
            b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;">]>'
            b"<data id='verifikasi_keluarga' version='1'>&b;</data>",
            "not acceptable XML",
        ),
        (
            b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b"<data id='verifikasi_keluarga' version='1'>&x;</data>",
            "not acceptable XML",
        ),
        (b"<data id='lain' version='1'/>", "not 'verifikasi_keluarga'"),
        (b"<data id='verifikasi_keluarga' version='x'/>", "not a number"),
        (b"<data id='verifikasi_keluarga' version='1'><meta/></data>", "no meta/instanceID"),
    ],
)
def test_refused_submissions(v1, xml, why):
    with pytest.raises(XFormError, match=why):
        submission_to_visit(v1, xml)
