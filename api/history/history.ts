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

/** What `record` keeps: the ISO time and the file line are made only when read or flushed. */
interface Stored { tMs: number; route: string; params: string; status: number; rows: number; ms: number }

interface Ring { items: Stored[]; next: number }

const toEntry = (s: Stored): HistoryEntry => ({ t: new Date(s.tMs).toISOString(), route: s.route, params: s.params, status: s.status, rows: s.rows, ms: s.ms });

const TAIL_BYTES = 8 * 1024 * 1024;

export class QueryHistory {
  readonly #file: string | null;
  readonly #perKey: number;
  readonly #maxFileBytes: number;
  readonly #rings = new Map<string, Ring>();
  #pending: { key: string; s: Stored }[] = [];
  #flushing: Promise<void> | null = null;
  readonly #timer: NodeJS.Timeout | null;
  /** Append failures (disk full...): the in-memory history still works. */
  writeErrors = 0;

  private constructor(opts: QueryHistoryOptions) {
    this.#file = opts.file;
    this.#perKey = opts.perKey ?? 1000;
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
        if (typeof o.key === 'string' && typeof o.t === 'string') {
          this.#push(o.key, { tMs: Date.parse(o.t), route: String(o.route), params: String(o.params), status: Number(o.status), rows: Number(o.rows), ms: Number(o.ms) });
        }
      } catch { /* a torn last line from a crash */ }
    }
  }

  #push(keyId: string, e: Stored): void {
    let r = this.#rings.get(keyId);
    if (r === undefined) {
      r = { items: [], next: 0 };
      this.#rings.set(keyId, r);
    }
    if (r.items.length < this.#perKey) r.items.push(e);
    else {
      r.items[r.next] = e;
      r.next = (r.next + 1) % this.#perKey;
    }
  }

  /** One answered request (hot path: one small object, no formatting; `tMs` = arrival, ms since epoch). */
  record(keyId: string, tMs: number, route: string, params: string, status: number, rows: number, ms: number): void {
    const s: Stored = { tMs, route, params, status, rows, ms };
    this.#push(keyId, s);
    if (this.#file !== null && this.#pending.length < 100_000) this.#pending.push({ key: keyId, s });
  }

  /** Newest first, at most `limit`. */
  list(keyId: string, limit: number): HistoryEntry[] {
    const r = this.#rings.get(keyId);
    if (r === undefined) return [];
    const n = r.items.length;
    const out: HistoryEntry[] = [];
    // oldest is at r.next when full, else at 0
    for (let i = 0; i < n && out.length < limit; i++) {
      const idx = (r.next + n - 1 - i) % n;
      out.push(toEntry(r.items[idx] as Stored));
    }
    return out;
  }

  /** Write pending lines (also called by the timer). */
  flush(): Promise<void> {
    if (this.#file === null || this.#pending.length === 0) return this.#flushing ?? Promise.resolve();
    if (this.#flushing !== null) return this.#flushing;
    const file = this.#file;
    const lines = this.#pending.map((p) => JSON.stringify({ key: p.key, ...toEntry(p.s) }));
    this.#pending = [];
    this.#flushing = (async () => {
      try {
        await mkdir(dirname(file), { recursive: true });
        const st = await stat(file).catch(() => null);
        if (st !== null && st.size > this.#maxFileBytes) await rename(file, `${file}.1`);
        await appendFile(file, `${lines.join('\n')}\n`, { mode: 0o600 });
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
