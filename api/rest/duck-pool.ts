/**
 * A small pool of DuckDB connections for historical queries (one in-memory instance, N connections, all
 * calls async: DuckDB runs on its own threads, the uWS thread only waits on promises).
 *
 * Each connection has its own table function `api_hot_scan_<i>()` that streams a snapshot of hot-window
 * rows (owned typed arrays, copied out of the shared window before the query) into the query, one memcpy
 * per column per 2048-row chunk: the same technique as the compactor's `tickpipe_scan()` (duck.ts), so
 * Parquet rows and hot rows meet in one SQL statement (one sort, one aggregation, one COPY). A second
 * table function `api_journal_scan_<i>()` streams ticks read from journal hours that are not (verifiably)
 * in Parquet yet (engine/history), the same way.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DOUBLE, DuckDBConnection, type DuckDBDataChunk, DuckDBInstance, DuckDBTableFunction, TIMESTAMPTZ, UINTEGER, UTINYINT } from '@duckdb/node-api';
import bindings from '@duckdb/node-bindings';
import { GrowableTickColumns, type TickRowColumns } from '../../engine/history/tick-columns.ts';

const CHUNK = 2048;
const TWO32 = 4_294_967_296;

/** Hot rows copied out of the window: owned (non-shared) arrays, `length` rows valid. */
export class HotSnapshot extends GrowableTickColumns {}

/** Rows a scan table function streams: a HotSnapshot, or journal rows (engine/history) with `length` rows valid. */
export type ScanRows = Readonly<TickRowColumns>;

const EMPTY: ScanRows = new HotSnapshot(1);

/** Columns of `api_hot_scan_<i>()`: the compactor's scan columns plus the row ordinal. */
const SCAN_COLUMNS = [
  ['ts', TIMESTAMPTZ], ['price', DOUBLE], ['bid', DOUBLE], ['ask', DOUBLE], ['size', UINTEGER], ['flags', UINTEGER],
  ['seq', UINTEGER], ['source_id', UTINYINT], ['ord', UINTEGER],
] as const;

class ScanState {
  snap: ScanRows = EMPTY;
  next = 0;
  readonly tsWords = new Uint32Array(CHUNK * 2);
  readonly ord = new Uint32Array(CHUNK);
}

function copyCol(out: DuckDBDataChunk, col: number, arr: Float64Array<ArrayBuffer> | Uint32Array<ArrayBuffer> | Uint8Array<ArrayBuffer>, start: number, n: number): void {
  const bpe = arr.BYTES_PER_ELEMENT;
  bindings.copy_data_to_vector(bindings.data_chunk_get_vector(out.chunk, col), 0, arr.buffer, arr.byteOffset + start * bpe, n * bpe);
}

function fill(st: ScanState, out: DuckDBDataChunk): void {
  const s = st.snap;
  const start = st.next;
  const n = Math.min(CHUNK, s.length - start);
  out.rowCount = n > 0 ? n : 0;
  if (n <= 0) return;
  const w = st.tsWords;
  const ts = s.tsMicros;
  for (let i = 0; i < n; i++) {
    const t = ts[start + i] as number;
    const hi = Math.floor(t / TWO32);
    w[2 * i] = t - hi * TWO32;
    w[2 * i + 1] = hi;
  }
  bindings.copy_data_to_vector(bindings.data_chunk_get_vector(out.chunk, 0), 0, w.buffer, 0, n * 8);
  copyCol(out, 1, s.price, start, n);
  copyCol(out, 2, s.bid, start, n);
  copyCol(out, 3, s.ask, start, n);
  copyCol(out, 4, s.size, start, n);
  copyCol(out, 5, s.flags, start, n);
  copyCol(out, 6, s.seq, start, n);
  copyCol(out, 7, s.sourceId, start, n);
  const o = st.ord;
  for (let i = 0; i < n; i++) o[i] = start + i;
  bindings.copy_data_to_vector(bindings.data_chunk_get_vector(out.chunk, 8), 0, o.buffer, 0, n * 4);
  st.next = start + n;
}

