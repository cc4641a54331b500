"""``defocus serve``: the web page and HTTP API on this machine (``pip install 'defocus[serve]'``)."""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys

from .. import registry
from ..errors import UsageError
from . import MAX_UPLOAD_BYTES


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..cli import _positive_pixels, finite_number
    from ..io import MAX_PIXELS

    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 or :: opens it to "
                        "the network, where anyone who reaches the port can run methods)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000; 0: any free port)")
    p.add_argument("-m", "--method", default=registry.DEFAULT_DETECTOR, metavar="DETECTOR",
                   help=f"detector used when a request names none, preloaded at start (default "
                        f"{registry.DEFAULT_DETECTOR}; the page and requests may choose any of 'defocus methods')")
    p.add_argument("--estimator", default=registry.DEFAULT_ESTIMATOR, metavar="NAME",
                   help=f"estimator used when a request names none (default {registry.DEFAULT_ESTIMATOR})")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (learned methods)")
    p.add_argument("--max-upload-mb", type=finite_number(0.0), default=MAX_UPLOAD_BYTES / 1e6, metavar="N",
                   help=f"refuse uploads larger than N MB (10^6 bytes; default {MAX_UPLOAD_BYTES / 1e6:g}) with 413, "
                        "before reading them")
    p.add_argument("--max-pixels", type=_positive_pixels, default=MAX_PIXELS, metavar="N",
                   help=f"refuse photos with more pixels than N (default {MAX_PIXELS:.0e}) with 413, before "
                        "decoding them")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``, so a port in use is a one-line usage error rather than a server log."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise UsageError(f"--host {host}: cannot resolve it ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(64)
    except OSError as exc:
        sock.close()
        raise UsageError(f"--host {host} --port {port}: cannot listen there ({exc.strerror or exc})") from None
    return sock


def run(args: argparse.Namespace) -> int:
    try:
        import fastapi  # noqa: F401
        import multipart  # noqa: F401  (python-multipart: FastAPI's form parser)
        import uvicorn
    except ImportError as exc:
        raise UsageError(f"defocus serve needs FastAPI, uvicorn and python-multipart ({exc.name} is missing): "
                         f"pip install 'defocus[serve]'") from None
    from ..cull import verdict_fields
    from .app import create_app

    registry.check_device(args.device)
    local = _loopback(args.host)
    app = create_app(detector=args.method, estimator=args.estimator, device=args.device,
                     max_upload_bytes=int(args.max_upload_mb * 1e6), max_pixels=args.max_pixels,
                     allowed_hosts=["localhost", "127.0.0.1", "::1", args.host] if local else None, preload=True,
                     annotate=verdict_fields)
    sock = _listen(args.host, args.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    print(f"defocus: serving http://{shown}:{port}/ (API: /api/detect, /api/estimate, /api/methods, "
          f"/openapi.json; Ctrl-C stops)", file=sys.stderr, flush=True)
    if not local:
        print(f"defocus: warning: listening on {args.host}: anyone who can reach this port can upload photos and "
              f"run methods", file=sys.stderr, flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    server.run(sockets=[sock])
    return 0
