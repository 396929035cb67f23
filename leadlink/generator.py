"""Generate a synthetic demo workspace: CRM contacts, product users, events and deals.

The workspace is built to measure record linkage and lead scoring, so it carries the
traps of real data. Common names repeat among unrelated people. Linked contacts differ
from their user record by nicknames, typos, stripped accents, new surnames and
reformatted phones, e-mails and LinkedIn URLs. Won deals are followed by customer
events that a feature pipeline must not read.

Everything is drawn from one ``numpy.random.Generator`` and from Faker instances seeded
from the same seed, so a seed produces the same tables as long as the numpy and Faker
versions stay the same. Faker only fills small
pools of names, cities, companies and job titles. Rows are then drawn from the pools
with vectorised numpy code.

Times are handled internally as integer seconds since the window start (24 months
before ``end``) and converted to ``datetime64[ns, UTC]`` only when the tables are built.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from faker import Faker
from nicknames import NickNamer
from tqdm import tqdm
from unidecode import unidecode

logger = logging.getLogger(__name__)

DAY = 86_400  # seconds
HOUR = 3_600

TABLE_NAMES = ("contacts", "users", "events", "deals")
TRUTH_FILES = ("links.parquet", "deals.parquet")
FILE_FORMATS = ("parquet", "csv")

# Size of the product's user base relative to the CRM. With half as many users as
# contacts, each linked contact (24% of contacts) gets a user of its own.
USERS_PER_CONTACT = 0.5
PEOPLE_PER_COMPANY = 20
JOB_CHANGE_SHARE = 0.18
SAME_COMPANY_SHARE = 0.06
# New contacts that copy the full name of an unrelated user: hard negatives for linkage.
NAMESAKE_SHARE = 0.03

# Locales of people and companies, with the country each one maps to.
LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "da_DK", "sv_SE", "nl_NL")
LOCALE_SHARES = np.array([0.34, 0.12, 0.14, 0.10, 0.10, 0.06, 0.06, 0.08])
COUNTRIES = np.array(["US", "GB", "DE", "FR", "ES", "DK", "SE", "NL"], dtype=object)
CALLING_CODES = np.array(["1", "44", "49", "33", "34", "45", "46", "31"], dtype=object)
# Prefix dialled before the area code in national format ("030 ..." in Germany).
TRUNK_PREFIXES = np.array(["", "0", "0", "0", "", "", "0", "0"], dtype=object)
COUNTRY_TLDS = np.array([".com", ".co.uk", ".de", ".fr", ".es", ".dk", ".se", ".nl"], dtype=object)
LINKEDIN_SUBDOMAINS = np.array(["www", "uk", "de", "fr", "es", "dk", "se", "nl"], dtype=object)

# Industry, logit effect on winning a deal, share of companies.
INDUSTRIES = (
    ("Software", 0.5, 0.16),
    ("Financial Services", 0.35, 0.09),
    ("Consulting", 0.25, 0.08),
    ("Telecommunications", 0.15, 0.05),
    ("Healthcare", 0.1, 0.08),
    ("Energy", 0.05, 0.04),
    ("Manufacturing", 0.0, 0.12),
    ("Logistics", 0.0, 0.06),
    ("Media", -0.1, 0.05),
    ("Retail", -0.25, 0.08),
    ("Real Estate", -0.3, 0.04),
    ("Hospitality", -0.4, 0.04),
    ("Government", -0.45, 0.04),
    ("Education", -0.6, 0.04),
    ("Non-profit", -0.8, 0.03),
)
INDUSTRY_NAMES = np.array([name for name, _, _ in INDUSTRIES], dtype=object)
INDUSTRY_EFFECTS = np.array([effect for _, effect, _ in INDUSTRIES])
INDUSTRY_SHARES = np.array([share for _, _, share in INDUSTRIES]) / sum(s for _, _, s in INDUSTRIES)

# Seniority levels, their share among people and their logit effect on winning a deal.
LEVELS = ("student", "junior", "individual", "senior", "manager", "director", "head", "vp", "c_level")
STUDENT, INDIVIDUAL, DIRECTOR, C_LEVEL = (LEVELS.index(name) for name in ("student", "individual", "director",
                                                                         "c_level"))
LEVEL_SHARES = np.array([0.10, 0.10, 0.28, 0.17, 0.15, 0.08, 0.05, 0.045, 0.045])
LEVEL_SHARES = LEVEL_SHARES / LEVEL_SHARES.sum()
LEVEL_EFFECTS = np.array([-1.8, -0.8, -0.4, -0.1, 0.3, 0.7, 0.8, 1.0, 1.1])

# Business function, typical individual-contributor roles and the function's C-level title.
FUNCTIONS = (
    ("Sales", ("Account Executive", "Sales Development Representative", "Sales Representative"),
     "Chief Revenue Officer"),
    ("Marketing", ("Marketing Specialist", "Content Marketer", "Growth Marketer"), "Chief Marketing Officer"),
    ("Engineering", ("Software Engineer", "Backend Developer", "DevOps Engineer"), "Chief Technology Officer"),
    ("Data", ("Data Engineer", "Data Analyst", "Data Scientist"), "Chief Data Officer"),
    ("Operations", ("Operations Analyst", "Revenue Operations Specialist", "Business Analyst"),
     "Chief Operating Officer"),
    ("Finance", ("Financial Analyst", "Accountant", "Controller"), "Chief Financial Officer"),
    ("Product", ("Product Manager", "Product Designer", "Product Owner"), "Chief Product Officer"),
    ("IT", ("Systems Administrator", "IT Specialist", "Solutions Architect"), "Chief Information Officer"),
    ("Human Resources", ("HR Generalist", "Recruiter", "Talent Acquisition Specialist"), "Chief People Officer"),
    ("Customer Success", ("Customer Success Manager", "Support Engineer", "Implementation Consultant"),
     "Chief Customer Officer"),
)
# Title templates per level. {F} is the function, {R} one of its roles, {C} its C-level title.
LEVEL_TEMPLATES = (
    ("Intern", "Student", "{F} Intern", "Working Student, {F}", "PhD Student", "Werkstudent {F}"),
    ("Junior {R}", "Associate {R}", "{F} Assistant", "{F} Coordinator"),
    ("{R}", "{R}", "{F} Specialist"),
    ("Senior {R}", "Sr. {R}", "Lead {R}", "Principal {R}"),
    ("{F} Manager", "Manager, {F}", "{F} Team Lead"),
    ("Director, {F}", "Director of {F}", "{F} Director", "Senior Director, {F}"),
    ("Head of {F}", "Global Head of {F}", "Head of {F} EMEA"),
    ("VP of {F}", "VP {F}", "Vice President, {F}", "SVP {F}"),
    ("{C}", "{C}", "CEO", "Co-Founder & CEO", "Founder", "Managing Director"),
)
# Share of individual contributors whose title comes from Faker's free-text job list.
FAKER_JOB_SHARE = 0.06

# Company e-mail conventions: 0 first.last, 1 flast, 2 first, 3 firstlast, 4 first_last, 5 f.last.
EMAIL_FORMAT_SHARES = np.array([0.50, 0.18, 0.08, 0.10, 0.06, 0.08])
ROLE_MAILBOXES = np.array(["info", "sales", "contact", "office", "hello", "admin"], dtype=object)

GLOBAL_MAIL_DOMAINS = (
    ("gmail.com", 0.42), ("googlemail.com", 0.03), ("yahoo.com", 0.09), ("outlook.com", 0.10),
    ("hotmail.com", 0.10), ("icloud.com", 0.04),
)
LOCAL_MAIL_DOMAINS = {
    "US": ("aol.com", "comcast.net"),
    "GB": ("btinternet.com", "yahoo.co.uk"),
    "DE": ("gmx.de", "web.de", "t-online.de"),
    "FR": ("orange.fr", "free.fr", "laposte.net"),
    "ES": ("hotmail.es", "yahoo.es", "telefonica.net"),
    "DK": ("live.dk", "mail.dk"),
    "SE": ("telia.com", "live.se"),
    "NL": ("ziggo.nl", "kpnmail.nl"),
}
# Share of private mailboxes at a provider of the person's country. The rest use GLOBAL_MAIL_DOMAINS.
LOCAL_MAIL_SHARE = 0.20
DISPOSABLE_MAIL_DOMAINS = np.array(["mailinator.com", "guerrillamail.com", "yopmail.com", "10minutemail.com"],
                                   dtype=object)
GMAIL_DOMAINS = ("gmail.com", "googlemail.com")
PLUS_TAGS = np.array(["crm", "news", "work", "signup", "promo"], dtype=object)

# Phone layouts. The last 7 digits are always the subscriber number.
PHONE_E164, PHONE_INTERNATIONAL, PHONE_NATIONAL, PHONE_DOUBLE_ZERO, PHONE_SEPARATED = range(5)
PHONE_FORMAT_SHARES = np.array([0.2, 0.3, 0.3, 0.1, 0.1])
PHONE_EXTENSION_SHARE = 0.05

# LinkedIn URL layouts: canonical, no trailing slash, http + title case, country subdomain
# with a tracking parameter, no scheme, upper-case slug.
LINKEDIN_FORMAT_SHARES = np.array([0.75, 0.08, 0.05, 0.06, 0.03, 0.03])

# Contact field perturbations of linked contacts, each applied independently.
NICKNAME_SHARE = 0.15
TYPO_SHARE = 0.08
ACCENT_STRIP_SHARE = 0.30
NEW_SURNAME_SHARE = 0.04
CASE_CHANGE_SHARE = 0.05
PERSONAL_EMAIL_CARRY_SHARE = 0.50
GMAIL_VARIANT_SHARE = 0.40
PHONE_CARRY_SHARE = 0.50
PHONE_REFORMAT_SHARE = 0.60
LINKEDIN_CARRY_SHARE = 0.45
LINKEDIN_REFORMAT_SHARE = 0.50
JOB_CHANGE_SAME_CITY_SHARE = 0.70
SAME_COMPANY_SAME_CITY_SHARE = 0.90
SAME_COMPANY_SAME_EMAIL_SHARE = 0.60

# Nicknames of common European first names that the nicknames package (English names) lacks.
EUROPEAN_NICKNAMES = {
    "alexander": ("Alex", "Sascha"), "johannes": ("Hannes", "Jo"), "christoph": ("Chris",),
    "katharina": ("Kathi", "Kati"), "elisabeth": ("Lisa", "Liesel"), "francisco": ("Paco", "Curro"),
    "jose": ("Pepe",), "manuel": ("Manolo",), "dolores": ("Lola",), "wolfgang": ("Wolf",),
    "frederik": ("Frede",), "margaretha": ("Greet",), "johanna": ("Hanna",), "antonio": ("Toni",),
}

EVENT_TYPES = (
    "page_view", "product_page_view", "pricing_page_view", "demo_request", "trial_signup", "email_open",
    "email_click", "webinar_registered", "webinar_attended", "content_download", "chat", "form_submit",
    "unsubscribe", "partner_referral",
)
# Event type shares of buying-intent events and of all other events. partner_referral is
# a type that downstream code does not know, about 0.5% of all events.
HIGH_INTENT_SHARES = {"pricing_page_view": 0.42, "demo_request": 0.14, "trial_signup": 0.14,
                      "webinar_attended": 0.12, "chat": 0.08, "form_submit": 0.10}
LOW_INTENT_SHARES = {"page_view": 0.33, "product_page_view": 0.17, "email_open": 0.25, "email_click": 0.08,
                     "webinar_registered": 0.03, "content_download": 0.05, "form_submit": 0.02, "chat": 0.01,
                     "unsubscribe": 0.012, "partner_referral": 0.006}
# Event type shares of customers after a won deal.
CUSTOMER_SHARES = {"product_page_view": 0.35, "page_view": 0.20, "email_open": 0.20, "email_click": 0.05,
                   "webinar_attended": 0.07, "chat": 0.08, "content_download": 0.05}
MEAN_EVENTS_PER_CONTACT = 19.0
MEAN_CUSTOMER_EVENTS = 12.0

# Weight of each event type in the engagement score behind the true deal probability.
# Unsubscribes weigh nothing here because a separate score lowers the probability.
ENGAGEMENT_WEIGHTS = {
    "page_view": 0.1, "product_page_view": 0.4, "pricing_page_view": 1.2, "demo_request": 3.0,
    "trial_signup": 2.5, "email_open": 0.05, "email_click": 0.2, "webinar_registered": 0.4,
    "webinar_attended": 1.5, "content_download": 0.4, "chat": 0.8, "form_submit": 0.6,
    "unsubscribe": 0.0, "partner_referral": 0.3,
}
ENGAGEMENT_HALF_LIFE_DAYS = 30.0
DEAL_SHARE = 0.30
SECOND_DEAL_SHARE = 0.05
TARGET_WIN_RATE = 0.30
# Standard deviation of the per-deal log-odds term that no table records, such
# as the buyer's budget cycle or a competitor's offer. It moves the outcome,
# but no feature can measure it.
DEAL_NOISE_SD = 0.6

SITE = "https://www.example-product.com"
BLOG_SLUGS = ("how-to-score-b2b-leads", "crm-data-quality-checklist", "what-is-record-linkage",
              "product-led-growth-playbook", "intent-data-explained", "sales-and-marketing-alignment",
              "forecasting-pipeline-with-confidence", "gdpr-and-b2b-marketing")
PRODUCT_PAGES = ("lead-scoring", "integrations", "analytics", "workflows", "security", "api")
WEBINAR_SLUGS = ("pipeline-forecasting-2025", "scoring-leads-with-product-data", "revops-roundtable")
RESOURCE_FILES = ("state-of-b2b-sales.pdf", "lead-scoring-guide.pdf", "roi-calculator.xlsx")
URL_POOLS = {
    "page_view": (f"{SITE}/",) * 6 + tuple(f"{SITE}/blog/{slug}" for slug in BLOG_SLUGS)
                 + (f"{SITE}/about", f"{SITE}/customers", f"{SITE}/careers"),
    "product_page_view": tuple(f"{SITE}/product/{page}" for page in PRODUCT_PAGES),
    "pricing_page_view": (f"{SITE}/pricing", f"{SITE}/pricing", f"{SITE}/pricing?plan=team",
                          f"{SITE}/pricing#enterprise"),
    "demo_request": (f"{SITE}/demo", f"{SITE}/contact-sales"),
    "trial_signup": ("https://app.example-product.com/signup",),
    "email_open": (None,),  # an open is a tracking pixel, not a page
    "email_click": tuple(f"{SITE}/blog/{slug}?utm_source=newsletter&utm_medium=email" for slug in BLOG_SLUGS),
    "webinar_registered": tuple(f"{SITE}/webinars/{slug}" for slug in WEBINAR_SLUGS),
    "webinar_attended": tuple(f"{SITE}/webinars/{slug}/live" for slug in WEBINAR_SLUGS),
    "content_download": tuple(f"{SITE}/resources/{name}" for name in RESOURCE_FILES),
    "chat": (f"{SITE}/", f"{SITE}/pricing", f"{SITE}/product/integrations"),
    "form_submit": (f"{SITE}/contact", f"{SITE}/newsletter"),
    "unsubscribe": (f"{SITE}/email/preferences?unsubscribe=1",),
    "partner_referral": tuple(f"https://partners.example-product.com/r/{code}" for code in ("acme", "nb7", "q3x")),
}

PLANS = np.array(["free", "team", "business", "enterprise"], dtype=object)
PLAN_SHARES = np.array([0.60, 0.22, 0.13, 0.05])

LEGAL_SUFFIX = re.compile(
    r"[\s,]+(gmbh & co\. kg|gmbh|ag|kg|inc|llc|ltd|plc|group|s\.a\.|s\.l\.|sa|sarl|sas|ab|aps|a/s|bv|nv"
    r"|e\.v\.|y asociados.*|et fils|and sons|& sons|ohg|kgaa|se)\.?$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class _WeightedPool:
    """Values with Zipf-like draw probabilities, the most frequent first."""

    values: np.ndarray
    probabilities: np.ndarray

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Draw ``size`` values with replacement."""
        return self.values[rng.choice(len(self.values), size=size, p=self.probabilities)]


