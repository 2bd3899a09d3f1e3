"""Config keys: one declaration gives `describe()` its key list and `validate()` its checks."""

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from componentize_py_types import Err
from wit_world.imports.ferry_connector_types_0_1_0 import Error_InvalidConfig
from wit_world.imports.ferry_connector_types_0_2_0 import ConfigKey


@dataclass
class Key:
    """One key a connector understands."""

    name: str
    doc: str
    required: bool = False
    default: Optional[str] = None
    secret: bool = False
    kind: str = "string"  # "string", "int" (>= 0) or "url" (http:// or https://)

    def to_wit(self) -> ConfigKey:
        return ConfigKey(self.name, self.required, self.default, self.doc, self.secret)


class Config:
    """A connector or task config read against declared keys."""

    def __init__(self, keys: List[Key], pairs: List[Tuple[str, str]]):
        self.keys = {k.name: k for k in keys}
        self.values: Dict[str, str] = dict(pairs)

    def get(self, name: str) -> Optional[str]:
        value = self.values.get(name)
        if value is None or value == "":
            return self.keys[name].default if name in self.keys else None
        return value

    def int(self, name: str) -> int:
        return int(self.get(name) or "0")

    def check(self) -> None:
        """Raises `Err(invalid-config)` naming the first key that is missing or malformed."""
        for key in self.keys.values():
            value = self.get(key.name)
            if value is None:
                if key.required:
                    raise Err(Error_InvalidConfig(f"{key.name}: required"))
                continue
            if key.kind == "int":
                try:
                    if int(value) < 0:
                        raise ValueError
                except ValueError:
                    raise Err(Error_InvalidConfig(f"{key.name}: `{value}` is not a number >= 0"))
            if key.kind == "url" and not (value.startswith("http://") or value.startswith("https://")):
                raise Err(Error_InvalidConfig(f"{key.name}: `{value}` must start with http:// or https://"))


def describe_keys(keys: List[Key]) -> List[ConfigKey]:
    """The WIT `config-key` list for `describe()`."""
    return [k.to_wit() for k in keys]


def same_config_per_task(pairs: List[Tuple[str, str]], max_tasks: int, tasks_key: str = "tasks.num") -> List[List[Tuple[str, str]]]:
    """`task-configs` for connectors whose tasks are interchangeable: `tasks.num` copies,
    at most `max_tasks`."""
    wanted = int(dict(pairs).get(tasks_key) or "1")
    return [list(pairs) for _ in range(max(1, min(wanted, max_tasks)))]
