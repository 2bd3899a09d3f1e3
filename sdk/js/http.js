// Blocking HTTP over `wasi:http/outgoing-handler` for Ferry connectors written in JavaScript
// (componentize-js). The host sends a request only to the origins the connector was granted
// (`http.url`, `http.allowed.hosts`); any other fails with `HttpError.code === 'HTTP-request-denied'`.
import { handle } from 'wasi:http/outgoing-handler@0.2.12';
import { Fields, OutgoingRequest, OutgoingBody, RequestOptions, IncomingBody } from 'wasi:http/types@0.2.12';

const CHUNK = 4096;

/** The request got no response (refused, timed out, denied by the host's grant). */
export class HttpError extends Error {
  constructor(code, detail) {
    super(detail ? `${code}: ${detail}` : code);
    this.code = code;
  }
  get denied() {
    return this.code === 'HTTP-request-denied';
  }
}

function toHttpError(e) {
  const payload = e && e.payload !== undefined ? e.payload : e;
  if (payload && typeof payload === 'object' && 'tag' in payload) {
    return new HttpError(payload.tag, payload.val === undefined ? '' : String(payload.val));
  }
  return new HttpError('internal-error', String(e));
}

function splitUrl(url) {
  const m = /^(https?):\/\/([^/?#]+)([^#]*)/i.exec(url);
  if (!m) throw new HttpError('HTTP-request-URI-invalid', url);
  return { scheme: m[1].toLowerCase(), authority: m[2], path: m[3] || '/' };
}

/**
 * Sends one request and returns `{ status, headers, body }` (body a Uint8Array).
 * `headers` is a list of [name, value] strings; `body` a Uint8Array or undefined.
 */
export function request(method, url, headers = [], body = undefined, timeoutMs = 30000) {
  const { scheme, authority, path } = splitUrl(url);
  const encoder = new TextEncoder();
  const fields = Fields.fromList(headers.map(([k, v]) => [k, encoder.encode(v)]));
  const req = new OutgoingRequest(fields);
  const known = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'];
  const upper = method.toUpperCase();
  req.setMethod(known.includes(upper) ? { tag: upper.toLowerCase() } : { tag: 'other', val: upper });
  req.setScheme({ tag: scheme === 'https' ? 'HTTPS' : 'HTTP' });
  req.setAuthority(authority);
  req.setPathWithQuery(path);
  const options = new RequestOptions();
  const nanos = BigInt(timeoutMs) * 1000000n;
  options.setConnectTimeout(nanos);
  options.setFirstByteTimeout(nanos);
  options.setBetweenBytesTimeout(nanos);
  const outgoing = req.body();
  let future;
  try {
    future = handle(req, options);
  } catch (e) {
    throw toHttpError(e);
  }
  const stream = outgoing.write();
  if (body && body.length) {
    try {
      for (let i = 0; i < body.length; i += CHUNK) {
        stream.blockingWriteAndFlush(body.subarray(i, i + CHUNK));
      }
    } catch (_) {
      // the host gave up on the request; the future says why
    }
  }
  stream[Symbol.dispose]?.();
  OutgoingBody.finish(outgoing, undefined);
  future.subscribe().block();
  const result = future.get();
  if (result === undefined || result.tag === 'err') {
    throw new HttpError('internal-error', 'no response');
  }
  if (result.val.tag === 'err') {
    throw toHttpError(result.val.val);
  }
  const response = result.val.val;
  const status = response.status();
  const incoming = response.consume();
  const reader = incoming.stream();
  const chunks = [];
  let total = 0;
  for (;;) {
    let chunk;
    try {
      chunk = reader.blockingRead(65536n);
    } catch (e) {
      const payload = e && e.payload !== undefined ? e.payload : e;
      if (payload && payload.tag === 'closed') break;
      throw new HttpError('HTTP-response-incomplete', String(e));
    }
    chunks.push(chunk);
    total += chunk.length;
  }
  reader[Symbol.dispose]?.();
  IncomingBody.finish(incoming);
  const all = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  return { status, body: all };
}
