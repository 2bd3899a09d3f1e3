"""bench-sink-py: Python twin of the Rust `bench-sink` (counts what it receives), to measure
what the Python runtime costs per record in put()."""

from wit_world import exports

from ferry_sdk.config import Key
from ferry_sdk.connector import Connector

KEYS = [Key("rocketmq.topics", "RocketMQ topics to read (comma list)", required=True)]


class Sink(Connector, exports.Sink):
    NAME, VERSION, KEYS = "bench-sink-py", "0.1.0", KEYS
