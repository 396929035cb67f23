"""Messy identities, pinned pair by pair: which level each comparison assigns.

Each case prepares two raw records with the real normalisers and checks the
comparison level they land on, so a change in normalising or in a level's
rule shows up here as a named case.
"""

import pandas as pd
import pytest

from leadlink.errors import LinkageError
from leadlink.features.comparisons import COMPARISONS
from leadlink.features.identity import prepare_identity_record
from leadlink.features.linkage import check_blocking, count_comparisons, has_evidence_beyond_name

BY_NAME = {comparison.name: comparison for comparison in COMPARISONS}


def level_label(comparison: str, left: dict, right: dict) -> str:
    spec = BY_NAME[comparison]
    a = prepare_identity_record({"id": "a", **left}, "id")
    b = prepare_identity_record({"id": "b", **right}, "id")
    index = spec.level_index(a, b)
    return spec.levels[index].label if index < len(spec.levels) else "else"


@pytest.mark.parametrize(
    ("left", "right"),
    [("Bob", "Robert"), ("Robert", "Bob"), ("Rob", "Robert"), ("Liz", "Elizabeth"), ("Elizabeth", "Liz"), ("Bill", "William")],
)
def test_nicknames_both_ways(left, right):
    assert level_label("first_name", {"first_name": left}, {"first_name": right}) == "Nickname of each other"


def test_unrelated_formal_names_not_nicknames():
    # Both appear in the nickname list near "bill", but neither is a nickname of the other.
    assert level_label("first_name", {"first_name": "Robert"}, {"first_name": "William"}) == "else"


@pytest.mark.parametrize(
    ("left", "right"),
    [("José", "Jose"), ("JOSE", "jose"), ("  José  ", "Jose"), ("Jose\u0301", "José"), ("Søren", "Soren")],
)
def test_accents_case_and_spacing_are_exact(left, right):
    assert level_label("first_name", {"first_name": left}, {"first_name": right}) == "Exact match on first_name"


def test_typo_in_first_name_is_fuzzy():
    assert level_label("first_name", {"first_name": "Zbigniew"}, {"first_name": "Zbigneiw"}).startswith("Jaro-Winkler")


@pytest.mark.parametrize(("left", "right"), [("Müller", "Mueller"), ("Mueller", "Muller"), ("Müller", "Muller")])
def test_umlaut_spellings_agree(left, right):
    label = level_label("last_name", {"last_name": left}, {"last_name": right})
    assert label in ("Exact match on last_name", "Jaro-Winkler last_name >= 0.92", "Exact match on last_name_folded")


@pytest.mark.parametrize(("left", "right"), [("García-López", "López"), ("Garcia Lopez", "Garcia"), ("Smith-Jones", "Jones")])
def test_double_surname_matches_either_part(left, right):
    assert level_label("last_name", {"last_name": left}, {"last_name": right}) in ("surname_parts share an item", "Jaro-Winkler last_name >= 0.92")


def test_different_surnames_are_else():
    assert level_label("last_name", {"last_name": "Kowalczyk"}, {"last_name": "Andersen"}) == "else"


@pytest.mark.parametrize("missing", [None, "", "   ", float("nan"), pd.NA])
def test_missing_in_any_form_is_null_level(missing):
    assert level_label("phone", {"phone": missing}, {"phone": "+1 415 555 0134"}) == "phone missing"


def test_work_email_domain_is_not_evidence():
    # Same distinctive local part at two employers: agreement.
    same_local = level_label("email_local", {"email": "pepe77@old.com", "first_name": "Jose"}, {"email": "Pepe77@new.io", "first_name": "Jose"})
    assert same_local == "Exact match on email_local"
    # Same domain, different person: no agreement from the domain.
    same_domain = level_label("email_local", {"email": "zed99@acme.com"}, {"email": "kim42@acme.com"})
    assert same_domain == "else"


