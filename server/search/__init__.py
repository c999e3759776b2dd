"""Web search for the OzFig prompt: search backends, page reading, extraction, ranking, caches.

`WebSearch` (in `web.py`) is what the server holds: `await search.passages(query)` gives the
page and snippet passages ranked against the query, within one deadline, never raising;
`choose_sources` (in `context.py`) fills a token budget with them as numbered sources.
"""

from .context import Source, choose_sources
from .hits import Hit, Passage
from .web import WebSearch

__all__ = ["Hit", "Passage", "Source", "WebSearch", "choose_sources"]
