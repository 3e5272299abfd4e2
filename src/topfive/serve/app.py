"""The ASGI app: the page, `POST /api/classify`, `GET /api/models`, `GET /healthz` and the report
view, over Classifiers loaded once by the caller and shared by every request."""

from __future__ import annotations

import asyncio
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from topfive.output import render_models, render_predictions
from topfive.predict import Classifier
from topfive.serve.batching import Busy, Gate, MicroBatcher
from topfive.serve.errors import ApiError, busy
from topfive.serve.headers import SecurityHeaders, server_timing
from topfive.serve.report_view import REPORT_FILE, media_type, report_files, report_page
from topfive.serve.settings import ServeSettings
from topfive.serve.uploads import decode_upload, read_upload

log = logging.getLogger("topfive.serve")
PAGE_DIR = Path(__file__).parent / "page"
PAGE_FILES = {"/": ("index.html", "text/html; charset=utf-8"), "/app.js": ("app.js", "text/javascript; charset=utf-8"),
              "/style.css": ("style.css", "text/css; charset=utf-8"), "/icon.svg": ("icon.svg", "image/svg+xml")}


def model_listing(classifier: Classifier) -> dict:
    """What `topfive models --format json` says of the model, with the runtime it runs on here."""
    row = json.loads(render_models([classifier.entry], "json"))[0] if classifier.entry is not None else {}
    runtime = classifier.runtime
    return {**row, "name": classifier.name, "runtime": getattr(runtime, "name", type(runtime).__name__),
            "precision": getattr(runtime, "precision", None), "batch_size": classifier.batch_size}


def create_app(classifiers: list[Classifier], settings: ServeSettings = ServeSettings()) -> SecurityHeaders:
    """The app serving `classifiers` (at least one, distinct names). It runs no warm-up pass: the
    caller does (`batching.warm_up`), before serving, where a model that fails can be reported."""
    names = tuple(c.name for c in classifiers)
    if not names or len(set(names)) != len(names):
        raise ValueError(f"give one or more models, each once: {', '.join(names) or 'none given'}")
    pages = {path: ((PAGE_DIR / name).read_bytes(), kind) for path, (name, kind) in PAGE_FILES.items()}
    listing = [model_listing(c) for c in classifiers]
    lane = ThreadPoolExecutor(1, thread_name_prefix="topfive-models")
    uploads = Gate(settings.max_uploads, "uploads are being received")
    gate = Gate(settings.max_pending, "requests are being classified")
    batchers = {c.name: MicroBatcher(c, lane, settings.batch_window_s) for c in classifiers}

    @asynccontextmanager
    async def lifespan(app):
        for b in batchers.values():
            b.start()
        try:
            yield
        finally:
            for b in batchers.values():
                await b.stop()
            lane.shutdown(wait=False, cancel_futures=True)

    async def page(request: Request) -> Response:
        body, kind = pages[request.url.path]
        return Response(body, media_type=kind)

    async def classify(request: Request) -> Response:
        try:
            gate.check()  # refused before its upload when it is clear it would be after
            with uploads.admit():  # a slow upload holds one of these, never a place at the models
                upload = await read_upload(request, names, settings)
            with gate.admit():
                req = await decode_upload(upload, settings)
                del upload  # its bytes are not needed while the models run
                answers = await asyncio.gather(*(batchers[m].classify(req.image, req.top_k) for m in req.models),
                                               return_exceptions=True)
        except Busy as e:
            raise busy(str(e)) from None
        for answer in answers:
            if isinstance(answer, Busy):
                raise busy(str(answer))
            if isinstance(answer, BaseException):
                raise answer
        results = [replace(a.result, source=req.label) for a in answers]
        timing = server_timing(req.decode_seconds, [(m, a.seconds) for m, a in zip(req.models, answers)])
        return Response(render_predictions(results, "json"), media_type="application/json",
                        headers={"Server-Timing": timing})

    async def models(request: Request) -> Response:
        return JSONResponse(listing)

    async def healthz(request: Request) -> Response:
        stats = {name: vars(b.stats) for name, b in batchers.items()}
        return JSONResponse({"status": "ok", "models": list(names), "pending": gate.pending,
                             "capacity": gate.capacity, "uploads": uploads.pending, "batches": stats})

    async def report_status(request: Request) -> Response:
        return JSONResponse({"available": REPORT_FILE in report_files(settings.report_dir)})

    async def report(request: Request) -> Response:
        text, _ = report_page(settings.report_dir)
        return HTMLResponse(text)

    async def report_file(request: Request) -> Response:
        name = request.path_params["name"]
        path = report_files(settings.report_dir).get(name)  # the URL's name is a key, never a path
        if path is None:
            raise ApiError(404, "not_found", "no such file in the report")
        try:
            data = await asyncio.to_thread(path.read_bytes)
        except OSError:
            raise ApiError(404, "not_found", "the report file could not be read") from None
        return Response(data, media_type=media_type(name))

    routes = [Route(path, page) for path in PAGE_FILES] + [
        Route("/api/classify", classify, methods=["POST"]),
        Route("/api/models", models),
        Route("/api/report", report_status),
        Route("/healthz", healthz),
        Route("/report", report),
        Route("/report/files/{name:path}", report_file),
    ]
    handlers = {ApiError: api_error, HTTPException: http_error, Exception: internal_error}
    app = Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan)
    return SecurityHeaders(app)


async def api_error(request: Request, exc: ApiError) -> Response:
    headers = {"Retry-After": "1"} if exc.status == 503 else None
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


async def http_error(request: Request, exc: HTTPException) -> Response:
    """Starlette's own errors (no such route, method not allowed) in the API's JSON shape."""
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return JSONResponse({"error": code, "message": str(exc.detail)}, status_code=exc.status_code,
                        headers=getattr(exc, "headers", None))


async def internal_error(request: Request, exc: Exception) -> Response:
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)  # the traceback: server log only
    return JSONResponse({"error": "internal", "message": f"the server failed on this request ({type(exc).__name__})"},
                        status_code=500)
