"""server/api/access.py rule by rule: key files, the key headers, loopback names, the Host
check's edges, and the whole text of each startup warning (what an operator reads)."""

from __future__ import annotations

import pytest

from ozfig.errors import SettingsError
from server.api.access import HostCheck, KeyCheck, is_loopback, read_key_file, startup_warnings
from server.settings import Settings


def warnings_for(**settings: object) -> list[str]:
    s = Settings(**settings)  # type: ignore[arg-type]
    return startup_warnings(s, KeyCheck.from_settings(s), HostCheck.from_settings(s))


def test_a_key_file_keeps_what_comes_before_the_first_hash(tmp_path) -> None:
    path = tmp_path / "keys"
    path.write_text("k1 # ops # spare\n  k2  \n# all comment\n")
    assert read_key_file(str(path)) == ["k1", "k2"]


def test_a_missing_key_file_names_the_setting_and_the_file(tmp_path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(SettingsError) as info:
        read_key_file(str(missing))
    assert info.value.message.startswith(f"--api-key-file / OZFIG_API_KEY_FILE: cannot read {missing}: ")
    with pytest.raises(SettingsError) as info:
        KeyCheck.admin_from_settings(Settings(admin_key_file=str(missing)), KeyCheck(()))
    assert info.value.message.startswith(f"--admin-key-file / OZFIG_ADMIN_KEY_FILE: cannot read {missing}: ")


def test_an_admin_key_that_is_also_an_api_key_is_refused_by_name() -> None:
    s = Settings(api_key=("same",), admin_key=("same",))
    with pytest.raises(SettingsError) as info:
        KeyCheck.admin_from_settings(s, KeyCheck.from_settings(s))
    assert (
        info.value.message == "an admin key (--admin-key, --admin-key-file) is also an API key: use another"
    )


@pytest.mark.parametrize(
    ("headers", "presented"),
    [
        ({"authorization": "Bearer k"}, "k"),
        ({"authorization": "Bearer  k "}, "k"),  # extra spaces around the key
        ({"authorization": "bearer k", "x-api-key": "other"}, "k"),  # Authorization first
        ({"authorization": "Basic k", "x-api-key": " x "}, "x"),
        ({"authorization": "Bearer "}, None),
        ({"x-api-key": "  "}, None),
        ({}, None),
    ],
)
def test_the_key_a_request_presents(headers: dict[str, str], presented: str | None) -> None:
    assert KeyCheck.presented(headers) == presented


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True), ("localhost.localdomain", True), ("127.0.0.1", True), ("127.8.9.10", True),
        ("::1", True), ("[::1]", True), ("LOCALHOST", False), ("Xlocalhost", False), ("0.0.0.0", False),
        ("10.0.0.1", False), ("example.com", False), ("", False), ("::", False),
    ],
)  # fmt: skip
def test_loopback_names(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("Example.COM:8080", "example.com"), ("example.com", "example.com"), ("[::1]:8080", "[::1]"),
        ("[::1]", "[::1]"), ("[::1", "[::1"), ("[::1]:80]", "[::1]"), ("fe80::1", "fe80::1"),
        (" a.example ", "a.example"),
    ],
)  # fmt: skip
def test_the_name_of_a_host_header(header: str, name: str) -> None:
    assert HostCheck.name_of(header) == name


def test_the_host_check_edges() -> None:
    assert HostCheck(None).accepts("anything.example") and HostCheck(None).accepts(None)
    hosts = HostCheck(("*.corp.example", "one.example"))
    assert hosts.accepts("a.corp.example") and hosts.accepts("one.example:8443")
    assert not hosts.accepts(".corp.example")  # the wildcard needs a name before the dot
    assert not hosts.accepts("corp.example") and not hosts.accepts("xcorp.example")
    assert not hosts.accepts("") and not hosts.accepts("two.example")


def test_startup_warnings_word_for_word() -> None:
    assert warnings_for(host="0.0.0.0") == [
        "listening on 0.0.0.0, beyond this machine, WITHOUT an API key: anyone who can reach the port can "
        "use the model. Set --api-key (or OZFIG_API_KEY), or bind 127.0.0.1.",
        "listening on 0.0.0.0 without --allowed-hosts: the Host header is not checked (set it to the names "
        "clients use, against DNS rebinding).",
    ]
    assert warnings_for(host="0.0.0.0", api_key=("k",), allowed_hosts="*") == []  # '*' is a choice made
    assert warnings_for(cors_origins="*") == [
        "--cors-origins '*' without an API key: any web page can call this server."
    ]
    assert warnings_for(cors_origins="*", api_key=("k",)) == []
    assert warnings_for(cors_origins="https://app.example") == []
