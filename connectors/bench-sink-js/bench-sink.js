// bench-sink-js: JavaScript twin of the Rust `bench-sink` (counts what it receives), to
// measure what the JavaScript runtime costs per record in put().
import { readConfig } from './ferry-sdk/config.js';
import { connector } from './ferry-sdk/connector.js';

const KEYS = [{ name: 'rocketmq.topics', required: true, doc: 'RocketMQ topics to read (comma list)' }];

class SinkTask {
  static open(pairs) {
    readConfig(KEYS, pairs);
    const task = new SinkTask();
    task.records = 0;
    task.bytes = 0;
    return task;
  }

  put(batches) {
    for (const b of batches) {
      for (const m of b.messages) {
        this.records += 1;
        this.bytes += m.value.length + (m.key ? m.key.length : 0);
      }
    }
  }

  flush() {}
}

export const sink = connector({ name: 'bench-sink-js', keys: KEYS, SinkTask });
