/**
 * Per-key query history (the spec's "query history" of an AI model): time, route, parameters, status,
 * rows, latency. Kept in memory (a bounded ring per key) and appended to an NDJSON file in batches (one
 * async append per second at most, never on the request path); the file's tail is read back at start.
 * Parameters are stored as the query string minus any `token`; the key itself never appears.
 */
import { appendFile, mkdir, readFile, rename, stat } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface HistoryEntry {
  /** ISO time the request arrived. */
  t: string;
  route: string;
  params: string;
  status: number;
  rows: number;
  /** Service time, ms (3 decimals). */
  ms: number;
}

export interface QueryHistoryOptions {
  /** NDJSON file; null = memory only. */
  file: string | null;
  /** Entries kept per key in memory (default 1000). */
  perKey?: number;
  /** Rotate the file (to `.1`) above this many bytes (default 64 MiB). */
  maxFileBytes?: number;
  /** Flush interval, ms (default 1000). */
  flushMs?: number;
}

/**
 * Entries in preallocated columns (a ring per key, and one queue for the file), not an object per request:
 * at ~50 k requests/s an object per entry (plus one per pending file line, kept up to a second) was promoted
 * out of the young generation and grew the old one by MBs per scavenge; the latest route's p99 under a
 * 32-connection load was GC pauses (7-30 ms), not work. The strings stored (route: a constant; params:
 * interned, so a bot repeating one query keeps one string) are the only references held.
 */
class Columns {
  readonly tMs: Float64Array;
  readonly ms: Float64Array;
  readonly rows: Float64Array;
  readonly status: Uint16Array;
  readonly route: string[];
  readonly params: string[];
  constructor(readonly capacity: number) {
    this.tMs = new Float64Array(capacity);
    this.ms = new Float64Array(capacity);
    this.rows = new Float64Array(capacity);
    this.status = new Uint16Array(capacity);
    this.route = new Array<string>(capacity).fill('');
    this.params = new Array<string>(capacity).fill('');
  }

  set(i: number, tMs: number, route: string, params: string, status: number, rows: number, ms: number): void {
    this.tMs[i] = tMs; this.route[i] = route; this.params[i] = params; this.status[i] = status; this.rows[i] = rows; this.ms[i] = ms;
  }

  entry(i: number): HistoryEntry {
    return { t: new Date(this.tMs[i]!).toISOString(), route: this.route[i]!, params: this.params[i]!, status: this.status[i]!, rows: this.rows[i]!, ms: this.ms[i]! };
  }
}

/** A per-key ring; `size` entries, the oldest at `next` once full. */
interface Ring { cols: Columns; next: number; size: number }

const TAIL_BYTES = 8 * 1024 * 1024;
/** File lines waiting for the next flush, at most (more in one flush interval are counted in `dropped`). */
const PENDING_MAX = 100_000;
const INTERN_MAX = 4096;
/** Lines per append when the file queue is written out. */
const FLUSH_CHUNK = 2048;

/** A number as JSON.stringify writes it (NaN and ±Infinity: null). */
function jsonNumber(x: number): string {
  return Number.isFinite(x) ? String(x) : 'null';
}

export class QueryHistory {
  readonly #file: string | null;
  readonly #perKey: number;
  readonly #maxFileBytes: number;
  readonly #rings = new Map<string, Ring>();
  /** File lines not yet written: their key and columns, [0, #pendingN). */
  #pending: Columns | null = null;
  #pendingKey: string[] = [];
  #pendingN = 0;
  /** The other queue: the one a running flush writes out (double buffering: records go on meanwhile). */
  #spare: Columns | null = null;
  #spareKey: string[] = [];
  readonly #intern = new Map<string, string>();
  /** JSON text of keys, routes and parameters (bounded like the intern table). */
  readonly #escaped = new Map<string, string>();
  #isoMs = NaN;
  #iso = '';
  #flushing: Promise<void> | null = null;
  readonly #timer: NodeJS.Timeout | null;
  /** Append failures (disk full...): the in-memory history still works. */
  writeErrors = 0;
  /** Entries not written to the file because more than PENDING_MAX came in one flush interval. */
  dropped = 0;

  private constructor(opts: QueryHistoryOptions) {
    this.#file = opts.file;
    this.#perKey = Math.max(1, opts.perKey ?? 1000);
    this.#maxFileBytes = opts.maxFileBytes ?? 64 * 1024 * 1024;
    this.#timer = this.#file === null ? null : setInterval(() => { void this.flush(); }, opts.flushMs ?? 1000);
    this.#timer?.unref();
  }

  /** Open, reading back the tail of the file (if any). */
  static async open(opts: QueryHistoryOptions): Promise<QueryHistory> {
    const h = new QueryHistory(opts);
    if (opts.file !== null) await h.#loadTail(opts.file);
    return h;
  }

