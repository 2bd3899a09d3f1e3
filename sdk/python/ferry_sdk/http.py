"""Blocking HTTP over `wasi:http/outgoing-handler` (the host sends the request only to the
origins the connector was granted: `http.url` and `http.allowed.hosts`)."""

from dataclasses import dataclass
from typing import List, Optional, Tuple
from urllib.parse import urlsplit

from componentize_py_types import Err, Ok
from wit_world.imports import outgoing_handler
from wit_world.imports import wasi_http_types as t
from wit_world.imports.streams import StreamError_Closed

CHUNK = 4096


@dataclass
class Response:
    status: int
    headers: List[Tuple[str, bytes]]
    body: bytes


class HttpError(Exception):
    """The request did not get a response. `code` is the WASI error-code case name, e.g.
    `HttpRequestDenied` (the origin is not granted) or `ConnectionRefused`."""

    def __init__(self, code: str, detail: str = ""):
        super().__init__(f"{code}{': ' + detail if detail else ''}")
        self.code = code

    @property
    def denied(self) -> bool:
        return self.code == "HttpRequestDenied"


def _error(e) -> HttpError:
    value = e.value if isinstance(e, Err) else e
    name = type(value).__name__.removeprefix("ErrorCode_")
    detail = getattr(value, "value", None)
    return HttpError(name, "" if detail is None else str(detail))


def request(method: str, url: str, headers: List[Tuple[str, str]] = (), body: Optional[bytes] = None,
            timeout_ms: int = 30000) -> Response:
    """Sends one request and returns the whole response; raises `HttpError` when there is
    none (refused, timed out, denied by the host's grant)."""
    parts = urlsplit(url)
    fields = t.Fields.from_list([(k, v.encode()) for k, v in headers])
    req = t.OutgoingRequest(fields)
    methods = {"GET": t.Method_Get(), "POST": t.Method_Post(), "PUT": t.Method_Put()}
    req.set_method(methods.get(method.upper()) or t.Method_Other(method.upper()))
    req.set_scheme(t.Scheme_Https() if parts.scheme == "https" else t.Scheme_Http())
    req.set_authority(parts.netloc)
    req.set_path_with_query((parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
    options = t.RequestOptions()
    nanos = timeout_ms * 1_000_000
    options.set_connect_timeout(nanos)
    options.set_first_byte_timeout(nanos)
    options.set_between_bytes_timeout(nanos)
    outgoing = req.body()
    try:
        future = outgoing_handler.handle(req, options)
    except Err as e:
        raise _error(e)
    stream = outgoing.write()
    data = body or b""
    try:
        for i in range(0, len(data), CHUNK):
            stream.blocking_write_and_flush(data[i:i + CHUNK])
    except Err:
        pass  # the host gave up on the request; the future says why
    stream.__exit__(None, None, None)
    t.OutgoingBody.finish(outgoing, None)
    pollable = future.subscribe()
    pollable.block()
    pollable.__exit__(None, None, None)
    result = future.get()
    future.__exit__(None, None, None)
    if result is None or isinstance(result, Err):
        raise HttpError("InternalError", "no response")
    inner = result.value
    if isinstance(inner, Err):
        raise _error(inner)
    response = inner.value
    status = response.status()
    response_headers = response.headers().entries()
    incoming = response.consume()
    reader = incoming.stream()
    chunks = []
    while True:
        try:
            chunks.append(reader.blocking_read(65536))
        except Err as e:
            if isinstance(e.value, StreamError_Closed):
                break
            raise HttpError("HttpResponseIncomplete", str(e.value))
    reader.__exit__(None, None, None)
    t.IncomingBody.finish(incoming)
    response.__exit__(None, None, None)
    return Response(status, response_headers, b"".join(chunks))