@dataclass(frozen=True)
class _Pools:
    """Faker-made pools, built once per call."""

    first_names: dict[tuple[int, int], _WeightedPool]  # key: (locale index, 0 male / 1 female)
    last_names: dict[int, _WeightedPool]
    cities: dict[int, _WeightedPool]
    company_names: dict[int, list[str]]
    faker_jobs: np.ndarray


@dataclass(frozen=True)
class _Window:
    """The 24-month window that all timestamps fall in."""

    start: pd.Timestamp
    end: pd.Timestamp

    @property
    def seconds(self) -> int:
        return int((self.end - self.start).total_seconds())

    def to_datetime(self, seconds: np.ndarray, missing: np.ndarray | None = None) -> pd.Series:
        """Convert seconds since the start to a ``datetime64[ns, UTC]`` series, NaT where ``missing``."""
        nanoseconds = self.start.value + np.asarray(seconds, dtype=np.int64) * 1_000_000_000
        values = nanoseconds.astype("datetime64[ns]")
        if missing is not None:
            values[missing] = np.datetime64("NaT")
        return pd.Series(values).dt.tz_localize("UTC")


# --------------------------------------------------------------------------- public API


def generate_workspace(out_dir: str | Path, n_contacts: int = 20_000, seed: int = 0,
                       file_format: str = "parquet", end: str = "2026-06-30T00:00:00Z",
                       progress: bool = False, users_per_contact: float = USERS_PER_CONTACT) -> dict:
    """Write a synthetic workspace to ``out_dir`` and return a summary of it.

    Writes ``contacts``, ``users``, ``events`` and ``deals`` as ``.parquet`` or ``.csv``
    files, plus ``truth/links.parquet`` and ``truth/deals.parquet``. The data covers the
    24 months that end at ``end`` (UTC when no offset is given).

    ``out_dir`` is created when missing. Files of an earlier run are overwritten, and the
    table files of the other format are removed so that readers never find two versions.

    Returns a dict with these keys:

    - ``rows``: row counts per table and of the truth links.
    - ``truth_shares``: ``job_change`` and ``same_company`` as shares of all contacts,
      ``name_only_evidence`` and ``no_evidence`` as shares of the true links.
    - ``closed_win_rate``: share of won deals among closed deals.
    - ``oracle_auc``: ROC AUC of the true probability against the outcome of closed deals.

    ``truth/deals.parquet`` holds two probabilities per deal. ``true_probability`` is
    the win probability given everything the generator drew before the deal was
    created, averaged over the per-deal noise term that no data shows; it is the best
    any model can know. ``drawn_probability`` includes that noise term's draw.

    ``users_per_contact`` sets the size of the user base relative to the CRM; it must
    be at least the share of contacts that are users (0.24).

    Raises ValueError for an invalid argument or when ``out_dir`` contains files that
    this function does not write.
    """
    _validate_arguments(n_contacts, file_format)
    if not users_per_contact >= JOB_CHANGE_SHARE + SAME_COMPANY_SHARE:
        raise ValueError(
            f"users_per_contact must be at least {JOB_CHANGE_SHARE + SAME_COMPANY_SHARE}, the share of contacts "
            f"that are users; got {users_per_contact!r}"
        )
    window = _make_window(end)
    out_path = Path(out_dir)
    _prepare_output_dir(out_path, file_format)
    rng = np.random.default_rng(seed)

    stages = tqdm(total=6, desc="generate workspace", disable=not progress)
    n_users = max(1, round(n_contacts * users_per_contact))
    n_companies = max(3, round((n_users + n_contacts) / PEOPLE_PER_COMPANY))
    company_locales = rng.choice(len(LOCALES), size=n_companies, p=LOCALE_SHARES)
    pools = _build_pools(seed, np.bincount(company_locales, minlength=len(LOCALES)))
    companies = _make_companies(rng, pools, company_locales)
    stages.update()

    people = _draw_people(rng, pools, companies, n_users + n_contacts, n_users)
    users_latent = _make_users_latent(rng, people.iloc[:n_users].reset_index(drop=True), companies, window)
    stages.update()

    contacts_latent = _make_contacts_latent(
        rng, pools, companies, users_latent, people.iloc[n_users:].reset_index(drop=True), n_contacts, window)
    _end_job_changers_activity(rng, users_latent, contacts_latent)
    contacts_latent = _add_latent_scores(rng, contacts_latent, users_latent, companies)
    stages.update()

    events = _make_events(rng, contacts_latent, window)
    stages.update()

    deals, events = _make_deals(rng, contacts_latent, companies, events, window)
    stages.update()

    tables = {
        "contacts": _contacts_table(rng, contacts_latent, companies, window),
        "users": _users_table(rng, users_latent, companies, window),
        "events": _events_table(rng, events, contacts_latent, window),
        "deals": _deals_table(deals, contacts_latent, window),
    }
    truth_links = _links_truth_table(contacts_latent, tables["contacts"], tables["users"])
    truth_deals = tables["deals"][["deal_id", "contact_id"]].assign(
        true_probability=deals["expected_probability"].to_numpy(), drawn_probability=deals["probability"].to_numpy()
    )
    _write_tables(out_path, tables, truth_links, truth_deals, file_format)
    stages.update()
    stages.close()

    summary = _summarise(tables, truth_links, deals)
    logger.info("Wrote workspace to %s: %s", out_path, ", ".join(f"{name} {count:,}" for name, count in summary["rows"].items()))
    return summary


# --------------------------------------------------------------------------- set-up


def _validate_arguments(n_contacts: int, file_format: str) -> None:
    if isinstance(n_contacts, bool) or not isinstance(n_contacts, (int, np.integer)) or n_contacts < 1:
        raise ValueError(f"n_contacts must be a positive integer, got {n_contacts!r}")
    if file_format not in FILE_FORMATS:
        raise ValueError(f"file_format must be one of {FILE_FORMATS}, got {file_format!r}")


def _generated_file_names() -> set[str]:
    return {f"{table}.{fmt}" for table in TABLE_NAMES for fmt in FILE_FORMATS} | {"truth"}


def _prepare_output_dir(out_path: Path, file_format: str) -> None:
    """Create ``out_path`` or check that it contains only files of an earlier run.

    Removes the table files of the format that is not written this time.
    """
    if out_path.exists() and not out_path.is_dir():
        raise ValueError(f"out_dir {out_path} exists and is not a directory")
    out_path.mkdir(parents=True, exist_ok=True)

    unknown = sorted(p.name for p in out_path.iterdir() if p.name not in _generated_file_names())
    truth_dir = out_path / "truth"
    if truth_dir.is_dir():
        unknown += sorted(f"truth/{p.name}" for p in truth_dir.iterdir() if p.name not in TRUTH_FILES)
    elif truth_dir.exists():
        unknown.append("truth")
    if unknown:
        raise ValueError(
            f"out_dir {out_path} contains files that generate_workspace does not write: {', '.join(unknown)}. "
            "Choose an empty or new directory.")

    other_format = next(fmt for fmt in FILE_FORMATS if fmt != file_format)
    for table in TABLE_NAMES:
        (out_path / f"{table}.{other_format}").unlink(missing_ok=True)


def _make_window(end: str) -> _Window:
    try:
        end_ts = pd.Timestamp(end)
    except ValueError:
        end_ts = pd.NaT
    if end_ts is pd.NaT:
        raise ValueError(f"end must be an ISO 8601 timestamp such as 2026-06-30T00:00:00Z, got {end!r}")
    end_ts = end_ts.tz_localize("UTC") if end_ts.tzinfo is None else end_ts.tz_convert("UTC")
    return _Window(start=end_ts - pd.DateOffset(months=24), end=end_ts)


def _zipf_probabilities(n: int, exponent: float, offset: float = 5.0) -> np.ndarray:
    """Return Zipf-like probabilities over ranks 0..n-1 (the offset flattens the head)."""
    weights = 1.0 / (np.arange(n) + offset) ** exponent
    return weights / weights.sum()


