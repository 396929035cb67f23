"""Normalisers that turn messy identity fields into comparable keys.

Each function takes one raw value and returns a canonical string, or None
when the value carries no identity evidence. Missing values in any form
(None, NaN, pd.NA, empty or whitespace-only strings) become None.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from urllib.parse import urlsplit

import pandas as pd
import phonenumbers
from disposable_email_domains import blocklist as _DISPOSABLE_DOMAINS
from nicknames import NickNamer
from unidecode import unidecode

PERSONAL_EMAIL_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "yahoo.com",
        "yahoo.co.uk",
        "yahoo.fr",
        "yahoo.de",
        "ymail.com",
        "hotmail.com",
        "hotmail.co.uk",
        "hotmail.fr",
        "outlook.com",
        "live.com",
        "msn.com",
        "aol.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "proton.me",
        "protonmail.com",
        "gmx.de",
        "gmx.net",
        "gmx.com",
        "web.de",
        "t-online.de",
        "orange.fr",
        "free.fr",
        "laposte.net",
        "libero.it",
        "mail.ru",
        "yandex.ru",
        "qq.com",
        "163.com",
        "zoho.com",
    }
)
_GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})

# Shared mailboxes name a function, not a person, so they are no evidence
# that two records are the same person.
ROLE_LOCAL_PARTS = frozenset(
    {
        "info",
        "sales",
        "contact",
        "hello",
        "admin",
        "support",
        "office",
        "team",
        "marketing",
        "billing",
        "accounts",
        "help",
        "enquiries",
        "inquiries",
        "noreply",
        "no-reply",
        "jobs",
        "hr",
        "careers",
        "press",
        "webmaster",
        "postmaster",
    }
)

_SPACES = re.compile(r"\s+")
_NOT_NAME = re.compile(r"[^a-z\s'-]")
_LINKEDIN_PERSON = re.compile(r"^/(?:in|pub)/([^/?#]+)", re.IGNORECASE)


def is_missing(value: object) -> bool:
    """Return True for None, NaN, pd.NA and strings holding only whitespace."""
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip() == ""
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def fold_text(value: object) -> str | None:
    """Lower-case, compose accents into ASCII (Müller -> muller) and squeeze spaces."""
    if is_missing(value):
        return None
    text = unicodedata.normalize("NFKC", str(value))
    text = unidecode(text).lower()
    text = _SPACES.sub(" ", text).strip()
    return text or None


def normalize_name(value: object) -> str | None:
    """Fold a person's name and keep letters, spaces, hyphens and apostrophes."""
    folded = fold_text(value)
    if folded is None:
        return None
    cleaned = _SPACES.sub(" ", _NOT_NAME.sub(" ", folded)).strip(" -'")
    return cleaned or None


@functools.lru_cache(maxsize=1)
def _nick_namer() -> NickNamer:
    return NickNamer()


def surname_parts(value: str | None) -> list[str]:
    """Split a normalised surname into its parts (García-López -> garcia, lopez)."""
    if value is None:
        return []
    return [part for part in re.split(r"[\s-]+", value) if len(part) > 1]


def email_parts(value: object) -> tuple[str, str] | None:
    """Split an email into (local part, domain), lower-cased; None if invalid."""
    if is_missing(value):
        return None
    text = str(value).strip().lower()
    if text.count("@") != 1:
        return None
    local, domain = text.split("@")
    if not local or "." not in domain:
        return None
    return local, domain


def canonical_email(value: object) -> str | None:
    """Canonicalise an email address for matching.

    Case is ignored everywhere. For Gmail and Googlemail, which deliver
    j.o.h.n+news@gmail.com to john@gmail.com, dots and plus tags are dropped
    and the domain becomes gmail.com. Other providers keep their dots but lose
    plus tags. Role addresses (info@, sales@) and disposable domains return
    None because they do not identify a person.
    """
    parts = email_parts(value)
    if parts is None:
        return None
    local, domain = parts
    local = local.split("+", 1)[0]
    if domain in _GMAIL_DOMAINS:
        local = local.replace(".", "")
        domain = "gmail.com"
    if not local or local in ROLE_LOCAL_PARTS or is_disposable_domain(domain):
        return None
    return f"{local}@{domain}"


def email_domain_kind(value: object) -> str:
    """Classify an email as work, personal, disposable, role or missing."""
    parts = email_parts(value)
    if parts is None:
        return "missing"
    local, domain = parts
    if is_disposable_domain(domain):
        return "disposable"
    if domain in PERSONAL_EMAIL_DOMAINS:
        return "personal"
    if local.split("+", 1)[0] in ROLE_LOCAL_PARTS:
        return "role"
    return "work"


def is_disposable_domain(domain: str) -> bool:
    return domain in _DISPOSABLE_DOMAINS


def work_email_local_part(value: object) -> str | None:
    """Return the local part of a work email as identity evidence.

    A new job brings a new domain, but people tend to keep the same pattern
    (jose.garcia@old.com, jose.garcia@new.io), so only the local part is
    compared. Personal, disposable and role addresses return None; a personal
    address is compared through ``canonical_email`` instead.
    """
    if email_domain_kind(value) != "work":
        return None
    local, _ = email_parts(value)  # type: ignore[misc]
    local = local.split("+", 1)[0]
    # One-letter and very short local parts ("j@", "js@") match too many people.
    return local if len(local) >= 4 else None


def normalize_phone(value: object, default_region: str = "US") -> str | None:
    """Parse a phone number in any format into E.164 (+14155550134).

    ``default_region`` is the ISO country code used for numbers written
    without an international prefix. A leading "00" is read as the
    international prefix used in most of the world, so "001 415 555 0134"
    parses even where the region's own prefix differs (011 in the US); no
    country's national numbers start with "00".
    Extensions are dropped because they name a desk, not a person. A number
    that cannot be parsed, or whose national part is not 6 to 14 digits,
    returns None rather than a truncated string.
    """
    if is_missing(value):
        return None
    text = str(value).strip()
    region = default_region.upper() if default_region else None
    number = None
    if text.startswith("00"):
        number = _parse_phone("+" + text[2:], None)
    if number is None:
        number = _parse_phone(text, region)
    if number is None:
        return None
    number.extension = None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _parse_phone(text: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    # Numbers are evidence only as digit strings, so a length outside the
    # range any country uses is rejected, but a number one digit off its
    # country's plan is kept: it still identifies the same person.
    national_digits = len(str(number.national_number))
    return number if 6 <= national_digits <= 14 else None


def linkedin_handle(value: object) -> str | None:
    """Reduce a LinkedIn profile URL in any form to its lower-case handle.

    Accepts country subdomains, with or without scheme and ``www``, trailing
    slashes, query strings and any case. Company, school and other non-person
    pages return None so they never serve as a person key.
    """
    if is_missing(value):
        return None
    text = str(value).strip()
    if "://" not in text:
        text = "https://" + text
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    if not (host == "linkedin.com" or host.endswith(".linkedin.com")):
        return None
    match = _LINKEDIN_PERSON.match(parts.path)
    if match is None:
        return None
    handle = unidecode(match.group(1)).lower().strip()
    return handle or None


def normalize_domain(value: object) -> str | None:
    """Return a bare lower-case company domain (https://www.Acme.com/ -> acme.com)."""
    folded = fold_text(value)
    if folded is None:
        return None
    if "://" in folded:
        folded = urlsplit(folded).hostname or ""
    folded = folded.split("/")[0].removeprefix("www.").strip(".")
    return folded or None
