"""Loop prevention between two systems, as `ferry_sdk::mark_origin` in Rust: every copied
record carries `ferry.origin` = `<system>:<topic>` of where it came from, and a connector drops
the records that came out of the topic it writes to."""

from typing import List

ORIGIN_HEADER = "ferry.origin"


def mark_origin(batch, source: str, destination: str, target: str) -> List:
    """Drops the messages of `batch` that were copied out of `destination`'s topic `target`,
    marks the others `<source>:<batch topic>`, and returns what is left to copy."""
    echo = f"{destination}:{target}".encode()
    origin = f"{source}:{batch.topic}".encode()
    kept = []
    for m in batch.messages:
        if any(k == ORIGIN_HEADER and v == echo for k, v in m.headers):
            continue
        m.headers = [(k, v) for k, v in m.headers if k != ORIGIN_HEADER] + [(ORIGIN_HEADER, origin)]
        kept.append(m)
    batch.messages = kept
    return kept
