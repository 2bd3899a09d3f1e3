"""datagen-py: Python twin of the Rust `datagen` (record n: key `k<n>`, value `n ` padded with
`x` to `datagen.size` bytes), to measure what the Python runtime costs per record."""

from typing import List, Tuple

from wit_world import exports
from wit_world.imports.ferry_connector_types_0_2_0 import ConnectorInfo

from ferry_sdk.config import Config, Key, describe_keys, same_config_per_task

KEYS = [
    Key("datagen.topic", "The RocketMQ topic to write to", required=True),
    Key("datagen.count", "How many records (0 = endless)", default="0", kind="int"),
    Key("datagen.size", "Value bytes", default="100", kind="int"),
    Key("datagen.batch", "Records per poll", default="256", kind="int"),
]


class Source(exports.Source):
    def describe(self) -> ConnectorInfo:
        return ConnectorInfo("datagen-py", "0.1.0", [], describe_keys(KEYS))

    def validate(self, config: List[Tuple[str, str]]) -> None:
        Config(KEYS, config).check()

    def task_configs(self, config: List[Tuple[str, str]], max_tasks: int) -> List[List[Tuple[str, str]]]:
        return same_config_per_task(config, 1)
