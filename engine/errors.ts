/**
 * Coded errors that survive `postMessage` between threads.
 *
 * Structured clone keeps an Error's message but not its class or extra fields reliably, so every
 * error crosses a thread boundary as a plain {@link WireError} (`toWire`) and is rebuilt on the other
 * side (`fromWire`). `instanceof EngineError` works across realms through a `Symbol.for` brand.
 *
 * Codes are stable: never reuse a code with a new meaning. Normal states (ring full, client slow,
 * request aborted) are return values, not errors.
 */

export const ERROR_CODES = {
  ENGINE_ERR: 'generic engine error',
  ENGINE_ERR_INTERNAL: 'a bug: an invariant did not hold',
  ENGINE_ERR_INVALID_ARG: 'an argument has the wrong type or range',
  ENGINE_ERR_RING_ATTACH: 'a buffer is not a ring of this layout (wrong, short or foreign buffer)',
  ENGINE_ERR_RING_CONFIG: 'ring geometry is invalid (slot count not a power of two, bad slot size)',
  ENGINE_ERR_RING_BATCH: 'a batch is larger than the ring or than what was claimed/available',
  ENGINE_ERR_LAYOUT: 'a shared-memory table has the wrong layout or size',
  ENGINE_ERR_UNKNOWN_SYMBOL: 'a symbol is not in the registry',
  ENGINE_ERR_SYMBOL_TABLE_FULL: 'the symbol registry has no free slot',
  ENGINE_ERR_BAD_SYMBOL: 'a symbol name or its metadata is malformed',
  ENGINE_ERR_TIME_PARSE: 'a time value could not be parsed',
  ENGINE_ERR_TIME_ZONE: 'a time zone is not a known IANA zone',
  ENGINE_ERR_TIME_RANGE: 'a time is outside the supported range',
  ENGINE_ERR_TIME_AMBIGUOUS: 'a local wall time falls in a DST gap or overlap and the caller asked to reject such times',
  ENGINE_ERR_SCID_FORMAT: 'a .scid file is not a valid Sierra Chart intraday file',
  ENGINE_ERR_DEPTH_FORMAT: 'a .depth file is not a valid Sierra Chart market depth file',
  ENGINE_ERR_FILE_IO: 'a file could not be read or written',
  ENGINE_ERR_FILE_TRUNCATED: 'a file shrank or was replaced while it was being read',
  ENGINE_ERR_COMPACT: 'Parquet compaction failed: DuckDB error, verification mismatch (rows, min/max ts, checksum) or a conflicting partition; nothing was put in place',
  ENGINE_ERR_CONFIG: 'configuration is invalid',
  ENGINE_ERR_SCHEMA: 'a wire message does not match its schema',
  ENGINE_ERR_WORKER: 'a worker thread failed or exited unexpectedly',
  ENGINE_ERR_TIMEOUT: 'an operation did not finish in time',
  ENGINE_ERR_JOURNAL: 'a journal file is corrupt (bad header, or a bad block before the tail) or a journal operation was refused',
  ENGINE_ERR_MEMORY_LIMIT: 'a shared-memory layout would exceed its configured memory bound (or could not be allocated)',
} as const;

export type EngineErrorCode = keyof typeof ERROR_CODES;

/** Plain-object form of an error: what crosses `postMessage`. */
export interface WireError {
  readonly code: EngineErrorCode;
  readonly message: string;
  readonly name: string;
  readonly detail?: Record<string, string | number | boolean | null>;
  readonly stack?: string;
}

export type ErrorDetail = Record<string, string | number | boolean | null>;

const kEngineError = Symbol.for('tickpipe.error');

export class EngineError extends Error {
  readonly code: EngineErrorCode;
  readonly detail: ErrorDetail;

  constructor(code: EngineErrorCode, message: string, detail: ErrorDetail = {}, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
    this.detail = detail;
    this.name = 'EngineError';
  }

  get [kEngineError](): true {
    return true;
  }

  static override [Symbol.hasInstance](x: unknown): boolean {
    return typeof x === 'object' && x !== null && (x as Record<symbol, unknown>)[kEngineError] === true;
  }

  toJSON(): WireError {
    return toWire(this);
  }
}

/** Build a coded error. `detail` holds machine-readable context (file, byteOffset, symbol …). */
export function engineError(
  code: EngineErrorCode,
  message: string,
  detail: ErrorDetail = {},
  cause?: unknown,
): EngineError {
  return new EngineError(code, message, detail, cause === undefined ? undefined : { cause });
}

export function isEngineError(x: unknown, code?: EngineErrorCode): x is EngineError {
  return x instanceof EngineError && (code === undefined || x.code === code);
}

function isCode(x: unknown): x is EngineErrorCode {
  return typeof x === 'string' && Object.hasOwn(ERROR_CODES, x);
}

/** Convert anything thrown into its wire form. Unknown errors become ENGINE_ERR with their message. */
export function toWire(e: unknown): WireError {
  if (e instanceof EngineError) {
    return { code: e.code, message: e.message, name: e.name, detail: { ...e.detail }, ...(e.stack ? { stack: e.stack } : {}) };
  }
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return {
      code: isCode(code) ? code : 'ENGINE_ERR',
      message: e.message,
      name: e.name,
      ...(typeof code === 'string' && !isCode(code) ? { detail: { cause: code } } : {}),
      ...(e.stack ? { stack: e.stack } : {}),
    };
  }
  return { code: 'ENGINE_ERR', message: String(e), name: 'Error' };
}

/** Rebuild an EngineError from its wire form (e.g. on the main thread after a worker's FATAL). */
export function fromWire(w: unknown): EngineError {
  if (typeof w !== 'object' || w === null) return new EngineError('ENGINE_ERR', String(w));
  const o = w as Partial<WireError>;
  const code = isCode(o.code) ? o.code : 'ENGINE_ERR';
  const detail: ErrorDetail = {};
  if (o.detail && typeof o.detail === 'object') {
    for (const [k, v] of Object.entries(o.detail)) {
      if (v === null || typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') detail[k] = v;
    }
  }
  const err = new EngineError(code, typeof o.message === 'string' ? o.message : 'unknown error', detail);
  if (typeof o.stack === 'string') err.stack = o.stack;
  return err;
}
