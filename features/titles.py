"""Seniority and function parsed from free-text job titles.

The rules are ordered patterns over the folded title (lower case, accents
removed). The first seniority pattern that matches wins, so "Assistant to
the VP" must be caught by the assistant rule before the VP rule.
"""

from __future__ import annotations

import re

from leadlink.features.normalize import fold_text

# Seniority levels as an ordinal scale; higher means more buying power.
SENIORITY_LEVELS = {
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

_SENIORITY_RULES: list[tuple[str, str]] = [
    ("student", r"\b(student|undergrad\w*|phd candidate|graduate student|etudiant|studierende\w*)\b"),
    ("intern", r"\b(intern|internship|trainee|working student|werkstudent\w*|apprentice|stagiaire|praktikant\w*)\b"),
    ("assistant", r"\b(assistant|receptionist|coordinator)\b"),
    (
        "c_level",
        r"\b(c[eotfimrdp]o|chief \w+( \w+)? officer|chief|founder|co-?founder|owner|president|"
        r"managing director|general manager|geschaftsfuhrer\w*|partner)\b",
    ),
    ("vice_president", r"\b(vp|svp|evp|avp|vice[ -]president)\b"),
    ("director", r"\b(director|head of|head|directeur|directrice|leiter\w*|direktor\w*)\b"),
    ("manager", r"\b(manager|mgr|lead|team lead|supervisor|responsable|gerente)\b"),
    ("senior_individual_contributor", r"\b(senior|sr|principal|staff|expert|specialist)\b"),
    (
        "individual_contributor",
        r"\b(engineer|developer|analyst|consultant|associate|representative|rep|executive|"
        r"scientist|designer|administrator|architect|officer|accountant|recruiter|writer|agent)\b",
    ),
]

_FUNCTION_RULES: list[tuple[str, str]] = [
    ("executive", r"\b(ceo|chief executive|founder|co-?founder|owner|president|managing director|general manager|geschaftsfuhrer\w*)\b"),
    ("sales", r"\b(sales|account executive|account manager|business development|bdr|sdr|revenue|cro)\b"),
    ("marketing", r"\b(marketing|cmo|chief marketing|growth|brand|demand gen\w*|content|seo|communications|pr)\b"),
    ("data", r"\b(data|analytics|bi|machine learning|ml|ai|analyst|scientist)\b"),
    ("engineering", r"\b(engineer\w*|developer|cto|chief technology|software|devops|architect|programmer|technical)\b"),
    ("it", r"\b(it|cio|information technology|systems|sysadmin|infrastructure|security|ciso)\b"),
    ("product", r"\b(product|cpo|ux|ui|design\w*)\b"),
    ("finance", r"\b(finance|cfo|chief financial|financial|accounting|accountant|controller|treasur\w*)\b"),
    ("operations", r"\b(operations|coo|chief operating|ops|procurement|purchasing|supply chain|logistics)\b"),
    ("hr", r"\b(hr|human resources|people|talent|recruit\w*|chro)\b"),
    ("customer_success", r"\b(customer success|support|customer service|customer experience)\b"),
    ("education", r"\b(student|teacher|professor|lecturer|researcher)\b"),
]

_COMPILED_SENIORITY = [(level, re.compile(pattern)) for level, pattern in _SENIORITY_RULES]
_COMPILED_FUNCTION = [(name, re.compile(pattern)) for name, pattern in _FUNCTION_RULES]


def _fold_title(title: object) -> str | None:
    folded = fold_text(title)
    if folded is None:
        return None
    # "VP, Sales" and "VP/Sales" read the same as "VP Sales".
    return re.sub(r"[,/&|()]+", " ", folded)


def parse_seniority(title: object) -> str:
    """Return the seniority label of a job title, "unknown" when nothing matches."""
    folded = _fold_title(title)
    if folded is None:
        return "unknown"
    for level, pattern in _COMPILED_SENIORITY:
        if pattern.search(folded):
            return level
    return "unknown"


def parse_function(title: object) -> str:
    """Return the business function of a job title, "other" when nothing matches."""
    folded = _fold_title(title)
    if folded is None:
        return "unknown"
    for name, pattern in _COMPILED_FUNCTION:
        if pattern.search(folded):
            return name
    return "other"
