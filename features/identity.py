"""Identity columns shared by contacts and users, ready for record linkage.

``prepare_identity_frame`` turns a contacts or users table into one row per
record with normalised keys. Both sides go through the same function so a
comparison never mixes two spellings of the same rule.
"""

from __future__ import annotations

import re
from typing import Callable

import numpy as np
import pandas as pd

from leadlink.features import normalize

IDENTITY_COLUMNS = [
    "unique_id",
    "first_name",
    "first_name_keys",
    "last_name",
    "last_name_folded",
    "surname_parts",
    "email_local",
    "personal_email",
    "phone",
    "linkedin",
    "city",
    "company_domain",
    "job_title",
    "date_of_birth",
    "postcode",
    "address",
]


def _map_unique(series: pd.Series, function: Callable) -> pd.Series:
    """Apply ``function`` once per distinct value; names and cities repeat a lot.

    Missing values of any form (None, NaN, pd.NA, blank text) reach
    ``function`` as None.
    """
    values = series.astype("object")
    missing = series.isna().to_numpy(dtype=bool, copy=True)
    if pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series):
        is_text = values.map(lambda value: isinstance(value, str)).to_numpy(dtype=bool)
        blank = np.zeros(len(values), dtype=bool)
        if is_text.any():
            blank[is_text] = values[is_text].str.strip().eq("").to_numpy(dtype=bool)
        missing |= blank
    present = values[~missing]
    lookup = {value: function(value) for value in pd.unique(present)}
    result = pd.Series([function(None)] * len(values), index=values.index, dtype="object")
    if len(present):
        result[~missing] = present.map(lookup)
    return result


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name in frame.columns:
        return frame[name]
    return pd.Series(None, index=frame.index, dtype="object")


def normalize_date_of_birth(value) -> str | None:
    """Return a birth date as YYYYMMDD when it parses as a date, else its digits.

    Keeping unparseable dates as digits lets a typo ("1956-04-31") still be
    compared character by character with the true date.
    """
    if normalize.is_missing(value):
        return None
    text = str(value).strip()
    parsed = pd.to_datetime(text, errors="coerce", format="ISO8601") if not text.isdigit() else None
    if parsed is not None and not pd.isna(parsed):
        return parsed.strftime("%Y%m%d")
    digits = re.sub(r"\D", "", text)
    return digits or None


def normalize_postcode(value) -> str | None:
    """Upper-case a postcode and drop spaces and dashes (SW1A 1AA -> SW1A1AA)."""
    folded = normalize.fold_text(value)
    if folded is None:
        return None
    return re.sub(r"[\s-]", "", folded).upper() or None


def _fold_umlaut_spelling(name: str | None) -> str | None:
    """Fold the German "ue", "oe", "ae" spellings so Mueller and Muller agree.

    ``normalize_name`` already turns Müller into muller; this also meets
    people who typed the umlaut as two letters.
    """
    if not isinstance(name, str):
        return None
    return name.replace("ue", "u").replace("oe", "o").replace("ae", "a")


def _first_name_keys(name: str | None) -> list[str] | None:
    """Return the name with the formal names it may be a nickname of.

    Two first names are treated as nickname-related when one appears in the
    other's key list (Bob -> [bob, robert, ...]); sharing only a third name is
    not enough, because the nickname list maps some names very widely.
    """
    if not isinstance(name, str) or not name:
        return None
    first_token = name.split(" ")[0].replace("'", "")
    namer = normalize._nick_namer()
    return sorted({first_token, *namer.canonicals_of(first_token), *namer.nicknames_of(first_token)})


def _personal_email(frame: pd.DataFrame) -> pd.Series:
    """Canonical personal address: the personal_email column, else a personal email."""
    explicit = _map_unique(_column(frame, "personal_email"), normalize.canonical_email)
    main = _column(frame, "email")
    kinds = _map_unique(main, normalize.email_domain_kind)
    from_main = _map_unique(main, normalize.canonical_email).where(kinds.eq("personal"))
    return explicit.where(explicit.notna(), from_main)


def _company_domain(frame: pd.DataFrame) -> pd.Series:
    """Company domain from the column, else from a work email address."""
    explicit = _map_unique(_column(frame, "company_domain"), normalize.normalize_domain)
    main = _column(frame, "email")
    kinds = _map_unique(main, normalize.email_domain_kind)
    parts = _map_unique(main, normalize.email_parts)
    from_email = parts.map(lambda p: p[1] if isinstance(p, tuple) else None).where(kinds.isin(["work", "role"]))
    return explicit.where(explicit.notna(), from_email)


def _name_patterns(first: str | None, last: str | None) -> set[str]:
    """Email local parts that spell only the person's own name (jose.garcia, jgarcia)."""
    first_token = re.sub(r"[^a-z]", "", first.split(" ")[0]) if isinstance(first, str) else ""
    last_token = re.sub(r"[^a-z]", "", last) if isinstance(last, str) else ""
    patterns = {first_token, last_token}
    if first_token and last_token:
        for separator in ("", ".", "_", "-"):
            patterns.add(first_token + separator + last_token)
            patterns.add(last_token + separator + first_token)
            patterns.add(first_token[0] + separator + last_token)
            patterns.add(first_token + separator + last_token[0])
    patterns.discard("")
    return patterns


