/**
 * The one way answers leave the uWS thread: status line, JSON content type, cork once. Errors are
 * `{ "error": { "code", "message" } }` (DESIGN.md §6); an unknown error is a 500 INTERNAL without details
 * (never a stack trace in an answer).
 *
 * `ReqCtx` travels with a request from its handler to its answer: `aborted` (set by onAborted; never write
 * after it), the CORS origin to echo, and an optional `done` callback (metrics, query history) called once
 * with the final status and row count.
 */
import type { HttpResponse } from 'uWebSockets.js';
import { isEngineError } from '../../engine/errors.ts';

export const STATUS_LINE: Record<number, string> = {
  200: '200 OK', 202: '202 Accepted', 204: '204 No Content', 400: '400 Bad Request', 401: '401 Unauthorized', 403: '403 Forbidden',
  404: '404 Not Found', 405: '405 Method Not Allowed', 409: '409 Conflict', 410: '410 Gone', 413: '413 Payload Too Large',
  415: '415 Unsupported Media Type', 429: '429 Too Many Requests', 500: '500 Internal Server Error',
  503: '503 Service Unavailable',
};

export interface ReqCtx {
  aborted: boolean;
  /** Access-Control-Allow-Origin value to send, if the request's origin is allowed. */
  cors?: string | undefined;
  /** Rows in the answer (set by data routes; for the query history). */
  rows?: number;
  /** Called once when the answer is complete (or aborted: status 499). */
  done?: ((status: number, rows: number) => void) | undefined;
  /** Set once `done` ran. */
  finished?: boolean;
  /** Called by the route's abort handler after `aborted` is set (wakes pending stream writes). */
  onAbort?: (() => void) | undefined;
  /**
   * True while the route's handler runs synchronously: uWS has the socket corked for that scope already, so
   * answers written then need no `cork` of their own (one native call and one closure less per request).
   */
  sync?: boolean;
}

/** An answer with a status other than 200 (4xx/5xx): code is a stable UPPER_SNAKE string. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  /** Extra headers (e.g. Retry-After). */
  readonly headers: Readonly<Record<string, string>> | undefined;
  constructor(status: number, code: string, message: string, headers?: Record<string, string>) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}

/** Call `ctx.done` once. */
export function finish(ctx: ReqCtx, status: number): void {
  if (ctx.finished === true) return;
  ctx.finished = true;
  if (ctx.done !== undefined) {
    try {
      ctx.done(status, ctx.rows ?? 0);
    } catch { /* accounting must never break an answer */ }
  }
}

// the common header as bytes: uWS takes them without a UTF-8 conversion of each string per call
const CONTENT_TYPE = new TextEncoder().encode('content-type');
const APPLICATION_JSON = new TextEncoder().encode('application/json');

/** Write the status line and common headers (call inside a cork). */
export function writeHead(res: HttpResponse, ctx: ReqCtx, status: number, contentType: string, headers?: Readonly<Record<string, string>>): void {
  if (status !== 200) res.writeStatus(STATUS_LINE[status] ?? `${status}`); // uWS writes 200 OK by itself
  if (contentType === 'application/json') res.writeHeader(CONTENT_TYPE, APPLICATION_JSON);
  else res.writeHeader('content-type', contentType);
  if (ctx.cors !== undefined) res.writeHeader('access-control-allow-origin', ctx.cors).writeHeader('vary', 'Origin');
  if (headers !== undefined) for (const k in headers) res.writeHeader(k, headers[k] as string);
}

export function sendJson(res: HttpResponse, ctx: ReqCtx, status: number, body: unknown, headers?: Readonly<Record<string, string>>): void {
  if (ctx.aborted) return;
  const text = JSON.stringify(body);
  res.cork(() => {
    writeHead(res, ctx, status, 'application/json', headers);
    res.end(text);
  });
  finish(ctx, status);
}

/** A pre-serialised JSON body (the latest route builds its text itself). */
export function sendJsonText(res: HttpResponse, ctx: ReqCtx, status: number, text: string | Uint8Array): void {
  if (ctx.aborted) return;
  if (ctx.sync === true) {
    writeHead(res, ctx, status, 'application/json');
    res.end(text);
  } else {
    res.cork(() => {
      writeHead(res, ctx, status, 'application/json');
      res.end(text);
    });
  }
  finish(ctx, status);
}

export function sendText(res: HttpResponse, ctx: ReqCtx, status: number, contentType: string, text: string): void {
  if (ctx.aborted) return;
  res.cork(() => {
    writeHead(res, ctx, status, contentType);
    res.end(text);
  });
  finish(ctx, status);
}

/** Map any thrown value to `{ status, code, message }`: unknown errors are 500 INTERNAL with no detail. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (isEngineError(err)) {
    const code = err.code;
    if (code === 'ENGINE_ERR_UNKNOWN_SYMBOL') return new ApiError(404, 'UNKNOWN_SYMBOL', err.message);
    if (code === 'ENGINE_ERR_INVALID_ARG' || code === 'ENGINE_ERR_BAD_SYMBOL') return new ApiError(400, 'BAD_REQUEST', err.message);
    if (code === 'ENGINE_ERR_TIMEOUT') return new ApiError(503, 'BUSY', 'the data is being written; retry');
    return new ApiError(500, 'INTERNAL', 'internal error');
  }
  return new ApiError(500, 'INTERNAL', 'internal error');
}

export function sendError(res: HttpResponse, ctx: ReqCtx, err: unknown): void {
  const e = toApiError(err);
  sendJson(res, ctx, e.status, { error: { code: e.code, message: e.message } }, e.headers);
}
