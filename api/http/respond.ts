/**
 * The one way answers leave the uWS thread: status line, JSON content type, cork once. Errors are
 * `{ "error": { "code", "message" } }` (DESIGN.md §6); an unknown error is a 500 INTERNAL without details
 * (never a stack trace in an answer).
 */
import type { HttpResponse } from 'uWebSockets.js';
import { isEngineError } from '../../engine/errors.ts';

export const STATUS_LINE: Record<number, string> = {
  200: '200 OK', 400: '400 Bad Request', 401: '401 Unauthorized', 403: '403 Forbidden', 404: '404 Not Found',
  405: '405 Method Not Allowed', 410: '410 Gone', 413: '413 Payload Too Large', 429: '429 Too Many Requests',
  500: '500 Internal Server Error', 503: '503 Service Unavailable',
};

export interface ReqCtx { aborted: boolean }

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function sendJson(res: HttpResponse, ctx: ReqCtx, status: number, body: unknown): void {
  if (ctx.aborted) return;
  const text = JSON.stringify(body);
  res.cork(() => {
    res.writeStatus(STATUS_LINE[status] ?? `${status}`).writeHeader('content-type', 'application/json').end(text);
  });
}

export function sendError(res: HttpResponse, ctx: ReqCtx, err: unknown): void {
  let status = 500;
  let code = 'INTERNAL';
  let message = 'internal error';
  if (err instanceof ApiError) { status = err.status; code = err.code; message = err.message; }
  else if (isEngineError(err)) { status = 400; code = err.code; message = err.message; }
  sendJson(res, ctx, status, { error: { code, message } });
}
