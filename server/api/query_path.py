"""The route parameter of `/prompt/{query:text}`: any text, newlines and control characters too.

Starlette's `path` convertor is `.*`, which stops at a newline: `GET /prompt/two%0Alines`
found no route and answered 404, a status the route does not document, to a user whose
question had two lines. `text` matches every character; the route then answers the query,
or refuses it with its documented 4xx (empty: 400; longer than --max-query-chars: 414).
"""

from __future__ import annotations

from starlette.convertors import Convertor, register_url_convertor


class TextConvertor(Convertor[str]):
    regex = r"[\s\S]*"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("text", TextConvertor())
