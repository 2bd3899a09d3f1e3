// http-source: polls `GET <http.url>` (then `?after=<cursor>`) for
// `{"records": [{"key": "...", "value": "...", "headers": {...}}], "cursor": "..."}` and writes
// the records to the RocketMQ topic `http.topic`. The cursor is the source position: the host
// stores it once RocketMQ acknowledged the batch, so a restarted task resumes after the last
// acknowledged batch (at-least-once). Built with componentize-js against
// `ferry:connector/http-source-connector`.
import { log } from 'ferry:connector/log@0.1.0';
import { nowMs } from 'ferry:connector/clock@0.1.0';
import { request, HttpError } from './ferry-sdk/http.js';
import { readConfig } from './ferry-sdk/config.js';
import { connector } from './ferry-sdk/connector.js';

const KEYS = [
  { name: 'http.url', required: true, kind: 'url', doc: 'The endpoint polled with GET; the host lets the task reach only this origin and http.allowed.hosts' },
  { name: 'http.topic', required: true, doc: 'The RocketMQ topic the records are written to' },
  { name: 'http.poll.interval.ms', default: '1000', kind: 'int', doc: 'How long to wait after a poll that returned no records' },
  { name: 'http.headers', secret: true, doc: 'Request headers, `Name: value` pairs separated by `|` (e.g. an Authorization header); hidden in every answer and log' },
  { name: 'http.timeout.ms', default: '10000', kind: 'int', doc: 'How long one request may take before it is retried' },
  { name: 'http.allowed.hosts', doc: 'More origins the task may reach (host, host:port or scheme://host:port, comma separated)' },
];

function parseHeaders(raw) {
  const headers = [];
  for (const item of (raw || '').split('|')) {
    if (!item.trim()) continue;
    const at = item.indexOf(':');
    if (at <= 0) throw { tag: 'invalid-config', val: 'http.headers: each header must be `Name: value` (pairs separated by `|`)' };
    headers.push([item.slice(0, at).trim(), item.slice(at + 1).trim()]);
  }
  return headers;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function bytesOf(value, what) {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') value = JSON.stringify(value);
  return encoder.encode(value);
}

class SourceTask {
  constructor(config, cursor) {
    this.url = config['http.url'];
    this.topic = config['http.topic'];
    this.interval = BigInt(config['http.poll.interval.ms']);
    this.timeoutMs = config['http.timeout.ms'];
    this.headers = [['accept', 'application/json'], ...parseHeaders(config['http.headers'])];
    this.cursor = cursor;
    this.idleUntil = 0n;
    this.sequence = 0n;
  }

  static open(pairs, committed) {
    const config = readConfig(KEYS, pairs);
    const mine = committed.find((p) => p.partition === config['http.url']);
    const cursor = mine ? mine.offset : undefined;
    log('info', `http-source: polling ${config['http.url']} ${cursor === undefined ? 'from the start' : `after cursor ${cursor}`}`);
    return new SourceTask(config, cursor);
  }

  poll() {
    if (nowMs() < this.idleUntil) return [];
    let url = this.url;
    if (this.cursor !== undefined) {
      url += (url.includes('?') ? '&' : '?') + 'after=' + encodeURIComponent(this.cursor);
    }
    let response;
    try {
      response = request('GET', url, this.headers, undefined, this.timeoutMs);
    } catch (e) {
      if (e instanceof HttpError && e.denied) {
        throw { tag: 'fatal', val: `the host refused the request to ${this.url}: not granted (http.url, http.allowed.hosts)` };
      }
      throw { tag: 'retriable', val: `GET ${this.url}: ${e.message || e}` };
    }
    const text = decoder.decode(response.body);
    if (response.status >= 500 || response.status === 408 || response.status === 429) {
      throw { tag: 'retriable', val: `GET ${this.url}: HTTP ${response.status}: ${text.slice(0, 1024)}` };
    }
    if (response.status < 200 || response.status >= 300) {
      throw { tag: 'fatal', val: `GET ${this.url}: HTTP ${response.status}: ${text.slice(0, 1024)}` };
    }
    let answer;
    try {
      answer = JSON.parse(text);
    } catch (e) {
      throw { tag: 'fatal', val: `GET ${this.url}: the answer is not JSON: ${text.slice(0, 200)}` };
    }
    const records = Array.isArray(answer.records) ? answer.records : [];
    if (records.length === 0) {
      if (typeof answer.cursor === 'string') this.cursor = answer.cursor;
      this.idleUntil = nowMs() + this.interval;
      return [];
    }
    if (typeof answer.cursor !== 'string') {
      throw { tag: 'fatal', val: `GET ${this.url}: ${records.length} records but no "cursor" string to resume after them` };
    }
    const now = nowMs();
    const messages = records.map((r) => ({
      offset: this.sequence++,
      key: bytesOf(r.key),
      value: bytesOf(r.value) || new Uint8Array(0),
      headers: Object.entries(r.headers || {}).map(([k, v]) => [k, bytesOf(v)]),
      timestampMs: now,
    }));
    this.cursor = answer.cursor;
    return [{
      sourcePartition: this.url,
      sourceOffset: answer.cursor,
      records: { topic: this.topic, partition: 0, messages },
    }];
  }

  commit(_positions) {}
}

// One cursor: a second task would read the same records.
export const source = connector({
  name: 'http-source',
  keys: KEYS,
  validate: (config) => parseHeaders(config['http.headers']),
  maxTasks: 1,
  SourceTask,
});
