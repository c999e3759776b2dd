"""`ozfig serve --lora FILE` applies our adapter GGUF like the merged model (through server.app.create_app)."""

from pathlib import Path

from starlette.testclient import TestClient

from server.app import create_app
from tests.conftest import make_settings, wait_ready
from tests.convert.conftest import Tiny


def _reply(model: Path, url: str, **overrides: object) -> str:
    settings = make_settings(model, url, ctx=2048, slots=1, **overrides)
    with TestClient(create_app(settings)) as client:
        wait_ready(client)
        r = client.get("/prompt/what%20is%20a%20llama")
        assert r.status_code == 200, r.text
        message: str = r.json()["message"]
        return message


def test_serving_base_with_lora_answers_like_the_merged_model(tiny: Tiny, fake_ddg_server) -> None:
    # the base converted with the fine-tune's tokenizer files, so it carries the ChatML template
    base = tiny.convert(
        "base-chatml-f32", "--base", str(tiny.base), "--tokenizer", str(tiny.adapter), "--quant", "F32"
    )
    lora = tiny.adapter_gguf()
    merged = tiny.convert(
        "merged-f32", "--base", str(tiny.base), "--adapter", str(tiny.adapter), "--quant", "F32"
    )
    with_lora = _reply(base, fake_ddg_server.url, lora=str(lora))
    assert with_lora
    assert with_lora == _reply(merged, fake_ddg_server.url)  # greedy decoding, same logits
    assert with_lora != _reply(base, fake_ddg_server.url)  # and the adapter is really applied
