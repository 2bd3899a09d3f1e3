"""The task of http-sink (componentize-py wants the exported resource in a module named after
the exported interface)."""

from typing import List, Tuple

from componentize_py_types import Err
from wit_world.exports import sink as sink_exports
from wit_world.imports import log
from wit_world.imports.ferry_connector_types_0_1_0 import Error_Fatal, RecordBatch
from wit_world.imports.ferry_connector_types_0_2_0 import PutError_Fatal, PutError_Retriable

from ferry_sdk import http
from ferry_sdk.config import Config
from ferry_sdk.records import to_json_line
from keys import KEYS, parse_headers

RETRIABLE_STATUS = {408, 425, 429}


class SinkTask(sink_exports.SinkTask):
    @classmethod
    def open(cls, config: List[Tuple[str, str]]) -> "SinkTask":
        cfg = Config(KEYS, config)
        cfg.check()
        task = cls()
        task.url = cfg.get("http.url")
        task.headers = [("content-type", "application/x-ndjson")] + parse_headers(cfg.get("http.headers"))
        task.timeout_ms = cfg.int("http.timeout.ms")
        task.max_records = max(1, cfg.int("http.batch.max.records"))
        return task

    def put(self, batches: List[RecordBatch]) -> None:
        lines = []
        for batch in batches:
            for message in batch.messages:
                lines.append(to_json_line(batch.topic, batch.partition, message))
        for start in range(0, len(lines), self.max_records):
            body = ("\n".join(lines[start:start + self.max_records]) + "\n").encode()
            self._post(body)

    def _post(self, body: bytes) -> None:
        try:
            response = http.request("POST", self.url, self.headers, body, self.timeout_ms)
        except http.HttpError as e:
            if e.denied:
                raise Err(PutError_Fatal(f"the host refused the request to {self.url}: not granted (http.url, http.allowed.hosts)"))
            raise Err(PutError_Retriable(f"POST {self.url}: {e}"))
        if 200 <= response.status < 300:
            return
        text = response.body[:1024].decode("utf-8", "replace")
        if response.status >= 500 or response.status in RETRIABLE_STATUS:
            raise Err(PutError_Retriable(f"POST {self.url}: HTTP {response.status}: {text}"))
        raise Err(PutError_Fatal(f"POST {self.url}: HTTP {response.status}: {text}"))

    def flush(self) -> None:
        return None
