"""Tool calls read out of an answer as it streams, in the model's format.

`ToolCallParser.feed(piece)` returns what can be said now: content deltas, a call's start
(index, id, name: once its name is complete and is one of the request's tools) and
fragments of its arguments as the model writes them; `finish()` says the rest. Text after a
format's opener that does not go on as a call (`<tool_call>` followed by prose, an unknown
function) is given back as content, so plain answers stay content. Arguments are passed on as
the model wrote them (JSON text); a grammar keeps them to the tool's schema (`grammar.py`).
The streamed and the whole answer go through the same parser, so they always agree.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from dataclasses import dataclass

from .calls import ToolCall, new_call_id
from .formats import ToolFormat
from .json_scan import WS, ObjectScan


@dataclass(frozen=True)
class ContentDelta:
    text: str


@dataclass(frozen=True)
class CallStarted:
    index: int
    id: str
    name: str


@dataclass(frozen=True)
class ArgumentsDelta:
    index: int
    text: str


Event = ContentDelta | CallStarted | ArgumentsDelta


def _held_prefix(text: str, start: int, word: str) -> int:
    """How many characters at the end of text[start:] could begin `word`."""
    for k in range(min(len(word) - 1, len(text) - start), 0, -1):
        if text.endswith(word[:k]):
            return k
    return 0


class ToolCallParser:
    def __init__(
        self, fmt: ToolFormat, names: Collection[str], new_id: Callable[[], str] = new_call_id
    ) -> None:
        self.fmt = fmt
        self.names = frozenset(names)
        self.new_id = new_id
        self.text = ""
        self.cur = 0
        self.state = "start" if fmt.bare_json else "content"
        self.events: list[Event] = []
        self.calls: list[ToolCall] = []
        self.content_parts: list[str] = []
        self.section_start = 0  # where the opener (or a bare call) of the calls being read starts
        self.section_calls = 0  # calls started in that section
        self.in_array = False
        self.scan: ObjectScan | None = None
        self.call: ToolCall | None = None
        self.args_end = -1  # how far the arguments were passed on

    @property
    def content(self) -> str:
        return "".join(self.content_parts)

    def feed(self, piece: str) -> list[Event]:
        self.text += piece
        return self._run(final=False)

    def finish(self) -> list[Event]:
        return self._run(final=True)

    # --- the states --------------------------------------------------------------------

    def _run(self, final: bool) -> list[Event]:
        while getattr(self, "_" + self.state)(final):
            pass
        events, self.events = self.events, []
        return events

    def _emit_content(self, text: str) -> None:
        if text:
            self.content_parts.append(text)
            self.events.append(ContentDelta(text))

    def _skip_ws(self) -> int:
        j = self.cur
        while j < len(self.text) and self.text[j] in WS:
            j += 1
        return j

    def _start(self, final: bool) -> bool:
        j = self._skip_ws()
        if j == len(self.text):
            if final:
                self.state = "content"
                return True
            return False
        if self.text[j] == "{":
            self.section_start, self.section_calls = j, 0
            self._begin_call(j)
        else:
            self.state = "content"
        return True

    def _content(self, final: bool) -> bool:
        opener = self.fmt.opener
        i = self.text.find(opener, self.cur)
        if i >= 0:
            self._emit_content(self.text[self.cur : i])
            self.section_start, self.section_calls = i, 0
            self.cur = i + len(opener)
            self.state = "opened"
            return True
        end = len(self.text) - (0 if final else _held_prefix(self.text, self.cur, opener))
        self._emit_content(self.text[self.cur : end])
        self.cur = end
        return False

    def _opened(self, final: bool) -> bool:
        self.cur = self._skip_ws()
        if self.cur == len(self.text):
            if final:
                self._revert()
                return True
            return False
        c = self.text[self.cur]
        if self.fmt.array and not self.in_array and c == "[":
            self.in_array = True
            self.cur += 1
        elif c == "{":
            self._begin_call(self.cur)
        else:
            self._revert()
        return True

    def _begin_call(self, at: int) -> None:
        self.scan = ObjectScan(at)
        self.call = None
        self.args_end = -1
        self.state = "call"

    def _call(self, final: bool) -> bool:
        scan = self.scan
        assert scan is not None
        scan.advance(self.text)
        if self.call is None and "name" in scan.members:
            try:
                name = scan.value(self.text, "name")
            except ValueError:
                name = None
            if not isinstance(name, str) or name not in self.names:
                return self._broken()
            self.call = ToolCall(len(self.calls), self.new_id(), name)
            self.calls.append(self.call)
            self.section_calls += 1
            self.events.append(CallStarted(self.call.index, self.call.id, name))
        if self.call is not None:
            self._pass_arguments(scan)
        if scan.bad:
            return self._broken()
        if scan.done:
            self._end_call(complete=True)
            self.cur = scan.end
            self.state = "close"
            return True
        if final:
            if self.call is None:
                self._revert()
                return True
            self._end_call(complete=False)
            self.cur = len(self.text)
            self.state = "between"
        return False

    def _pass_arguments(self, scan: ObjectScan) -> None:
        call = self.call
        assert call is not None
        for key in self.fmt.arg_keys:
            if key in scan.members:
                start, end = scan.members[key]
                if self.text[start] == '"':  # arguments written as a JSON string: its text
                    if self.args_end < 0:
                        self._arguments(self._decoded(start, end))
                        self.args_end = end
                else:
                    self._arguments(self.text[max(start, self.args_end) : end])
                    self.args_end = end
                return
        reading = scan.reading()
        if reading is not None and reading[0] in self.fmt.arg_keys and scan.state == "nested":
            start = max(reading[1], self.args_end)
            self._arguments(self.text[start : scan.pos])
            self.args_end = scan.pos

    def _decoded(self, start: int, end: int) -> str:
        try:
            value = json.loads(self.text[start:end])
        except ValueError:
            return self.text[start:end]
        return value if isinstance(value, str) else self.text[start:end]

    def _arguments(self, text: str) -> None:
        call = self.call
        if text and call is not None:
            call.arguments += text
            self.events.append(ArgumentsDelta(call.index, text))

    def _end_call(self, complete: bool) -> None:
        call = self.call
        assert call is not None
        if complete and self.args_end < 0:
            self._arguments("{}")  # no arguments member: a call without arguments
        call.complete = complete
        self.call = None
        self.scan = None

    def _broken(self) -> bool:
        """The text after the opener is not a call: content again (if no call of it was passed on)."""
        scan = self.scan
        assert scan is not None
        if self.call is None and self.section_calls == 0:
            self._revert()
            return True
        if self.call is not None:
            self._end_call(complete=False)
        self.cur = scan.pos
        self.scan = None
        self.in_array = False
        self.state = "content"
        return True

    def _revert(self) -> None:
        """What looked like the start of calls is content; read on after its opener."""
        opener = self.fmt.opener
        if opener and self.text.startswith(opener, self.section_start):
            resume = self.section_start + len(opener)
            self._emit_content(self.text[self.section_start : resume])
            self.cur = resume
        # else a bare call (llama3) that was none: `cur` is still before it, all of it is content
        self.scan = None
        self.in_array = False
        self.state = "content"

    def _close(self, final: bool) -> bool:
        j = self._skip_ws()
        rest = self.text[j:]
        closer = self.fmt.closer
        if closer:
            if rest.startswith(closer):
                self.cur = j + len(closer)
            elif closer.startswith(rest) and not final:
                return False
            self.state = "between"
            return True
        if self.in_array:
            if not rest and not final:
                return False
            if rest.startswith(","):
                self.cur = j + 1
                self.state = "opened"
                return True
            if rest.startswith("]"):
                self.cur = j + 1
            self.in_array = False
        self.state = "between"
        return True

    def _between(self, final: bool) -> bool:
        j = self._skip_ws()
        rest = self.text[j:]
        opener = self.fmt.opener
        if not rest:
            if final:
                self.cur = j  # whitespace after the calls is dropped
            return False
        if rest.startswith(opener):
            self.section_start, self.section_calls = j, 0
            self.cur = j + len(opener)
            self.state = "opened"
            return True
        if opener.startswith(rest) and not final:
            return False
        self.cur = j
        self.state = "content"
        return True
