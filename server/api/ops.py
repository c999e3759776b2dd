"""What makes the server safe to expose and easy to run: the gate, the drain, the metrics.

`Operations.from_settings` builds them from the settings; `create_app` adds its middleware
and routes, and `attach` wires them to the runtime (engine and web search observed).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from ..drain import Drain
from ..metrics import Metrics
from ..runtime import Runtime
from ..settings import Settings
from . import admin
from .access import HostCheck, KeyCheck, startup_warnings
from .gate import Gate

log = logging.getLogger(__name__)


@dataclass
class Operations:
    settings: Settings
    keys: KeyCheck
    admin: KeyCheck
    hosts: HostCheck
    drain: Drain
    metrics: Metrics

    @classmethod
    def from_settings(cls, settings: Settings, runtime: Runtime) -> Operations:
        drain = Drain(settings.drain_timeout, settings.drain_grace)
        metrics = Metrics(lambda: runtime.engine, lambda: drain.draining, lambda: drain.in_flight)
        keys, hosts = KeyCheck.from_settings(settings), HostCheck.from_settings(settings)
        admin = KeyCheck.admin_from_settings(settings, keys)
        for warning in startup_warnings(settings, keys, hosts):
            log.warning("%s", warning)
        if not admin.enabled:
            log.info("no --admin-key: the /admin/ routes are off (SIGTERM still drains)")
        return cls(settings, keys, admin, hosts, drain, metrics)

    @property
    def routes(self) -> list[Route]:
        return [
            Route("/livez", admin.livez, methods=["GET"]),
            Route("/metrics", admin.metrics, methods=["GET"]),
            Route("/admin/drain", admin.drain, methods=["POST"], include_in_schema=False),
        ]

    @property
    def middleware(self) -> Middleware:
        return Middleware(
            Gate,
            keys=self.keys,
            admin=self.admin,
            hosts=self.hosts,
            drain=self.drain,
            cors_origins=self.settings.cors_origins,
            metrics_public=self.settings.metrics_public,
            on_refusal=self.metrics.observe_error,
        )

    def attach(self, app: Starlette, runtime: Runtime) -> None:
        app.state.keys = self.keys
        app.state.admin_keys = self.admin
        app.state.drain = self.drain
        app.state.metrics = self.metrics
        runtime.search.observe = self.metrics.observe_search
        runtime.on_engine = lambda engine: engine.observe(self.metrics.observe_finished)

        def abort(reason: str) -> None:
            if runtime.engine is not None:
                runtime.engine.abort(reason)

        self.drain.abort = abort
