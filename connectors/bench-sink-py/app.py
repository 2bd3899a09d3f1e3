"""bench-sink-py: Python twin of the Rust `bench-sink` (counts what it receives), to measure
what the Python runtime costs per record in put()."""

from typing import List, Tuple

from wit_world import exports
from wit_world.imports.ferry_connector_types_0_2_0 import ConnectorInfo

from ferry_sdk.config import Config, Key, describe_keys, same_config_per_task

KEYS = [Key("rocketmq.topics", "RocketMQ topics to read (comma list)", required=True)]


class Sink(exports.Sink):
    def describe(self) -> ConnectorInfo:
        return ConnectorInfo("bench-sink-py", "0.1.0", [], describe_keys(KEYS))

    def validate(self, config: List[Tuple[str, str]]) -> None:
        Config(KEYS, config).check()

    def task_configs(self, config: List[Tuple[str, str]], max_tasks: int) -> List[List[Tuple[str, str]]]:
        return same_config_per_task(config, max_tasks)
