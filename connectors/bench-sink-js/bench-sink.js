// bench-sink-js: JavaScript twin of the Rust `bench-sink` (counts what it receives), to
// measure what the JavaScript runtime costs per record in put().
import { describeKeys, readConfig, sameConfigPerTask } from './ferry-sdk/config.js';

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

export const sink = {
  describe() {
    return { name: 'bench-sink-js', version: '0.1.0', aliases: [], configKeys: describeKeys(KEYS) };
  },
  validate(pairs) {
    readConfig(KEYS, pairs);
  },
  taskConfigs(pairs, maxTasks) {
    return sameConfigPerTask(pairs, maxTasks);
  },
  SinkTask,
};
