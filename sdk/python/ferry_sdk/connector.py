"""The connector half of a Python connector, as in the Rust `ferry-sdk`: declare `NAME`,
`VERSION` and `KEYS` and inherit `describe`, `validate` and `task_configs`.

    class Sink(ferry_sdk.connector.Connector, exports.Sink):
        NAME, VERSION, KEYS = "my-sink", "0.1.0", KEYS

The task half stays a class of the generated bindings (`sink.SinkTask` with open/put/flush,
`source.SourceTask` with open/poll/commit).
"""

from typing import List, Tuple

from wit_world.imports.ferry_connector_types_0_2_0 import ConnectorInfo

from ferry_sdk.config import Config, Key, describe_keys, same_config_per_task


class Connector:
    NAME: str = ""
    VERSION: str = "0.1.0"
    ALIASES: List[str] = []
    KEYS: List[Key] = []
    # At most this many tasks (1 for a source whose tasks would read the same records).
    MAX_TASKS: int = 1024

    def describe(self) -> ConnectorInfo:
        return ConnectorInfo(self.NAME, self.VERSION, list(self.ALIASES), describe_keys(self.KEYS))

    def validate(self, config: List[Tuple[str, str]]) -> None:
        """Raises `Err(invalid-config)` naming the first missing or malformed key; override to
        check more (call `super().validate(config)` first)."""
        Config(self.KEYS, config).check()

    def task_configs(self, config: List[Tuple[str, str]], max_tasks: int) -> List[List[Tuple[str, str]]]:
        """`tasks.num` copies of the config, at most `max_tasks` and `MAX_TASKS`."""
        return same_config_per_task(config, min(max_tasks, self.MAX_TASKS))