def test_local_part_spelling_the_name_is_not_evidence():
    left = {"first_name": "Jose", "last_name": "Garcia", "email": "jose.garcia@old.com"}
    right = {"first_name": "Jose", "last_name": "Garcia", "email": "jose.garcia@new.io"}
    assert level_label("email_local", left, right) == "email_local missing"


def test_gmail_dots_and_plus_tag_agree():
    left = {"personal_email": "Jo.Ann.Lee+crm@gmail.com"}
    right = {"personal_email": "joannlee@googlemail.com"}
    assert level_label("personal_email", left, right) == "Exact match on personal_email"


def test_other_providers_keep_dots():
    assert level_label("personal_email", {"personal_email": "jo.lee@yahoo.com"}, {"personal_email": "jolee@yahoo.com"}) == "else"


@pytest.mark.parametrize("role", ["info@acme.com", "sales@acme.com", "someone@mailinator.com"])
def test_role_and_disposable_addresses_are_missing(role):
    assert level_label("personal_email", {"email": "x@gmail.com", "personal_email": role}, {"personal_email": role}) != "Exact match on personal_email"


def test_phone_formats_agree():
    left = {"phone": "(415) 555-0134 ext. 7", "country": "US"}
    right = {"phone": "+1.415.555.0134"}
    assert level_label("phone", left, right) == "Exact match on phone"


def test_linkedin_forms_agree_and_company_pages_do_not():
    person = level_label("linkedin", {"linkedin_url": "https://de.linkedin.com/in/Ana-Lee-42/?trk=x"}, {"linkedin_url": "linkedin.com/in/ana-lee-42"})
    assert person == "Exact match on linkedin"
    company = level_label("linkedin", {"linkedin_url": "https://www.linkedin.com/company/acme"}, {"linkedin_url": "https://www.linkedin.com/company/acme"})
    assert company == "linkedin missing"


def test_workplace_levels():
    assert level_label("workplace", {"company_domain": "acme.com", "city": "Lyon"}, {"email": "x@acme.com", "city": "lyon"}) == "Same company and city"
    assert level_label("workplace", {"company_domain": "acme.com"}, {"company_domain": "ACME.com", "city": "Paris"}) == "Same company"
    assert level_label("workplace", {"city": "Paris"}, {"city": "Paris", "company_domain": "b.com"}) == "Same city"
    assert level_label("workplace", {}, {"company_domain": "b.com"}) == "Company and city missing"


def test_name_only_pairs_are_not_links():
    evidence = pd.Series(["first_name,last_name", "first_name,last_name,job_title", "first_name,phone", "", None])
    assert has_evidence_beyond_name(evidence).tolist() == [False, False, True, False, False]


def keys_frame(**columns):
    frame = pd.DataFrame(columns)
    for column in ("phone", "linkedin", "personal_email", "email_local", "first_name", "last_name", "city", "date_of_birth"):
        if column not in frame:
            frame[column] = None
    return frame


def test_comparison_counts_by_hand():
    contacts = keys_frame(phone=["A", "A", "B", None], first_name=["ann", "ann", "bo", "cy"], city=["x", "y", "x", None])
    users = keys_frame(phone=["A", "B", "B", "C"], first_name=["ann", "ann", "ann", "bo"], city=["x", "x", "y", "x"])
    counts = count_comparisons(contacts, users)
    # Phone: A is 2 contacts x 1 user, B is 1 x 2, C has no contact: 2 + 2.
    assert counts["block_on(phone)"] == 4
    # First name and city: (ann, x) is 1 x 2, (ann, y) 1 x 1, (bo, x) 1 x 1.
    assert counts["block_on(first_name, city)"] == 4
    assert counts["block_on(linkedin)"] == 0


def test_blocking_guard_names_rule_and_count():
    contacts = keys_frame(city=["paris"] * 30, first_name=["jean"] * 30)
    users = keys_frame(city=["paris"] * 40, first_name=["jean"] * 40)
    with pytest.raises(LinkageError, match=r"block_on\(first_name, city\): 1,200 comparisons"):
        check_blocking(contacts, users, max_comparisons_per_rule=1000)
