// The connector half of a JavaScript connector, as in the Rust `ferry-sdk`: give the name,
// version, keys and task class, get the exported interface object.
//
//   export const sink = connector({ name: 'my-sink', version: '0.1.0', keys: KEYS, SinkTask });
//   export const source = connector({ name: 'my-source', keys: KEYS, SourceTask, maxTasks: 1 });
import { describeKeys, readConfig, sameConfigPerTask } from './config.js';

/** The `source` or `sink` export: describe, validate (the keys' checks, then `validate` if
 * given), taskConfigs (`tasks.num` copies, at most `maxTasks`) and the task class. */
export function connector({ name, version = '0.1.0', aliases = [], keys, validate, maxTasks = 1024, ...task }) {
  return {
    describe() {
      return { name, version, aliases, configKeys: describeKeys(keys) };
    },
    validate(pairs) {
      const config = readConfig(keys, pairs);
      if (validate) validate(config);
    },
    taskConfigs(pairs, max) {
      return sameConfigPerTask(pairs, Math.min(max, maxTasks));
    },
    ...task,
  };
}