def _ranked_pool(draws: list[str], exponent: float) -> _WeightedPool:
    """Rank the distinct Faker draws by frequency and give them Zipf probabilities.

    Faker's own weights (real name frequencies for some locales) decide the ranking, so
    names that are common in reality tend to be the most common here too.
    """
    ranked = [value for value, _ in Counter(draws).most_common()]
    return _WeightedPool(np.array(ranked, dtype=object), _zipf_probabilities(len(ranked), exponent))


def _build_pools(seed: int, companies_per_locale: np.ndarray) -> _Pools:
    """Fill the name, city, company and job title pools from seeded Faker instances."""
    first_names, last_names, cities, company_names = {}, {}, {}, {}
    faker_jobs = np.array([], dtype=object)
    for index, locale in enumerate(LOCALES):
        fake = Faker(locale)
        fake.seed_instance(seed * 1_000 + index)
        first_names[(index, 0)] = _ranked_pool([fake.first_name_male() for _ in range(600)], exponent=0.9)
        first_names[(index, 1)] = _ranked_pool([fake.first_name_female() for _ in range(600)], exponent=0.9)
        last_names[index] = _ranked_pool([fake.last_name() for _ in range(800)], exponent=0.85)
        cities[index] = _ranked_pool([fake.city() for _ in range(150)], exponent=1.0)
        company_names[index] = [fake.company() for _ in range(int(companies_per_locale[index]))]
        if locale == "en_US":
            faker_jobs = np.array(sorted({fake.job() for _ in range(200)}), dtype=object)
    return _Pools(first_names, last_names, cities, company_names, faker_jobs)


# --------------------------------------------------------------------------- companies


def _strip_legal_suffix(name: str) -> str:
    """Return the company name without a trailing legal form ("Krebs GmbH & Co. KG" -> "Krebs")."""
    stripped = LEGAL_SUFFIX.sub("", name).strip(" ,")
    return stripped or name


def _company_domains(names: list[str], tlds: np.ndarray) -> np.ndarray:
    """Derive a unique web domain per company from its name and country."""
    domains = []
    used: set[str] = set()
    for name, tld in zip(names, tlds):
        tokens = re.findall(r"[a-z0-9]+", unidecode(_strip_legal_suffix(name)).lower())
        tokens = [t for t in tokens if t not in {"and", "et", "y", "und", "og", "och", "en", "co"}] or ["company"]
        base = "".join(tokens[:2])
        domain = f"{base}{tld}"
        suffix = 2
        # Two companies with the same name still need distinct domains.
        while domain in used:
            domain = f"{base}{suffix}{tld}"
            suffix += 1
        used.add(domain)
        domains.append(domain)
    return np.array(domains, dtype=object)


def _make_companies(rng: np.random.Generator, pools: _Pools, company_locales: np.ndarray) -> pd.DataFrame:
    """Draw companies with a skewed size distribution and per-company e-mail conventions."""
    order = np.argsort(company_locales, kind="stable")
    locales = company_locales[order]
    names = [name for index in range(len(LOCALES)) for name in pools.company_names[index]]
    n = len(names)

    employees = np.clip(np.round(rng.lognormal(np.log(60), 1.7, size=n)), 1, 250_000).astype(np.int64)
    revenue_per_employee = rng.lognormal(np.log(180_000), 0.5, size=n)
    cities = np.empty(n, dtype=object)
    for index in range(len(LOCALES)):
        mask = locales == index
        cities[mask] = pools.cities[index].draw(rng, int(mask.sum()))

    companies = pd.DataFrame({
        "name": np.array(names, dtype=object),
        "short_name": np.array([_strip_legal_suffix(name) for name in names], dtype=object),
        "domain": _company_domains(names, COUNTRY_TLDS[locales]),
        "country": locales,
        "city": cities,
        "industry": rng.choice(len(INDUSTRIES), size=n, p=INDUSTRY_SHARES),
        "employees": employees,
        "revenue": np.round(employees * revenue_per_employee, -4),
        "email_format": rng.choice(len(EMAIL_FORMAT_SHARES), size=n, p=EMAIL_FORMAT_SHARES),
    })
    # Larger companies employ more of the people we see, but less than proportionally.
    weights = employees.astype(float) ** 0.6
    companies["pick_probability"] = weights / weights.sum()
    return companies


def _pick_companies(rng: np.random.Generator, companies: pd.DataFrame, size: int) -> np.ndarray:
    return rng.choice(len(companies), size=size, p=companies["pick_probability"].to_numpy())


def _pick_other_companies(rng: np.random.Generator, companies: pd.DataFrame, current: np.ndarray,
                          same_country: np.ndarray) -> np.ndarray:
    """Pick a company different from ``current``, in the same country where ``same_country``."""
    countries = companies["country"].to_numpy()
    probabilities = companies["pick_probability"].to_numpy()
    chosen = _pick_companies(rng, companies, len(current))
    for country in range(len(LOCALES)):
        mask = same_country & (countries[current] == country)
        candidates = np.flatnonzero(countries == country)
        if mask.any() and len(candidates) > 1:
            weights = probabilities[candidates] / probabilities[candidates].sum()
            chosen[mask] = candidates[rng.choice(len(candidates), size=int(mask.sum()), p=weights)]
    # Redraw the few picks that landed on the old company, anywhere this time.
    for _ in range(20):
        clash = chosen == current
        if not clash.any() or len(companies) < 2:
            break
        chosen[clash] = _pick_companies(rng, companies, int(clash.sum()))
    return chosen


# --------------------------------------------------------------------------- people


def _ascii_token(values: np.ndarray) -> np.ndarray:
    """Lower-case ASCII letters and digits of each name, as used in e-mail addresses."""
    unique, inverse = np.unique(values.astype(str), return_inverse=True)
    tokens = np.array([re.sub(r"[^a-z0-9]", "", unidecode(value).lower()) or "x" for value in unique], dtype=object)
    return tokens[inverse]


def _slug_token(values: np.ndarray) -> np.ndarray:
    """Lower-case ASCII words joined by hyphens, as used in LinkedIn profile URLs."""
    unique, inverse = np.unique(values.astype(str), return_inverse=True)
    tokens = np.array(["-".join(re.findall(r"[a-z0-9]+", unidecode(value).lower())) or "x" for value in unique],
                      dtype=object)
    return tokens[inverse]


def _initials(tokens: np.ndarray) -> np.ndarray:
    return pd.Series(tokens, dtype=object).str.slice(0, 1).to_numpy(dtype=object)


