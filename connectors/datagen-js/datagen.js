// datagen-js: JavaScript twin of the Rust `datagen` (record n: key `k<n>`, value `n ` padded
// with `x` to `datagen.size` bytes), to measure what the JavaScript runtime costs per record.
import { nowMs } from 'ferry:connector/clock@0.1.0';
import { readConfig } from './ferry-sdk/config.js';
import { connector } from './ferry-sdk/connector.js';

const KEYS = [
  { name: 'datagen.topic', required: true, doc: 'The RocketMQ topic to write to' },
  { name: 'datagen.count', default: '0', kind: 'int', doc: 'How many records (0 = endless)' },
  { name: 'datagen.size', default: '100', kind: 'int', doc: 'Value bytes' },
  { name: 'datagen.batch', default: '256', kind: 'int', doc: 'Records per poll' },
];
const encoder = new TextEncoder();
const X = 'x'.charCodeAt(0);

class SourceTask {
  static open(pairs, committed) {
    const config = readConfig(KEYS, pairs);
    const task = new SourceTask();
    task.topic = config['datagen.topic'];
    task.count = config['datagen.count'];
    task.size = config['datagen.size'];
    task.batch = Math.max(1, config['datagen.batch']);
    const mine = committed.find((p) => p.partition === task.topic);
    task.next = mine ? Number(mine.offset) + 1 : 0;
    return task;
  }

  poll() {
    let end = this.next + this.batch;
    if (this.count) end = Math.min(end, this.count);
    if (end <= this.next) return [];
    const now = nowMs();
    const messages = [];
    for (let n = this.next; n < end; n++) {
      const head = encoder.encode(`${n} `);
      const value = new Uint8Array(Math.max(this.size, head.length)).fill(X);
      value.set(head);
      messages.push({ offset: BigInt(n), key: encoder.encode(`k${n}`), value, headers: [], timestampMs: now });
    }
    this.next = end;
    return [{ sourcePartition: this.topic, sourceOffset: String(end - 1), records: { topic: this.topic, partition: 0, messages } }];
  }

  commit(_positions) {}
}

export const source = connector({ name: 'datagen-js', keys: KEYS, maxTasks: 1, SourceTask });
