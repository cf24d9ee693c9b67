"""The web console: static pages under ``/console/`` and ``POST /api/management``.

The pages (``static/``: plain HTML, CSS and JavaScript modules, no build step,
nothing fetched from elsewhere) read and act through one endpoint that is the
``$management`` node over HTTP: a JSON object holding a request's
application-properties and body goes in, the server's
:class:`~petrel.management.ManagementAgent` performs it exactly as it would
an AMQP request, and the reply's application-properties (``statusCode``,
``statusDescription``, ...) and body come back as JSON.  There is no second
model: what the console shows and does is what ``petrel manage`` can.

JSON and AMQP values: a JSON string, number, boolean, null, array and object
become a string, long (or double), boolean, null, list and map.  Going back,
the AMQP wrappers become their plain JSON values (a symbol a string, a
timestamp its milliseconds, a uuid its text), binary becomes
``{"$binary": BASE64}`` and a described value ``{"$described": [DESCRIPTOR,
VALUE]}``; a float that JSON cannot carry (NaN, infinities) becomes its text.

Who may use it is the caller's business (:class:`~.service.HttpService` checks
the manage right before any of this runs).  A request from a page of another
origin is refused here: ``POST /api/management`` takes ``application/json``
only (which a browser sends cross-origin only after a CORS preflight, which is
never granted) and, when the browser names the page's ``Origin``, that origin
must be this server's; and a request without credentials must name the server
by address or ``localhost`` (:func:`rebinding_refusal`).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import math
import uuid
from collections.abc import Mapping
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from aiohttp import hdrs, web

from ....management import ManagementAgent
from ....management.errors import status_text
from ....message import Message
from ....types import Array, Described

__all__ = [
    "API_PATH",
    "CONSOLE_PATH",
    "MAX_REQUEST_BYTES",
    "ConsoleFiles",
    "answer_management",
    "from_json",
    "rebinding_refusal",
    "to_json",
]

#: Where the pages are served.
CONSOLE_PATH = "/console/"
#: The management endpoint.
API_PATH = "/api/management"
#: The largest request body the endpoint reads (a management request is small).
MAX_REQUEST_BYTES = 1 << 20
#: Deepest nesting of a JSON request accepted (a management request is shallow).
MAX_DEPTH = 32

_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}

#: The pages load only what this server serves: no inline script, no other origin.
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


class ConsoleFiles:
    """The console's files, read once from the package: name to (bytes, content type)."""

    def __init__(self) -> None:
        self.files: dict[str, tuple[bytes, str]] = {}
        root = resources.files(__package__ or __name__).joinpath("static")
        for entry in root.iterdir():
            suffix = "." + entry.name.rsplit(".", 1)[-1] if "." in entry.name else ""
            if entry.is_file() and suffix in _CONTENT_TYPES:
                self.files[entry.name] = (entry.read_bytes(), _CONTENT_TYPES[suffix])

    def response(self, name: str) -> web.Response:
        """The file called ``name`` (``""``: the page itself), or 404."""
        found = self.files.get(name or "index.html")
        if found is None:
            return web.Response(status=404, text=f"the console has no file {name!r}\n")
        body, content_type = found
        response = web.Response(body=body, headers=_SECURITY_HEADERS)
        response.headers[hdrs.CONTENT_TYPE] = content_type
        return response


def _refusal(status: int, text: str) -> web.Response:
    return web.json_response({"error": text}, status=status, headers={"Cache-Control": "no-store"})


def rebinding_refusal(request: web.Request) -> web.Response | None:
    """Refuse a request without credentials that names a host by a DNS name other than
    ``localhost``: a page of another site whose name was made to resolve to this machine
    (DNS rebinding) would otherwise count as this server's own origin, and loopback needs
    no credentials.  ``None`` when the request may go on."""
    if hdrs.AUTHORIZATION in request.headers:
        return None
    try:
        host = urlsplit("//" + request.host).hostname or ""
    except ValueError:
        host = request.host
    if host == "localhost" or host.endswith(".localhost"):
        return None
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return web.Response(
            status=403,
            text=(
                f"the console is open without credentials only by address (127.0.0.1) or "
                f"localhost, not by the name {host!r}: give a manager's credentials\n"
            ),
        )
    return None