def _email_local(frame: pd.DataFrame, first: pd.Series, last: pd.Series) -> pd.Series:
    """Work-email local part, kept only when it carries more than the name.

    A local part such as "jose.garcia" is a function of the name, so agreeing
    on it would count the name twice. Handles like "jgarcia7" or "pepe" are
    personal habits that survive a job change and are kept.
    """
    local = _map_unique(_column(frame, "email"), normalize.work_email_local_part)
    spelled = [
        value is not None and value in _name_patterns(f, l)
        for value, f, l in zip(local.to_numpy(), first.to_numpy(), last.to_numpy())
    ]
    return local.where(~pd.Series(spelled, index=local.index), None)


def _phone(frame: pd.DataFrame, default_region: str) -> pd.Series:
    """E.164 phone, read in the record's own country when it has one."""
    countries = _column(frame, "country").astype("object").where(_column(frame, "country").notna(), None)
    regions = countries.map(lambda c: str(c).strip().upper() if isinstance(c, str) and len(c.strip()) == 2 else default_region)
    phones = _column(frame, "phone").astype("object").where(_column(frame, "phone").notna(), None)
    pairs = pd.Series(list(zip(phones, regions)), index=frame.index)
    return _map_unique(pairs, lambda pair: normalize.normalize_phone(pair[0], pair[1]) if pair else None)


def prepare_identity_frame(frame: pd.DataFrame, id_column: str, default_region: str = "US") -> pd.DataFrame:
    """Return the normalised identity columns of contacts or users.

    The result has ``IDENTITY_COLUMNS``; ``unique_id`` is ``id_column``.
    """
    first = _map_unique(_column(frame, "first_name"), normalize.normalize_name)
    last = _map_unique(_column(frame, "last_name"), normalize.normalize_name)
    prepared = pd.DataFrame(
        {
            "unique_id": frame[id_column].astype("string").to_numpy(),
            "first_name": first.to_numpy(),
            "first_name_keys": _map_unique(first, _first_name_keys).to_numpy(),
            "last_name": last.to_numpy(),
            "last_name_folded": _map_unique(last, _fold_umlaut_spelling).to_numpy(),
            "surname_parts": _map_unique(last, lambda v: normalize.surname_parts(v) or None).to_numpy(),
            "email_local": _email_local(frame, first, last).to_numpy(),
            "personal_email": _personal_email(frame).to_numpy(),
            "phone": _phone(frame, default_region).to_numpy(),
            "linkedin": _map_unique(_column(frame, "linkedin_url"), normalize.linkedin_handle).to_numpy(),
            "city": _map_unique(_column(frame, "city"), normalize.fold_text).to_numpy(),
            "company_domain": _company_domain(frame).to_numpy(),
            "job_title": _map_unique(_column(frame, "job_title"), normalize.fold_text).to_numpy(),
            "date_of_birth": _map_unique(_column(frame, "date_of_birth"), normalize_date_of_birth).to_numpy(),
            "postcode": _map_unique(_column(frame, "postcode"), normalize_postcode).to_numpy(),
            "address": _map_unique(_column(frame, "address"), normalize.fold_text).to_numpy(),
        }
    )
    # Every missing key is None, never NaN, so that Splink reads SQL NULL and
    # record dictionaries built from this frame carry no float NaN.
    return prepared.astype(object).where(prepared.notna(), None)


def prepare_identity_record(fields: dict, id_column: str, default_region: str = "US") -> dict:
    """Return the normalised identity columns of one contact or user record.

    The same rules as ``prepare_identity_frame``, written for a single
    dictionary so that real-time linkage avoids pandas per request.
    """

    def get(name: str):
        value = fields.get(name)
        return None if normalize.is_missing(value) else value

    first = normalize.normalize_name(get("first_name"))
    last = normalize.normalize_name(get("last_name"))
    email = get("email")
    kind = normalize.email_domain_kind(email)

    local = normalize.work_email_local_part(email)
    if local is not None and local in _name_patterns(first, last):
        local = None
    personal = normalize.canonical_email(get("personal_email"))
    if personal is None and kind == "personal":
        personal = normalize.canonical_email(email)
    domain = normalize.normalize_domain(get("company_domain"))
    if domain is None and kind in ("work", "role"):
        domain = normalize.email_parts(email)[1]
    country = get("country")
    region = country.strip().upper() if isinstance(country, str) and len(country.strip()) == 2 else default_region

    return {
        "unique_id": str(fields[id_column]),
        "first_name": first,
        "first_name_keys": _first_name_keys(first),
        "last_name": last,
        "last_name_folded": _fold_umlaut_spelling(last),
        "surname_parts": normalize.surname_parts(last) or None,
        "email_local": local,
        "personal_email": personal,
        "phone": normalize.normalize_phone(get("phone"), region),
        "linkedin": normalize.linkedin_handle(get("linkedin_url")),
        "city": normalize.fold_text(get("city")),
        "company_domain": domain,
        "job_title": normalize.fold_text(get("job_title")),
        "date_of_birth": normalize_date_of_birth(get("date_of_birth")),
        "postcode": normalize_postcode(get("postcode")),
        "address": normalize.fold_text(get("address")),
    }
