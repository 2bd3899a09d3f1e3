"""Records as JSON: text when the bytes are UTF-8, base64 otherwise (named in `*_encoding`)."""

import base64
import json
from typing import Optional, Tuple


def text_or_base64(data: Optional[bytes]) -> Tuple[Optional[str], str]:
    if data is None:
        return None, "text"
    try:
        return data.decode("utf-8"), "text"
    except UnicodeDecodeError:
        return base64.b64encode(data).decode("ascii"), "base64"


def to_json_line(topic: str, partition: int, message) -> str:
    """One record as a JSON object on one line (key, value, headers, timestamp, topic)."""
    key, key_encoding = text_or_base64(message.key)
    value, value_encoding = text_or_base64(message.value)
    headers = []
    for name, raw in message.headers:
        text, encoding = text_or_base64(raw)
        headers.append({"name": name, "value": text, "encoding": encoding})
    return json.dumps({
        "topic": topic,
        "partition": partition,
        "offset": message.offset,
        "timestamp": message.timestamp_ms,
        "key": key,
        "key_encoding": key_encoding,
        "value": value,
        "value_encoding": value_encoding,
        "headers": headers,
    }, separators=(",", ":"))
