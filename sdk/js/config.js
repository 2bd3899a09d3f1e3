// Config keys for Ferry connectors written in JavaScript: one declaration gives `describe()`
// its key list and `validate()` its checks.

/** Throws the WIT `error` case `invalid-config` naming `key`. */
export function invalidConfig(key, reason) {
  throw { tag: 'invalid-config', val: `${key}: ${reason}` };
}

/** The WIT `config-key` list for `describe()` from `{name, doc, required, default, secret}`. */
export function describeKeys(keys) {
  return keys.map((k) => ({
    name: k.name,
    required: !!k.required,
    defaultValue: k.default,
    doc: k.doc,
    secret: !!k.secret,
  }));
}

/** A config's values by key, defaults filled in; throws `invalid-config` for the first key
 * that is missing or malformed (`kind`: 'string', 'int' (>= 0), 'url'). */
export function readConfig(keys, pairs) {
  const given = new Map(pairs);
  const values = {};
  for (const k of keys) {
    let v = given.get(k.name);
    if (v === undefined || v === '') v = k.default;
    if (v === undefined) {
      if (k.required) invalidConfig(k.name, 'required');
      continue;
    }
    if (k.kind === 'int' && !/^\d+$/.test(v.trim())) invalidConfig(k.name, `\`${v}\` is not a number >= 0`);
    if (k.kind === 'url' && !/^https?:\/\//i.test(v)) invalidConfig(k.name, `\`${v}\` must start with http:// or https://`);
    values[k.name] = k.kind === 'int' ? Number(v.trim()) : v;
  }
  return values;
}

/** `task-configs` for a connector whose tasks are interchangeable: `tasks.num` copies, at most `maxTasks`. */
export function sameConfigPerTask(pairs, maxTasks) {
  const wanted = Number(new Map(pairs).get('tasks.num') || '1');
  const n = Math.max(1, Math.min(wanted, maxTasks));
  return Array.from({ length: n }, () => pairs.map(([k, v]) => [k, v]));
}
