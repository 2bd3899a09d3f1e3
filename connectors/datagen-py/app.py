"""datagen-py: Python twin of the Rust `datagen` (record n: key `k<n>`, value `n ` padded with
`x` to `datagen.size` bytes), to measure what the Python runtime costs per record."""

from wit_world import exports

from ferry_sdk.config import Key
from ferry_sdk.connector import Connector

KEYS = [
    Key("datagen.topic", "The RocketMQ topic to write to", required=True),
    Key("datagen.count", "How many records (0 = endless)", default="0", kind="int"),
    Key("datagen.size", "Value bytes", default="100", kind="int"),
    Key("datagen.batch", "Records per poll", default="256", kind="int"),
]


class Source(Connector, exports.Source):
    NAME, VERSION, KEYS, MAX_TASKS = "datagen-py", "0.1.0", KEYS, 1
