/**
 * One DuckDB session for compaction work: an in-memory instance, one connection (session time zone UTC,
 * extension auto-install and auto-load off: Parquet, JSON and ICU are built into @duckdb/node-api and
 * nothing may be downloaded), and the `tickpipe_scan()` table function that streams typed-array columns
 * into a query without per-row JS objects.
 *
 * How the columns get in (measured in bench/compact.bench.ts; the row-by-row appender is the baseline):
 * `tickpipe_scan()` is a DuckDB table function whose callback (always run on the JS thread) fills each
 * 2048-row output chunk with one `copy_data_to_vector` memcpy per column straight from the caller's typed
 * arrays (SharedArrayBuffer-backed columns go through a small scratch first: the binding accepts only
 * ArrayBuffers). `ts` becomes int64 µs through a 2048-row Uint32 scratch (two words per row, no BigInt).
 * `COPY (SELECT … FROM tickpipe_scan()) TO 'x.parquet'` therefore reads the input once, with no staging
 * table: for sorted input (the normal case) one scanning thread keeps file order = input order and DuckDB
 * holds only the Parquet writer's buffers (36M ticks: 24 s, peak RSS 1.68 GiB of which the input columns
 * are 1.61 GiB, on the shared 2-core box). Unsorted input is sorted on the raw scan columns
 * (`ORDER BY ts, seq` in a subquery), which holds one sorted copy (~100 B/row) but lets DuckDB write the
 * file on all threads. Appending the same chunks to a temporary table with `appendDataChunk` and copying
 * from it measured no faster than streaming and always holds a full second copy; `appendRow`-style appending is
 * ~7x slower overall.
 *
 * Calls are serialised per session (one connection, one scan job at a time). Open one session per
 * worker thread and reuse it.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DOUBLE, DuckDBConnection, type DuckDBDataChunk, DuckDBInstance, DuckDBTableFunction, type DuckDBValue, TIMESTAMPTZ,
  UINTEGER, UTINYINT,
} from '@duckdb/node-api';
import bindings from '@duckdb/node-bindings';
import { engineError, isEngineError, type ErrorDetail } from '../../engine/errors.ts';
import type { TickColumns } from './figures.ts';

/** Rows per DuckDB vector (duckdb_vector_size); the scan fills one chunk of this many rows per call. */
export const CHUNK_ROWS = 2048;
const TWO32 = 4_294_967_296;

export interface CompactorDbOptions {
  /** DuckDB worker threads (default 2). */
  threads?: number;
  /** DuckDB memory limit, e.g. '4GB' (default: DuckDB's, 80 % of RAM). */
  memoryLimit?: string;
  /** Where DuckDB spills a sort larger than memory (default `<os tmp>/tickpipe-duckdb`). */
  tempDirectory?: string;
}

/** One scan: the columns `tickpipe_scan()` streams next. */
export interface ScanJob {
  columns: TickColumns;
  count: number;
  /** DuckDB threads that may call the scan (1 keeps file order = input order). */
  maxThreads: number;
}

/** Column order of `tickpipe_scan()`. */
const SCAN_COLUMNS = [
  ['ts', TIMESTAMPTZ], ['price', DOUBLE], ['bid', DOUBLE], ['ask', DOUBLE], ['size', UINTEGER], ['flags', UINTEGER],
  ['seq', UINTEGER], ['source_id', UTINYINT], ['src_index', UINTEGER],
] as const;

/** Mutable state of the current scan (callbacks are serialised on the JS thread). */
class ScanState {
  job: ScanJob | null = null;
  next = 0;
  readonly tsWords = new Uint32Array(CHUNK_ROWS * 2);
  readonly scratch: Uint8Array<ArrayBuffer> = new Uint8Array(CHUNK_ROWS * 8);
  /** Zeros for an absent optional column (u8 source ids or u32 source indexes). */
  readonly zeros = new Uint8Array(CHUNK_ROWS * 4);
}

/** memcpy `n` elements of `arr` from `start` into column `col` of `chunk`. */
function copyColumn(chunk: DuckDBDataChunk, col: number, arr: Float64Array | Uint32Array | Uint8Array, start: number, n: number, scratch: Uint8Array<ArrayBuffer>): void {
  // The binding does an unchecked memcpy: refuse a column that was detached (transferred) or shrunk
  // since the job was validated, rather than read freed memory.
  if (arr.length < start + n) throw new Error(`column ${col} is shorter than the job (detached or resized during compaction?)`);
  const bpe = arr.BYTES_PER_ELEMENT;
  const vec = bindings.data_chunk_get_vector(chunk.chunk, col);
  const buf = arr.buffer;
  if (buf instanceof ArrayBuffer) {
    bindings.copy_data_to_vector(vec, 0, buf, arr.byteOffset + start * bpe, n * bpe);
  } else {
    scratch.set(new Uint8Array(buf, arr.byteOffset + start * bpe, n * bpe));
    bindings.copy_data_to_vector(vec, 0, scratch.buffer, 0, n * bpe);
  }
}