def _foreign_origin(request: web.Request) -> str | None:
    """The request's ``Origin`` when it is not this server (``None`` when it is, or absent)."""
    origin = request.headers.get(hdrs.ORIGIN)
    if origin is None:
        return None
    parts = urlsplit(origin)
    if parts.netloc and parts.netloc.lower() == request.host.lower():
        return None
    return origin


async def answer_management(request: web.Request, agent: ManagementAgent) -> web.Response:
    """``POST /api/management``: ``{"application_properties": {...}, "body": ...}`` in,
    the agent's reply as ``{"application_properties": {...}, "body": ...}`` out (HTTP 200
    whatever the management status; HTTP errors are for requests that are not JSON
    requests, or come from another origin)."""
    origin = _foreign_origin(request)
    if origin is not None:
        return _refusal(403, f"a page from {origin} may not use this server's management")
    if request.content_type != "application/json":
        return _refusal(
            415, f"send the request as application/json, not {request.content_type or 'nothing'}"
        )
    if request.content_length is not None and request.content_length > MAX_REQUEST_BYTES:
        return _refusal(413, f"a management request has at most {MAX_REQUEST_BYTES} bytes")
    raw = await request.content.read(MAX_REQUEST_BYTES + 1)
    if len(raw) > MAX_REQUEST_BYTES:
        return _refusal(413, f"a management request has at most {MAX_REQUEST_BYTES} bytes")
    try:
        document = json.loads(raw)
        message = _request_message(document)
    except (ValueError, RecursionError) as exc:
        return _refusal(400, f"not a management request: {exc}")
    reply = await agent.execute(message, allowed=True)
    properties: dict[str, Any] = {
        "statusCode": reply.status,
        "statusDescription": reply.description or status_text(reply.status),
    }
    properties.update(reply.properties)
    return web.json_response(
        {"application_properties": to_json(properties), "body": to_json(reply.body)},
        headers={"Cache-Control": "no-store"},
    )


def _request_message(document: Any) -> Message:
    """The AMQP request a JSON document stands for; ``ValueError`` naming what is wrong."""
    if not isinstance(document, dict):
        raise ValueError("the request must be a JSON object")
    unknown = sorted(set(document) - {"application_properties", "body"})
    if unknown:
        raise ValueError(
            f"unknown member {unknown[0]!r}: a request has application_properties and body"
        )
    properties = document.get("application_properties")
    if not isinstance(properties, dict):
        raise ValueError("application_properties must be an object (operation, type, name, ...)")
    body = from_json(document.get("body"))
    return Message(body, application_properties=from_json(properties))


def from_json(value: Any, depth: int = 0) -> Any:
    """A decoded JSON value as the AMQP value it stands for (see the module docstring)."""
    if depth > MAX_DEPTH:
        raise ValueError(f"nested deeper than {MAX_DEPTH}")
    if isinstance(value, dict):
        return {str(k): from_json(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [from_json(v, depth + 1) for v in value]
    return value


def to_json(value: Any) -> Any:
    """An AMQP value as plain JSON data (see the module docstring)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$binary": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Mapping):
        return {_key(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, Array):
        return [to_json(v) for v in value.items]
    if isinstance(value, Described):
        return {"$described": [to_json(value.descriptor), to_json(value.value)]}
    return str(value)


def _key(key: Any) -> str:
    """A map key as a JSON object key (AMQP map keys may be of any type)."""
    if isinstance(key, str):
        return str(key)
    converted = to_json(key)
    return converted if isinstance(converted, str) else json.dumps(converted)
