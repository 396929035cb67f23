"""Seniority and business function parsed from free-text job titles.

A title is normalised first: it is folded to lower-case ASCII, dotted
abbreviations are joined ("C.E.O." -> "ceo"), punctuation becomes spaces and
short forms are spelled out ("Sr." -> "senior"). Ordered rules then read the
normalised title, and the first rule that matches wins. The order carries
meaning. The assistant rule runs before the c_level and VP rules, so
"Assistant to the VP" is an assistant. Occupation nouns such as "analyst"
choose a function only when no department word does, so "Financial Analyst"
is finance.

A rule may list phrases to ignore. They are blanked out before that rule's
pattern is searched, while later rules still read the whole title. This is
how the c_level rule skips the "president" in "Vice President".
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

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

# Short forms spelled out after punctuation is removed, so "Sr." and "Sr" both become "senior".
_ABBREVIATIONS = {
    "sr": "senior",
    "snr": "senior",
    "jr": "junior",
    "jnr": "junior",
    "mgr": "manager",
    "mngr": "manager",
    "dir": "director",
    "asst": "assistant",
    "assoc": "associate",
    "exec": "executive",
    "acct": "account",
    "admin": "administrator",
    "mktg": "marketing",
    "engr": "engineer",
    "intl": "international",
}

# Values that CRMs store in place of a missing title, after normalisation ("n/a" -> "n a").
_PLACEHOLDERS = frozenset(
    {"n a", "na", "nan", "none", "null", "nil", "unknown", "tbd", "tba", "not available", "not applicable"}
)

# Single letters joined by dots ("c.e.o.", "v.p", "s.v.p.").
_DOTTED_LETTERS = re.compile(r"\b[a-z](?:\.[a-z])+\b\.?")
_NOT_ALPHANUMERIC = re.compile(r"[^a-z0-9]+")


class _Rule(NamedTuple):
    """A label, the pattern that assigns it and the phrases hidden from that pattern."""

    label: str
    pattern: re.Pattern[str]
    ignore: re.Pattern[str] | None

    def matches(self, title: str) -> bool:
        if self.ignore is not None:
            title = self.ignore.sub(" ", title)
        return self.pattern.search(title) is not None


def _rule(label: str, words: str, ignore: str | None = None) -> _Rule:
    """Compile a rule whose alternatives must match whole words of a normalised title."""
    pattern = re.compile(rf"\b(?:{words})\b")
    ignore_pattern = None if ignore is None else re.compile(rf"\b(?:{ignore})\b")
    return _Rule(label, pattern, ignore_pattern)


# Top-executive titles in English, German, French and Spanish. They give both the
# c_level seniority and the executive function.
_TOP_EXECUTIVE = (
    r"ceo|chief executive|(co)?founder|(co)?fundador(a)?|(co)?fondat(eur|rice)|(mit)?grunder(in)?|"
    r"owners?|inhaber(in)?|president|presidente|prasident(in)?|managing director|general manager|"
    r"geschaftsfuhr\w*|(director|directora|directeur|directrice) generale?|general director|pdg|gerente general"
)

# A product owner runs a Scrum backlog and has no reports, so these roles are individual
# contributors. The same applies to the other role owners.
_ROLE_OWNER = r"(product|process|account|service|system|data|budget|project|risk|control|content) owners?"

# Phrases that contain a top-executive word but name a lower rank. A vice president is
# labelled by the VP rule, and a product owner owns a backlog, not the company.
# In English "Director, General Counsel" names a director of the legal team, while
# "Director General" alone is the Spanish and French title of a chief executive.
_NOT_TOP_EXECUTIVE = (
    r"vice presidente?|"
    + _ROLE_OWNER
    + r"|(director|directora|directeur|directrice) generale? "
    r"(counsel|services|affairs|ledger|management|administration|insurance|contractor|merchandise)"
)

# "Partner" is a rank in law and consulting firms, but these phrases name a sales,
# HR or finance role instead.
_NOT_PARTNER_RANK = (
    r"(business|people|talent|hr|finance|learning|channel) partners?|"
    r"partners? (manager|marketing|account|success|sales|program|programs|engineer|development|"
    r"relations|enablement|operations|alliances|solutions|ecosystem|integrations|support)"
)

_SENIORITY_RULES: list[_Rule] = [
    # Staff who serve students ("Student Success Manager") are not students. A working
    # student has the part-time employment status of a German Werkstudent, so the intern
    # rule labels both.
    _rule(
        "student",
        r"students?|studentin|undergrad\w*|(phd|mba|doctoral) candidate|etudiant(e)?|estudiante|studierende\w*",
        ignore=r"working students?|students? (success|services|affairs|recruit\w*|support|life|engagement|"
        r"enrol\w*|admissions?|experience|advis\w*|counsel\w*|retention)",
    ),
    _rule(
        "intern",
        r"interns?|internship|trainee|working student|werkstudent(in)?|apprentice|stagiaire|"
        r"praktikant(in)?|becari[oa]|pasante|azubi|auszubildende\w*",
    ),
    # An assistant vice president is a VP rank (AVP), and an assistant professor is faculty.
    _rule(
        "assistant",
        r"assistant|assistenz|assistent(in)?|asistente|receptionist|coordinator",
        ignore=r"assistant (vice presidente?|vp|professor)",
    ),
    # c[a-z]o covers every three-letter C-suite acronym (CEO, CFO, CXO).
    _rule(
        "c_level",
        _TOP_EXECUTIVE + r"|c[a-z]o|ciso|chro|cdao|chief|partners?",
        ignore=_NOT_TOP_EXECUTIVE + "|" + _NOT_PARTNER_RANK,
    ),
    _rule("vice_president", r"vp|svp|evp|avp|vice presidente?|vicepresident\w*|vizeprasident\w*"),
    # German compounds for team, group and project leads end in "-leiter" like department
    # heads do, so they are caught before the director rule.
    _rule("manager", r"(team|gruppen|projekt|schicht)leit(er|erin|ung)"),
    # An Abteilungsleiter heads a department, which is what "Head of ..." means, so both are
    # directors. "Halbleiter" is the German word for semiconductor, not a title.
    _rule(
        "director",
        r"directors?|directora|directeur|directrice|direktor(in)?|diretor(a)?|direttore|direttrice|"
        r"head|(?!halb)\w*leit(er|erin|ung)",
    ),
    # Every "lead" is a manager, "Lead Developer" included, because a title does not say
    # whether the lead has reports. Lead generation is a marketing activity, not a rank.
    _rule(
        "manager",
        r"manager(in)?|managers|lead|leader|supervisor|responsable|gerente|jef[ea]|chef (de|d)|encargad[ao]",
        ignore=r"lead (generation|gen|qualification|nurturing)",
    ),
    _rule("senior_individual_contributor", r"senior|principal|staff|expert|experte|specialist|especialista"),
    _rule(
        "individual_contributor",
        r"junior|engineer|developer|programmer|analyst|consultant|associate|representative|rep|executive|"
        r"scientist|designer|administrator|architect|officer|accountant|auditor|recruiter|writer|agent|"
        r"technician|bdr|sdr|teacher|professor|lecturer|researcher|"
        + _ROLE_OWNER
        + r"|entwickler(in)?|ingenieur(in)?|berater(in)?|ingenier[oa]|desarrollador(a)?|"
        r"developpeu(r|se)|analista|consultor(a)?|comptable|contador(a)?",
    ),
]

_FUNCTION_RULES: list[_Rule] = [
    _rule("executive", _TOP_EXECUTIVE, ignore=_NOT_TOP_EXECUTIVE),
    # Revenue operations serves sales but is an operations role. "Commercial" names sales
    # ("Commercial Director", French "Commercial"), except in these English compounds.
    _rule(
        "sales",
        r"sales|account executive|(key )?account manager|business development|business dev|biz dev|bdr|sdr|"
        r"revenue|cro|vertrieb\w*|verkauf\w*|ventas?|ventes?|commercial|commerciale|comercial",
        ignore=r"revenue operations|revops|"
        r"commercial (art|real estate|property|counsel|law|litigation|pilot|residential|horticulturist)",
    ),
    _rule(
        "marketing",
        r"marketing|marketer|cmo|chief marketing|growth|brand|demand gen\w*|lead gen\w*|content|seo|communications?|pr",
    ),
    # Data wins over engineering, so "Data Engineer" and "BI Developer" are data.
    _rule("data", r"data|datos|donnees|analytics|bi|business intelligence|machine learning|ml|ai"),
    _rule(
        "engineering",
        r"engineering|software|developer|programmer|dev|devops|dev ops|cto|chief technology|technical|"
        r"entwickl\w*|desarrollador(a)?|developpeu(r|se)",
    ),
    _rule(
        "it",
        r"it|cio|ciso|chief information|information technology|systems|sys ?admin\w*|infrastructure|security|"
        r"informatique|informatica|edv",
    ),
    _rule("product", r"product|cpo|ux|ui|design\w*"),
    _rule(
        "finance",
        r"finance|finances|financial|finanz\w*|finanzas|cfo|chief financial|accounting|accountant|controller|"
        r"controlling|treasur\w*|comptab\w*|contab\w*|contador(a)?|buchhalt\w*|audit\w*",
    ),
    # HR comes before operations so that "People Ops" is HR.
    _rule("hr", r"hr|human resources|people|talent|recruit\w*|chro|rrhh|recursos humanos|ressources humaines"),
    _rule(
        "operations",
        r"operations|coo|chief operating|ops|revops|procurement|purchasing|supply chain|logistics|einkauf",
    ),
    # Student success teams do customer success for the students of schools and ed-tech firms.
    _rule(
        "customer_success",
        r"customer success|student success|support|customer service|customer experience|customer care|"
        r"chief customer|implementation|onboarding",
    ),
    _rule(
        "education",
        r"students?|studentin|etudiant(e)?|estudiante|studierende\w*|werkstudent(in)?|phd|doctoral|"
        r"mba candidate|teacher|professor|lecturer|researcher",
    ),
    # Occupation nouns come last: in "Financial Analyst" or "Support Engineer" the
    # department word names the function.
    _rule("data", r"analyst|scientist|statistician"),
    _rule("engineering", r"engineers?|ingenieur(in)?|ingenier[oa]|architect"),
]


def _normalize_title(title: str) -> str | None:
    """Normalise a title for the rules, or return None when it contains no words or only a placeholder."""
    folded = fold_text(title)
    if folded is None:
        return None

    joined = _DOTTED_LETTERS.sub(lambda match: match.group().replace(".", ""), folded)
    words = _NOT_ALPHANUMERIC.sub(" ", joined).split()
    normalized = " ".join(_ABBREVIATIONS.get(word, word) for word in words)

    if not normalized or normalized in _PLACEHOLDERS:
        return None
    return normalized


def _first_label(rules: list[_Rule], title: str, default: str) -> str:
    for rule in rules:
        if rule.matches(title):
            return rule.label
    return default


# Contact tables repeat a small set of titles, so labels are cached per distinct string.
_CACHE_SIZE = 65_536


def parse_seniority(title: object) -> str:
    """Return the seniority label of a job title, "unknown" when it is missing or nothing matches.

    Non-string values (numbers, NaN, pd.NA) count as missing.
    """
    if not isinstance(title, str):
        return "unknown"
    return _seniority_of_text(title)


def parse_function(title: object) -> str:
    """Return the business function of a job title.

    A missing title gives "unknown" and a title that no rule matches gives "other".
    Non-string values (numbers, NaN, pd.NA), empty or punctuation-only strings
    and placeholders such as "n/a" count as missing.
    """
    if not isinstance(title, str):
        return "unknown"
    return _function_of_text(title)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _seniority_of_text(title: str) -> str:
    normalized = _normalize_title(title)
    if normalized is None:
        return "unknown"
    return _first_label(_SENIORITY_RULES, normalized, default="unknown")


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _function_of_text(title: str) -> str:
    normalized = _normalize_title(title)
    if normalized is None:
        return "unknown"
    return _first_label(_FUNCTION_RULES, normalized, default="other")
