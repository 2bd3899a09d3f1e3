"""The config keys of http-sink."""

from typing import List, Optional, Tuple

from componentize_py_types import Err
from wit_world.imports.ferry_connector_types_0_1_0 import Error_InvalidConfig

from ferry_sdk.config import Key

KEYS = [
    Key("http.url", "Where each batch is POSTed (http:// or https://); the host lets the task reach only this origin and http.allowed.hosts", required=True, kind="url"),
    Key("http.headers", "Request headers, `Name: value` pairs separated by `|` (e.g. an Authorization header); hidden in every answer and log", secret=True),
    Key("http.timeout.ms", "How long one request may take before it is retried", default="10000", kind="int"),
    Key("http.batch.max.records", "The most records in one request", default="500", kind="int"),
    Key("http.allowed.hosts", "More origins the task may reach (host, host:port or scheme://host:port, comma separated)"),
]


def parse_headers(raw: Optional[str]) -> List[Tuple[str, str]]:
    headers = []
    for item in (raw or "").split("|"):
        if not item.strip():
            continue
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise Err(Error_InvalidConfig("http.headers: each header must be `Name: value` (pairs separated by `|`)"))
        headers.append((name.strip(), value.strip()))
    return headers
