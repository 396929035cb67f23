"""Seniority and function parsed from free-text job titles."""

import math

import numpy as np
import pandas as pd
import pytest

from leadlink.features.titles import SENIORITY_LEVELS, parse_function, parse_seniority

SENIORITY_CASES = [
    # C-level, in English, German, French and Spanish.
    ("CEO", "c_level"),
    ("C.E.O.", "c_level"),
    ("Chief Executive Officer", "c_level"),
    ("Chief Revenue Officer", "c_level"),
    ("CXO", "c_level"),
    ("Co-Founder & CEO", "c_level"),
    ("Founder", "c_level"),
    ("Owner", "c_level"),
    ("President", "c_level"),
    ("Managing Director", "c_level"),
    ("Geschäftsführer", "c_level"),
    ("Directeur Général", "c_level"),
    ("PDG", "c_level"),
    ("Director General", "c_level"),
    ("Managing Partner", "c_level"),
    # Assistants of executives are assistants.
    ("Assistant to the CEO", "assistant"),
    ("Executive Assistant", "assistant"),
    ("Assistant to the VP", "assistant"),
    # Vice presidents.
    ("VP Sales", "vice_president"),
    ("V.P. of Marketing", "vice_president"),
    ("Vice-President, Engineering", "vice_president"),
    ("Vice President", "vice_president"),
    ("Vice President, Finance", "vice_president"),
    ("SVP", "vice_president"),
    ("EVP Operations", "vice_president"),
    ("AVP", "vice_president"),
    ("Assistant Vice President", "vice_president"),
    ("Vizepräsident", "vice_president"),
    # Directors and heads.
    ("Director of IT", "director"),
    ("Head of Data", "director"),
    ("Dir. Finance", "director"),
    ("Sr. Director", "director"),
    ("Global Head of Marketing", "director"),
    ("Leiter Vertrieb", "director"),
    ("Directrice Marketing", "director"),
    ("Directora Comercial", "director"),
    ("Abteilungsleiter", "director"),
    ("Executive Director", "director"),
    ("Director, General Counsel", "director"),
    # Managers and leads.
    ("Marketing Manager", "manager"),
    ("Mgr, IT", "manager"),
    ("Mgr. IT", "manager"),
    ("Team Lead", "manager"),
    ("Teamleiter", "manager"),
    ("Engineering Lead", "manager"),
    ("Lead Developer", "manager"),
    ("Supervisor", "manager"),
    ("Responsable Marketing", "manager"),
    ("Gerente de Ventas", "manager"),
    ("Student Success Manager", "manager"),
    ("International Sales Manager", "manager"),
    ("Partner Manager", "manager"),
    # Senior individual contributors.
    ("Sr. Software Engineer", "senior_individual_contributor"),
    ("Senior Analyst", "senior_individual_contributor"),
    ("Staff Engineer", "senior_individual_contributor"),
    ("Principal Consultant", "senior_individual_contributor"),
    ("Senior Product Owner", "senior_individual_contributor"),
    ("Lead Generation Specialist", "senior_individual_contributor"),
    # Individual contributors. "Executive" after a sales word names a sales role, not a rank.
    ("Product Owner", "individual_contributor"),
    ("Software Engineer", "individual_contributor"),
    ("Data Analyst", "individual_contributor"),
    ("Account Executive", "individual_contributor"),
    ("Sales Executive", "individual_contributor"),
    ("Associate", "individual_contributor"),
    ("Internal Auditor", "individual_contributor"),
    ("Halbleiter Ingenieur", "individual_contributor"),
    # Interns and working students.
    ("Intern", "intern"),
    ("Summer Intern - Marketing", "intern"),
    ("Internship", "intern"),
    ("Werkstudent", "intern"),
    ("Working Student", "intern"),
    ("Trainee", "intern"),
    ("Praktikant", "intern"),
    ("Stagiaire", "intern"),
    # Students.
    ("Student", "student"),
    ("PhD Candidate", "student"),
    ("MBA Candidate", "student"),
    ("Graduate Student", "student"),
    ("Estudiante", "student"),
    ("Étudiant", "student"),
    # Missing titles, placeholders and text without a rank.
    (None, "unknown"),
    ("", "unknown"),
    ("-", "unknown"),
    ("n/a", "unknown"),
    ("???", "unknown"),
    ("Mr.", "unknown"),
    ("HR Business Partner", "unknown"),
]

