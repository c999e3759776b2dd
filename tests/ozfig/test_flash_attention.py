"""`EngineConfig.flash_attention` as llama.cpp's switch: `auto` is llama.cpp's choice (None),
`on` and `off` are what they say; the KV layout is part of the RAM cache files' key."""

from __future__ import annotations

import pytest

from ozfig.engine.engine import flash_attention_switch


@pytest.mark.parametrize(("setting", "switch"), [("auto", None), ("on", True), ("off", False)])
def test_the_setting_as_llama_cpps_switch(setting, switch: bool | None) -> None:
    assert flash_attention_switch(setting) is switch


def test_the_kv_layout_is_part_of_the_cache_files_key(tmp_path) -> None:
    """A RAM cache written with flash attention on is not read into a context without it (their V
    cells are laid out apart)."""
    from ozfig.engine.cache_files import cache_key

    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    keys = {cache_key(str(model)), cache_key(str(model), "", "flash=False"), cache_key(str(model), "", "flash=True")}
    assert len(keys) == 3
    assert cache_key(str(model), "", "flash=False") == cache_key(str(model), "", "flash=False")
