"""NIK and KK checks: every reason code, both sexes, impossible dates, regions in and out of
Jakarta, and the two-digit year."""

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from sync.identity import (
    check_kk,
    check_nik,
    jakarta_kecamatan,
    parse_nik,
    resolve_year,
)

TODAY = dt.date(2025, 6, 30)


def codes(issues):
    return [i.code for i in issues]


def nik(region="317301", day=5, month=8, yy=85, serial="0003", female=False):
    return f"{region}{day + (40 if female else 0):02d}{month:02d}{yy:02d}{serial}"


def test_a_male_nik_agreeing_with_the_member_passes():
    assert check_nik(nik(), sex="L", birth_date="1985-08-05", today=TODAY) == []


def test_a_female_nik_has_forty_added_to_the_day():
    assert check_nik("3173014508850003", sex="P", birth_date=dt.date(1985, 8, 5),
                     today=TODAY) == []
    parts = parse_nik("3173014508850003", today=TODAY)
    assert (parts.sex, parts.birth_date, parts.region, parts.serial) == (
        "P", dt.date(1985, 8, 5), "317301", "0003")


def test_women_days_41_to_71_are_valid_and_72_is_not():
    assert check_nik(nik(day=1, month=1, female=True), sex="P", today=TODAY) == []
    assert check_nik(nik(day=31, month=1, female=True), sex="P", today=TODAY) == []
    assert codes(check_nik(nik(day=32, month=1, female=True), today=TODAY)) == [
        "nik_birth_date_invalid"]


def test_days_32_to_40_and_00_are_no_date_for_anyone():
    for day in ("00", "32", "35", "40"):
        assert codes(check_nik(f"317301{day}0185" "0001", today=TODAY)) == [
            "nik_birth_date_invalid"], day


def test_impossible_dates():
    assert codes(check_nik(nik(day=30, month=2), today=TODAY)) == ["nik_birth_date_invalid"]
    assert codes(check_nik(nik(day=1, month=13), today=TODAY)) == ["nik_birth_date_invalid"]
    assert codes(check_nik(nik(day=31, month=4, female=True), today=TODAY)) == [
        "nik_birth_date_invalid"]
    # 29 February: 2000 was a leap year, 2001 was not.
    assert check_nik(nik(day=29, month=2, yy=0), today=TODAY) == []
    assert codes(check_nik(nik(day=29, month=2, yy=1), today=TODAY)) == [
        "nik_birth_date_invalid"]


def test_wrong_length_not_digits_and_missing():
    assert codes(check_nik("317301450885000", today=TODAY)) == ["nik_wrong_length"]
    assert codes(check_nik("31730145088500031", today=TODAY)) == ["nik_wrong_length"]
    assert codes(check_nik("3173014508850O03", today=TODAY)) == ["nik_not_digits"]
    assert codes(check_nik("317301-508850003", today=TODAY)) == ["nik_not_digits"]
    assert codes(check_nik("", today=TODAY)) == ["nik_missing"]
    assert codes(check_nik(None, today=TODAY)) == ["nik_missing"]
    # A NIK given as a JSON number is read as its digits.
    assert check_nik(3173014508850003, sex="P", today=TODAY) == []


def test_serial_0000_is_refused():
    assert codes(check_nik(nik(serial="0000"), today=TODAY)) == ["nik_serial_zero"]


def test_sex_and_birth_date_must_agree_with_the_member():
    female = nik(female=True)
    assert codes(check_nik(female, sex="L", today=TODAY)) == ["nik_sex_mismatch"]
    assert codes(check_nik(nik(), sex="P", today=TODAY)) == ["nik_sex_mismatch"]
    assert codes(check_nik(nik(), sex="L", birth_date="1985-08-06", today=TODAY)) == [
        "nik_birth_date_mismatch"]
    assert codes(check_nik(nik(), sex="L", birth_date="1986-08-05", today=TODAY)) == [
        "nik_birth_date_mismatch"]
    assert codes(check_nik(female, sex="L", birth_date="1990-01-01", today=TODAY)) == [
        "nik_birth_date_mismatch", "nik_sex_mismatch"]


