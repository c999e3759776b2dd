"""Who may call the server: API keys, the admin key, the Host header check, and the startup warnings.

API keys come from `--api-key` (repeatable, or comma-separated in `OZFIG_API_KEY`) and
`--api-key-file` (one per line); admin keys from `--admin-key` and `--admin-key-file` the same
way. The two sets must not share a key: an API key is a user's, the admin key an operator's
(`/admin/` routes take only the admin key). A request's key is read from
`Authorization: Bearer KEY` or `X-Api-Key: KEY` and compared with every configured key in
constant time (`hmac.compare_digest` on each, no early exit), so the answer's timing says
nothing about how much of a key matched.

The Host check is against DNS rebinding (a web page on another name that resolves to this
machine): by default, a server bound to loopback accepts only the loopback names; one bound
elsewhere checks nothing unless `--allowed-hosts` is set.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ozfig.errors import SettingsError

from ..settings import Settings

log = logging.getLogger(__name__)

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]", "localhost.localdomain")


def split_list(raw: str) -> list[str]:
    return [item.strip() for item in raw.split(",") if item.strip()]


def read_key_file(path: str, where: str = "--api-key-file / OZFIG_API_KEY_FILE") -> list[str]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{where}: cannot read {path}: {exc}") from None
    keys = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    keys = [k for k in keys if k]
    if not keys:
        raise SettingsError(f"{where}: {path} holds no key")
    return keys


def is_loopback(host: str) -> bool:
    name = host.strip("[]")
    if name in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class KeyCheck:
    """The configured API keys; `accepts(headers)` in constant time."""

    def __init__(self, keys: Iterable[str]) -> None:
        self._keys = [k.encode("utf-8") for k in dict.fromkeys(keys) if k]

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyCheck:
        """The API keys (users')."""
        keys = list(settings.api_key)
        if settings.api_key_file:
            keys += read_key_file(settings.api_key_file)
        return cls(keys)

    @classmethod
    def admin_from_settings(cls, settings: Settings, users: KeyCheck) -> KeyCheck:
        """The admin keys; a SettingsError when one is also an API key (`users`)."""
        keys = list(settings.admin_key)
        if settings.admin_key_file:
            keys += read_key_file(settings.admin_key_file, "--admin-key-file / OZFIG_ADMIN_KEY_FILE")
        admin = cls(keys)
        if set(admin._keys) & set(users._keys):
            raise SettingsError(
                "an admin key (--admin-key, --admin-key-file) is also an API key: use another"
            )
        return admin

    @property
    def enabled(self) -> bool:
        return bool(self._keys)

    @staticmethod
    def presented(headers: Mapping[str, str]) -> str | None:
        auth = headers.get("authorization", "")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
        key = headers.get("x-api-key", "").strip()
        return key or None

    def accepts(self, headers: Mapping[str, str]) -> bool:
        given = self.presented(headers)
        if given is None:
            return False
        candidate = given.encode("utf-8")
        matched = False
        for key in self._keys:  # every key is compared, whichever matches
            matched |= hmac.compare_digest(candidate, key)
        return matched


@dataclass(frozen=True)
class HostCheck:
    """Accepted Host header names; `patterns` None means every name is accepted."""

    patterns: tuple[str, ...] | None

    @classmethod
    def from_settings(cls, settings: Settings) -> HostCheck:
        configured = [h.lower() for h in split_list(settings.allowed_hosts)]
        if configured:
            return cls(None if "*" in configured else tuple(configured))
        if is_loopback(settings.host):
            return cls(LOOPBACK_HOSTS)
        return cls(None)

    @staticmethod
    def name_of(host_header: str) -> str:
        host = host_header.strip().lower()
        if host.startswith("["):  # [::1]:8080
            return host[: host.find("]") + 1] if "]" in host else host
        return host.rsplit(":", 1)[0] if host.count(":") == 1 else host

    def accepts(self, host_header: str | None) -> bool:
        if self.patterns is None:
            return True
        if not host_header:
            return False
        name = self.name_of(host_header)
        for pattern in self.patterns:
            if pattern == name:
                return True
            if pattern.startswith("*.") and name.endswith(pattern[1:]) and len(name) > len(pattern) - 1:
                return True
        return False


def startup_warnings(settings: Settings, keys: KeyCheck, hosts: HostCheck) -> list[str]:
    """What an operator should hear about before exposing the server."""
    warnings = []
    if not is_loopback(settings.host):
        if not keys.enabled:
            warnings.append(
                f"listening on {settings.host}, beyond this machine, WITHOUT an API key: anyone who can reach "
                "the port can use the model. Set --api-key (or OZFIG_API_KEY), or bind 127.0.0.1."
            )
        if hosts.patterns is None and not split_list(settings.allowed_hosts):
            warnings.append(
                f"listening on {settings.host} without --allowed-hosts: the Host header is not checked "
                "(set it to the names clients use, against DNS rebinding)."
            )
    if "*" in split_list(settings.cors_origins) and not keys.enabled:
        warnings.append("--cors-origins '*' without an API key: any web page can call this server.")
    return warnings
