"""Reading one JSON object as it streams in, member by member.

`ObjectScan` walks a growing text from the object's `{` and notes where each top-level
member's value starts and ends, so that a tool call's name is known as soon as it is
complete and its arguments can be passed on while they are still being written. Inner values
are only followed (strings, escapes, nesting), not checked: the arguments are parsed whole
at the end. Anything that cannot continue a JSON object makes the scan `bad`.
"""

from __future__ import annotations

import json
from typing import Any

WS = " \t\n\r"


class ObjectScan:
    def __init__(self, start: int) -> None:
        self.start = start  # where the object starts in the text
        self.pos = start  # the next character to read
        self.state = "start"
        self.depth = 0
        self.escape = False
        self.nested_string = False  # inside a string within a nested value
        self.key = ""
        self.token_start = 0  # of the key or value being read
        self.members: dict[str, tuple[int, int]] = {}  # finished values: key -> (start, end)
        self.end = -1  # after the closing brace, once done

    @property
    def done(self) -> bool:
        return self.state == "done"

    @property
    def bad(self) -> bool:
        return self.state == "bad"

    def reading(self) -> tuple[str, int] | None:
        """(key, start) of the value being read, if any."""
        if self.state in ("nested", "string", "scalar"):
            return self.key, self.token_start
        return None

    def value(self, text: str, key: str) -> Any:
        """The parsed value of a finished member (ValueError if it is not JSON)."""
        start, end = self.members[key]
        return json.loads(text[start:end])

    def advance(self, text: str) -> None:
        """Read `text` (the whole text so far) from where the last call stopped."""
        while self.pos < len(text) and self.state not in ("done", "bad"):
            if self._char(text, text[self.pos]):
                self.pos += 1

    def _char(self, text: str, c: str) -> bool:
        """Handle one character; False to see it again in the new state."""
        state = self.state
        if state in ("string", "key", "nested") and self._in_string(c):
            return True
        if state == "start":
            self.state = "member_or_end" if c == "{" else "start" if c in WS else "bad"
        elif state in ("member_or_end", "member"):
            if c == '"':
                self.state, self.token_start = "key", self.pos
                self.escape = False
            elif c == "}" and state == "member_or_end":
                self._close()
            elif c not in WS:
                self.state = "bad"
        elif state == "key":  # a closing quote (handled by _in_string otherwise)
            self.key = json.loads(text[self.token_start : self.pos + 1])
            self.state = "colon"
        elif state == "colon":
            self.state = "value" if c == ":" else "colon" if c in WS else "bad"
        elif state == "value":
            if c not in WS:
                self.token_start = self.pos
                self.escape = False
                if c in "{[":
                    self.state, self.depth, self.nested_string = "nested", 1, False
                elif c == '"':
                    self.state = "string"
                else:
                    self.state = "scalar"
        elif state == "string":  # the closing quote
            self._finish(self.pos + 1)
        elif state == "nested":
            if c in "{[":
                self.depth += 1
            elif c in "}]":
                self.depth -= 1
                if self.depth == 0:
                    self._finish(self.pos + 1)
        elif state == "scalar":
            if c in WS or c in ",}":
                self._finish(self.pos)
                return False
        elif state == "after":
            if c == ",":
                self.state = "member"
            elif c == "}":
                self._close()
            elif c not in WS:
                self.state = "bad"
        return True

    def _in_string(self, c: str) -> bool:
        """Inside a string (a key, a value, or within a nested value): True if `c` stays inside."""
        if self.state == "nested" and not self.nested_string:
            if c == '"':
                self.nested_string = True
                self.escape = False
                return True
            return False
        if self.escape:
            self.escape = False
            return True
        if c == "\\":
            self.escape = True
            return True
        if c == '"':
            if self.state == "nested":
                self.nested_string = False
                return True
            return False
        return True

    def _finish(self, end: int) -> None:
        self.members[self.key] = (self.token_start, end)
        self.state = "after"

    def _close(self) -> None:
        self.state = "done"
        self.end = self.pos + 1
