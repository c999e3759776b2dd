"""Defaults and limits that more than one place shares, declared once.

The server's settings (`--temperature`), the request schemas (`temperature` in a chat
request) and the engine's sampling defaults all read these, so that a value one of them
accepts is never refused by another, and a default changed here changes everywhere.
"""

from __future__ import annotations

# sampling temperature: 0 is greedy; OpenAI's API accepts up to 2, and so does every ozfig input
TEMPERATURE_DEFAULT = 0.7
TEMPERATURE_MIN = 0.0
TEMPERATURE_MAX = 2.0

# nucleus sampling: the smallest set of tokens whose probabilities add up to top_p
TOP_P_DEFAULT = 0.95
TOP_P_MIN = 0.0
TOP_P_MAX = 1.0

# OpenAI's frequency_penalty and presence_penalty
PENALTY_MIN = -2.0
PENALTY_MAX = 2.0

# stop sequences in one request
MAX_STOPS = 4
