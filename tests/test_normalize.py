"""Normalisers of identity fields, titles, and log masking."""

import math

import pandas as pd
import pytest

from leadlink.features import normalize
from leadlink.features.identity import prepare_identity_frame
from leadlink.features.titles import parse_function, parse_seniority
from leadlink.logs import mask_personal_data


@pytest.mark.parametrize("missing", [None, float("nan"), pd.NA, "", "   ", "\t"])
def test_missing_forms_are_none(missing):
    assert normalize.fold_text(missing) is None
    assert normalize.canonical_email(missing) is None
    assert normalize.normalize_phone(missing) is None
    assert normalize.linkedin_handle(missing) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("José", "jose"),
        ("MÜLLER", "muller"),
        ("Søren", "soren"),
        ("  García-López ", "garcia-lopez"),
        ("Jose\u0301", "jose"),  # e followed by a combining accent
        ("O'Brien", "o'brien"),
    ],
)
def test_normalize_name(raw, expected):
    assert normalize.normalize_name(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("J.O.Hn+news@GoogleMail.com", "john@gmail.com"),
        ("john.smith@gmail.com", "johnsmith@gmail.com"),
        ("john.smith+crm@yahoo.com", "john.smith@yahoo.com"),
        ("John.Smith@Outlook.com", "john.smith@outlook.com"),
        ("info@acme.com", None),
        ("sales+eu@acme.com", None),
        ("someone@mailinator.com", None),
        ("not-an-email", None),
        ("two@@signs.com", None),
    ],
)
def test_canonical_email(raw, expected):
    assert normalize.canonical_email(raw) == expected


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        ("ana@acme.io", "work"),
        ("ana@gmail.com", "personal"),
        ("ana@mailinator.com", "disposable"),
        ("info@acme.io", "role"),
        (None, "missing"),
    ],
)
def test_email_domain_kind(raw, kind):
    assert normalize.email_domain_kind(raw) == kind


def test_work_email_local_part_ignores_domain():
    assert normalize.work_email_local_part("Jose.Garcia@old.com") == "jose.garcia"
    assert normalize.work_email_local_part("jose.garcia@new.io") == "jose.garcia"
    assert normalize.work_email_local_part("jose.garcia@gmail.com") is None
    assert normalize.work_email_local_part("js@acme.com") is None


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("(415) 555-0134", "US", "+14155550134"),
        ("+1 415 555 0134", "US", "+14155550134"),
        ("415.555.0134 ext. 12", "US", "+14155550134"),
        ("0049 30 1234567", "DE", "+49301234567"),
        ("030 1234567", "DE", "+49301234567"),
        ("+44 20 7946 0958", "US", "+442079460958"),
        ("12", "US", None),
        ("call me", "US", None),
    ],
)
def test_normalize_phone(raw, region, expected):
    assert normalize.normalize_phone(raw, region) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://www.linkedin.com/in/jose-garcia-1a2b3c/", "jose-garcia-1a2b3c"),
        ("http://linkedin.com/in/Jose-Garcia-1a2b3c", "jose-garcia-1a2b3c"),
        ("https://de.linkedin.com/in/jose-garcia-1a2b3c?trk=abc", "jose-garcia-1a2b3c"),
        ("LINKEDIN.COM/IN/JOSE-GARCIA-1A2B3C/", "jose-garcia-1a2b3c"),
        ("https://www.linkedin.com/company/acme/", None),
        ("https://www.linkedin.com/school/mit/", None),
        ("https://evil.com/in/jose", None),
    ],
)
def test_linkedin_handle(raw, expected):
    assert normalize.linkedin_handle(raw) == expected


def test_identity_frame_nickname_keys():
    frame = pd.DataFrame({"user_id": ["U1", "U2"], "first_name": ["Bob", "Elizabeth"], "country": ["US", "GB"]})
    prepared = prepare_identity_frame(frame, "user_id")
    assert "robert" in prepared.loc[0, "first_name_keys"]
    assert prepared.loc[1, "first_name"] == "elizabeth"


def test_identity_frame_phone_uses_record_country():
    frame = pd.DataFrame({"user_id": ["U1", "U2"], "phone": ["030 1234567", "030 1234567"], "country": ["DE", None]})
    prepared = prepare_identity_frame(frame, "user_id", default_region="US")
    assert prepared.loc[0, "phone"] == "+49301234567"
    # Without a country the default region (US) applies, where 030... is no valid number.
    assert prepared.loc[1, "phone"] is None or not prepared.loc[1, "phone"].startswith("+49")


def test_identity_frame_personal_email_from_main_email():
    frame = pd.DataFrame({"user_id": ["U1"], "email": ["A.N.A+x@gmail.com"], "personal_email": [None]})
    prepared = prepare_identity_frame(frame, "user_id")
    assert prepared.loc[0, "personal_email"] == "ana@gmail.com"
    assert prepared.loc[0, "email_local"] is None


@pytest.mark.parametrize(
    ("title", "seniority", "function"),
    [
        ("VP of Sales", "vice_president", "sales"),
        ("SVP, Engineering", "vice_president", "engineering"),
        ("Head of Marketing", "director", "marketing"),
        ("Director, Operations", "director", "operations"),
        ("Chief Technology Officer", "c_level", "engineering"),
        ("CEO & Co-Founder", "c_level", "executive"),
        ("Marketing Manager", "manager", "marketing"),
        ("Senior Data Engineer", "senior_individual_contributor", "data"),
        ("Account Executive", "individual_contributor", "sales"),
        ("Executive Assistant to the CEO", "assistant", "executive"),
        ("Marketing Intern", "intern", "marketing"),
        ("Werkstudent Vertrieb", "intern", "sales"),
        ("MBA Student", "student", "education"),
        (None, "unknown", "unknown"),
    ],
)
def test_title_parser(title, seniority, function):
    assert parse_seniority(title) == seniority
    assert parse_function(title) == function


def test_mask_email_and_phone():
    masked = mask_personal_data("contact jose.garcia@acme.com at +1 415 555 0134")
    assert "jose.garcia" not in masked
    assert "555 0134" not in masked
    assert masked == "contact j***@acme.com at ***34"


def test_mask_keeps_dates_and_counts():
    text = "read 98,822 rows before 2026-06-30T00:00:00+00:00 in 12.5 s"
    assert mask_personal_data(text) == text


def test_nan_is_missing():
    assert normalize.is_missing(math.nan)
    assert not normalize.is_missing(0)


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("001 415 555 0134", "US", "+14155550134"),
        ("0049 30 1234567", "US", "+49301234567"),
        ("0033 290 5337045", "FR", "+332905337045"),
        ("+332905337045", "FR", "+332905337045"),
    ],
)
def test_phone_double_zero_prefix(raw, region, expected):
    assert normalize.normalize_phone(raw, region) == expected


def test_mask_keeps_metric_decimals():
    text = "Backtest: log loss 0.5250, Brier 0.1692, ECE 0.024"
    assert mask_personal_data(text) == text


def test_mask_phone_written_with_points():
    assert mask_personal_data("call 415.555.0134") == "call ***34"
