"""http-sink: POSTs each batch of RocketMQ records to `http.url` as JSON lines.

2xx = delivered; 5xx, 408, 429, timeouts and refused connections are retriable (the host
retries the same records); any other answer is fatal and the task error carries the
response body. Built with componentize-py against `ferry:connector/http-sink-connector`.
"""

from typing import List, Tuple

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports.ferry_connector_types_0_2_0 import ConnectorInfo

from ferry_sdk.config import Config, describe_keys, same_config_per_task
from keys import KEYS, parse_headers


class Sink(exports.Sink):
    def describe(self) -> ConnectorInfo:
        return ConnectorInfo("http-sink", "0.1.0", [], describe_keys(KEYS))

    def validate(self, config: List[Tuple[str, str]]) -> None:
        Config(KEYS, config).check()
        parse_headers(Config(KEYS, config).get("http.headers"))

    def task_configs(self, config: List[Tuple[str, str]], max_tasks: int) -> List[List[Tuple[str, str]]]:
        return same_config_per_task(config, max_tasks)