/** Fill `out` with the next chunk of the job; returns the rows written (0 = end of scan). */
function fillScanChunk(st: ScanState, out: DuckDBDataChunk): number {
  const job = st.job;
  if (job === null) throw new Error('tickpipe_scan() called with no scan job attached');
  const start = st.next;
  const n = Math.min(CHUNK_ROWS, job.count - start);
  out.rowCount = n;
  if (n <= 0) return 0;
  const c = job.columns;
  const ts = c.tsMicros;
  if (ts.length < start + n) throw new Error('column tsMicros is shorter than the job (detached or resized during compaction?)');
  const w = st.tsWords;
  for (let i = 0; i < n; i++) {
    const t = ts[start + i] as number;
    const hi = Math.floor(t / TWO32);
    w[2 * i] = t - hi * TWO32; // low word (little endian int64)
    w[2 * i + 1] = hi; // high word; ToUint32 keeps two's complement for negative (pre-1970) times
  }
  bindings.copy_data_to_vector(bindings.data_chunk_get_vector(out.chunk, 0), 0, w.buffer, 0, n * 8);
  copyColumn(out, 1, c.price, start, n, st.scratch);
  copyColumn(out, 2, c.bid, start, n, st.scratch);
  copyColumn(out, 3, c.ask, start, n, st.scratch);
  copyColumn(out, 4, c.size, start, n, st.scratch);
  copyColumn(out, 5, c.flags, start, n, st.scratch);
  copyColumn(out, 6, c.seq, start, n, st.scratch);
  if (c.sourceId !== undefined) copyColumn(out, 7, c.sourceId, start, n, st.scratch);
  else copyColumn(out, 7, st.zeros, 0, n, st.scratch);
  if (c.srcIndex !== undefined) copyColumn(out, 8, c.srcIndex, start, n, st.scratch);
  else copyColumn(out, 8, st.zeros, 0, n * 4, st.scratch);
  st.next = start + n;
  return n;
}

/** Wrap a DuckDB (or other) failure as ENGINE_ERR_COMPACT; coded errors pass through. */
export function compactError(what: string, err: unknown, detail: ErrorDetail = {}): Error {
  if (isEngineError(err)) return err;
  const msg = err instanceof Error ? err.message : String(err);
  return engineError('ENGINE_ERR_COMPACT', `compactor: ${what}: ${msg}`, detail, err);
}

export class CompactorDb {
  readonly #instance: DuckDBInstance;
  readonly #conn: DuckDBConnection;
  readonly #scan = new ScanState();
  readonly #threads: number;
  #tail: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(instance: DuckDBInstance, conn: DuckDBConnection, threads: number) {
    this.#instance = instance;
    this.#conn = conn;
    this.#threads = threads;
  }

  /** DuckDB worker threads of this session. */
  get threads(): number {
    return this.#threads;
  }

  static async open(opts: CompactorDbOptions = {}): Promise<CompactorDb> {
    const threads = opts.threads ?? 2;
    if (!Number.isInteger(threads) || threads < 1 || threads > 256) {
      throw engineError('ENGINE_ERR_INVALID_ARG', `compactor: threads must be an integer in [1, 256], got ${threads}`, { threads });
    }
    const config: Record<string, string> = {
      threads: String(threads),
      autoinstall_known_extensions: 'false',
      autoload_known_extensions: 'false',
      temp_directory: opts.tempDirectory ?? join(tmpdir(), 'tickpipe-duckdb'),
    };
    if (opts.memoryLimit !== undefined) config.memory_limit = opts.memoryLimit;
    let instance: DuckDBInstance;
    try {
      instance = await DuckDBInstance.create(':memory:', config);
    } catch (err) {
      throw compactError('cannot open DuckDB', err);
    }
    let conn: DuckDBConnection;
    try {
      conn = await instance.connect();
      await conn.run(`SET TimeZone = 'UTC'`);
    } catch (err) {
      instance.closeSync();
      throw compactError('cannot connect to DuckDB', err);
    }
    const db = new CompactorDb(instance, conn, threads);
    db.#registerScan();
    return db;
  }

  #registerScan(): void {
    const st = this.#scan;
    this.#conn.registerTableFunction(DuckDBTableFunction.create({
      name: 'tickpipe_scan',
      bindFunction: (info) => {
        for (const [name, type] of SCAN_COLUMNS) info.addResultColumn(name, type);
        if (st.job !== null) info.setCardinality(st.job.count, true);
      },
      initFunction: (info) => {
        st.next = 0;
        info.setMaxThreads(st.job?.maxThreads ?? 1);
      },
      mainFunction: (info, output) => {
        try {
          fillScanChunk(st, output);
        } catch (err) {
          output.rowCount = 0;
          info.setError(err instanceof Error ? err.message : String(err));
        }
      },
    }));
  }

  /** Run `fn` with the connection, after every earlier call on this session has finished. */
  exclusive<T>(fn: (conn: DuckDBConnection) => Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(engineError('ENGINE_ERR_COMPACT', 'compactor: DuckDB session is closed', {}));
    const run = this.#tail.then(() => fn(this.#conn));
    this.#tail = run.catch(() => undefined);
    return run;
  }

  /**
   * Inside {@link exclusive}: run `sql` (which reads `tickpipe_scan()`) with `job` attached as the scan
   * source. The job is detached afterwards whatever happens.
   */
  async runWithScan(conn: DuckDBConnection, job: ScanJob, sql: string): Promise<void> {
    this.#scan.job = job;
    this.#scan.next = 0;
    try {
      await conn.run(sql);
    } finally {
      this.#scan.job = null;
    }
  }

  /** Rows of a query as arrays of DuckDB values (cold path: small results only). */
  static async rows(conn: DuckDBConnection, sql: string): Promise<DuckDBValue[][]> {
    const reader = await conn.runAndReadAll(sql);
    return reader.getRows();
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Close after pending calls finish. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#tail;
    this.#conn.closeSync();
    this.#instance.closeSync();
  }
}

/** Run `fn` with `db`, or with a session opened for this call and closed after it. */
export async function withDb<T>(db: CompactorDb | undefined, fn: (db: CompactorDb) => Promise<T>): Promise<T> {
  if (db !== undefined) return fn(db);
  const own = await CompactorDb.open();
  try {
    return await fn(own);
  } finally {
    await own.close();
  }
}
