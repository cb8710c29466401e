"""What one page server allows: its limits, read once and checked, and routes no visitor can abuse.

Every ``DEFECTION_*`` setting is read here and nowhere else, and a bad value stops the
server at start with one line naming the variable and what it accepts (never a
traceback, never a silent default). :func:`lock_down` closes what Solara leaves open to
any visitor: its CDN proxy, which fetches and caches any npm package a request names,
is replaced by the local cache alone (filled at install time by
``python -m isk_defection.viz.assets``), so nothing is downloaded while the app runs;
``/resourcez`` (host and kernel counts) answers only the machine itself; sessions whose
page has gone are culled after ``DEFECTION_SESSION_CULL`` seconds instead of Solara's 24 h.
"""

from __future__ import annotations

import functools
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass

LOCAL = ("127.0.0.1", "::1", "localhost")


class ConfigError(ValueError):
    """A ``DEFECTION_*`` variable with a value the server does not accept (one line)."""


@dataclass(frozen=True)
class Limits:
    """The server's limits (seconds unless said)."""

    max_playing: int = 6  # runs playing or replaying a link at once, server-wide
    disconnect_grace: float = 10.0  # a run pauses this long after its page disconnects
    heartbeat_timeout: float = 90.0  # ... or after this long without the page's heartbeat
    session_cull: float = 600.0  # a session whose page has gone is freed after this long
    posterior: str = ""  # a posterior file: the spread over seeds may draw its parameters


# name -> (field, type, lowest, highest): the accepted range of each variable
VARIABLES: dict[str, tuple[str, type, float, float]] = {
    "DEFECTION_MAX_PLAYING": ("max_playing", int, 1, 64),
    "DEFECTION_DISCONNECT_GRACE": ("disconnect_grace", float, 0.5, 3600),
    "DEFECTION_HEARTBEAT_TIMEOUT": ("heartbeat_timeout", float, 10, 3600),
    "DEFECTION_SESSION_CULL": ("session_cull", float, 5, 86_400),
}


def read_limits(environ: Mapping[str, str]) -> Limits:
    """The limits ``environ`` sets (defaults for the rest); ConfigError names a bad one."""
    values: dict[str, float] = {}
    for name, (key, kind, low, high) in VARIABLES.items():
        text = environ.get(name)
        if text is None or text.strip() == "":
            continue
        what = "a whole number" if kind is int else "a number of seconds"
        try:
            value = kind(text.strip())
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise ConfigError(f"{name}: must be {what} in {low:g}-{high:g} (got {text!r})")
        values[key] = value
    posterior = environ.get("DEFECTION_POSTERIOR", "").strip()
    if posterior:
        from isk_defection.experiments.ensemble import load_ensemble

        try:
            load_ensemble(posterior)
        except ValueError as exc:
            raise ConfigError(f"DEFECTION_POSTERIOR: {exc}") from None
    return Limits(**values, posterior=posterior)  # type: ignore[arg-type]


@functools.cache
def limits() -> Limits:
    """The server's limits, from its environment (read once)."""
    return read_limits(os.environ)


def is_local(host: str | None) -> bool:
    """Whether a request came from this machine."""
    if not host:
        return False
    if host in LOCAL:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def lock_down() -> None:
    """Close Solara's open doors on the running server (idempotent).

    - ``/_solara/cdn``: static files of the local cache only; an unknown package is a
      404, never a download.
    - ``/resourcez``: 404 unless asked from this machine; ``/playingz`` (the number of runs
      playing now, the ``max_playing`` cap's count) likewise.
    - sessions: culled :attr:`Limits.session_cull` seconds after their page has gone.
    """
    import solara.server.settings
    from solara.server import starlette as solara_app
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    from isk_defection.viz.assets import cache_dir

    solara.server.settings.kernel.cull_timeout = f"{limits().session_cull:g}s"
    solara.server.settings.theme.show_banner = False  # its corner badge covered a chart
    cdn = "/" + solara_app.cdn_url_path
    original = solara_app.resourcez

    async def resourcez(request: Request):
        if not is_local(request.client.host if request.client else None):
            return PlainTextResponse("Not Found", status_code=404)
        return await original(request)

    async def playingz(request: Request):
        """Runs playing or replaying now, server-wide (the cap's count; this machine only)."""
        if not is_local(request.client.host if request.client else None):
            return PlainTextResponse("Not Found", status_code=404)
        from isk_defection.viz.runner import REGISTRY

        return PlainTextResponse(str(len(REGISTRY.playing())))

    routes = solara_app.app.router.routes
    for i, route in enumerate(routes):
        if isinstance(route, Mount) and route.path == cdn and not getattr(route, "local", False):
            local = Mount(cdn, app=StaticFiles(directory=cache_dir(), check_dir=False))
            local.local = True  # type: ignore[attr-defined]
            routes[i] = local
        elif isinstance(route, Route) and route.path == "/resourcez" and route.endpoint is original:
            routes[i] = Route("/resourcez", endpoint=resourcez)
    if not any(getattr(route, "path", None) == "/playingz" for route in routes):
        routes.insert(0, Route("/playingz", endpoint=playingz))