def _draw_names(rng: np.random.Generator, pools: _Pools, locales: np.ndarray, genders: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    first = np.empty(len(locales), dtype=object)
    last = np.empty(len(locales), dtype=object)
    for locale in range(len(LOCALES)):
        in_locale = locales == locale
        last[in_locale] = pools.last_names[locale].draw(rng, int(in_locale.sum()))
        for gender in (0, 1):
            mask = in_locale & (genders == gender)
            first[mask] = pools.first_names[(locale, gender)].draw(rng, int(mask.sum()))
    return first, last


def _title_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expand the title templates into (titles, start offset, count) per (level, function)."""
    titles = []
    starts = np.zeros((len(LEVELS), len(FUNCTIONS)), dtype=np.int64)
    counts = np.zeros_like(starts)
    for level, templates in enumerate(LEVEL_TEMPLATES):
        for function, (name, roles, chief) in enumerate(FUNCTIONS):
            starts[level, function] = len(titles)
            for template in templates:
                if "{R}" in template:
                    titles.extend(template.format(R=role) for role in roles)
                else:
                    titles.append(template.format(F=name, C=chief))
            counts[level, function] = len(titles) - starts[level, function]
    return np.array(titles, dtype=object), starts, counts


def _draw_job_titles(rng: np.random.Generator, levels: np.ndarray, functions: np.ndarray,
                     faker_jobs: np.ndarray) -> np.ndarray:
    """Draw a free-text job title for each (seniority level, function)."""
    titles, starts, counts = _title_table()
    picks = starts[levels, functions] + np.floor(rng.random(len(levels)) * counts[levels, functions]).astype(int)
    result = titles[picks]
    use_faker = (levels == INDIVIDUAL) & (rng.random(len(levels)) < FAKER_JOB_SHARE)
    if len(faker_jobs):
        result[use_faker] = faker_jobs[rng.integers(len(faker_jobs), size=int(use_faker.sum()))]
    return result


def _draw_personal_addresses(rng: np.random.Generator, first: np.ndarray, last: np.ndarray,
                             countries: np.ndarray) -> np.ndarray:
    """Draw one private mailbox per person, in the styles people pick for themselves."""
    n = len(first)
    digits = rng.integers(1, 100, size=n).astype(str).astype(object)
    years = rng.integers(60, 100, size=n).astype(str).astype(object)
    styles = rng.choice(6, size=n, p=[0.35, 0.2, 0.15, 0.1, 0.1, 0.1])
    locals_ = np.select(
        [styles == 0, styles == 1, styles == 2, styles == 3, styles == 4],
        [first + "." + last, first + last, first + "." + last + digits, _initials(first) + last + years,
         first + "_" + last],
        first + digits,
    )

    global_domains = np.array([d for d, _ in GLOBAL_MAIL_DOMAINS], dtype=object)
    global_shares = np.array([s for _, s in GLOBAL_MAIL_DOMAINS])
    domains = global_domains[rng.choice(len(global_domains), size=n, p=global_shares / global_shares.sum())]
    local_mask = rng.random(n) < LOCAL_MAIL_SHARE
    for country_index, country in enumerate(COUNTRIES):
        mask = local_mask & (countries == country_index)
        options = np.array(LOCAL_MAIL_DOMAINS[country], dtype=object)
        domains[mask] = options[rng.integers(len(options), size=int(mask.sum()))]
    return _dedupe_addresses(locals_ + "@" + domains)


def _dedupe_addresses(addresses: np.ndarray) -> np.ndarray:
    """Append a number to the local part of repeated addresses ("john.smith2@...").

    The first occurrence keeps its address. Two addresses repeat when they
    reach the same mailbox: case is ignored everywhere, and Gmail also
    ignores dots, so john.smith@gmail.com and johnsmith@gmail.com clash.
    """
    result = np.array(addresses, dtype=object)
    for _ in range(5):
        lowered = pd.Series(result, dtype=object).str.lower()
        parts = lowered.str.split("@", n=1, expand=True)
        gmail = parts[1].isin(["gmail.com", "googlemail.com"])
        mailbox = lowered.where(~gmail, parts[0].str.replace(".", "", regex=False) + "@gmail.com")
        repeat = mailbox.groupby(mailbox, sort=False).cumcount().to_numpy()
        clash = repeat > 0
        if not clash.any():
            break
        parts = pd.Series(result[clash], dtype=object).str.split("@", n=1, expand=True)
        result[clash] = (parts[0] + (repeat[clash] + 1).astype(str) + "@" + parts[1]).to_numpy(dtype=object)
    return result


def _draw_phone_parts(rng: np.random.Generator, countries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Draw an area code and a 7-digit subscriber number per person."""
    n = len(countries)
    us_area = rng.integers(201, 990, size=n).astype(str)
    other_area = np.where(rng.random(n) < 0.5, rng.integers(20, 100, size=n), rng.integers(200, 1000, size=n))
    area = np.where(countries == 0, us_area, other_area.astype(str)).astype(object)
    # Subscriber numbers never start with 0, which would read as a trunk prefix.
    subscriber = rng.integers(1_000_000, 10_000_000, size=n).astype(str).astype(object)
    return area, subscriber


def _format_phones(countries: np.ndarray, area: np.ndarray, subscriber: np.ndarray, layouts: np.ndarray,
                   extensions: np.ndarray) -> np.ndarray:
    """Render phone numbers in one of the PHONE_* layouts, with an optional " ext. N" suffix."""
    code = CALLING_CODES[countries]
    trunk = TRUNK_PREFIXES[countries]
    head = pd.Series(subscriber, dtype=object).str.slice(0, 3).to_numpy(dtype=object)
    tail = pd.Series(subscriber, dtype=object).str.slice(3).to_numpy(dtype=object)
    is_us = countries == 0
    national = np.where(is_us, "(" + area + ") " + head + "-" + tail, trunk + area + " " + subscriber)
    separated = np.where(is_us, area + "-" + head + "-" + tail, trunk + area + "/" + subscriber)
    rendered = np.select(
        [layouts == PHONE_E164, layouts == PHONE_INTERNATIONAL, layouts == PHONE_NATIONAL,
         layouts == PHONE_DOUBLE_ZERO],
        ["+" + code + area + subscriber, "+" + code + " " + area + " " + head + " " + tail, national,
         "00" + code + " " + area + " " + subscriber],
        separated,
    )
    return (rendered + extensions).astype(object)


def _draw_linkedin_slugs(rng: np.random.Generator, first: np.ndarray, last: np.ndarray) -> np.ndarray:
    """Draw profile slugs: "jose-garcia-1a2b3c", or a bare "jose-garcia" for some (made unique)."""
    n = len(first)
    base = _slug_token(first) + "-" + _slug_token(last)
    suffix = np.char.mod("%06x", rng.integers(0, 16 ** 6, size=n)).astype(object)
    slugs = np.where(rng.random(n) < 0.75, base + "-" + suffix, base).astype(object)
    repeat = pd.Series(slugs).groupby(slugs, sort=False).cumcount().to_numpy()
    slugs[repeat > 0] = slugs[repeat > 0] + "-" + (repeat[repeat > 0] + 1).astype(str)
    return slugs


def _format_linkedin(slugs: np.ndarray, countries: np.ndarray, layouts: np.ndarray) -> np.ndarray:
    """Render profile URLs in one of the layouts of LINKEDIN_FORMAT_SHARES."""
    slug_series = pd.Series(slugs, dtype=object)
    title_case = slug_series.str.title().to_numpy(dtype=object)
    upper = slug_series.str.upper().to_numpy(dtype=object)
    subdomain = LINKEDIN_SUBDOMAINS[countries]
    return np.select(
        [layouts == 0, layouts == 1, layouts == 2, layouts == 3, layouts == 4],
        ["https://www.linkedin.com/in/" + slugs + "/", "https://www.linkedin.com/in/" + slugs,
         "http://linkedin.com/in/" + title_case, "https://" + subdomain + ".linkedin.com/in/" + slugs + "?trk=abc",
         "linkedin.com/in/" + slugs],
        "https://www.linkedin.com/in/" + upper + "/",
    ).astype(object)


def _draw_people(rng: np.random.Generator, pools: _Pools, companies: pd.DataFrame, n: int, n_users: int
                 ) -> pd.DataFrame:
    """Draw ``n`` people with their employer, role and the identifiers they own.

    The first ``n_users`` people become product users, the rest new CRM contacts. About
    NAMESAKE_SHARE of the new contacts take the full name of one of the users.
    The identifiers (work and private mailbox, phone, LinkedIn slug) are latent: the
    user and contact builders decide which of them appear in each table.
    """
    company = _pick_companies(rng, companies, n)
    company_locale = companies["country"].to_numpy()[company]
    # Most people share their employer's locale, the rest work abroad.
    locale = np.where(rng.random(n) < 0.8, company_locale, rng.choice(len(LOCALES), size=n, p=LOCALE_SHARES))
    gender = rng.integers(0, 2, size=n)
    first, last = _draw_names(rng, pools, locale, gender)
    namesakes = n_users + np.flatnonzero(rng.random(n - n_users) < NAMESAKE_SHARE)
    if n_users and len(namesakes):
        source = rng.integers(n_users, size=len(namesakes))
        first[namesakes], last[namesakes], locale[namesakes] = first[source], last[source], locale[source]

    city = companies["city"].to_numpy()[company].copy()
    elsewhere = rng.random(n) < 0.4
    for index in range(len(LOCALES)):
        mask = elsewhere & (company_locale == index)
        city[mask] = pools.cities[index].draw(rng, int(mask.sum()))

    level = rng.choice(len(LEVELS), size=n, p=LEVEL_SHARES)
    function = rng.integers(0, len(FUNCTIONS), size=n)
    first_ascii, last_ascii = _ascii_token(first), _ascii_token(last)
    area, subscriber = _draw_phone_parts(rng, company_locale)
    work_locals = _work_locals(first_ascii, last_ascii, companies["email_format"].to_numpy()[company])

    return pd.DataFrame({
        "first_name": first, "last_name": last, "first_ascii": first_ascii, "last_ascii": last_ascii,
        "locale": locale, "company": company, "country": company_locale, "city": city,
        "level": level, "function": function,
        "job_title": _draw_job_titles(rng, level, function, pools.faker_jobs),
        "work_address": _dedupe_addresses(work_locals + "@" + companies["domain"].to_numpy()[company]),
        "personal_address": _draw_personal_addresses(rng, first_ascii, last_ascii, company_locale),
        "phone_area": area, "phone_subscriber": subscriber,
        "phone_layout": rng.choice(len(PHONE_FORMAT_SHARES), size=n, p=PHONE_FORMAT_SHARES),
        "phone_extension": _draw_extensions(rng, n),
        "linkedin_slug": _draw_linkedin_slugs(rng, first, last),
    })


def _draw_extensions(rng: np.random.Generator, n: int) -> np.ndarray:
    numbers = rng.integers(10, 400, size=n).astype(str).astype(object)
    return np.where(rng.random(n) < PHONE_EXTENSION_SHARE, " ext. " + numbers, "").astype(object)


def _work_locals(first_ascii: np.ndarray, last_ascii: np.ndarray, layouts: np.ndarray) -> np.ndarray:
    """Build the local part of work e-mails in each company's convention."""
    initials = _initials(first_ascii)
    return np.select(
        [layouts == 0, layouts == 1, layouts == 2, layouts == 3, layouts == 4],
        [first_ascii + "." + last_ascii, initials + last_ascii, first_ascii, first_ascii + last_ascii,
         first_ascii + "_" + last_ascii],
        initials + "." + last_ascii,
    ).astype(object)


def _work_addresses(people: pd.DataFrame, companies: pd.DataFrame, company: np.ndarray,
                    existing_addresses: np.ndarray) -> np.ndarray:
    """Build work addresses at ``company`` in its convention, numbered where one already exists."""
    layouts = companies["email_format"].to_numpy()[company]
    domains = companies["domain"].to_numpy()[company]
    addresses = _work_locals(people["first_ascii"].to_numpy(), people["last_ascii"].to_numpy(), layouts) + "@" + domains
    combined = _dedupe_addresses(np.concatenate([existing_addresses, addresses]))
    return combined[len(existing_addresses):]


# --------------------------------------------------------------------------- users


def _make_users_latent(rng: np.random.Generator, people: pd.DataFrame, companies: pd.DataFrame, window: _Window
                       ) -> pd.DataFrame:
    """Add the product account to each person: sign-up, activity, plan and which identifiers it shows."""
    users = people.copy()
    n = len(users)
    users["personal_signup"] = rng.random(n) < np.where(users["level"] == STUDENT, 0.45, 0.13)
    users["role_mailbox"] = ~users["personal_signup"] & (rng.random(n) < 0.015)
    users["email"] = _user_addresses(rng, users, companies)
    users["has_personal_email"] = rng.random(n) < np.where(users["personal_signup"], 0.2, 0.45)
    users["has_phone"] = rng.random(n) < 0.5
    users["has_linkedin"] = rng.random(n) < 0.45
    users["linkedin_layout"] = rng.choice(len(LINKEDIN_FORMAT_SHARES), size=n, p=LINKEDIN_FORMAT_SHARES)
    users["has_job_title"] = rng.random(n) < 0.8
    users["has_city"] = rng.random(n) < 0.85

    signed_up = rng.integers(0, window.seconds - DAY, size=n)
    users["signed_up"] = signed_up
    users["power_user"] = rng.random(n) < 0.15
    # Casual users drop off quickly, power users keep coming back until recently.
    active_share = np.where(users["power_user"], rng.beta(4, 1.2, size=n), rng.beta(0.6, 2.5, size=n))
    users["last_active"] = signed_up + (active_share * (window.seconds - signed_up)).astype(np.int64)
    users["active_days"] = _draw_active_days(rng, users)

    users["is_admin"] = rng.random(n) < (0.06 + 0.12 * users["power_user"] + 0.06 * (users["level"] >= DIRECTOR))
    users["plan"] = _draw_plans(rng, users, companies)
    return users


def _user_addresses(rng: np.random.Generator, users: pd.DataFrame, companies: pd.DataFrame) -> np.ndarray:
    """Return each user's sign-up address (work, role mailbox or private), unique across users.

    A few private sign-ups use a disposable mailbox.
    """
    n = len(users)
    domains = companies["domain"].to_numpy()[users["company"].to_numpy()]
    role = ROLE_MAILBOXES[rng.integers(len(ROLE_MAILBOXES), size=n)] + "@" + domains
    private = users["personal_address"].to_numpy()
    locals_ = pd.Series(private, dtype=object).str.split("@").str[0].to_numpy(dtype=object)
    throwaway = locals_ + "@" + DISPOSABLE_MAIL_DOMAINS[rng.integers(len(DISPOSABLE_MAIL_DOMAINS), size=n)]
    private = np.where(rng.random(n) < 0.04, throwaway, private)
    addresses = np.select([users["personal_signup"].to_numpy(), users["role_mailbox"].to_numpy()],
                          [private, role], users["work_address"].to_numpy())
    return _dedupe_addresses(addresses.astype(object))


def _draw_active_days(rng: np.random.Generator, users: pd.DataFrame) -> np.ndarray:
    """Draw the number of active days, never more than the days between sign-up and last activity."""
    days_between = (users["last_active"].to_numpy() - users["signed_up"].to_numpy()) // DAY
    share = np.where(users["power_user"], rng.beta(3, 3, size=len(users)), rng.beta(0.9, 8, size=len(users)))
    active = np.round(share * days_between).astype(np.int64)
    return np.clip(active, np.minimum(1, days_between), days_between)


def _draw_plans(rng: np.random.Generator, users: pd.DataFrame, companies: pd.DataFrame) -> np.ndarray:
    """Give bigger companies and more active accounts the paid plans, keeping PLAN_SHARES overall."""
    employees = companies["employees"].to_numpy()[users["company"].to_numpy()]
    score = (0.4 * np.log10(employees) + 1.0 * users["power_user"].to_numpy() + 0.7 * users["is_admin"].to_numpy()
             + rng.normal(0, 1, size=len(users)))
    ranks = pd.Series(score).rank(method="first").to_numpy() / len(users)
    return PLANS[np.searchsorted(np.cumsum(PLAN_SHARES), ranks, side="left").clip(0, len(PLANS) - 1)]


def _end_job_changers_activity(rng: np.random.Generator, users: pd.DataFrame, contacts: pd.DataFrame) -> None:
    """Stop the product activity of job changers before they show up at their new company."""
    changers = contacts.loc[contacts["kind"] == "job_change"]
    user_rows = changers["user_index"].to_numpy()
    left = changers["created"].to_numpy() - rng.integers(0, 60 * DAY, size=len(changers))
    signed_up = users["signed_up"].to_numpy()[user_rows]
    last_active = np.clip(np.minimum(users["last_active"].to_numpy()[user_rows], left), signed_up, None)
    days_between = (last_active - signed_up) // DAY
    users.loc[user_rows, "last_active"] = last_active
    users.loc[user_rows, "active_days"] = np.minimum(users["active_days"].to_numpy()[user_rows], days_between)


# --------------------------------------------------------------------------- contacts


def _assign_kinds(rng: np.random.Generator, n_contacts: int, n_users: int) -> np.ndarray:
    n_job_change = min(round(n_contacts * JOB_CHANGE_SHARE), n_users)
    n_same_company = min(round(n_contacts * SAME_COMPANY_SHARE), n_users - n_job_change)
    kinds = np.array(["new"] * n_contacts, dtype=object)
    kinds[:n_job_change] = "job_change"
    kinds[n_job_change:n_job_change + n_same_company] = "same_company"
    return rng.permutation(kinds)


def _make_contacts_latent(rng: np.random.Generator, pools: _Pools, companies: pd.DataFrame, users: pd.DataFrame,
                          new_people: pd.DataFrame, n_contacts: int, window: _Window) -> pd.DataFrame:
    """Build the CRM contacts with their latent columns (kind, linked user, perturbations)."""
    kinds = _assign_kinds(rng, n_contacts, len(users))
    linked_rows = np.flatnonzero(kinds != "new")
    user_index = rng.choice(len(users), size=len(linked_rows), replace=False)

    existing_addresses = np.concatenate([users["work_address"].to_numpy(), new_people["work_address"].to_numpy()])
    linked = _linked_contacts(rng, pools, companies, users, user_index, kinds[linked_rows], existing_addresses, window)
    new = _new_contacts(rng, companies, new_people.iloc[:n_contacts - len(linked_rows)], window)

    contacts = pd.concat([linked, new], ignore_index=True)
    # Interleave linked and new contacts so that contact ids give nothing away.
    position = np.concatenate([linked_rows, np.flatnonzero(kinds == "new")])
    contacts = contacts.iloc[np.argsort(position)].reset_index(drop=True)
    contacts["contact_id"] = _make_ids("C", n_contacts)
    contacts["email_kind"] = _email_kinds(contacts["email"].to_numpy())
    return contacts


def _make_ids(prefix: str, n: int) -> np.ndarray:
    return (prefix + pd.Series(np.arange(1, n + 1)).astype(str).str.zfill(7)).to_numpy(dtype=object)


def _new_contacts(rng: np.random.Generator, companies: pd.DataFrame, people: pd.DataFrame, window: _Window
                  ) -> pd.DataFrame:
    """Turn people who never used the product into CRM contacts."""
    contacts = people.copy()
    n = len(contacts)
    contacts["kind"] = "new"
    contacts["user_index"] = -1
    # Creation dates follow a power law with exponent 1.15, so the CRM grows a little faster later on.
    contacts["created"] = (rng.power(1.15, size=n) * (window.seconds - HOUR)).astype(np.int64)
    contacts["email"] = _contact_addresses(rng, contacts)
    contacts["personal_email"] = np.where(rng.random(n) < 0.15, contacts["personal_address"], None)
    contacts["phone"] = _contact_phones(rng, contacts, rng.random(n) < 0.6)
    linkedin_layouts = rng.choice(len(LINKEDIN_FORMAT_SHARES), size=n, p=LINKEDIN_FORMAT_SHARES)
    urls = _format_linkedin(contacts["linkedin_slug"].to_numpy(), contacts["country"].to_numpy(), linkedin_layouts)
    contacts["linkedin_url"] = np.where(rng.random(n) < 0.52, urls, None)
    contacts["company_name"] = _company_names_as_typed(rng, companies, contacts["company"].to_numpy(), crm=True)
    contacts["perturbations"] = ""
    return contacts


def _contact_addresses(rng: np.random.Generator, contacts: pd.DataFrame) -> np.ndarray:
    """Pick the address a contact gave: mostly work, private for some (students often), disposable for a few."""
    n = len(contacts)
    personal = rng.random(n) < np.where(contacts["level"].to_numpy() == STUDENT, 0.45, 0.09)
    disposable = rng.random(n) < 0.012
    locals_ = pd.Series(contacts["personal_address"], dtype=object).str.split("@").str[0].to_numpy(dtype=object)
    throwaway = locals_ + "@" + DISPOSABLE_MAIL_DOMAINS[rng.integers(len(DISPOSABLE_MAIL_DOMAINS), size=n)]
    return np.select([disposable, personal], [throwaway, contacts["personal_address"]],
                     contacts["work_address"]).astype(object)


def _email_kinds(addresses: np.ndarray) -> np.ndarray:
    """Classify addresses as "work", "personal" (consumer mail providers) or "disposable"."""
    domains = pd.Series(addresses, dtype=object).str.split("@").str[1].str.lower().to_numpy(dtype=object)
    consumer = [domain for domain, _ in GLOBAL_MAIL_DOMAINS]
    consumer += [domain for options in LOCAL_MAIL_DOMAINS.values() for domain in options]
    return np.select([np.isin(domains, DISPOSABLE_MAIL_DOMAINS), np.isin(domains, consumer)],
                     ["disposable", "personal"], "work").astype(object)


def _contact_phones(rng: np.random.Generator, contacts: pd.DataFrame, present: np.ndarray) -> np.ndarray:
    phones = _format_phones(contacts["country"].to_numpy(), contacts["phone_area"].to_numpy(),
                            contacts["phone_subscriber"].to_numpy(), contacts["phone_layout"].to_numpy(),
                            contacts["phone_extension"].to_numpy())
    return np.where(present, phones, None)


def _company_names_as_typed(rng: np.random.Generator, companies: pd.DataFrame, company: np.ndarray, crm: bool
                            ) -> np.ndarray:
    """Return the company name as a person or a sales rep typed it: official, without legal form, lower case."""
    names = companies["name"].to_numpy()[company]
    short = companies["short_name"].to_numpy()[company]
    shares = [0.85, 0.15, 0.0] if crm else [0.72, 0.22, 0.06]
    style = rng.choice(3, size=len(company), p=shares)
    lowered = pd.Series(names, dtype=object).str.lower().to_numpy(dtype=object)
    return np.select([style == 0, style == 1], [names, short], lowered).astype(object)


def _linked_contacts(rng: np.random.Generator, pools: _Pools, companies: pd.DataFrame, users: pd.DataFrame,
                     user_index: np.ndarray, kinds: np.ndarray, existing_addresses: np.ndarray, window: _Window
                     ) -> pd.DataFrame:
    """Build contacts for users who entered the CRM, after a job change or at the same company."""
    contacts = users.iloc[user_index][list(_PERSON_COLUMNS)].reset_index(drop=True)
    contacts["kind"] = kinds
    contacts["user_index"] = user_index
    n = len(contacts)
    job_change = kinds == "job_change"

    signed_up = users["signed_up"].to_numpy()[user_index]
    room = window.seconds - HOUR - signed_up
    lag = np.minimum(7 * DAY + rng.random(n) * np.maximum(room - 7 * DAY, 0), room)
    contacts["created"] = signed_up + lag.astype(np.int64)

    flags = {name: np.zeros(n, dtype=bool) for name in _PERTURBATIONS}
    _change_surnames(rng, pools, contacts, flags)
    _move_job_changers(rng, pools, companies, contacts, job_change, existing_addresses)
    _update_same_company(rng, pools, companies, contacts, users, user_index, ~job_change)
    # Some job changers give the sales team a private address instead of the new work one.
    private = job_change & (rng.random(n) < 0.08)
    contacts.loc[private, "email"] = contacts.loc[private, "personal_address"]
    contacts["company_name"] = _company_names_as_typed(rng, companies, contacts["company"].to_numpy(), crm=True)

    _perturb_names(rng, contacts, flags)
    _carry_personal_email(rng, contacts, users, user_index, flags)
    _carry_phone(rng, contacts, users, user_index, flags)
    _carry_linkedin(rng, contacts, users, user_index, flags)
    contacts["perturbations"] = _join_flags(flags, _PERTURBATIONS)
    return contacts


# Columns of a person that a linked contact starts from, before changes and perturbations.
_PERSON_COLUMNS = ("first_name", "last_name", "first_ascii", "last_ascii", "locale", "company", "country", "city",
                   "level", "function", "job_title", "work_address", "personal_address", "phone_area",
                   "phone_subscriber", "phone_layout", "phone_extension", "linkedin_slug")
_PERTURBATIONS = ("nickname", "typo", "accent_stripped", "new_surname", "gmail_dots", "plus_tag", "phone_format",
                  "linkedin_format", "case")
_EVIDENCE = ("name", "personal_email", "phone", "linkedin", "email_local", "city", "company")


def _join_flags(flags: dict[str, np.ndarray], names: tuple[str, ...]) -> np.ndarray:
    """Join the names whose flag is set into one comma-separated string per row."""
    n = len(next(iter(flags.values())))
    joined = np.full(n, "", dtype=object)
    for name in names:
        joined = np.where(flags[name], np.where(joined == "", name, joined + "," + name), joined)
    return joined.astype(object)


def _change_surnames(rng: np.random.Generator, pools: _Pools, contacts: pd.DataFrame,
                     flags: dict[str, np.ndarray]) -> None:
    """Give some people a new surname (marriage), drawn from the pool of their locale."""
    chosen = np.flatnonzero(rng.random(len(contacts)) < NEW_SURNAME_SHARE)
    for row in chosen:
        old = contacts.at[row, "last_name"]
        pool = pools.last_names[int(contacts.at[row, "locale"])]
        new = pool.draw(rng, 1)[0]
        if new.lower() == old.lower():
            continue
        contacts.at[row, "last_name"] = new
        flags["new_surname"][row] = True
    changed = flags["new_surname"]
    contacts.loc[changed, "last_ascii"] = _ascii_token(contacts.loc[changed, "last_name"].to_numpy(dtype=object))


def _move_job_changers(rng: np.random.Generator, pools: _Pools, companies: pd.DataFrame, contacts: pd.DataFrame,
                       job_change: np.ndarray, existing_addresses: np.ndarray) -> None:
    """Move job changers to a new company with a new address there, a new title and often a promotion.

    A new address that someone in ``existing_addresses`` already has gets a number appended.
    """
    rows = np.flatnonzero(job_change)
    n = len(rows)
    same_city = rng.random(n) < JOB_CHANGE_SAME_CITY_SHARE
    same_country = same_city | (rng.random(n) < 0.6)
    old_company = contacts["company"].to_numpy()[rows]
    new_company = _pick_other_companies(rng, companies, old_company, same_country)
    contacts.loc[rows, "company"] = new_company
    new_country = companies["country"].to_numpy()[new_company]
    contacts.loc[rows, "country"] = new_country

    # A move abroad means a new city. Otherwise some stay in the city where they lived.
    keep_city = same_city & (new_country == companies["country"].to_numpy()[old_company])
    new_city = companies["city"].to_numpy()[new_company].copy()
    contacts.loc[rows, "city"] = np.where(keep_city, contacts["city"].to_numpy()[rows], new_city)

    old_level = contacts["level"].to_numpy()[rows]
    step = rng.choice(3, size=n, p=[0.35, 0.45, 0.20]) + (old_level == STUDENT)
    new_level = np.minimum(old_level + step, C_LEVEL)
    new_function = np.where(rng.random(n) < 0.8, contacts["function"].to_numpy()[rows],
                            rng.integers(len(FUNCTIONS), size=n))
    contacts.loc[rows, "level"] = new_level
    contacts.loc[rows, "function"] = new_function
    contacts.loc[rows, "job_title"] = _draw_job_titles(rng, new_level, new_function, pools.faker_jobs)
    contacts.loc[rows, "email"] = _work_addresses(contacts.iloc[rows], companies, new_company, existing_addresses)


def _update_same_company(rng: np.random.Generator, pools: _Pools, companies: pd.DataFrame, contacts: pd.DataFrame,
                         users: pd.DataFrame, user_index: np.ndarray, same_company: np.ndarray) -> None:
    """Keep users at their company: the same or a reformatted address, sometimes a promotion.

    NOTE: a reformatted address is not checked against colleagues' addresses, so it can
    rarely equal the address of another person at the company.
    """
    rows = np.flatnonzero(same_company)
    n = len(rows)
    user_emails = users["email"].to_numpy()[user_index[rows]]
    reformatted = _work_locals(contacts["first_ascii"].to_numpy()[rows], contacts["last_ascii"].to_numpy()[rows],
                               rng.choice(len(EMAIL_FORMAT_SHARES), size=n, p=EMAIL_FORMAT_SHARES))
    domains = companies["domain"].to_numpy()[contacts["company"].to_numpy()[rows]]
    contacts.loc[rows, "email"] = np.where(rng.random(n) < SAME_COMPANY_SAME_EMAIL_SHARE, user_emails,
                                           reformatted + "@" + domains)

    moved = rng.random(n) >= SAME_COMPANY_SAME_CITY_SHARE
    contacts.loc[rows[moved], "city"] = companies["city"].to_numpy()[contacts["company"].to_numpy()[rows[moved]]]
    promoted = rng.random(n) < 0.2
    new_level = np.minimum(contacts["level"].to_numpy()[rows] + promoted, C_LEVEL)
    contacts.loc[rows, "level"] = new_level
    titles = _draw_job_titles(rng, new_level, contacts["function"].to_numpy()[rows], pools.faker_jobs)
    contacts.loc[rows[promoted], "job_title"] = titles[promoted]


# --------------------------------------------------------------------------- name perturbations


_NICKNAMER: NickNamer | None = None


def _nickname_options(first_name: str) -> list[str]:
    """Return the nicknames of a first name, capitalised and sorted.

    A name that is itself a nickname ("Bob") gets its formal forms ("Robert") instead.
    """
    global _NICKNAMER
    if _NICKNAMER is None:
        _NICKNAMER = NickNamer()
    key = unidecode(first_name).lower()
    options = _NICKNAMER.nicknames_of(key) | {name.lower() for name in EUROPEAN_NICKNAMES.get(key, ())}
    if not options:
        options = _NICKNAMER.canonicals_of(key)
    # Multi-word entries like "mary ann" are fine. Single letters are initials, not nicknames.
    return sorted(name.title() for name in options if len(name) > 1 and name != key)


def _apply_nicknames(rng: np.random.Generator, first: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    applied = np.zeros(len(first), dtype=bool)
    for row in np.flatnonzero(chosen):
        options = _nickname_options(first[row])
        if options:
            first[row] = options[rng.integers(len(options))]
            applied[row] = True
    return applied


def _typo(rng: np.random.Generator, value: str) -> str:
    """Return ``value`` with one substituted, deleted, swapped or doubled letter."""
    if len(value) < 3:
        return value
    position = int(rng.integers(1, len(value) - 1))
    operation = int(rng.integers(4))
    if operation == 0:
        letters = "abcdefghijklmnopqrstuvwxyz".replace(value[position].lower(), "")
        return value[:position] + letters[rng.integers(len(letters))] + value[position + 1:]
    if operation == 1:
        return value[:position] + value[position + 1:]
    if operation == 2:
        return value[:position] + value[position + 1] + value[position] + value[position + 2:]
    return value[:position] + value[position] + value[position:]


def _apply_typos(rng: np.random.Generator, first: np.ndarray, last: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    applied = np.zeros(len(first), dtype=bool)
    in_first = rng.random(len(first)) < 0.5
    for row in np.flatnonzero(chosen):
        names = first if in_first[row] else last
        changed = _typo(rng, names[row])
        applied[row] = changed != names[row]
        names[row] = changed
    return applied


def _strip_accents(first: np.ndarray, last: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    applied = np.zeros(len(first), dtype=bool)
    for row in np.flatnonzero(chosen):
        stripped_first, stripped_last = unidecode(first[row]), unidecode(last[row])
        applied[row] = (stripped_first, stripped_last) != (first[row], last[row])
        first[row], last[row] = stripped_first, stripped_last
    return applied


def _change_case(rng: np.random.Generator, first: np.ndarray, last: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    upper = rng.random(len(first)) < 0.5
    applied = np.zeros(len(first), dtype=bool)
    for row in np.flatnonzero(chosen):
        convert = str.upper if upper[row] else str.lower
        new_first, new_last = convert(first[row]), convert(last[row])
        applied[row] = (new_first, new_last) != (first[row], last[row])
        first[row], last[row] = new_first, new_last
    return applied


def _perturb_names(rng: np.random.Generator, contacts: pd.DataFrame, flags: dict[str, np.ndarray]) -> None:
    """Apply nickname, typo, accent and case changes independently, as a CRM record would show them."""
    n = len(contacts)
    first = contacts["first_name"].to_numpy(dtype=object).copy()
    last = contacts["last_name"].to_numpy(dtype=object).copy()
    flags["nickname"] = _apply_nicknames(rng, first, rng.random(n) < NICKNAME_SHARE)
    flags["typo"] = _apply_typos(rng, first, last, rng.random(n) < TYPO_SHARE)
    flags["accent_stripped"] = _strip_accents(first, last, rng.random(n) < ACCENT_STRIP_SHARE)
    flags["case"] = _change_case(rng, first, last, rng.random(n) < CASE_CHANGE_SHARE)
    contacts["first_name"] = first
    contacts["last_name"] = last


# --------------------------------------------------------------------------- identifier carry-over


def _gmail_variant(rng: np.random.Generator, address: str) -> tuple[str, str]:
    """Return a Gmail-equivalent spelling of ``address`` and the perturbation name."""
    local, domain = address.split("@", 1)
    if rng.random() < 0.5:
        return f"{local}+{PLUS_TAGS[rng.integers(len(PLUS_TAGS))]}@{domain}", "plus_tag"
    if "." in local:
        return f"{local.replace('.', '')}@{domain}", "gmail_dots"
    position = int(rng.integers(1, len(local))) if len(local) > 1 else 1
    return f"{local[:position]}.{local[position:]}@{domain}", "gmail_dots"


def _carry_personal_email(rng: np.random.Generator, contacts: pd.DataFrame, users: pd.DataFrame,
                          user_index: np.ndarray, flags: dict[str, np.ndarray]) -> None:
    n = len(contacts)
    user_addresses = np.where(users["has_personal_email"], users["personal_address"], None)[user_index]
    carried = pd.notna(user_addresses) & (rng.random(n) < PERSONAL_EMAIL_CARRY_SHARE)
    values = np.where(carried, user_addresses, None).astype(object)
    domains = pd.Series(values, dtype=object).str.split("@").str[1].to_numpy(dtype=object)
    variant = carried & np.isin(domains, GMAIL_DOMAINS) & (rng.random(n) < GMAIL_VARIANT_SHARE)
    for row in np.flatnonzero(variant):
        values[row], perturbation = _gmail_variant(rng, values[row])
        flags[perturbation][row] = True
    contacts["personal_email"] = values
    contacts["carried_personal_email"] = carried


def _carry_phone(rng: np.random.Generator, contacts: pd.DataFrame, users: pd.DataFrame, user_index: np.ndarray,
                 flags: dict[str, np.ndarray]) -> None:
    """Carry the user's phone over, often in another layout, or give the contact an unrelated number."""
    n = len(contacts)
    carried = users["has_phone"].to_numpy()[user_index] & (rng.random(n) < PHONE_CARRY_SHARE)
    reformat = carried & (rng.random(n) < PHONE_REFORMAT_SHARE)
    user_layout = contacts["phone_layout"].to_numpy()
    shift = rng.integers(1, len(PHONE_FORMAT_SHARES), size=n)
    layout = np.where(reformat, (user_layout + shift) % len(PHONE_FORMAT_SHARES), user_layout)
    # Reformatting also adds or drops the extension now and then.
    extension = contacts["phone_extension"].to_numpy().copy()
    toggle = reformat & (rng.random(n) < 0.15)
    extension[toggle] = np.where(extension[toggle] == "", " ext. 12", "")

    # Contacts without the carried phone may still have an office line, a different number.
    other = ~carried & (rng.random(n) < 0.4)
    area, subscriber = _draw_phone_parts(rng, contacts["country"].to_numpy())
    area = np.where(other, area, contacts["phone_area"].to_numpy())
    subscriber = np.where(other, subscriber, contacts["phone_subscriber"].to_numpy())
    phones = _format_phones(contacts["country"].to_numpy(), area, subscriber, layout, extension)
    if carried.any():
        # A carried number keeps the user's country code, even after the contact moved abroad.
        user_phones = _format_phones(users["country"].to_numpy()[user_index], contacts["phone_area"].to_numpy(),
                                     contacts["phone_subscriber"].to_numpy(), layout, extension)
        phones = np.where(carried, user_phones, phones)
    contacts["phone"] = np.where(carried | other, phones, None)
    contacts["carried_phone"] = carried
    flags["phone_format"] = reformat


def _carry_linkedin(rng: np.random.Generator, contacts: pd.DataFrame, users: pd.DataFrame, user_index: np.ndarray,
                    flags: dict[str, np.ndarray]) -> None:
    n = len(contacts)
    carried = users["has_linkedin"].to_numpy()[user_index] & (rng.random(n) < LINKEDIN_CARRY_SHARE)
    reformat = carried & (rng.random(n) < LINKEDIN_REFORMAT_SHARE)
    user_layout = users["linkedin_layout"].to_numpy()[user_index]
    shift = rng.integers(1, len(LINKEDIN_FORMAT_SHARES), size=n)
    layout = np.where(reformat, (user_layout + shift) % len(LINKEDIN_FORMAT_SHARES), user_layout)
    urls = _format_linkedin(contacts["linkedin_slug"].to_numpy(), contacts["country"].to_numpy(), layout)
    contacts["linkedin_url"] = np.where(carried, urls, None)
    contacts["carried_linkedin"] = carried
    flags["linkedin_format"] = reformat


# --------------------------------------------------------------------------- latent scores


def _fit_scores(contacts: pd.DataFrame, companies: pd.DataFrame) -> np.ndarray:
    """Score how well a contact fits the ideal customer: seniority, company size, industry, address kind."""
    company = contacts["company"].to_numpy()
    size = 0.45 * (np.log10(companies["employees"].to_numpy()[company]) - 2.0)
    industry = INDUSTRY_EFFECTS[companies["industry"].to_numpy()[company]]
    kind = contacts["email_kind"].to_numpy()
    address = np.select([kind == "personal", kind == "disposable"], [-0.6, -1.5], 0.0)
    return LEVEL_EFFECTS[contacts["level"].to_numpy()] + size + industry + address


def _previous_user_scores(contacts: pd.DataFrame, users: pd.DataFrame) -> np.ndarray:
    """Score the pull of earlier product use: job changers most, more with active days and admin rights."""
    linked = contacts["user_index"].to_numpy() >= 0
    user_rows = np.where(linked, contacts["user_index"].to_numpy(), 0)
    active_days = users["active_days"].to_numpy()[user_rows]
    admin = users["is_admin"].to_numpy()[user_rows]
    kind = contacts["kind"].to_numpy()
    score = np.select([kind == "job_change", kind == "same_company"], [1.2, 0.5], 0.0)
    score = score + 0.35 * np.log1p(active_days) + 0.5 * admin
    return np.where(linked, score, 0.0)


def _add_latent_scores(rng: np.random.Generator, contacts: pd.DataFrame, users: pd.DataFrame,
                       companies: pd.DataFrame) -> pd.DataFrame:
    """Add fit, previous-use score, buying intent and event volume (interest) per contact."""
    contacts = contacts.copy()
    n = len(contacts)
    contacts["fit"] = _fit_scores(contacts, companies)
    contacts["previous_use"] = _previous_user_scores(contacts, users)
    contacts["intent"] = 0.4 * contacts["fit"] + 0.5 * contacts["previous_use"] + rng.normal(0, 1, size=n)
    # Event volume is heavy-tailed: most contacts do little, a few do a lot.
    interest = np.exp(rng.normal(0, 1.1, size=n) + 0.3 * contacts["intent"].to_numpy())
    contacts["interest"] = interest / interest.mean()
    return contacts


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _expected_sigmoid(x: np.ndarray, sd: float, points: int = 40) -> np.ndarray:
    """Return E[sigmoid(x + e)] for e ~ Normal(0, sd), by Gauss-Hermite quadrature."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(points)
    values = _sigmoid(np.asarray(x, dtype=float)[:, None] + sd * nodes[None, :])
    return values @ (weights / weights.sum())


def _calibrate_intercept(logits: np.ndarray, target: float, won_weights: np.ndarray | None = None,
                         lost_weights: np.ndarray | None = None) -> float:
    """Return the intercept that makes the expected positive rate equal ``target``, by bisection.

    Without weights the rate is the mean of sigmoid(intercept + logits). With weights it
    is the expected share of positives among the weighted rows, for example the win rate
    among deals that would be closed given their outcome.
    """
    won_weights = np.ones(len(logits)) if won_weights is None else won_weights
    lost_weights = np.ones(len(logits)) if lost_weights is None else lost_weights
    low, high = -20.0, 20.0
    for _ in range(60):
        middle = (low + high) / 2
        probability = _sigmoid(middle + logits)
        positive = (probability * won_weights).sum()
        negative = ((1 - probability) * lost_weights).sum()
        if positive < target * (positive + negative):
            low = middle
        else:
            high = middle
    return (low + high) / 2


# --------------------------------------------------------------------------- events


def _type_codes(shares: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    codes = np.array([EVENT_TYPES.index(name) for name in shares])
    probabilities = np.array(list(shares.values()))
    return codes, probabilities / probabilities.sum()


def _draw_event_types(rng: np.random.Generator, shares: dict[str, float], size: int) -> np.ndarray:
    codes, probabilities = _type_codes(shares)
    return codes[rng.choice(len(codes), size=size, p=probabilities)]


def _reflect(times: np.ndarray, low: np.ndarray, high: int) -> np.ndarray:
    """Fold times that fall outside [low, high] back inside, so no mass piles up at the bounds."""
    times = np.where(times < low, 2 * low - times, times)
    times = np.where(times > high, 2 * high - times, times)
    return np.clip(times, low, high)


def _make_events(rng: np.random.Generator, contacts: pd.DataFrame, window: _Window) -> pd.DataFrame:
    """Draw each contact's marketing and product events before any deal exists.

    Events start up to 5 days before the contact was created (anonymous visits matched
    later) and run to the window end. The count grows with the time a contact has been
    known and with its interest. Times mix a decaying spell after creation, short bursts
    and an even spread. Contacts with more buying intent produce more high-intent events.
    """
    n = len(contacts)
    first = np.maximum(contacts["created"].to_numpy() - rng.integers(0, 5 * DAY, size=n), 0)
    length = window.seconds - first
    volume = contacts["interest"].to_numpy() * (length / DAY + 30.0)
    counts = rng.poisson(MEAN_EVENTS_PER_CONTACT * n * volume / volume.sum())
    owner = np.repeat(np.arange(n), counts)
    m = len(owner)

    start = first[owner]
    after_creation = start + rng.exponential(40 * DAY, size=m).astype(np.int64)
    centres = first[:, None] + (rng.random((n, 3)) * length[:, None]).astype(np.int64)
    burst = centres[owner, rng.integers(0, 3, size=m)] + rng.normal(0, 4 * DAY, size=m).astype(np.int64)
    spread = start + (rng.random(m) * length[owner]).astype(np.int64)
    pattern = rng.choice(3, size=m, p=[0.35, 0.35, 0.30])
    times = np.select([pattern == 0, pattern == 1], [after_creation, burst], spread)
    times = _reflect(times, start, window.seconds)

    high_intent_share = _sigmoid(-2.3 + 0.9 * contacts["intent"].to_numpy())
    high = rng.random(m) < high_intent_share[owner]
    types = _draw_event_types(rng, LOW_INTENT_SHARES, m)
    types[high] = _draw_event_types(rng, HIGH_INTENT_SHARES, int(high.sum()))
    return pd.DataFrame({"owner": owner, "type": types, "time": times})


def _customer_events(rng: np.random.Generator, owners: np.ndarray, starts: np.ndarray, window: _Window
                     ) -> pd.DataFrame:
    """Draw the events of customers after a won deal, from the deal's creation to the window end.

    These rows are a trap: features that are not computed strictly before the deal
    date see the customer's later engagement and leak the outcome.
    """
    counts = rng.poisson(MEAN_CUSTOMER_EVENTS, size=len(owners))
    owner = np.repeat(owners, counts)
    start = np.repeat(starts, counts)
    times = start + (rng.random(len(owner)) * (window.seconds - start)).astype(np.int64)
    return pd.DataFrame({"owner": owner, "type": _draw_event_types(rng, CUSTOMER_SHARES, len(owner)),
                         "time": np.minimum(times, window.seconds)})


# --------------------------------------------------------------------------- deals


def _engagement_scores(events: pd.DataFrame, deal_owner: np.ndarray, deal_time: np.ndarray, horizon: int
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Return recency-weighted engagement and unsubscribe scores from events strictly before each deal.

    Each event counts ``weight * 2 ** (-age / half-life)``. The decay factors into
    ``2 ** (t / h)`` per event and ``2 ** (-deal_time / h)`` per deal, so a cumulative
    sum over events sorted by (contact, time) and one ``searchsorted`` per deal give
    every sum without a loop.
    """
    stride = np.int64(horizon + 1)
    keys = events["owner"].to_numpy().astype(np.int64) * stride + events["time"].to_numpy()
    order = np.argsort(keys, kind="stable")
    keys = keys[order]
    types = events["type"].to_numpy()[order]
    growth = np.exp2(events["time"].to_numpy()[order] / (ENGAGEMENT_HALF_LIFE_DAYS * DAY))

    weights = np.array([ENGAGEMENT_WEIGHTS[name] for name in EVENT_TYPES])[types]
    unsubscribed = (types == EVENT_TYPES.index("unsubscribe")).astype(float)
    first = np.searchsorted(keys, deal_owner.astype(np.int64) * stride, side="left")
    before = np.searchsorted(keys, deal_owner.astype(np.int64) * stride + deal_time, side="left")
    decay = np.exp2(-deal_time / (ENGAGEMENT_HALF_LIFE_DAYS * DAY))

    scores = []
    for values in (weights * growth, unsubscribed * growth):
        cumulative = np.concatenate([[0.0], np.cumsum(values)])
        scores.append(np.maximum(cumulative[before] - cumulative[first], 0.0) * decay)
    return scores[0], scores[1]


def _deal_logits(contacts: pd.DataFrame, events: pd.DataFrame, owner: np.ndarray, created: np.ndarray,
                 noise: np.ndarray, horizon: int) -> np.ndarray:
    """Combine fit, recent engagement and earlier product use into a logit without intercept."""
    engagement, unsubscribes = _engagement_scores(events, owner, created, horizon)
    return (contacts["fit"].to_numpy()[owner]
            + 1.0 * np.log1p(engagement)
            - 1.5 * np.minimum(unsubscribes, 1.0)
            + contacts["previous_use"].to_numpy()[owner]
            + noise)


def _pick_deal_contacts(rng: np.random.Generator, contacts: pd.DataFrame, window: _Window) -> np.ndarray:
    """Pick the contacts that get a deal, more often those with buying intent.

    Contacts created in the last 90 days are less likely to have a deal yet.
    """
    age_days = (window.seconds - contacts["created"].to_numpy()) / DAY
    logits = 0.8 * contacts["intent"].to_numpy() + np.log(np.minimum(1.0, (age_days + 1) / 90))
    probability = _sigmoid(_calibrate_intercept(logits, DEAL_SHARE) + logits)
    return np.flatnonzero(rng.random(len(contacts)) < probability)


def _deal_creation_times(rng: np.random.Generator, contacts: pd.DataFrame, events: pd.DataFrame,
                         owners: np.ndarray, window: _Window) -> np.ndarray:
    """Place most deals a few days after one of the contact's first high-intent events, the rest
    a few weeks or months after the contact was created.
    """
    created = contacts["created"].to_numpy()[owners]
    anywhere = created + rng.exponential(90 * DAY, size=len(owners)).astype(np.int64)

    trigger_types = [EVENT_TYPES.index(name) for name in ("demo_request", "pricing_page_view", "trial_signup")]
    triggers = events.loc[np.isin(events["type"].to_numpy(), trigger_types)].sort_values(["owner", "time"])
    trigger_owner = triggers["owner"].to_numpy()
    start = np.searchsorted(trigger_owner, owners, side="left")
    count = np.searchsorted(trigger_owner, owners, side="right") - start
    # Leads convert early: the first trigger is picked half of the time, each later one half as often.
    pick = start + np.minimum(rng.geometric(0.5, size=len(owners)) - 1, np.maximum(count - 1, 0))
    trigger_time = triggers["time"].to_numpy()[np.minimum(pick, max(len(triggers) - 1, 0))] if len(triggers) else 0
    after_trigger = trigger_time + rng.exponential(4 * DAY, size=len(owners)).astype(np.int64) + HOUR

    use_trigger = (count > 0) & (rng.random(len(owners)) < 0.75)
    times = np.where(use_trigger, after_trigger, anywhere)
    # A deal starts after its contact exists and no later than the window end.
    return np.clip(times, created + 60, window.seconds)


def _draw_cycles(rng: np.random.Generator, n: int, median_days: float) -> np.ndarray:
    """Draw sales-cycle lengths in seconds, between 7 and 180 days."""
    cycle = rng.lognormal(np.log(median_days * DAY), 0.65, size=n)
    return np.clip(cycle, 7 * DAY, 180 * DAY).astype(np.int64)


def _deal_amounts(rng: np.random.Generator, contacts: pd.DataFrame, companies: pd.DataFrame, owners: np.ndarray
                  ) -> np.ndarray:
    """Draw contract values in USD that grow with the buyer's headcount."""
    employees = companies["employees"].to_numpy()[contacts["company"].to_numpy()[owners]]
    amount = 2_000.0 * employees ** 0.55 * rng.lognormal(0, 0.45, size=len(owners))
    return np.clip(np.round(amount, -2), 1_500.0, 750_000.0)


def _draw_deal_round(rng: np.random.Generator, contacts: pd.DataFrame, events: pd.DataFrame, owners: np.ndarray,
                     created: np.ndarray, intercept: float | None, window: _Window
                     ) -> tuple[pd.DataFrame, float]:
    """Draw probabilities and outcomes for deals whose preceding events are all in ``events``.

    Without an ``intercept`` the intercept is calibrated so that the expected win rate of
    the deals that end up closed is TARGET_WIN_RATE. Returns the deals and the intercept.
    """
    n = len(owners)
    noise = rng.normal(0, DEAL_NOISE_SD, size=n)
    logits = _deal_logits(contacts, events, owners, created, noise, window.seconds)
    # Won deals take longer to close, so recent won deals are more often still open.
    won_cycle, lost_cycle = _draw_cycles(rng, n, 55.0), _draw_cycles(rng, n, 35.0)
    if intercept is None:
        intercept = _calibrate_intercept(logits, TARGET_WIN_RATE,
                                         won_weights=created + won_cycle <= window.seconds,
                                         lost_weights=created + lost_cycle <= window.seconds)
    probability = _sigmoid(intercept + logits)
    won = rng.random(n) < probability
    closed = created + np.where(won, won_cycle, lost_cycle)
    still_open = closed > window.seconds
    outcome = np.where(still_open, "open", np.where(won, "won", "lost")).astype(object)
    deals = pd.DataFrame({"owner": owners, "created": created, "closed": closed, "open": still_open,
                          "outcome": outcome, "probability": probability,
                          "expected_probability": _expected_sigmoid(intercept + logits - noise, DEAL_NOISE_SD)})
    return deals, intercept


def _make_deals(rng: np.random.Generator, contacts: pd.DataFrame, companies: pd.DataFrame, events: pd.DataFrame,
                window: _Window) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Draw deals, their true win probability and outcome, and the customer events of won deals.

    Second deals are drawn in a second round because the customer events of a won
    first deal precede them and count in their engagement.
    """
    owners = _pick_deal_contacts(rng, contacts, window)
    created = _deal_creation_times(rng, contacts, events, owners, window)
    first_round, intercept = _draw_deal_round(rng, contacts, events, owners, created, None, window)
    events = _append_customer_events(rng, events, first_round, window)

    repeat = rng.random(len(owners)) < SECOND_DEAL_SHARE
    second_created = created[repeat] + rng.integers(60 * DAY, 300 * DAY, size=int(repeat.sum()))
    keep = second_created <= window.seconds - DAY
    second_round, _ = _draw_deal_round(rng, contacts, events, owners[repeat][keep], second_created[keep],
                                       intercept, window)
    events = _append_customer_events(rng, events, second_round, window)

    deals = pd.concat([first_round, second_round], ignore_index=True)
    deals["amount"] = _deal_amounts(rng, contacts, companies, deals["owner"].to_numpy())
    deals = deals.sort_values(["created", "owner"], kind="stable").reset_index(drop=True)
    return deals, events


def _append_customer_events(rng: np.random.Generator, events: pd.DataFrame, deals: pd.DataFrame, window: _Window
                            ) -> pd.DataFrame:
    won = deals.loc[deals["outcome"] == "won"]
    extra = _customer_events(rng, won["owner"].to_numpy(), won["created"].to_numpy(), window)
    return pd.concat([events, extra], ignore_index=True)


# --------------------------------------------------------------------------- output tables


def _with_missing(rng: np.random.Generator, values: np.ndarray, share: float) -> np.ndarray:
    """Blank out about ``share`` of the values, as an incomplete CRM or sign-up form would."""
    return np.where(rng.random(len(values)) < share, None, values).astype(object)


def _contacts_table(rng: np.random.Generator, contacts: pd.DataFrame, companies: pd.DataFrame, window: _Window
                    ) -> pd.DataFrame:
    n = len(contacts)
    company = contacts["company"].to_numpy()
    employees = pd.array(companies["employees"].to_numpy()[company], dtype="Int64")
    employees[rng.random(n) < 0.15] = pd.NA
    revenue = companies["revenue"].to_numpy()[company].astype(float)
    revenue[rng.random(n) < 0.30] = np.nan
    return pd.DataFrame({
        "contact_id": contacts["contact_id"].to_numpy(dtype=object),
        "first_name": contacts["first_name"].to_numpy(dtype=object),
        "last_name": contacts["last_name"].to_numpy(dtype=object),
        "email": contacts["email"].to_numpy(dtype=object),
        "personal_email": contacts["personal_email"].to_numpy(dtype=object),
        "phone": contacts["phone"].to_numpy(dtype=object),
        "linkedin_url": contacts["linkedin_url"].to_numpy(dtype=object),
        "job_title": _with_missing(rng, contacts["job_title"].to_numpy(dtype=object), 0.03),
        "company_name": contacts["company_name"].to_numpy(dtype=object),
        "company_domain": _with_missing(rng, companies["domain"].to_numpy()[company], 0.05),
        "industry": _with_missing(rng, INDUSTRY_NAMES[companies["industry"].to_numpy()[company]], 0.10),
        "employee_count": employees,
        "annual_revenue": revenue,
        "country": _with_missing(rng, COUNTRIES[contacts["country"].to_numpy()], 0.02),
        "city": _with_missing(rng, contacts["city"].to_numpy(dtype=object), 0.10),
        "created_at": window.to_datetime(contacts["created"].to_numpy()),
    })


def _users_table(rng: np.random.Generator, users: pd.DataFrame, companies: pd.DataFrame, window: _Window
                 ) -> pd.DataFrame:
    n = len(users)
    company = users["company"].to_numpy()
    phones = _format_phones(users["country"].to_numpy(), users["phone_area"].to_numpy(),
                            users["phone_subscriber"].to_numpy(), users["phone_layout"].to_numpy(),
                            users["phone_extension"].to_numpy())
    linkedin = _format_linkedin(users["linkedin_slug"].to_numpy(), users["country"].to_numpy(),
                                users["linkedin_layout"].to_numpy())
    # The product derives the company domain from the sign-up address, so private addresses give none.
    domain = pd.Series(users["email"].to_numpy(dtype=object)).str.split("@").str[1].to_numpy(dtype=object)
    company_name = _company_names_as_typed(rng, companies, company, crm=False)
    return pd.DataFrame({
        "user_id": _make_ids("U", n),
        "first_name": users["first_name"].to_numpy(dtype=object),
        "last_name": users["last_name"].to_numpy(dtype=object),
        "email": users["email"].to_numpy(dtype=object),
        "personal_email": np.where(users["has_personal_email"], users["personal_address"], None).astype(object),
        "phone": np.where(users["has_phone"], phones, None).astype(object),
        "linkedin_url": np.where(users["has_linkedin"], linkedin, None).astype(object),
        "job_title": np.where(users["has_job_title"], users["job_title"], None).astype(object),
        "company_name": _with_missing(rng, company_name, 0.05),
        "company_domain": np.where(users["personal_signup"], None, domain).astype(object),
        "country": _with_missing(rng, COUNTRIES[users["country"].to_numpy()], 0.03),
        "city": np.where(users["has_city"], users["city"], None).astype(object),
        "signed_up_at": window.to_datetime(users["signed_up"].to_numpy()),
        "last_active_at": window.to_datetime(users["last_active"].to_numpy()),
        "active_days": users["active_days"].to_numpy().astype(np.int64),
        "is_admin": users["is_admin"].to_numpy().astype(bool),
        "plan": users["plan"].to_numpy(dtype=object),
    })


def _event_urls(rng: np.random.Generator, types: np.ndarray) -> np.ndarray:
    urls = np.empty(len(types), dtype=object)
    for code, name in enumerate(EVENT_TYPES):
        mask = types == code
        pool = np.array(URL_POOLS[name], dtype=object)
        urls[mask] = pool[rng.integers(len(pool), size=int(mask.sum()))]
    return urls


def _events_table(rng: np.random.Generator, events: pd.DataFrame, contacts: pd.DataFrame, window: _Window
                  ) -> pd.DataFrame:
    events = events.sort_values(["time", "owner"], kind="stable")
    types = events["type"].to_numpy()
    return pd.DataFrame({
        "contact_id": contacts["contact_id"].to_numpy(dtype=object)[events["owner"].to_numpy()],
        "event_type": np.array(EVENT_TYPES, dtype=object)[types],
        "occurred_at": window.to_datetime(events["time"].to_numpy()),
        "url": _event_urls(rng, types),
    })


def _deals_table(deals: pd.DataFrame, contacts: pd.DataFrame, window: _Window) -> pd.DataFrame:
    return pd.DataFrame({
        "deal_id": _make_ids("D", len(deals)),
        "contact_id": contacts["contact_id"].to_numpy(dtype=object)[deals["owner"].to_numpy()],
        "created_at": window.to_datetime(deals["created"].to_numpy()),
        "closed_at": window.to_datetime(deals["closed"].to_numpy(), missing=deals["open"].to_numpy()),
        "outcome": deals["outcome"].to_numpy(dtype=object),
        "amount": deals["amount"].to_numpy(dtype=float),
    })


# --------------------------------------------------------------------------- truth


def _email_local(addresses: pd.Series) -> pd.Series:
    return addresses.str.split("@").str[0].str.lower()


def _spells_own_name(locals_: pd.Series, first: pd.Series, last: pd.Series) -> np.ndarray:
    """Mark local parts that any company convention would build from the name.

    Such a local part ("jose.garcia", "jgarcia") is shared by every namesake
    at a company with the same convention, so agreeing on it is no evidence
    beyond the name. A suffix added to keep addresses unique ("jose.garcia2")
    is personal and does count.
    """
    first_ascii = _ascii_token(first.fillna("").to_numpy(dtype=object))
    last_ascii = _ascii_token(last.fillna("").to_numpy(dtype=object))
    spelled = np.zeros(len(locals_), dtype=bool)
    for layout in range(len(EMAIL_FORMAT_SHARES)):
        candidates = _work_locals(first_ascii, last_ascii, np.full(len(locals_), layout))
        spelled |= (locals_.to_numpy(dtype=object) == candidates)
    return spelled


def _links_truth_table(contacts: pd.DataFrame, contacts_table: pd.DataFrame, users_table: pd.DataFrame
                       ) -> pd.DataFrame:
    """List the contacts that are product users, with the evidence that survived and the perturbations applied.

    Evidence is read off the written tables where a plain comparison decides it (e-mail
    local part, city, company domain) and from the generation flags where the values
    differ on purpose (names, gmail variants, reformatted phones and URLs). An e-mail
    local part that only spells the name is not evidence beyond the name.
    """
    linked = np.flatnonzero(contacts["kind"].to_numpy() != "new")
    user_rows = contacts["user_index"].to_numpy()[linked]
    contact_rows = contacts_table.iloc[linked].reset_index(drop=True)
    user_rows_table = users_table.iloc[user_rows].reset_index(drop=True)

    def agree(contact_values: pd.Series, user_values: pd.Series) -> np.ndarray:
        both = contact_values.notna() & user_values.notna()
        return (both & (contact_values.str.casefold() == user_values.str.casefold()).fillna(False)).to_numpy()

    perturbations = contacts["perturbations"].to_numpy(dtype=object)[linked]
    evidence = {
        "name": ~pd.Series(perturbations).str.contains("new_surname").to_numpy(),
        "personal_email": contacts["carried_personal_email"].to_numpy(dtype=bool)[linked],
        "phone": contacts["carried_phone"].to_numpy(dtype=bool)[linked],
        "linkedin": contacts["carried_linkedin"].to_numpy(dtype=bool)[linked],
        "email_local": agree(_email_local(contact_rows["email"]), _email_local(user_rows_table["email"]))
        & ~_spells_own_name(_email_local(user_rows_table["email"]), user_rows_table["first_name"], user_rows_table["last_name"]),
        "city": agree(contact_rows["city"], user_rows_table["city"]),
        "company": agree(contact_rows["company_domain"], user_rows_table["company_domain"]),
    }
    return pd.DataFrame({
        "contact_id": contact_rows["contact_id"].to_numpy(dtype=object),
        "user_id": user_rows_table["user_id"].to_numpy(dtype=object),
        "scenario": contacts["kind"].to_numpy(dtype=object)[linked],
        "evidence": _join_flags(evidence, _EVIDENCE),
        "perturbations": perturbations,
    })


# --------------------------------------------------------------------------- writing and summary


def _to_csv_frame(table: pd.DataFrame) -> pd.DataFrame:
    """Render timestamp columns as ISO 8601 with a Z suffix. Nulls stay empty cells."""
    table = table.copy()
    for column in table.columns:
        if isinstance(table[column].dtype, pd.DatetimeTZDtype):
            table[column] = table[column].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return table


def _write_tables(out_path: Path, tables: dict[str, pd.DataFrame], truth_links: pd.DataFrame,
                  truth_deals: pd.DataFrame, file_format: str) -> None:
    for name, table in tables.items():
        path = out_path / f"{name}.{file_format}"
        if file_format == "csv":
            _to_csv_frame(table).to_csv(path, index=False)
        else:
            table.to_parquet(path, index=False)
        logger.debug("Wrote %d rows to %s", len(table), path)
    truth_dir = out_path / "truth"
    truth_dir.mkdir(exist_ok=True)
    truth_links.to_parquet(truth_dir / "links.parquet", index=False)
    truth_deals.to_parquet(truth_dir / "deals.parquet", index=False)


def _roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Return the ROC AUC of ``scores`` for binary ``labels`` (Mann-Whitney U with average ranks for ties).

    Returns NaN when only one class is present.
    """
    labels = np.asarray(labels, dtype=bool)
    n_positive = int(labels.sum())
    n_negative = len(labels) - n_positive
    if n_positive == 0 or n_negative == 0:
        return float("nan")
    ranks = pd.Series(np.asarray(scores, dtype=float)).rank(method="average").to_numpy()
    return float((ranks[labels].sum() - n_positive * (n_positive + 1) / 2) / (n_positive * n_negative))


def _summarise(tables: dict[str, pd.DataFrame], truth_links: pd.DataFrame, deals: pd.DataFrame) -> dict:
    n_contacts = len(tables["contacts"])
    scenario = truth_links["scenario"]
    closed = deals.loc[~deals["open"].to_numpy()]
    won = closed["outcome"].to_numpy() == "won"
    n_links = max(len(truth_links), 1)
    return {
        "rows": {name: len(table) for name, table in tables.items()} | {"truth_links": len(truth_links)},
        "truth_shares": {
            "job_change": float((scenario == "job_change").sum() / n_contacts),
            "same_company": float((scenario == "same_company").sum() / n_contacts),
            "name_only_evidence": float((truth_links["evidence"] == "name").sum() / n_links),
            "no_evidence": float((truth_links["evidence"] == "").sum() / n_links),
        },
        "closed_win_rate": float(won.mean()) if len(closed) else float("nan"),
        "oracle_auc": _roc_auc(closed["expected_probability"].to_numpy(), won),
    }
