"""http-sink: POSTs each batch of RocketMQ records to `http.url` as JSON lines.

2xx = delivered; 5xx, 408, 429, timeouts and refused connections are retriable (the host
retries the same records); any other answer is fatal and the task error carries the
response body. Built with componentize-py against `ferry:connector/http-sink-connector`.
"""

from typing import List, Tuple

from wit_world import exports

from ferry_sdk.config import Config
from ferry_sdk.connector import Connector
from keys import KEYS, parse_headers


class Sink(Connector, exports.Sink):
    NAME, VERSION, KEYS = "http-sink", "0.1.0", KEYS

    def validate(self, config: List[Tuple[str, str]]) -> None:
        super().validate(config)
        parse_headers(Config(KEYS, config).get("http.headers"))
