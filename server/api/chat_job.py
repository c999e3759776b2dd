"""One chat completion before it is answered: its sampling, grammar and prompt.

The prompt is rendered once for what it finally holds (`PromptBuilder`), and the grammar
(response_format, tools) made and parsed by llama.cpp, in a worker thread, before the request
is queued: a large conversation or schema must not stall the event loop, and a schema the
grammar cannot enforce is a 400 even on a streamed request.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from typing import Protocol

from ozfig.engine.engine import Generation
from ozfig.engine.jobs import Job
from ozfig.engine.sampling import SamplingParams, check_grammar
from ozfig.errors import InvalidFieldError
from ozfig.llama.grammar import Grammar, json_object_grammar, json_schema_grammar
from ozfig.tools.formats import ToolFormat
from ozfig.tools.grammar import call_grammar

from ..chat_build import chat_prompt, last_user
from ..prompt_build import BuiltPrompt
from ..runtime import Runtime
from ..search_query import search_query
from ..settings import Settings
from .chat_answer import AnswerReader, TokenText
from .chat_request import ChatRequest
from .common import check_capacity, check_input_chars

log = logging.getLogger(__name__)


class SamplingFields(Protocol):
    """The sampling fields a chat and a text completion request share."""

    @property
    def temperature(self) -> float | None: ...
    @property
    def top_p(self) -> float | None: ...
    @property
    def top_k(self) -> int | None: ...
    @property
    def min_p(self) -> float | None: ...
    @property
    def repeat_penalty(self) -> float | None: ...
    @property
    def frequency_penalty(self) -> float | None: ...
    @property
    def presence_penalty(self) -> float | None: ...
    @property
    def seed(self) -> int | None: ...


def sampling_of(
    req: SamplingFields,
    settings: Settings,
    *,
    stop: tuple[str, ...],
    logit_bias: tuple[tuple[int, float], ...],
    logprobs: int | None,
) -> SamplingParams:
    defaults = SamplingParams()
    return SamplingParams(
        temperature=settings.temperature if req.temperature is None else req.temperature,
        top_p=defaults.top_p if req.top_p is None else req.top_p,
        top_k=defaults.top_k if req.top_k is None else req.top_k,
        min_p=defaults.min_p if req.min_p is None else req.min_p,
        repeat_penalty=defaults.repeat_penalty if req.repeat_penalty is None else req.repeat_penalty,
        frequency_penalty=req.frequency_penalty or 0.0,
        presence_penalty=req.presence_penalty or 0.0,
        seed=req.seed,
        stop=stop,
        logit_bias=logit_bias,
        logprobs=logprobs,
    )


def check_logit_bias(bias: tuple[tuple[int, float], ...], n_vocab: int) -> None:
    for token, _ in bias:
        if token >= n_vocab:
            raise InvalidFieldError(
                "logit_bias", f"logit_bias names token {token}; the model's tokens are 0 to {n_vocab - 1}"
            )


class ChatJob:
    """One chat completion: its prompt (after the web search, when asked for) and generation."""

    def __init__(self, runtime: Runtime, chat: ChatRequest) -> None:
        self.runtime = runtime
        self.chat = chat
        settings = runtime.settings
        check_input_chars(chat.input_chars, settings.max_input_chars)
        self.engine, self.formatter = runtime.require_engine()
        check_logit_bias(chat.logit_bias, self.engine.model.n_vocab)
        self.sampling = sampling_of(
            chat, settings, stop=chat.stop, logit_bias=chat.logit_bias, logprobs=chat.logprobs
        )
        self.fmt: ToolFormat | None = None
        self.builder = chat_prompt(
            self.formatter,
            chat.messages,
            web=chat.web_search,
            ctx=settings.ctx,
            max_tokens=min(chat.max_tokens or settings.max_tokens, settings.max_tokens),
            web_tokens=runtime.web_tokens,
            memory=runtime.source_memory,
            tool_use=chat.tool_use,
        )
        self.query = ""

    async def check(self) -> None:
        """Before any answer starts: the conversation must fit without sources, the grammar
        parse, and the queue have room."""
        await asyncio.to_thread(self._prepare)
        check_capacity(self.engine)

    def _prepare(self) -> None:
        self.builder.plain()
        grammar, visible = self._grammar()
        if grammar is not None:
            check_grammar(self.engine.model, grammar)
            self.sampling = dataclasses.replace(self.sampling, grammar=grammar, visible_controls=visible)

    def _grammar(self) -> tuple[Grammar | None, tuple[int, ...]]:
        chat = self.chat
        if chat.output == "json_object":
            return json_object_grammar(), ()
        if chat.output == "json_schema":
            return json_schema_grammar(chat.json_schema, "response_format.json_schema.schema"), ()
        use = chat.tool_use
        if use is None or not use.callable:
            return None, ()
        self.fmt = fmt = self.formatter.tool_format
        opener = self.formatter.tool_opener_token(fmt)
        visible = (opener,) if opener is not None and fmt.opener in self.formatter.controls.by_text else ()
        return call_grammar(use, fmt, opener), visible

    def reader(self) -> AnswerReader:
        text_of = TokenText(self.engine.model, self.sampling.visible_controls)
        return AnswerReader(text_of, self.chat.tool_use, self.fmt, logprobs=self.chat.logprobs is not None)

    async def prompt(self) -> BuiltPrompt:
        if not self.chat.web_search:
            return self.builder.plain()
        settings = self.runtime.settings
        messages = self.chat.messages
        self.query = search_query(messages, settings.max_query_chars, rewrite=settings.search_rewrite)
        log.info("web search for %r", self.query)
        passages = await self.runtime.web_passages(self.query)
        built = await asyncio.to_thread(self.builder.with_passages, passages)
        self.runtime.source_memory.remember(messages[: last_user(messages) + 1], built.sources)
        return built

    def generate(self, built: BuiltPrompt) -> contextlib.AbstractAsyncContextManager[Generation]:
        return self.engine.generate(Job(built.tokens, built.max_tokens, self.sampling))

    def sources(self, built: BuiltPrompt) -> list[dict[str, object]] | None:
        return [s.as_json() for s in built.sources] if self.chat.web_search else None

    def search_query(self) -> str | None:
        """The query the web was asked (after a follow-up's rewrite), with web search on."""
        return self.query if self.chat.web_search else None
