/**
 * Request parsing: query parameters with clear 400s, request bodies with a size limit (413) and JSON
 * parsing that names the problem (400). Everything read from `req` must be read synchronously inside the
 * handler (uWS invalidates `req` when the handler returns), so these helpers take copies.
 */
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import { ApiError, type ReqCtx } from './respond.ts';

/** Longest query string accepted (414-like answers are 400 here). */
export const MAX_QUERY_CHARS = 8192;
/** Most symbols in one request. */
export const MAX_SYMBOLS = 64;

function decode(s: string): string {
  if (s.indexOf('%') < 0 && s.indexOf('+') < 0) return s;
  try {
    return decodeURIComponent(s.replaceAll('+', ' '));
  } catch {
    throw new ApiError(400, 'BAD_REQUEST', `malformed percent-encoding in the query string: ${JSON.stringify(s.slice(0, 40))}`);
  }
}

/** A parsed query string (application/x-www-form-urlencoded, as URLSearchParams but strict about bad %-escapes). */
export class Query {
  /** name → value, or name → values when repeated */
  readonly #p = new Map<string, string | string[]>();
  constructor(raw: string) {
    if (raw.length > MAX_QUERY_CHARS) throw new ApiError(400, 'BAD_REQUEST', `query string longer than ${MAX_QUERY_CHARS} characters`);
    if (raw === '') return;
    for (const part of raw.split('&')) {
      if (part === '') continue;
      const eq = part.indexOf('=');
      const k = decode(eq < 0 ? part : part.slice(0, eq));
      const v = eq < 0 ? '' : decode(part.slice(eq + 1));
      const prev = this.#p.get(k);
      if (prev === undefined) this.#p.set(k, v);
      else if (typeof prev === 'string') this.#p.set(k, [prev, v]);
      else prev.push(v);
    }
  }

  /** The single value of `name` (a repeated parameter is a 400), or undefined. */
  str(name: string): string | undefined {
    const v = this.#p.get(name);
    if (v === undefined || typeof v === 'string') return v;
    throw new ApiError(400, 'BAD_REQUEST', `parameter ${name} is given ${v.length} times`);
  }

  required(name: string): string {
    const v = this.str(name);
    if (v === undefined || v.trim() === '') throw new ApiError(400, 'BAD_REQUEST', `parameter ${name} is required`);
    return v;
  }

  /** An integer in [min, max], or `dflt` when absent. */
  int(name: string, dflt: number, min: number, max: number): number {
    const v = this.str(name);
    if (v === undefined || v === '') return dflt;
    if (!/^-?\d{1,16}$/.test(v)) throw new ApiError(400, 'BAD_REQUEST', `parameter ${name} must be an integer, got ${JSON.stringify(v.slice(0, 40))}`);
    const n = Number(v);
    if (n < min || n > max) throw new ApiError(400, 'BAD_REQUEST', `parameter ${name} must be between ${min} and ${max}, got ${n}`);
    return n;
  }

  /** Comma-separated symbols (1..MAX_SYMBOLS, each 1..31 printable characters). */
  symbols(name = 'symbols'): string[] {
    const raw = this.required(name);
    if (raw.length <= 31 && /^[\x21-\x2b\x2d-\x7e]+$/.test(raw)) return [raw]; // one plain symbol: the common case
    const list = raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
    if (list.length === 0) throw new ApiError(400, 'BAD_REQUEST', `parameter ${name} is required`);
    if (list.length > MAX_SYMBOLS) throw new ApiError(400, 'BAD_REQUEST', `at most ${MAX_SYMBOLS} symbols per request, got ${list.length}`);
    for (const s of list) {
      if (s.length > 31 || !/^[\x21-\x7e]+$/.test(s)) throw new ApiError(400, 'BAD_REQUEST', `bad symbol ${JSON.stringify(s.slice(0, 40))}`);
    }
    return [...new Set(list)];
  }

  /** A time: ISO 8601 (`2025-11-11T14:30:00Z`, fractional seconds to µs; no zone = UTC) or Unix ms / µs / s as digits. Unix µs. */
  time(name: string): number | undefined {
    const v = this.str(name);
    if (v === undefined || v === '') return undefined;
    const us = parseTimeMicros(v);
    if (us === null) throw new ApiError(400, 'BAD_REQUEST', `parameter ${name} is not a time (ISO 8601 like 2025-11-11T14:30:00Z, or Unix seconds/ms/µs): ${JSON.stringify(v.slice(0, 40))}`);
    return us;
  }
}

const ISO_RE = /^(\d{4})-(\d\d)-(\d\d)(?:[T ](\d\d):(\d\d)(?::(\d\d)(?:\.(\d{1,9}))?)?)?(Z|[+-]\d\d:?\d\d)?$/;
/** Earliest and latest accepted instants (1970 .. 2200). */
const MIN_US = 0;
const MAX_US = 7_258_118_400_000_000;

/**
 * Parse a time to Unix µs, or null. Digits: up to 11 → seconds, 12–14 → ms, 15–17 → µs (by magnitude).
 * ISO: date, optional time, optional fraction (µs kept, ns truncated), optional Z/±hh:mm (default UTC).
 */
