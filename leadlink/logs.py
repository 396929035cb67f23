"""Logging set-up and masking of personal data in log lines."""

import logging
import re
import sys

import phonenumbers

_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")


def mask_email(text: str) -> str:
    """Replace every email address in ``text`` by its first letter and domain."""
    return _EMAIL.sub(r"\1***@\2", text)


# National formats differ by country, so a number is searched for as it
# would be written in each of these regions. The first region accepts any
# possible number; the others only numbers valid there, because their short
# national plans would otherwise take dates and counts for phone numbers.
MASK_REGIONS = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "SE", "DK", "AU", "IN")


# ISO 8601 dates and times; libphonenumber's lenient matcher reads
# "2026-07-02" as a possible US number, so they are set aside before matching.
_ISO_TIMESTAMP = re.compile(r"(\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?)")
# Decimals with one or two digits before the point (metrics such as
# "Brier 0.1692, ECE 0.024") are set aside too: the matcher read that pair as
# one number. A phone written with points has several groups ("415.555.0134").
_SHORT_DECIMAL = r"(?<![\d.])\d{1,2}\.\d+(?![\d.])"
_NOT_PHONES = re.compile("(" + _ISO_TIMESTAMP.pattern[1:-1] + "|" + _SHORT_DECIMAL + ")")


def mask_phone(text: str, regions: tuple[str, ...] = MASK_REGIONS) -> str:
    """Replace every phone number in ``text`` by its last two digits.

    Numbers are found with libphonenumber's matcher, which skips most dates,
    times and counts that a digit pattern would catch; ISO 8601 timestamps
    and short decimals are never masked.
    """
    pieces = _NOT_PHONES.split(text)
    # split() with one capturing group puts the timestamps and decimals at odd positions.
    return "".join(piece if index % 2 else _mask_phones(piece, regions) for index, piece in enumerate(pieces))


def _mask_phones(text: str, regions: tuple[str, ...]) -> str:
    for position, region in enumerate(regions):
        if sum(ch.isdigit() for ch in text) < 6:
            break
        leniency = phonenumbers.Leniency.POSSIBLE if position == 0 else phonenumbers.Leniency.VALID
        text = _mask_phones_in_region(text, region, leniency)
    return text


def _mask_phones_in_region(text: str, region: str, leniency) -> str:
    pieces = []
    position = 0
    for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=leniency):
        digits = re.sub(r"\D", "", match.raw_string)
        pieces.append(text[position : match.start] + "***" + digits[-2:])
        position = match.end
    return "".join(pieces) + text[position:]


def mask_personal_data(text: str) -> str:
    """Mask emails and phone numbers in a log message."""
    return mask_phone(mask_email(text))


class MaskingFilter(logging.Filter):
    """Rewrite each record's message with emails and phones masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_personal_data(message)
        if masked != message:
            record.msg = masked
            record.args = None
        return True


def configure_logging(verbose: bool = False) -> None:
    """Send leadlink's log lines to stderr with personal data masked.

    Library code only logs through named loggers; the command-line tool calls
    this once so that a user sees progress without any handler set-up.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    handler.addFilter(MaskingFilter())

    root = logging.getLogger("leadlink")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    root.propagate = False

    # Splink logs every SQL step at INFO and warns about each untrained level;
    # leadlink reports what matters about the linkage model itself.
    logging.getLogger("splink").setLevel(logging.ERROR)
    for noisy in ("mlflow", "alembic", "urllib3", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
