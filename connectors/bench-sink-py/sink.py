"""The task of bench-sink-py."""

from typing import List

from wit_world.exports import sink as sink_exports
from wit_world.imports.ferry_connector_types_0_1_0 import RecordBatch

from app import KEYS
from ferry_sdk.config import Config


class SinkTask(sink_exports.SinkTask):
    @classmethod
    def open(cls, config) -> "SinkTask":
        Config(KEYS, config).check()
        task = cls()
        task.records = 0
        task.bytes = 0
        return task

    def put(self, batches: List[RecordBatch]) -> None:
        for batch in batches:
            for m in batch.messages:
                self.records += 1
                self.bytes += len(m.value) + (len(m.key) if m.key is not None else 0)

    def flush(self) -> None:
        return None
