// Loop prevention between two systems, as `ferry_sdk::mark_origin` in Rust: every copied
// record carries `ferry.origin` = `<system>:<topic>` of where it came from, and a connector
// drops the records that came out of the topic it writes to.

export const ORIGIN_HEADER = 'ferry.origin';
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Drops the messages of `batch` copied out of `destination`'s topic `target`, marks the
 * others `<source>:<batch topic>`, and returns what is left to copy. */
export function markOrigin(batch, source, destination, target) {
  const echo = `${destination}:${target}`;
  const origin = encoder.encode(`${source}:${batch.topic}`);
  batch.messages = batch.messages.filter(
    (m) => !m.headers.some(([k, v]) => k === ORIGIN_HEADER && decoder.decode(v) === echo),
  );
  for (const m of batch.messages) {
    m.headers = m.headers.filter(([k]) => k !== ORIGIN_HEADER).concat([[ORIGIN_HEADER, origin]]);
  }
  return batch.messages;
}