def test_a_birth_date_a_century_back_still_agrees():
    # yy=25 resolves to 2025 in mid-2025, but a member born in 1925 has the same digits.
    assert check_nik(nik(day=1, month=1, yy=25), sex="L", birth_date="1925-01-01",
                     today=TODAY) == []


def test_regions_inside_jakarta_must_be_real_kecamatan():
    assert len(jakarta_kecamatan()) == 44
    assert check_nik(nik(region="310102"), today=TODAY) == []  # Kepulauan Seribu Selatan
    assert check_nik(nik(region="317509"), today=TODAY) == []  # Jakarta Timur
    assert codes(check_nik(nik(region="317999"), today=TODAY)) == ["nik_region_unknown"]
    assert codes(check_nik(nik(region="317901"), today=TODAY)) == ["nik_region_unknown"]


def test_regions_outside_jakarta_need_a_plausible_province():
    assert check_nik(nik(region="320101"), today=TODAY) == []  # Jawa Barat
    assert check_nik(nik(region="730512"), today=TODAY) == []  # Sulawesi Selatan
    assert check_nik(nik(region="960101"), today=TODAY) == []  # Papua Barat Daya
    for region in ("990101", "100101", "200101", "320001", "320100", "000000"):
        assert codes(check_nik(nik(region=region), today=TODAY)) == ["nik_region_unknown"], region


def test_several_reasons_are_all_reported_and_never_hold_the_number():
    bad = "99010135018" "50000"
    issues = check_nik(bad, sex="L", today=TODAY)
    assert codes(issues) == ["nik_region_unknown", "nik_birth_date_invalid", "nik_serial_zero"]
    assert all(bad not in i.message and "990101" not in i.message for i in issues)
    assert issues[0].as_dict() == {"code": issues[0].code, "message": issues[0].message}


def test_two_digit_years_never_land_in_the_future():
    assert resolve_year(25, 6, 30, TODAY) == 2025
    assert resolve_year(25, 7, 1, TODAY) == 1925
    assert resolve_year(0, 1, 1, TODAY) == 2000
    assert resolve_year(99, 12, 31, TODAY) == 1999
    parts = parse_nik(nik(day=1, month=7, yy=25), today=TODAY)
    assert parts.birth_date == dt.date(1925, 7, 1)
    assert parse_nik("12345", today=TODAY) is None


def test_kk_numbers():
    assert check_kk("3173011203150005", today=TODAY) == []
    assert check_kk("3201011203990001", today=TODAY) == []  # 12 March 1999, Jawa Barat
    assert codes(check_kk("3173013102150005", today=TODAY)) == ["kk_date_invalid"]
    assert codes(check_kk("3173014503150005", today=TODAY)) == ["kk_date_invalid"]
    assert codes(check_kk("3173011203150000", today=TODAY)) == ["kk_serial_zero"]
    assert codes(check_kk("3179011203150005", today=TODAY)) == ["kk_region_unknown"]
    assert codes(check_kk("317301120315000", today=TODAY)) == ["kk_wrong_length"]
    assert codes(check_kk("31730112O3150005", today=TODAY)) == ["kk_not_digits"]
    assert codes(check_kk(None, today=TODAY)) == ["kk_missing"]


def test_a_kk_entry_date_in_the_future_is_refused():
    assert codes(check_kk("3173010107250005", today=TODAY)) == ["kk_date_future"]  # 1 Jul 2025
    assert codes(check_kk("3173010101300005", today=TODAY)) == ["kk_date_future"]  # 2030
    assert check_kk("3173013006250005", today=TODAY) == []  # today itself
    assert check_kk("3173010101800005", today=TODAY) == []  # 1980


@given(
    region=st.sampled_from(sorted(jakarta_kecamatan())),
    born=st.dates(min_value=dt.date(1926, 1, 1), max_value=TODAY),
    sex=st.sampled_from("LP"),
    serial=st.integers(1, 9999),
)
def test_any_well_made_nik_passes(region, born, sex, serial):
    day = born.day + (40 if sex == "P" else 0)
    number = f"{region}{day:02d}{born.month:02d}{born.year % 100:02d}{serial:04d}"
    assert check_nik(number, sex=sex, birth_date=born, today=TODAY) == []
    parts = parse_nik(number, today=TODAY)
    assert parts.sex == sex and parts.birth_date == born
