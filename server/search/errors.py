"""Why a search or a page read gave nothing. Logged and absorbed: users never see them."""

from __future__ import annotations

from ozfig.errors import OzfigError


class SearchFailed(OzfigError):
    """A search backend gave no results. `cooldown`: the backend asked us to back off."""

    status = 502
    code = "search_failed"

    def __init__(self, message: str, *, cooldown: bool = False) -> None:
        super().__init__(message)
        self.cooldown = cooldown


class PageRefused(OzfigError):
    """A page was not fetched: its address is not globally routable, or its URL is not http(s)."""

    status = 403
    code = "page_refused"


class PageFailed(OzfigError):
    """A page could not be read (status, content type, size, network)."""

    status = 502
    code = "page_failed"
