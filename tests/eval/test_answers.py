"""`ozfig eval answers`: the server's engine answers, BERTScore as bert_score itself computes it."""

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from ozfig.chat_format import ChatFormatter
from ozfig.engine.engine import Engine, EngineConfig
from ozfig.engine.jobs import Job
from ozfig.engine.sampling import SamplingParams
from ozfig.eval.bertscore import bert_scores
from ozfig.eval.data import load_examples, parse_row
from ozfig.eval.errors import DataFormatError, MissingExtraError
from ozfig.llama.model import LlamaModel
from tests.support.processes import ozfig_command

DATA = Path(__file__).parent / "data" / "answers.jsonl"
MAX_TOKENS = 20


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ozfig_command("eval", "answers", *args), capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def cli_run(
    model_path: Path, minilm_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("answers") / "rows.jsonl"
    proc = run_cli(
        "--model", str(model_path), "--data", str(DATA), "--encoder", str(minilm_path),
        "--max-tokens", str(MAX_TOKENS), "--slots", "2", "--ctx", "1024", "--threads", "2",
        "--device", "cpu", "--output", str(out), "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout), out


def test_scores_equal_bert_score_on_the_same_inputs(cli_run: tuple[dict, Path], minilm_path: Path) -> None:
    import bert_score

    data, out = cli_run
    assert data["rows"] == 3
    assert data["encoder"] == str(minilm_path)
    assert data["num_layers"] == 6  # not in BERTScore's table: the encoder's last layer
    answers = [row["answer"] for row in data["answers"]]
    references = [row["reference"] for row in data["answers"]]
    assert all(answers)
    assert references[2].startswith("Let it rise until")  # the last gpt turn of a multi-turn row
    assert [row["line"] for row in data["answers"]] == [1, 2, 4]  # line 3 is blank
    p, r, f = bert_score.score(answers, references, model_type=str(minilm_path), num_layers=6, device="cpu")
    for key, expected in (("precision", p), ("recall", r), ("f1", f)):
        assert [row[key] for row in data["answers"]] == pytest.approx(expected.tolist(), abs=1e-5)
        assert data[key] == pytest.approx(float(expected.mean()), abs=1e-5)
    assert [json.loads(line) for line in out.read_text().splitlines()] == data["answers"]


def test_answers_are_the_servers_engine_output(cli_run: tuple[dict, Path], model: LlamaModel) -> None:
    """Row 1 through the engine directly, as `ozfig serve` runs it: the same greedy answer."""
    data, _ = cli_run
    formatter = ChatFormatter(model)
    prompt = formatter.tokens([{"role": "user", "content": "What is the capital of France?"}])
    engine = Engine(model, EngineConfig(slots=2, ctx=1024, batch=512, threads=2))

    async def answer() -> str:
        request = Job(prompt, MAX_TOKENS, SamplingParams(temperature=0.0))
        async with engine.generate(request) as gen:
            return await gen.text()

    try:
        text = asyncio.run(answer())
    finally:
        engine.close()
    assert data["answers"][0]["answer"] == text.strip()


def test_text_report(model_path: Path, minilm_path: Path) -> None:
    proc = run_cli(
        "--model", str(model_path), "--data", str(DATA), "--limit", "1", "--encoder", str(minilm_path),
        "--max-tokens", "8", "--slots", "1", "--ctx", "512", "--threads", "2", "--device", "cpu",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("1 answers from ")
    assert lines[1] == f"encoder: {minilm_path} (layer 6, idf False)"
    assert lines[2].startswith("P = 0.") and "F1 = 0." in lines[2]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(
            b'{"conversations": []}\n', "data.jsonl:1: expected a non-empty", id="empty-conversation"
        ),
        pytest.param(
            b'\n{"conversations": [{"from": "human", "value": "hi"}]}\n',
            'data.jsonl:2: no "gpt" turn',
            id="no-gpt",
        ),
        pytest.param(
            b'{"conversations": [{"from": "human", "value": "x"}, {"from": "gpt", "value": "y"}]}\n{oops\n',
            "data.jsonl:2: not valid JSON",
            id="bad-json",
        ),
        pytest.param(b"[1, 2]\n", "data.jsonl:1: expected a JSON object", id="not-an-object"),
        pytest.param(b"\n\n", "no rows to evaluate", id="no-rows"),
    ],
)
def test_cli_names_the_bad_line(model_path: Path, tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "data.jsonl"
    path.write_bytes(content)
    proc = run_cli("--model", str(model_path), "--data", str(path))
    assert proc.returncode == 2
    assert proc.stderr.startswith("ozfig: error: ") and message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_cli_refuses_a_model_without_chat_template(no_template_model_path: Path) -> None:
    proc = run_cli("--model", str(no_template_model_path), "--data", str(DATA))
    assert proc.returncode == 2
    assert "carries no chat template" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_rows_are_parsed_into_prompt_and_reference() -> None:
    examples = load_examples(DATA)
    assert [e.messages[0]["role"] for e in examples] == ["user", "system", "user"]
    assert examples[2].messages[-1] == {
        "role": "user",
        "content": "A simple white loaf. How long should the dough rise?",
    }
    assert examples[2].messages[1]["role"] == "assistant"
    with pytest.raises(DataFormatError, match=r"f.jsonl:7: turn 0 has \"from\": 'bot'"):
        parse_row({"conversations": [{"from": "bot", "value": "x"}]}, "f.jsonl", 7)
    with pytest.raises(DataFormatError, match='no "human" turn before'):
        parse_row({"conversations": [{"from": "gpt", "value": "x"}]}, "f.jsonl", 1)
    assert len(load_examples(DATA, limit=2)) == 2


def test_missing_extra_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "bert_score", None)  # import fails as if not installed
    with pytest.raises(MissingExtraError, match=r"pip install 'ozfig\[eval\]'"):
        bert_scores(["a"], ["b"])


def test_a_row_the_template_refuses_is_named(model_path) -> None:
    from ozfig.eval.answers import build_prompts
    from ozfig.eval.data import Example
    from tests.support.chat_templates import BY_NAME
    from tests.support.templated_model import with_chat_template

    gemma = LlamaModel(str(with_chat_template(model_path, BY_NAME["gemma-2-it"].path)))
    try:
        formatter = ChatFormatter(gemma)
        rows = [
            Example(line=1, messages=[{"role": "user", "content": "hi"}], reference="hello"),
            Example(
                line=2,
                messages=[{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}],
                reference="x",
            ),
        ]
        with pytest.raises(DataFormatError) as info:
            build_prompts(formatter, rows, ctx=512)
        assert info.value.message.startswith("line 2: ") and "System role not supported" in info.value.message
    finally:
        gemma.close()
