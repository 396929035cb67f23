"""API-key authentication for the HTTP service.

Keys come from the environment variable ``LEADLINK_API_KEYS`` (comma-separated)
and from a keys file (one key per line, ``#`` starts a comment). A client sends
its key as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
from collections.abc import Iterable
from pathlib import Path

from leadlink.errors import LeadlinkError

logger = logging.getLogger(__name__)

API_KEYS_ENV = "LEADLINK_API_KEYS"
API_KEYS_FILE_ENV = "LEADLINK_API_KEYS_FILE"
MIN_RECOMMENDED_KEY_LENGTH = 16
CHALLENGE = b'Bearer realm="leadlink"'


def read_api_keys_file(path: Path) -> list[str]:
    """Return the keys listed in ``path``, skipping blank lines and ``#`` comments.

    Raises LeadlinkError when the file cannot be read.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise LeadlinkError(f"Could not read the API keys file {path}: {error}") from error
    keys = []
    for line in text.splitlines():
        key = line.split("#", 1)[0].strip()
        if key:
            keys.append(key)
    return keys


def load_api_keys(env_value: str | None, keys_file: Path | None) -> tuple[str, ...]:
    """Collect the keys from the environment value and the keys file, without duplicates.

    Raises LeadlinkError when a keys file is given but contains no key, because
    the operator then expects authentication and would silently get none.
    """
    keys = [key.strip() for key in (env_value or "").split(",") if key.strip()]
    if keys_file is not None:
        from_file = read_api_keys_file(keys_file)
        if not from_file:
            raise LeadlinkError(f"The API keys file {keys_file} contains no key; add one key per line.")
        keys.extend(from_file)

    unique = tuple(dict.fromkeys(keys))
    short = sum(len(key) < MIN_RECOMMENDED_KEY_LENGTH for key in unique)
    if short:
        logger.warning(
            "%d API key(s) are shorter than %d characters and easy to guess; use long random keys.",
            short,
            MIN_RECOMMENDED_KEY_LENGTH,
        )
    return unique


def is_loopback_host(host: str) -> bool:
    """Return whether ``host`` only accepts connections from this machine.

    Host names other than ``localhost`` count as non-loopback, because they may
    resolve to any address.
    """
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class ApiKeyMiddleware:
    """ASGI middleware that rejects requests without a valid API key with 401.

    Paths in ``open_paths`` need no key. The check runs before the body is
    read, so an unauthenticated client cannot make the service parse anything.
    """

    def __init__(self, app, api_keys: Iterable[str], open_paths: Iterable[str]):
        self.app = app
        self.keys = [key.encode("utf-8") for key in api_keys]
        self.open_paths = frozenset(open_paths)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or not self.keys or scope["path"] in self.open_paths:
            await self.app(scope, receive, send)
            return

        presented = _presented_key(scope["headers"])
        if presented is None:
            await _reject(send, "Missing API key; send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'.", CHALLENGE)
            return
        if not self._is_valid(presented):
            await _reject(send, "Invalid API key.", CHALLENGE + b', error="invalid_token"')
            return
        await self.app(scope, receive, send)

    def _is_valid(self, presented: bytes) -> bool:
        # Compare with every key, without stopping at a match, so the time
        # taken does not reveal which key or how much of one matched.
        matched = False
        for key in self.keys:
            matched |= hmac.compare_digest(presented, key)
        return matched


def _presented_key(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    for name, value in headers:
        if name == b"authorization":
            scheme, _, credentials = value.strip().partition(b" ")
            if scheme.lower() == b"bearer" and credentials.strip():
                return credentials.strip()
        elif name == b"x-api-key" and value.strip():
            return value.strip()
    return None


async def _reject(send, message: str, challenge: bytes) -> None:
    body = json.dumps({"detail": message}).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode("ascii")),
                (b"www-authenticate", challenge),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
