"""API tokens: random secrets shown once, stored only as salted scrypt hashes in the config.

`create_token` appends `[[online.tokens]]` (name, role, hash) to the TOML file with tomlkit,
so comments and layout of the file survive. `TokenVerifier` checks a presented secret against
every stored hash with a constant-time comparison; a secret that verified once is remembered
by its SHA-256 (never the secret itself), so scrypt runs once per token, not per request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from pathlib import Path

import tomlkit
from tomlkit.exceptions import TOMLKitError

from features.errors import ConfigError
from serving.online_config import ROLES, ApiToken

_N, _R, _P = 2**14, 8, 1  # scrypt cost: ~50 ms per check, 16 MiB
_PREFIX = "scrypt"


def hash_secret(secret: str, salt: bytes | None = None) -> str:
    """`scrypt$<salt hex>$<hash hex>` of a secret (a fresh 16-byte salt unless given)."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"{_PREFIX}${salt.hex()}${digest.hex()}"


def matches(secret: str, stored: str) -> bool:
    """True when `secret` hashes to `stored` (constant-time comparison of the digests)."""
    try:
        prefix, salt_hex, digest_hex = stored.split("$")
        salt, digest = bytes.fromhex(salt_hex), bytes.fromhex(digest_hex)
    except ValueError:
        return False
    if prefix != _PREFIX:
        return False
    got = hashlib.scrypt(secret.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=len(digest))
    return hmac.compare_digest(got, digest)


class TokenVerifier:
    """Which configured token (if any) a presented secret is."""

    def __init__(self, tokens: tuple[ApiToken, ...]) -> None:
        self.tokens = tokens
        self._known: dict[bytes, ApiToken] = {}
        self._refused: set[bytes] = set()
        self._lock = threading.Lock()

    def known(self, secret: str) -> ApiToken | None:
        """The token a secret was verified as before (no scrypt), else None."""
        return self._known.get(hashlib.sha256(secret.encode()).digest())

    def verify(self, secret: str) -> ApiToken | None:
        key = hashlib.sha256(secret.encode()).digest()
        hit = self._known.get(key)
        if hit is not None:
            return hit
        if key in self._refused:
            return None
        found = None
        for token in self.tokens:  # every hash is checked: the time does not depend on which
            if matches(secret, token.hash) and found is None:
                found = token
        with self._lock:
            if found is not None:
                self._known[key] = found
            elif len(self._refused) < 10_000:
                self._refused.add(key)
        return found


def create_token(config_path: Path, name: str, role: str) -> str:
    """A new secret for `name` with `role`; its hash is appended to the config file."""
    if role not in ROLES:
        raise ConfigError(f"--role: unknown role {role!r}; use one of {list(ROLES)}, e.g. events")
    if not name.strip():
        raise ConfigError("NAME: a token needs a name, e.g. kafka-consumer")
    path = Path(config_path)
    try:
        doc = (
            tomlkit.parse(path.read_text(encoding="utf-8")) if path.exists() else tomlkit.document()
        )
    except TOMLKitError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    online = doc.get("online")
    if online is None:
        online = tomlkit.table()
        doc["online"] = online
    tokens = online.get("tokens")
    if tokens is None:
        tokens = tomlkit.aot()
        online["tokens"] = tokens
    if any(t.get("name") == name for t in tokens):
        raise ConfigError(f"NAME: a token named {name!r} already exists in {path}")
    secret = secrets.token_urlsafe(32)
    entry = tomlkit.table()
    entry["name"] = name
    entry["role"] = role
    entry["hash"] = hash_secret(secret)
    tokens.append(entry)
    path.write_text(tomlkit.dumps(doc), encoding="utf-8")
    return secret
