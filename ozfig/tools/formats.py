"""The tool-call syntaxes ozfig reads and writes, one `ToolFormat` each.

| format | the model writes | used for |
|---|---|---|
| `llama3` | `{"name": "f", "parameters": {...}}` as the whole answer, or after `<|python_tag|>` | Llama 3.1/3.2/3.3 templates |
| `hermes` | `<tool_call>\\n{"name": "f", "arguments": {...}}\\n</tool_call>`, one block per call | Qwen 2.5, Hermes 2/3 |
| `mistral` | `[TOOL_CALLS] [{"name": "f", "arguments": {...}}, ...]` | Mistral v0.3, Nemo |
| `generic` | as `hermes`, taught by a system message ozfig writes (see `prompt.py`) | every template that takes no `tools` |

Which one a model gets is decided once per template (`detect.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class ToolFormat:
    name: str
    renders_tools: bool  # the model's template renders `tools`, calls and results itself
    opener: str  # the text that starts the calls
    closer: str = ""  # the text that ends each call (hermes)
    args_key: str = "arguments"  # the member that holds the arguments
    array: bool = False  # the calls are a JSON array after the opener (mistral)
    bare_json: bool = False  # a call may also be the whole answer with no opener (llama3)
    single: bool = False  # one call per answer at most (llama3)

    @property
    def arg_keys(self) -> tuple[str, str]:
        """The argument members read (the format's own first); models mix them up."""
        other = "parameters" if self.args_key == "arguments" else "arguments"
        return self.args_key, other


LLAMA3 = ToolFormat(
    "llama3", True, "<|python_tag|>", args_key="parameters", bare_json=True, single=True
)
HERMES = ToolFormat("hermes", True, "<tool_call>", "</tool_call>")
MISTRAL = ToolFormat("mistral", True, "[TOOL_CALLS]", array=True)
GENERIC = replace(HERMES, name="generic", renders_tools=False)
FORMATS = {f.name: f for f in (LLAMA3, HERMES, MISTRAL, GENERIC)}

# what in a template's source tells its format (checked in this order)
MARKERS: tuple[tuple[ToolFormat, tuple[str, ...]], ...] = (
    (HERMES, ("<tool_call>",)),
    (MISTRAL, ("[TOOL_CALLS]",)),
    (LLAMA3, ("<|python_tag|>", "ipython")),
)


def format_by_markers(source: str) -> ToolFormat | None:
    """The format whose markers the template's source holds, if any."""
    for fmt, markers in MARKERS:
        if any(m in source for m in markers):
            return fmt
    return None
