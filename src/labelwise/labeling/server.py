"""The labeling app over HTTP: a Starlette app over a :class:`~labelwise.labeling.store.Store` (served by :mod:`.serving`).

Every ``/api`` request carries ``Authorization: Bearer <token>``; there are no cookies, so another site cannot
submit for a logged-in annotator. Images are served by task id only, from the path the task table stores, and
only when it resolves inside the images root.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import mimetypes
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..errors import LabelwiseError

if TYPE_CHECKING:
    from .models import Annotator, SubmitResult
    from .store import Store

logger = logging.getLogger("labelwise")

STATIC = Path(__file__).with_name("static")
MAX_BODY = 64 * 1024
MAX_IDS = 1000
CSP = (
    "default-src 'self'; img-src 'self' blob:; script-src 'self'; style-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}
# Explicit types: with nosniff a script served as text/plain would not run, and mimetypes reads /etc/mime.types.
STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
}
_STATIC_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_TASK_ID = re.compile(r"[0-9]{1,18}")  # ASCII digits only (int() takes others) and within SQLite's integer range
_IDENTITY_FIELDS = ("worker", "annotator", "annotator_id", "name")
_DONE = {  # progress["state"] when no task came back
    "done": "no tasks left for you",
    "waiting": "the tasks left are with other annotators now; look again in a minute",
    "training": "finish the training tasks first",
    "exam": "finish the exam first",
    "task": "no tasks of this kind for you (grid mode takes tasks the model made a guess for)",
}

Args = dict[str, Any]
Handler = Callable[["Annotator", Args, Request], "Args | Response"]


class ApiError(Exception):
    """An HTTP error answered as ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _error(status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


def jsonable(value: Any) -> Any:
    """Dataclasses, numpy scalars and NaN made JSON-safe (NaN and infinities become null)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and not isinstance(value, (str, bytes)):
        value = value.item()  # numpy / pandas scalar
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class SecurityHeaders:
    """ASGI middleware: the CSP and friends on every response; ``no-store`` on the API, ``no-cache`` elsewhere."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cache = "no-store" if scope["path"].startswith("/api/") else "no-cache"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for key, value in SECURITY_HEADERS.items():
                    headers[key] = value
                headers["cache-control"] = cache
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _bearer(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(401, "this request needs 'Authorization: Bearer <token>' (open your private link again)")
    return token


async def _read_json(request: Request) -> Args:
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
        raise ApiError(413, f"the request body is over {MAX_BODY} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise ApiError(413, f"the request body is over {MAX_BODY} bytes")
    if not body.strip():
        return {}
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise ApiError(400, "the request body is not JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return data


def _is_id(value: Any) -> bool:
    return type(value) is int and 0 <= value < 2**63  # a larger one would overflow the database's integer


def _int(args: Args, key: str) -> int:
    value: Any = args.get(key)
    if not _is_id(value):
        raise ApiError(400, f"'{key}' must be a task id (an integer)")
    return value


def _opt_str(args: Args, key: str) -> str | None:
    value = args.get(key)
    if value is not None and not isinstance(value, str):
        raise ApiError(400, f"'{key}' must be a string")
    return value


def _required_str(args: Args, key: str) -> str:
    value = _opt_str(args, key)
    if not value:
        raise ApiError(400, f"'{key}' is required")
    return value


def _seconds(args: Args) -> float | None:
    value = args.get("seconds")
    if value is None:
        return None
    try:
        seconds = float(value) if type(value) in (int, float) else math.nan
    except OverflowError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise ApiError(400, "'seconds' must be a non-negative number")
    return seconds


def _ids(args: Args, key: str) -> list[int]:
    value = args.get(key, [])
    if not isinstance(value, list) or len(value) > MAX_IDS or not all(_is_id(v) for v in value):
        raise ApiError(400, f"'{key}' must be a list of at most {MAX_IDS} integers")
    return value


def resolve_image(root: Path, stored: str) -> Path | None:
    """The file ``stored`` names (relative to ``root`` unless absolute), or None unless it resolves inside ``root``.

    ``root`` must already be resolved. Symlinks are followed first, so one that leaves the root is refused.
    """
    if not stored or "\x00" in stored:
        return None
    candidate = Path(stored)
    if not candidate.is_absolute():
        candidate = root / candidate
    try:
        resolved = candidate.resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not resolved.is_relative_to(root) or not resolved.is_file():
        return None
    return resolved


class _Api:
    """The handlers: each takes the authenticated annotator, the JSON body (or the path parameters) and the request."""

    def __init__(self, store: Store, root: Path) -> None:
        self.store, self.root = store, root

    def _may_submit(self, who: Annotator, args: Args) -> None:
        # The token says who submits; a body that claims someone else is an attempt, not a typo.
        for key in _IDENTITY_FIELDS:
            if key in args and args[key] not in (who.name, who.id):
                raise ApiError(403, f"this token belongs to {who.name}; it cannot submit for anyone else")
        if who.status != "active":
            raise ApiError(403, f"{who.name} was stopped and cannot submit answers")

    def _with_progress(self, who: Annotator, body: Args, found: bool) -> Args:
        progress = self.store.progress(who.id)  # after the claim: it may just have stopped them (a failed exam)
        done = None if found else _DONE.get(progress["state"], "no tasks for you now")
        if progress["state"] == "stopped":
            done = f"stopped: {progress.get('status_reason') or 'by the admin'}"
        return {**body, "progress": progress, "done_reason": done}

    def me(self, who: Annotator, args: Args, request: Request) -> Args:
        s = self.store.settings
        return {
            "name": who.name,
            "is_admin": who.is_admin,
            "status": who.status,
            "classes": list(s.classes),
            "settings": {k: getattr(s, k) for k in ("mode", "grid_size", "lease_seconds", "exam_pass")},
            "progress": self.store.progress(who.id),
        }

    def next(self, who: Annotator, args: Args, request: Request) -> Args:
        view = self.store.next_task(who.id)
        return self._with_progress(who, {"task": view}, view is not None)

    def reopen(self, who: Annotator, args: Args, request: Request) -> Args:
        view = self.store.reopen(who.id, _int(args, "task_id"))
        if view is None:
            raise ApiError(404, "that task is not among your last answers")
        return {"task": view}

    def answer(self, who: Annotator, args: Args, request: Request) -> Args | Response:
        self._may_submit(who, args)
        kind = _opt_str(args, "kind") or ""
        result = self.store.submit(who.id, _int(args, "task_id"), kind, _opt_str(args, "label"), _seconds(args))
        return self._submitted(who, result)

    def grid_next(self, who: Annotator, args: Args, request: Request) -> Args:
        grid = self.store.next_grid(who.id, _opt_str(args, "label"))
        label, views = grid if grid is not None else (None, [])
        return self._with_progress(who, {"label": label, "tasks": views}, grid is not None)

    def grid_submit(self, who: Annotator, args: Args, request: Request) -> Args | Response:
        self._may_submit(who, args)
        label = _required_str(args, "label")
        result = self.store.submit_grid(who.id, label, _ids(args, "task_ids"), _ids(args, "rejected"), _seconds(args))
        return self._submitted(who, result)

    def _submitted(self, who: Annotator, result: SubmitResult) -> Args | Response:
        body = {"accepted": result.accepted, "reason": result.reason, "feedback": result.feedback}
        body["progress"] = self.store.progress(who.id)
        if not result.accepted:
            return _error(409, result.reason or "the answer was refused", **jsonable(body))
        return body

    def history(self, who: Annotator, args: Args, request: Request) -> Args:
        return {"answers": self.store.history(who.id)}

    def image(self, who: Annotator, args: Args, request: Request) -> Response:
        raw = str(args.get("task_id", ""))
        stored = self.store.image_path(who.id, int(raw)) if _TASK_ID.fullmatch(raw) else None
        path = resolve_image(self.root, stored) if stored else None
        if path is None:
            raise ApiError(404, "no such image")
        kind = mimetypes.guess_type(path.name)[0] or ""
        return FileResponse(path, media_type=kind if kind.startswith("image/") else "application/octet-stream")

    def stats(self, who: Annotator, args: Args, request: Request) -> Args:
        return self.store.stats()

    def stop(self, who: Annotator, args: Args, request: Request) -> Args:
        name = _required_str(args, "name")
        self.store.stop(name, _opt_str(args, "reason") or "stopped by the admin")
        return {"stopped": name}

    def resume(self, who: Annotator, args: Args, request: Request) -> Args:
        name = _required_str(args, "name")
        self.store.resume(name)
        return {"resumed": name}

    def add_annotator(self, who: Annotator, args: Args, request: Request) -> Args:
        name = _required_str(args, "name")
        token = self.store.add_annotator(name)
        return {"name": name, "token": token, "link": f"{str(request.base_url).rstrip('/')}/#token={token}"}


def _endpoint(
    store: Store, handler: Handler, *, admin: bool = False, body: bool = False
) -> Callable[[Request], Awaitable[Response]]:
    """An async endpoint: the JSON body (``body``) or path parameters, the token, then ``handler``; the token check
    and the handler share one trip to the threadpool."""

    def call(token: str, args: Args | ApiError, request: Request) -> Args | Response:
        who = store.authenticate(token)
        if who is None:
            raise ApiError(401, "unknown token (ask the admin for a new link)")
        if admin and not who.is_admin:
            raise ApiError(403, "this needs the admin's token")
        if isinstance(args, ApiError):
            raise args
        return handler(who, args, request)

    async def endpoint(request: Request) -> Response:
        try:
            token = _bearer(request)
            try:
                args: Args | ApiError = await _read_json(request) if body else dict(request.path_params)
            except ApiError as exc:
                args = exc  # answered after the token check: without a valid token every request is a 401
            result = await run_in_threadpool(call, token, args, request)
        except ApiError as exc:
            return _error(exc.status, exc.message, {"www-authenticate": "Bearer"} if exc.status == 401 else None)
        except LabelwiseError as exc:
            return _error(400, str(exc))
        return result if isinstance(result, Response) else JSONResponse(jsonable(result))

    return endpoint


def _page(name: str) -> Callable[[Request], Awaitable[Response]]:
    async def page(request: Request) -> Response:
        return _static_file(name)

    return page


def _static_file(name: str) -> Response:
    path = STATIC / name
    kind = STATIC_TYPES.get(path.suffix)
    if kind is None or not _STATIC_NAME.fullmatch(name) or not path.is_file():
        return _error(404, "not found")
    return FileResponse(path, media_type=kind)


async def _static(request: Request) -> Response:
    return _static_file(request.path_params["name"])


async def _no_icon(request: Request) -> Response:
    return Response(status_code=204)  # browsers ask for one; a 404 would be a console error on every page


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _error(exc.status_code, exc.detail, dict(exc.headers) if exc.headers else None)


async def _server_error(request: Request, exc: Exception) -> Response:
    return _error(500, "internal server error")


def make_app(store: Store, images_root: str | Path | None = None) -> Starlette:
    """The labeling app: pages, static files and the JSON API over ``store``; images only from under ``images_root``
    (default: the project's ``settings.images_root``)."""
    given = images_root if images_root is not None else store.settings.images_root
    if not given:
        raise LabelwiseError("the labeling app needs the images root (the project has none stored)")
    root = Path(given).expanduser()
    if not root.is_dir():
        raise LabelwiseError(f"images root {str(root)!r} is not a folder")
    api = _Api(store, root.resolve())

    def route(path: str, handler: Handler, method: str = "GET", **kw: bool) -> Route:
        return Route(path, _endpoint(store, handler, body=method == "POST", **kw), methods=[method])

    routes = [
        Route("/", _page("label.html"), methods=["GET"]),
        Route("/admin", _page("admin.html"), methods=["GET"]),
        Route("/static/{name}", _static, methods=["GET"]),
        Route("/favicon.ico", _no_icon, methods=["GET"]),
        route("/api/me", api.me),
        route("/api/next", api.next, "POST"),
        route("/api/answer", api.answer, "POST"),
        route("/api/reopen", api.reopen, "POST"),
        route("/api/grid/next", api.grid_next, "POST"),
        route("/api/grid/submit", api.grid_submit, "POST"),
        route("/api/history", api.history),
        route("/api/image/{task_id}", api.image),
        route("/api/admin/stats", api.stats, admin=True),
        route("/api/admin/stop", api.stop, "POST", admin=True),
        route("/api/admin/resume", api.resume, "POST", admin=True),
        route("/api/admin/annotators", api.add_annotator, "POST", admin=True),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )
    app.router.redirect_slashes = False  # a redirect would answer paths that should be 404
    app.state.store = store
    return app
