"""The FastAPI application of ``defocus serve``: the page, ``/api/methods``, ``/api/detect`` and ``/api/estimate``.

Every request's work — decoding the upload, running the method, encoding the answer — runs on one worker thread,
one request after the other in the order they came (:class:`Worker`), so a small machine never runs two networks at
once and holds one decoded photo at a time. The methods it has loaded stay loaded (the few used last), so only the
first request of a method pays for its weights. Uploads are decoded by :func:`defocus.io.read_image` (the pixel
limit is checked from the header, before decoding), and answers are encoded by the same writers as the files of
``defocus detect`` / ``estimate`` (through :class:`defocus.io.MemoryFiles`), so a map downloaded from the page is
the file the command line would write.

Errors are JSON ``{"error": "one line"}``: 400 for a bad request (unknown method, a method of the other task, a bad
parameter, no ``image`` field), 413 for an upload over the size limit or an image over the pixel limit, 415 for an
upload that is not a readable image, 503 when too many requests wait, 500 when a method fails.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Literal

import numpy as np
from fastapi import FastAPI, File, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from .. import __version__, registry
from ..cli import _finite_map
from ..errors import DefocusError, ImageReadError, ImageTooLargeError, UsageError
from ..io import MAX_PIXELS, MemoryFiles, read_image, write_defocus_png, write_npy, write_overlay, write_png8
from ..units import convert
from . import MAX_UPLOAD_BYTES

STATIC = Path(__file__).with_name("static")

#: The page's own content only: no script, style or image from elsewhere, nothing may frame it.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
}

MEDIA_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".npy": "application/octet-stream"}

log = logging.getLogger("defocus.serve")


class ApiError(Exception):
    """An answer other than 200: the HTTP status and the one-line reason sent as ``{"error": reason}``."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def _error_response(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=status)


def _as_api_error(exc: BaseException) -> ApiError:
    """The answer to an exception raised while serving a request."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, ImageTooLargeError):
        return ApiError(413, str(exc))
    if isinstance(exc, ImageReadError):
        return ApiError(415, str(exc))
    if isinstance(exc, UsageError):
        return ApiError(400, str(exc))
    if isinstance(exc, DefocusError):
        return ApiError(500, str(exc))
    first_line = str(exc).splitlines()[0] if str(exc) else ""
    log.exception("defocus serve: request failed", exc_info=exc)
    return ApiError(500, f"{type(exc).__name__}: {first_line}")


class UploadLimit:
    """ASGI middleware refusing a request body longer than ``max_bytes`` with 413: from its Content-Length before
    reading anything, or, for a body sent without one, as soon as what arrived passes the limit."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app, self.max_bytes = app, int(max_bytes)

    def _reason(self) -> str:
        return f"upload larger than the limit of {self.max_bytes / 1e6:g} MB (defocus serve --max-upload-mb)"

    async def _refuse(self, scope, receive, send) -> None:
        await _error_response(413, self._reason())(scope, receive, send)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers", [])).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        received, over, started = 0, False, False

        async def counted_receive():
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    over = True
                    raise HTTPException(413, self._reason())
            return message

        async def guarded_send(message) -> None:
            nonlocal started
            if over and not started:  # whatever the app answers to the cut-off body, the client gets the 413
                started = True
                await self._refuse(scope, receive, send)
            if over:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except HTTPException:
            if not over or started:
                raise
            started = True
            await self._refuse(scope, receive, send)


@dataclass
class Answer:
    """What one request produced: the encoded files (name -> bytes), the photo's size, the method's seconds, and
    any further fields for the JSON answer."""

    files: dict[str, bytes]
    width: int
    height: int
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)