export function parseTimeMicros(v: string): number | null {
  let us: number;
  if (/^\d{1,17}$/.test(v)) {
    const n = Number(v);
    us = v.length <= 11 ? n * 1_000_000 : v.length <= 14 ? n * 1000 : n;
  } else {
    const m = ISO_RE.exec(v);
    if (m === null) return null;
    const [, y, mo, d, h = '00', mi = '00', s = '00', frac = '', zone = 'Z'] = m;
    const base = Date.parse(`${y}-${mo}-${d}T${h}:${mi}:${s}${zone === 'Z' ? 'Z' : zone.length === 5 ? `${zone.slice(0, 3)}:${zone.slice(3)}` : zone}`);
    if (Number.isNaN(base)) return null;
    // Date.parse accepts 2025-02-30 (rolls over); refuse it
    const check = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d)));
    if (check.getUTCDate() !== Number(d) || check.getUTCMonth() !== Number(mo) - 1 || Number(h) > 23 || Number(mi) > 59 || Number(s) > 59) return null;
    us = base * 1000 + Number(frac.padEnd(6, '0').slice(0, 6));
  }
  if (!Number.isSafeInteger(us) || us < MIN_US || us > MAX_US) return null;
  return us;
}

/** Header names as bytes: uWS takes them without a UTF-8 conversion (a string argument costs a malloc + copy per call). */
const AUTHORIZATION = new TextEncoder().encode('authorization');

/** `Authorization: Bearer <key>` (or `X-API-Key`); undefined when absent. Read inside the handler. */
export function bearerToken(req: HttpRequest): string | undefined {
  const h = req.getHeader(AUTHORIZATION);
  if (h !== '') return bearerOf(h);
  const k = req.getHeader('x-api-key');
  return k === '' ? undefined : k;
}

const isBlank = (c: number): boolean => c === 0x20 || c === 0x09;

/**
 * The token of an Authorization header value `Bearer <token>` (`Bearer` in any case, blanks around the
 * token); anything else is returned whole (a malformed header is an unknown key, 401, never a crash).
 * Where /^Bearer[ \t]+(\S+)[ \t]*$/i matches, the result is its capture; where it does not, the result is
 * the header itself or a text with a blank or other space inside, neither of which can be a key. The
 * token's characters are not scanned here (the key check does that): this runs for every request.
 */
export function bearerOf(h: string): string {
  const n = h.length;
  if (n < 8 || (h.charCodeAt(0) | 0x20) !== 0x62 || (h.charCodeAt(1) | 0x20) !== 0x65 || (h.charCodeAt(2) | 0x20) !== 0x61 ||
    (h.charCodeAt(3) | 0x20) !== 0x72 || (h.charCodeAt(4) | 0x20) !== 0x65 || (h.charCodeAt(5) | 0x20) !== 0x72 || !isBlank(h.charCodeAt(6))) return h;
  let a = 7;
  while (a < n && isBlank(h.charCodeAt(a))) a++;
  let b = n;
  while (b > a && isBlank(h.charCodeAt(b - 1))) b--;
  return b === a ? h : h.substring(a, b);
}

const textDecoder = new TextDecoder();
/** The peer address as text (call inside the handler, before any await). */
export function remoteAddress(res: HttpResponse): string {
  try {
    return textDecoder.decode(res.getRemoteAddressAsText());
  } catch {
    return 'unknown';
  }
}

/**
 * Read the whole request body (uWS `onData`), refusing more than `maxBytes` with 413 (checked against
 * Content-Length first, then while streaming). Call synchronously in the handler (after onAborted).
 */
export function readBody(res: HttpResponse, req: HttpRequest, ctx: ReqCtx, maxBytes: number): Promise<Buffer> {
  const declared = req.getHeader('content-length');
  return new Promise((resolve, reject) => {
    if (declared !== '' && (!/^\d{1,15}$/.test(declared) || Number(declared) > maxBytes)) {
      reject(new ApiError(413, 'PAYLOAD_TOO_LARGE', `request body larger than ${maxBytes} bytes`));
      // uWS still delivers the body; ignore it
      res.onData(() => undefined);
      return;
    }
    const parts: Buffer[] = [];
    let size = 0;
    let failed = false;
    res.onData((chunk, isLast) => {
      if (failed || ctx.aborted) return;
      size += chunk.byteLength;
      if (size > maxBytes) {
        failed = true;
        reject(new ApiError(413, 'PAYLOAD_TOO_LARGE', `request body larger than ${maxBytes} bytes`));
        return;
      }
      parts.push(Buffer.from(chunk.slice(0))); // copy: uWS neuters the chunk when we return
      if (isLast) resolve(parts.length === 1 ? parts[0] as Buffer : Buffer.concat(parts, size));
    });
  });
}

/** Parse a JSON body; a 400 names the problem (empty, not UTF-8 text, syntax error with position). */
export function parseJsonBody(body: Buffer): unknown {
  if (body.length === 0) throw new ApiError(400, 'BAD_JSON', 'request body is empty; expected JSON');
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    throw new ApiError(400, 'BAD_JSON', 'request body is not valid UTF-8');
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    throw new ApiError(400, 'BAD_JSON', `malformed JSON: ${msg.slice(0, 200)}`);
  }
}
