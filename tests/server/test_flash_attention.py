"""`--flash-attention` (auto, on, off): read from the flag and the variable, handed to the engine,
and every value serves (the switch it makes: tests/ozfig/test_flash_attention.py)."""

from __future__ import annotations

import argparse

import pytest
from starlette.testclient import TestClient

from ozfig.errors import SettingsError
from ozfig.options import add_options, from_sources
from server.app import create_app
from server.runtime import Runtime
from server.settings import Settings
from tests.conftest import make_settings, wait_ready


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_options(parser, Settings)
    return parser.parse_args(argv)


@pytest.mark.parametrize("setting", ["auto", "on", "off"])
def test_the_engine_gets_it_and_answers(model_path, fake_ddg_server, setting: str) -> None:
    settings = make_settings(
        model_path, fake_ddg_server.url, ctx=256, slots=1, gpu_layers=0, flash_attention=setting
    )
    runtime = Runtime.from_settings(settings)
    with TestClient(create_app(settings, runtime)) as c:
        wait_ready(c)
        assert runtime.engine is not None and runtime.engine.config.flash_attention == setting
        r = c.post(
            "/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "Say hi."}], "max_tokens": 4, "temperature": 0},
        )
        assert r.status_code == 200, r.text
        assert r.json()["usage"]["completion_tokens"] >= 1


def test_the_flag_and_the_variable() -> None:
    assert from_sources(Settings, parse([]), environ={}).flash_attention == "auto"
    assert from_sources(Settings, parse(["--flash-attention", "off"]), environ={}).flash_attention == "off"
    assert from_sources(Settings, parse([]), environ={"OZFIG_FLASH_ATTENTION": "on"}).flash_attention == "on"
    with pytest.raises(SettingsError) as info:
        from_sources(Settings, parse([]), environ={"OZFIG_FLASH_ATTENTION": "maybe"})
    assert "OZFIG_FLASH_ATTENTION" in info.value.message
