"""README's settings table lists every `Settings` field, with its flag and environment variable."""

import dataclasses
import re
from pathlib import Path

from ozfig.options import env_name, flag_name
from server.settings import ENV_PREFIX, Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_rows() -> dict[str, str]:
    """flag -> environment variable, from the table under "## Settings"."""
    section = README.read_text(encoding="utf-8").split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        m = re.match(r"\| `(--[a-z0-9-]+)` \| `([A-Z0-9_]+)` \|", line)
        if m:
            rows[m.group(1)] = m.group(2)
    return rows


def test_every_setting_is_in_the_readme_table_and_nothing_else() -> None:
    fields = {flag_name(f): env_name(f, ENV_PREFIX) for f in dataclasses.fields(Settings)}
    rows = readme_rows()
    assert sorted(set(fields) - set(rows)) == [], "settings missing from README's table"
    assert sorted(set(rows) - set(fields)) == [], "README's table lists flags that are not settings"
    assert rows == fields