class Worker:
    """Runs requests' work on one thread, one at a time in arrival order, and keeps the methods it loaded.

    Parameters
    ----------
    device : str
        Where learned methods run (``cpu``, ``cuda``, ``cuda:N``).
    max_pixels : int or None
        Largest photo decoded (:func:`defocus.io.read_image`).
    cache_size : int
        How many loaded methods are kept; the one used longest ago is dropped first.
    max_waiting : int
        Requests allowed to wait or run at once; more are refused with 503 (each one waiting holds its upload).
    annotate : callable, optional
        ``annotate(image, blur_map, detector) -> dict`` (``detector``: the loaded method that made the map): further
        fields of ``/api/detect``'s JSON answer (``defocus serve`` gives the culling verdict,
        :func:`defocus.cull.verdict_fields`); runs on the worker thread after the detector.
    """

    def __init__(self, *, device: str = "cpu", max_pixels: int | None = MAX_PIXELS, cache_size: int = 3,
                 max_waiting: int = 8, annotate: Callable[[np.ndarray, np.ndarray, object], dict] | None = None):
        self.device, self.max_pixels = device, max_pixels
        self.cache_size, self.max_waiting, self.annotate = int(cache_size), int(max_waiting), annotate
        self._methods: OrderedDict[str, registry.Method] = OrderedDict()  # touched on the worker thread only
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="defocus-serve")
        self._waiting = 0  # touched on the event loop only

    def method(self, name: str) -> registry.Method:
        """The loaded method ``name`` (a registry name), loading it on first use. Worker thread only."""
        method = self._methods.pop(name, None)
        if method is None:
            method = registry.load(name, device=self.device)
        self._methods[name] = method
        while len(self._methods) > self.cache_size:
            self._methods.popitem(last=False)
        return method

    async def run(self, work: Callable[..., Answer], *args) -> Answer:
        """Queue ``work(*args)`` behind the requests already waiting and return its answer."""
        if self._waiting >= self.max_waiting:
            raise ApiError(503, f"busy: {self._waiting} requests are waiting; try again shortly")
        self._waiting += 1
        try:
            return await asyncio.wrap_future(self._executor.submit(work, *args))
        finally:
            self._waiting -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _decode(self, data: bytes, filename: str) -> np.ndarray:
        return read_image(data, name=filename, max_pixels=self.max_pixels)

    def detect(self, data: bytes, filename: str, name: str, outputs: tuple[str, ...], annotate: bool) -> Answer:
        """Blur map of an upload: ``outputs`` among ``blur.png``, ``blur.npy``, ``overlay.jpg``, written as
        ``defocus detect`` writes them."""
        image = self._decode(data, filename)
        start = time.perf_counter()
        blur = np.clip(_finite_map(self.method(name).predict(image), filename, name), 0.0, 1.0)
        seconds = time.perf_counter() - start
        files, stem = MemoryFiles(), _stem(filename)
        writers = {"blur.png": lambda p: write_png8(p, blur, stage=files),
                   "blur.npy": lambda p: write_npy(p, blur, stage=files),
                   "overlay.jpg": lambda p: write_overlay(p, image, blur, stage=files)}
        for output in outputs:
            writers[output](f"{stem}_{output}")
        extra = dict(self.annotate(image, blur, self.method(name))) if annotate and self.annotate is not None else {}
        return Answer(files.files, image.shape[1], image.shape[0], seconds, extra)

    def estimate(self, data: bytes, filename: str, name: str, outputs: tuple[str, ...], units: str) -> Answer:
        """Defocus map of an upload in px (``units``: sigma or radius): ``outputs`` among ``defocus.png``
        (colourised, with its scale bar) and ``defocus.npy``, written as ``defocus estimate`` writes them."""
        image = self._decode(data, filename)
        start = time.perf_counter()
        sigma = np.maximum(_finite_map(self.method(name).predict(image), filename, name), 0.0)
        seconds = time.perf_counter() - start
        values = convert(sigma, units)
        label = "px sigma" if units == "sigma" else "px radius"
        files, stem = MemoryFiles(), _stem(filename)
        for output in outputs:
            if output == "defocus.png":
                write_defocus_png(f"{stem}_defocus.png", values, unit=label, stage=files)
            else:
                write_npy(f"{stem}_defocus.npy", values, stage=files)
        extra = {"units": units, "max_value": float(values.max()) if values.size else 0.0}
        return Answer(files.files, image.shape[1], image.shape[0], seconds, extra)