  async #loadTail(file: string): Promise<void> {
    let buf: Buffer;
    try {
      buf = await readFile(file);
    } catch {
      return;
    }
    const text = buf.subarray(Math.max(0, buf.length - TAIL_BYTES)).toString('utf8');
    for (const line of text.split('\n')) {
      if (line.length < 2 || line[0] !== '{') continue;
      try {
        const o = JSON.parse(line) as HistoryEntry & { key?: unknown };
        if (typeof o.key === 'string' && typeof o.t === 'string' && Number.isFinite(Date.parse(o.t))) {
          this.#push(o.key, Date.parse(o.t), String(o.route), String(o.params), Number(o.status), Number(o.rows), Number(o.ms));
        }
      } catch { /* a torn last line from a crash */ }
    }
  }

  #push(keyId: string, tMs: number, route: string, params: string, status: number, rows: number, ms: number): void {
    let r = this.#rings.get(keyId);
    if (r === undefined) {
      r = { cols: new Columns(this.#perKey), next: 0, size: 0 };
      this.#rings.set(keyId, r);
    }
    r.cols.set(r.next, tMs, route, params, status, rows, ms);
    r.next = r.next + 1 === this.#perKey ? 0 : r.next + 1;
    if (r.size < this.#perKey) r.size++;
  }

  /** The stored copy of a parameter string: one string per distinct query (bots repeat theirs). */
  #internParams(params: string): string {
    const had = this.#intern.get(params);
    if (had !== undefined) return had;
    if (this.#intern.size >= INTERN_MAX) this.#intern.clear();
    this.#intern.set(params, params);
    return params;
  }

  /** One answered request (hot path: stores into preallocated columns, no object, no formatting; `tMs` = arrival, ms since epoch). */
  record(keyId: string, tMs: number, route: string, params: string, status: number, rows: number, ms: number): void {
    const p = this.#internParams(params);
    this.#push(keyId, tMs, route, p, status, rows, ms);
    if (this.#file === null) return;
    if (this.#pendingN >= PENDING_MAX) { this.dropped++; return; }
    const q = (this.#pending ??= new Columns(PENDING_MAX));
    const i = this.#pendingN++;
    q.set(i, tMs, route, p, status, rows, ms);
    this.#pendingKey[i] = keyId;
  }

  /** Newest first, at most `limit`. */
  list(keyId: string, limit: number): HistoryEntry[] {
    const r = this.#rings.get(keyId);
    if (r === undefined) return [];
    const out: HistoryEntry[] = [];
    const cap = this.#perKey;
    for (let i = 0; i < r.size && out.length < limit; i++) out.push(r.cols.entry((r.next - 1 - i + 2 * cap) % cap));
    return out;
  }

  #jsonString(x: string): string {
    let e = this.#escaped.get(x);
    if (e === undefined) {
      if (this.#escaped.size >= INTERN_MAX) this.#escaped.clear();
      e = JSON.stringify(x);
      this.#escaped.set(x, e);
    }
    return e;
  }

  /** One file line: the text JSON.stringify({key, t, route, params, status, rows, ms}) gives, built without objects. */
  #line(q: Columns, keys: string[], i: number): string {
    const tMs = q.tMs[i]!;
    if (tMs !== this.#isoMs) { this.#isoMs = tMs; this.#iso = new Date(tMs).toISOString(); }
    return `{"key":${this.#jsonString(keys[i]!)},"t":"${this.#iso}","route":${this.#jsonString(q.route[i]!)},"params":${this.#jsonString(q.params[i]!)},"status":${q.status[i]!},"rows":${jsonNumber(q.rows[i]!)},"ms":${jsonNumber(q.ms[i]!)}}\n`;
  }

  /**
   * Write pending lines (also called by the timer). The queue is swapped for the spare one (requests go on being
   * recorded) and written out in chunks of FLUSH_CHUNK lines, one append each: at ~40 k requests/s, building one
   * second's lines as objects and one joined string stalled the uWS thread for tens of ms every second and was
   * promoted out of the young generation (the latest route's p99 under load was those pauses).
   */
  flush(): Promise<void> {
    if (this.#file === null || this.#pendingN === 0) return this.#flushing ?? Promise.resolve();
    if (this.#flushing !== null) return this.#flushing;
    const file = this.#file;
    const q = this.#pending!;
    const keys = this.#pendingKey;
    const n = this.#pendingN;
    this.#pending = this.#spare;
    this.#pendingKey = this.#spareKey;
    this.#pendingN = 0;
    this.#spare = q;
    this.#spareKey = keys;
    this.#flushing = (async () => {
      try {
        await mkdir(dirname(file), { recursive: true });
        const st = await stat(file).catch(() => null);
        if (st !== null && st.size > this.#maxFileBytes) await rename(file, `${file}.1`);
        for (let i = 0; i < n;) {
          const end = Math.min(n, i + FLUSH_CHUNK);
          let text = '';
          for (; i < end; i++) text += this.#line(q, keys, i);
          await appendFile(file, text, { mode: 0o600 });
        }
      } catch {
        this.writeErrors++;
      } finally {
        this.#flushing = null;
      }
    })();
    return this.#flushing;
  }

  async close(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    await this.#flushing;
    await this.flush();
  }
}

/** The query string without credentials (`token=`), cut to 500 characters. */
export function redactParams(query: string): string {
  const q = query.includes('token=') ? query.split('&').filter((p) => !p.startsWith('token=')).join('&') : query;
  return q.length > 500 ? `${q.slice(0, 500)}…` : q;
}
