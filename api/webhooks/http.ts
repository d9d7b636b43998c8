/**
 * Small HTTP helpers of the webhook routes: one handler wrapper that copies what it needs from the uWS
 * request synchronously, arms onAborted, reads the body under a size limit (413), runs the async handler
 * and answers once, JSON only, never a stack trace. Kept here (not in api/http) so the webhooks do not
 * depend on files other parts are still changing.
 */
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';

export const STATUS: Record<number, string> = {
  200: '200 OK', 202: '202 Accepted', 204: '204 No Content', 400: '400 Bad Request', 401: '401 Unauthorized', 403: '403 Forbidden',
  404: '404 Not Found', 413: '413 Payload Too Large', 422: '422 Unprocessable Entity', 429: '429 Too Many Requests',
  500: '500 Internal Server Error', 502: '502 Bad Gateway', 503: '503 Service Unavailable',
};

export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly headers: Record<string, string> | undefined;
  constructor(status: number, code: string, message: string, headers?: Record<string, string>) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

export interface Req {
  method: string;
  url: string;
  query: URLSearchParams;
  /** Lower-cased header names: only the ones webhooks use. */
  headers: Record<string, string>;
  params: string[];
  /** Remote address as text. */
  addr: string;
  body: Buffer;
}

export interface Answer {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

const HEADERS = ['authorization', 'x-api-key', 'x-webhook-secret', 'content-type', 'content-length', 'origin'];

interface State { aborted: boolean; answered: boolean }

function send(res: HttpResponse, st: State, a: Answer, close = false): void {
  if (st.aborted || st.answered) return;
  st.answered = true;
  const text = a.status === 204 ? '' : JSON.stringify(a.body);
  res.cork(() => {
    res.writeStatus(STATUS[a.status] ?? String(a.status));
    if (a.status !== 204) res.writeHeader('content-type', 'application/json');
    for (const [k, v] of Object.entries(a.headers ?? {})) res.writeHeader(k, v);
    res.end(text, close);
  });
}

export function errorAnswer(e: unknown, headers?: Record<string, string>): Answer {
  if (e instanceof HttpError) return { status: e.status, body: { error: { code: e.code, message: e.message } }, headers: { ...(e.headers ?? {}), ...(headers ?? {}) } };
  return { status: 500, body: { error: { code: 'INTERNAL', message: 'internal error' } }, ...(headers ? { headers } : {}) };
}

/**
 * Wrap an async handler. `maxBody` 0 = do not read a body. `cors(origin)` gives headers added to every answer.
 */
export function handler(
  maxBody: number,
  fn: (r: Req) => Promise<Answer> | Answer,
  cors: (origin: string) => Record<string, string>,
  paramCount = 0,
  onAnswer?: (status: number) => void,
) {
  return (res: HttpResponse, req: HttpRequest): void => {
    const st: State = { aborted: false, answered: false };
    res.onAborted(() => { st.aborted = true; });
    const headers: Record<string, string> = {};
    for (const h of HEADERS) headers[h] = req.getHeader(h);
    const params: string[] = [];
    for (let i = 0; i < paramCount; i++) params.push(req.getParameter(i) ?? '');
    const r: Req = {
      method: req.getMethod(), url: req.getUrl(), query: new URLSearchParams(req.getQuery() ?? ''), headers, params,
      addr: Buffer.from(res.getRemoteAddressAsText()).toString(), body: Buffer.alloc(0),
    };
    const extra = cors(headers.origin ?? '');
    const answer = (a: Answer, close = false): void => {
      onAnswer?.(a.status);
      send(res, st, { ...a, headers: { ...extra, ...(a.headers ?? {}) } }, close);
    };
    const run = (): void => {
      Promise.resolve().then(() => fn(r)).then((a) => answer(a), (e: unknown) => answer(errorAnswer(e)));
    };
    if (maxBody === 0) { run(); return; }
    const declared = headers['content-length'] === '' ? NaN : Number(headers['content-length']);
    if (declared > maxBody) {
      answer(errorAnswer(new HttpError(413, 'PAYLOAD_TOO_LARGE', `body of ${declared} bytes is above the limit of ${maxBody} bytes`)), true);
      return;
    }
    const chunks: Buffer[] = [];
    let total = 0;
    let over = false;
    res.onData((chunk, isLast) => {
      if (over || st.answered) return;
      total += chunk.byteLength;
      if (total > maxBody) {
        over = true;
        answer(errorAnswer(new HttpError(413, 'PAYLOAD_TOO_LARGE', `body above the limit of ${maxBody} bytes`)), true);
        return;
      }
      chunks.push(Buffer.from(chunk.slice(0))); // uWS neuters the chunk after the callback: copy it
      if (isLast) {
        r.body = Buffer.concat(chunks, total);
        run();
      }
    });
  };
}

/** Parse a JSON body; 400 naming the problem. */
export function parseJsonBody(body: Buffer, what: string): unknown {
  if (body.length === 0) throw new HttpError(400, 'BAD_JSON', `${what}: the body is empty (a JSON document is expected)`);
  const text = body.toString('utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new HttpError(400, 'BAD_JSON', `${what}: the body is not valid JSON (${e instanceof Error ? e.message : String(e)})`);
  }
}
