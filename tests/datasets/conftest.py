"""A real HTTP server on 127.0.0.1 for the fetch tests: Range, ETag / Last-Modified, injected failures."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Resource:
    body: bytes
    etag: str | None = '"v1"'
    last_modified: str | None = formatdate(1_700_000_000, usegmt=True)
    ranges: bool = True
    failures: list[str] = field(default_factory=list)
    """Actions for the next requests, in order: "503", "429", "404", "drop:N" (send N body bytes, then cut)."""


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    status: int = 0


class FileServer:
    """Serves ``resources`` and records every request (``seen``)."""

    def __init__(self) -> None:
        self.resources: dict[str, Resource] = {}
        self.seen: list[Seen] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                seen = Seen(self.path, {k.lower(): v for k, v in self.headers.items()})
                with server._lock:
                    server.seen.append(seen)
                    res = server.resources.get(self.path)
                    action = res.failures.pop(0) if res is not None and res.failures else None
                if res is None:
                    return self._empty(seen, 404)
                if action in ("503", "429", "404", "403"):
                    extra = {"Retry-After": "0"} if action == "429" else {}
                    return self._empty(seen, int(action), extra)
                body = res.body
                h = seen.headers
                if res.etag and h.get("if-none-match") == res.etag:
                    return self._empty(seen, 304, self._validators(res))
                if (
                    "if-none-match" not in h
                    and res.last_modified
                    and "if-modified-since" in h
                    and parsedate_to_datetime(h["if-modified-since"]) >= parsedate_to_datetime(res.last_modified)
                ):
                    return self._empty(seen, 304, self._validators(res))
                status, start = 200, 0
                rng = h.get("range")
                if_range = h.get("if-range")
                if rng and res.ranges and (if_range is None or if_range in (res.etag, res.last_modified)):
                    start = int(rng.removeprefix("bytes=").split("-")[0])
                    if start >= len(body):
                        return self._empty(seen, 416, {"Content-Range": f"bytes */{len(body)}"})
                    status = 206
                payload = body[start:]
                seen.status = status
                self.send_response(status)
                for k, v in self._validators(res).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                if res.ranges:
                    self.send_header("Accept-Ranges", "bytes")
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.end_headers()
                if action and action.startswith("drop:"):
                    self.wfile.write(payload[: int(action.split(":")[1])])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return None
                self.wfile.write(payload)
                return None

            def _validators(self, res: Resource) -> dict[str, str]:
                out = {}
                if res.etag:
                    out["ETag"] = res.etag
                if res.last_modified:
                    out["Last-Modified"] = res.last_modified
                return out

            def _empty(self, seen: Seen, status: int, headers: dict[str, str] | None = None) -> None:
                seen.status = status
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "0")
                self.end_headers()

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                pass  # dropped connections are what the tests ask for

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def add(self, path: str, body: bytes, **kwargs: object) -> str:
        self.resources[path] = Resource(body, **kwargs)  # type: ignore[arg-type]
        return self.base + path

    def requests_for(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]


@pytest.fixture
def http_server() -> Iterator[FileServer]:
    server = FileServer()
    server.thread.start()
    try:
        yield server
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
        server.thread.join(timeout=5)
