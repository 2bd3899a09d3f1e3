"""The task of datagen-py."""

import time
from typing import List

from wit_world.exports import source as source_exports
from wit_world.imports.ferry_connector_types_0_1_0 import Message, Position, RecordBatch
from wit_world.imports.ferry_connector_types_0_2_0 import SourceBatch

from app import KEYS
from ferry_sdk.config import Config


class SourceTask(source_exports.SourceTask):
    @classmethod
    def open(cls, config, committed: List[Position]) -> "SourceTask":
        cfg = Config(KEYS, config)
        cfg.check()
        task = cls()
        task.topic = cfg.get("datagen.topic")
        task.count = cfg.int("datagen.count")
        task.size = cfg.int("datagen.size")
        task.batch = max(1, cfg.int("datagen.batch"))
        last = [int(p.offset) for p in committed if p.partition == task.topic]
        task.next = last[0] + 1 if last else 0
        return task

    def poll(self) -> List[SourceBatch]:
        end = self.next + self.batch
        if self.count:
            end = min(end, self.count)
        if end <= self.next:
            return []
        now = int(time.time() * 1000)
        messages = []
        for n in range(self.next, end):
            value = f"{n} ".encode()
            if len(value) < self.size:
                value += b"x" * (self.size - len(value))
            messages.append(Message(n, f"k{n}".encode(), value, [], now))
        self.next = end
        return [SourceBatch(self.topic, str(end - 1), RecordBatch(self.topic, 0, messages))]

    def commit(self, positions: List[Position]) -> None:
        return None