FUNCTION_CASES = [
    ("Account Executive", "sales"),
    ("BDR", "sales"),
    ("SDR", "sales"),
    ("Vertrieb", "sales"),
    ("Ventas", "sales"),
    ("Commercial Director", "sales"),
    ("Directora Comercial", "sales"),
    ("Chief Revenue Officer", "sales"),
    ("Growth", "marketing"),
    ("Demand Gen", "marketing"),
    ("Marketing", "marketing"),
    ("Lead Generation Specialist", "marketing"),
    ("Software", "engineering"),
    ("Developer", "engineering"),
    ("DevOps", "engineering"),
    ("CTO", "engineering"),
    ("Staff Engineer", "engineering"),
    ("Data Scientist", "data"),
    ("Analytics", "data"),
    ("BI Developer", "data"),
    ("Senior Data Engineer", "data"),
    ("IT Manager", "it"),
    ("CIO", "it"),
    ("Sysadmin", "it"),
    ("Informatique", "it"),
    ("CFO", "finance"),
    ("Controller", "finance"),
    ("Finanzen", "finance"),
    ("Comptable", "finance"),
    ("Financial Analyst", "finance"),
    ("HR", "hr"),
    ("Human Resources", "hr"),
    ("People Ops", "hr"),
    ("Recruiter", "hr"),
    ("Talent Acquisition", "hr"),
    ("COO", "operations"),
    ("Ops", "operations"),
    ("Procurement", "operations"),
    ("Revenue Operations Specialist", "operations"),
    ("Product Manager", "product"),
    ("Product Owner", "product"),
    ("UX Designer", "product"),
    ("Customer Success", "customer_success"),
    ("Support", "customer_success"),
    ("Support Engineer", "customer_success"),
    ("Student Success Manager", "customer_success"),
    ("CEO", "executive"),
    ("Founder", "executive"),
    ("Managing Director", "executive"),
    ("Geschäftsführer", "executive"),
    ("PDG", "executive"),
    ("Teacher", "education"),
    ("Professor", "education"),
    ("Student", "education"),
    ("Werkstudent Vertrieb", "sales"),
    ("Vice President, Finance", "finance"),
    ("Vice President", "other"),
    ("Mr.", "other"),
    ("Abteilungsleiter", "other"),
    (None, "unknown"),
    ("", "unknown"),
    ("-", "unknown"),
    ("n/a", "unknown"),
    ("???", "unknown"),
]

# Spellings of "VP of Sales" found in CRM exports: case, punctuation, dots and whitespace.
VP_SALES_SPELLINGS = [
    "VP Sales",
    "VP, Sales",
    "VP/Sales",
    "VP - Sales",
    "vp sales",
    "vP sAlEs",
    "V.P. Sales",
    "V.P Sales",
    "  VP \t Sales \n",
    "VP | Sales",
    "Vice-President Sales",
    "Vice President (Sales)",
]

NON_STRING_TITLES = [42, 3.5, math.nan, np.nan, np.float64("nan"), pd.NA, pd.NaT, True]


@pytest.mark.parametrize(("title", "expected"), SENIORITY_CASES)
def test_seniority_label(title, expected):
    assert parse_seniority(title) == expected


@pytest.mark.parametrize(("title", "expected"), FUNCTION_CASES)
def test_function_label(title, expected):
    assert parse_function(title) == expected


@pytest.mark.parametrize("title", VP_SALES_SPELLINGS)
def test_seniority_spelling_variants(title):
    assert parse_seniority(title) == "vice_president"


@pytest.mark.parametrize("title", VP_SALES_SPELLINGS)
def test_function_spelling_variants(title):
    assert parse_function(title) == "sales"


@pytest.mark.parametrize("title", ["Head-of-Data", "HEAD OF DATA", "head   of\u00a0data"])
def test_seniority_head_of_spellings(title):
    assert parse_seniority(title) == "director"


@pytest.mark.parametrize("title", ["DIRECTRICE MARKETING", "Directrice Marketing", "directrice marketing"])
def test_function_accent_and_case(title):
    assert parse_function(title) == "marketing"


@pytest.mark.parametrize("title", NON_STRING_TITLES)
def test_seniority_non_string(title):
    assert parse_seniority(title) == "unknown"


@pytest.mark.parametrize("title", NON_STRING_TITLES)
def test_function_non_string(title):
    assert parse_function(title) == "unknown"


@pytest.mark.parametrize(
    ("title", "seniority", "function"),
    [
        ("VP Sales " * 1200, "vice_president", "sales"),
        ("a" * 10_000, "unknown", "other"),
        ("ab" * 5_000 + " leiter", "director", "other"),
        ("x." * 5_000, "unknown", "other"),
    ],
)
def test_long_title(title, seniority, function):
    assert len(title) >= 10_000
    assert parse_seniority(title) == seniority
    assert parse_function(title) == function


def test_seniority_levels_unchanged():
    # Trained models store these numbers, so a change here silently breaks them.
    expected = {
        "unknown": 0,
        "student": 1,
        "intern": 2,
        "assistant": 3,
        "individual_contributor": 4,
        "senior_individual_contributor": 5,
        "manager": 6,
        "director": 7,
        "vice_president": 8,
        "c_level": 9,
    }
    assert SENIORITY_LEVELS == expected


@pytest.mark.parametrize("title", [title for title, _ in SENIORITY_CASES + FUNCTION_CASES])
def test_seniority_label_is_level(title):
    assert parse_seniority(title) in SENIORITY_LEVELS