export interface PooledConn {
  readonly conn: DuckDBConnection;
  /** Name of this connection's hot scan table function. */
  readonly hotScan: string;
  /** Name of this connection's journal scan table function (same columns). */
  readonly journalScan: string;
  /** Attach the rows `api_hot_scan_<i>()` returns for the next query (detached by release). */
  setHot(snap: ScanRows): void;
  /** Attach the rows `api_journal_scan_<i>()` returns for the next query (detached by release). */
  setJournal(rows: ScanRows): void;
}

interface Slot extends PooledConn { st: ScanState; jst: ScanState }

function registerScan(conn: DuckDBConnection, name: string, st: ScanState): void {
  conn.registerTableFunction(DuckDBTableFunction.create({
    name,
    bindFunction: (info) => {
      for (const [c, t] of SCAN_COLUMNS) info.addResultColumn(c, t);
      info.setCardinality(st.snap.length, true);
    },
    initFunction: (info) => {
      st.next = 0;
      info.setMaxThreads(1);
    },
    mainFunction: (info, output) => {
      try {
        fill(st, output);
      } catch (err) {
        output.rowCount = 0;
        info.setError(err instanceof Error ? err.message : String(err));
      }
    },
  }));
}

export interface DuckPoolOptions {
  connections?: number;
  threads?: number;
  memoryLimit?: string;
}

export class DuckPool {
  readonly #instance: DuckDBInstance;
  readonly #free: Slot[] = [];
  readonly #all: Slot[] = [];
  readonly #waiters: ((s: Slot) => void)[] = [];
  #closed = false;
  /** Requests that had to wait for a connection. */
  waits = 0;

  private constructor(instance: DuckDBInstance) {
    this.#instance = instance;
  }

  static async open(opts: DuckPoolOptions = {}): Promise<DuckPool> {
    const config: Record<string, string> = {
      threads: String(opts.threads ?? 2),
      autoinstall_known_extensions: 'false',
      autoload_known_extensions: 'false',
      temp_directory: join(tmpdir(), 'tickpipe-duckdb-api'),
    };
    if (opts.memoryLimit !== undefined) config.memory_limit = opts.memoryLimit;
    const instance = await DuckDBInstance.create(':memory:', config);
    const pool = new DuckPool(instance);
    const n = Math.max(1, Math.min(16, opts.connections ?? 2));
    for (let i = 0; i < n; i++) {
      const conn = await instance.connect();
      await conn.run(`SET TimeZone = 'UTC'`);
      const st = new ScanState();
      const jst = new ScanState();
      registerScan(conn, `api_hot_scan_${i}`, st);
      registerScan(conn, `api_journal_scan_${i}`, jst);
      const slot: Slot = {
        conn, hotScan: `api_hot_scan_${i}`, journalScan: `api_journal_scan_${i}`, st, jst,
        setHot: (snap) => { st.snap = snap; st.next = 0; },
        setJournal: (rows) => { jst.snap = rows; jst.next = 0; },
      };
      pool.#all.push(slot);
      pool.#free.push(slot);
    }
    return pool;
  }

  get size(): number { return this.#all.length; }
  get idle(): number { return this.#free.length; }

  /** Run `fn` with a connection of its own; the connection returns to the pool afterwards. */
  async with<T>(fn: (c: PooledConn) => Promise<T>): Promise<T> {
    if (this.#closed) throw new Error('DuckDB pool is closed');
    let slot = this.#free.pop();
    if (slot === undefined) {
      this.waits++;
      slot = await new Promise<Slot>((resolve) => { this.#waiters.push(resolve); });
    }
    try {
      return await fn(slot);
    } finally {
      slot.st.snap = EMPTY;
      slot.jst.snap = EMPTY;
      const w = this.#waiters.shift();
      if (w !== undefined) w(slot);
      else this.#free.push(slot);
    }
  }

  /** Close once every running query has finished (bounded wait), then the connections and the instance. */
  async close(timeoutMs = 10_000): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const deadline = Date.now() + timeoutMs;
    while (this.#free.length < this.#all.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    if (this.#free.length < this.#all.length) for (const s of this.#all) s.conn.interrupt();
    for (const s of this.#all) s.conn.closeSync();
    this.#instance.closeSync();
  }
}