def _stem(filename: str) -> str:
    """The start of the answer's file names: the upload's stem, with anything but letters, digits, ``.``, ``-``,
    ``_`` replaced (it goes into a header)."""
    stem = PurePosixPath(filename.replace("\\", "/")).stem
    return re.sub(r"[^\w.-]", "_", stem, flags=re.ASCII)[:100] or "image"


def _method_name(name: str, task: str) -> str:
    """The registry name of ``name`` (or its alias); an unknown name or a method of the other task is a
    :class:`UsageError` (400 in a request; ``defocus serve`` exits 2 for its defaults)."""
    info = registry.describe(name)
    if info.task != task:
        other = "/api/detect (defocus serve -m)" if info.task == "dbd" else "/api/estimate (defocus serve --estimator)"
        raise UsageError(f"method {name!r} is a {info.task.upper()} method; use it with {other}")
    return info.name


async def _upload(request: Request, image: UploadFile) -> tuple[bytes, str]:
    """The uploaded file's bytes and name; a form field other than ``image`` is refused, since options are query
    parameters and a misplaced one would otherwise be ignored without a word."""
    form = await request.form()
    others = sorted(k for k in form.keys() if k != "image")
    if others:
        raise ApiError(400, f"unexpected form field(s) {', '.join(others)}: send only 'image' in the form and the "
                            f"options as query parameters (?method=...&format=...)")
    return await image.read(), image.filename or "image"


def _file_response(answer: Answer, name: str, method: str) -> Response:
    return Response(answer.files[name], media_type=MEDIA_TYPES[Path(name).suffix],
                    headers={"Content-Disposition": f'inline; filename="{name}"', "X-Defocus-Method": method,
                             "X-Defocus-Seconds": f"{answer.seconds:.3f}"})


def _json_answer(answer: Answer, method: str, task: str) -> dict:
    """The JSON answer: method, size, seconds, each file as ``kind -> {name, url}`` (a data: URL), and the extras."""
    files = {}
    for name, data in answer.files.items():
        kind = name.rsplit("_", 1)[-1].split(".")[0]  # blur, overlay, defocus
        files[kind] = {"name": name,
                       "url": f"data:{MEDIA_TYPES[Path(name).suffix]};base64,{base64.b64encode(data).decode()}"}
    return {"method": method, "task": task, "width": answer.width, "height": answer.height,
            "seconds": round(answer.seconds, 3), "files": files, **answer.extra}


def create_app(*, detector: str = registry.DEFAULT_DETECTOR, estimator: str | None = registry.DEFAULT_ESTIMATOR,
               device: str = "cpu", max_upload_bytes: int = MAX_UPLOAD_BYTES, max_pixels: int | None = MAX_PIXELS,
               allowed_hosts: list[str] | None = None, preload: bool = False,
               annotate: Callable[[np.ndarray, np.ndarray, object], dict] | None = None) -> FastAPI:
    """The application ``defocus serve`` runs.

    Parameters
    ----------
    detector, estimator : str
        The methods used when a request names none (and the page's initial choice).
    device : str
        Where learned methods run.
    max_upload_bytes : int
        Largest request body; longer ones get 413 before they are read.
    max_pixels : int or None
        Largest photo decoded; larger ones get 413 (checked from the header, before decoding).
    allowed_hosts : list of str, optional
        Host header values served (others get 400): with a loopback address, a web site visited in a browser
        cannot reach the server through a DNS name that points to this machine. None: any.
    preload : bool
        Load ``detector`` on the worker thread at start-up, so the first request does not wait for it.
    annotate : callable, optional
        Further fields for ``/api/detect``'s JSON answer (see :class:`Worker`).
    """
    worker = Worker(device=device, max_pixels=max_pixels, annotate=annotate)
    detector = _method_name(detector, "dbd")
    estimator = _method_name(estimator, "dme") if estimator else None

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if preload:
            worker._executor.submit(worker.method, detector)
        yield
        worker.close()

    app = FastAPI(title="defocus", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Blur maps (1 = out of focus) and defocus maps (Gaussian σ in px) of uploaded photos. "
                              "Errors are JSON objects {\"error\": \"reason\"}.")
    app.state.worker = worker
    app.add_middleware(UploadLimit, max_bytes=max_upload_bytes)
    if allowed_hosts:
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return _error_response(exc.status, exc.reason)

    @app.exception_handler(DefocusError)
    async def _defocus_error(request: Request, exc: DefocusError):
        error = _as_api_error(exc)
        return _error_response(error.status, error.reason)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException):
        return _error_response(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        problems = []
        for e in exc.errors():
            where = ".".join(str(part) for part in e.get("loc", ())[1:]) or "request"
            problems.append(f"{where}: {e.get('msg', 'invalid')}")
        return _error_response(400, "; ".join(problems))

    async def _work(method, *args) -> Answer:
        try:
            return await worker.run(method, *args)
        except Exception as exc:
            raise _as_api_error(exc) from None

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api/methods", summary="The methods a request may name, the defaults and the limits")
    async def methods():
        listed = []
        for name in registry.available():
            info = registry.describe(name)
            listed.append({"name": info.name, "task": info.task, "summary": info.summary, "paper": info.paper,
                           "aliases": list(info.aliases), "learned": info.pretrained is not None})
        return {"defaults": {"dbd": detector, "dme": estimator}, "methods": listed,
                "limits": {"max_upload_bytes": max_upload_bytes, "max_pixels": max_pixels}}

    detect_formats = {"png": ("blur.png",), "npy": ("blur.npy",), "overlay": ("overlay.jpg",),
                      "json": ("blur.png", "overlay.jpg")}

    @app.post("/api/detect", summary="Blur map of a photo (1 = out of focus)",
              responses={200: {"content": {"image/png": {}, "image/jpeg": {}, "application/octet-stream": {}},
                               "description": "png: the 8-bit blur map, 255 = out of focus (as `defocus detect` "
                                              "writes <stem>_blur.png); npy: the float32 map in [0, 1]; overlay: "
                                              "the photo with blurred regions tinted (JPEG, <stem>_overlay.jpg); "
                                              "json: both PNG and overlay as data: URLs, the size, the seconds "
                                              "and any further fields the server adds (e.g. a verdict)"},
                         400: {}, 413: {}, 415: {}, 503: {}})
    async def detect(request: Request,
                     image: UploadFile = File(..., description="the photo (JPEG, PNG, TIFF, WebP, BMP, GIF)"),
                     method: str = Query(detector, description="a DBD method of /api/methods"),
                     format: Literal["png", "npy", "overlay", "json"] = Query("png", description="what to return")):
        name = _method_name(method, "dbd")
        data, filename = await _upload(request, image)
        answer = await _work(worker.detect, data, filename, name, detect_formats[format], format == "json")
        if format == "json":
            return _json_answer(answer, name, "dbd")
        return _file_response(answer, next(iter(answer.files)), name)

    @app.post("/api/estimate", summary="Defocus map of a photo (blur in px)",
              responses={200: {"content": {"image/png": {}, "application/octet-stream": {}},
                               "description": "png: the map colourised with its scale bar (as `defocus estimate` "
                                              "writes <stem>_defocus.png); npy: the float32 map in px; json: the "
                                              "PNG as a data: URL, the size, the seconds, the units and the "
                                              "largest value (max_value)"},
                         400: {}, 413: {}, 415: {}, 503: {}})
    async def estimate(request: Request,
                       image: UploadFile = File(..., description="the photo (JPEG, PNG, TIFF, WebP, BMP, GIF)"),
                       method: str | None = Query(estimator, description="a DME method of /api/methods"),
                       format: Literal["png", "npy", "json"] = Query("png", description="what to return"),
                       units: Literal["sigma", "radius"] = Query("sigma", description="Gaussian σ or disk radius, "
                                                                                       "both in px")):
        if method is None:
            raise ApiError(400, "no method given and the server has no default estimator")
        name = _method_name(method, "dme")
        data, filename = await _upload(request, image)
        outputs = ("defocus.npy",) if format == "npy" else ("defocus.png",)
        answer = await _work(worker.estimate, data, filename, name, outputs, units)
        if format == "json":
            return _json_answer(answer, name, "dme")
        return _file_response(answer, next(iter(answer.files)), name)

    return app
