/**
 * A HistoryReader (hub.ts) over what tickpipe stores of trades older than the hot window: the WebSocket
 * replay's source for [from, hot window heldFromMicros).
 *
 * Hour by hour (engine/history/plan.ts, the same rule as the REST historical route): an hour whose journal
 * is still the truth (`<data-dir>/journal/<D>/<HH>.tpj` present, no `.compacted` marker: compaction off,
 * failed, not run yet, or running right now) is read from the journal, by a pool thread
 * (engine/history/journal-reader.ts), even when a Parquet file for it already exists; every other hour from
 * the compactor's Parquet tick files (`<data-dir>/ticks/symbol=<SYM>/date=<D>/hour=<HH>.parquet` or
 * `day.parquet`). An hour whose journal is deleted between the listing and its read comes from Parquet. So
 * every trade comes once. Journal records carry symbol ids: without `registry` the reader uses Parquet only.
 * A journal hour that cannot be read whole gives the trades before the fault (the client's per-symbol seq
 * shows the hole).
 *
 * Parquet: one DuckDB instance of its own (in memory, 1 thread, no extension loading), opened on first use;
 * the query runs on DuckDB's thread and is read in chunks of `pageRows`, so the uWS thread only awaits.
 * File choice (day vs hour files) is the REST API's (`filesFor`, api/rest/hist-plan.ts). Rows are trades
 * only (price not NaN), in (ts, seq) order, `fromMicros ≤ ts < toMicros`. Source names in the files map
 * back to ids through `sourceNames` (unknown names: id 0).
 */
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { engineError } from '../../engine/errors.ts';
import { listJournalHours, sharedJournalReader, type JournalReader } from '../../engine/history/journal-reader.ts';
import type { JournalTicks } from '../../engine/history/journal-ticks.ts';
import { HOUR_MICROS, JOURNAL_DIR_NAME } from '../../engine/journal/format.ts';
import { createHotColumns } from '../../engine/hot/hot-columns.ts';
import { filesFor, sqlStr } from '../rest/hist-plan.ts';
import type { HistoryReader, TickRows } from './hub.ts';

export interface ParquetHistoryOptions {
  dataDir: string;
  /** Source names by id (as the engine's ApiDeps.sourceNames). */
  sourceNames: readonly string[];
  /** Rows per batch handed to the hub (default 4096). */
  pageRows?: number;
  /** Symbol ids of journal records (the engine's registry). Without it: Parquet only. */
  registry?: { idOf(symbol: string): number };
  /** Journal directory (default `<dataDir>/journal`). */
  journalDir?: string;
  /** Off-thread journal reader (default: the process-wide one shared with the REST route; not closed here). */
  journalReader?: JournalReader;
}

export interface ParquetHistory {
  readonly reader: HistoryReader;
  close(): Promise<void>;
}

const num = (v: unknown): number => (typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : v === null || v === undefined ? NaN : Number(v));

/** Trades of one symbol-hour a replay reads from the journal at most (the hour is held in memory while sent). */
const JOURNAL_HOUR_MAX_ROWS = 1 << 28;

export function createParquetHistory(opts: ParquetHistoryOptions): ParquetHistory {
  const pageRows = opts.pageRows ?? 4096;
  const journalDir = opts.journalDir ?? join(opts.dataDir, JOURNAL_DIR_NAME);
  const srcIds = new Map<string, number>();
  opts.sourceNames.forEach((n, i) => { if (n !== '') srcIds.set(n, i); });
  let db: Promise<{ instance: DuckDBInstance; conn: DuckDBConnection }> | null = null;
  let chain: Promise<unknown> = Promise.resolve();
  const open = (): Promise<{ instance: DuckDBInstance; conn: DuckDBConnection }> => (db ??= (async () => {
    const instance = await DuckDBInstance.create(':memory:', {
      threads: '1', autoinstall_known_extensions: 'false', autoload_known_extensions: 'false', temp_directory: join(tmpdir(), 'tickpipe-duckdb'),
    });
    const conn = await instance.connect();
    await conn.run(`SET TimeZone = 'UTC'`);
    return { instance, conn };
  })());

  async function* readParquet(symbol: string, fromMicros: number, toMicros: number, skipHours: ReadonlySet<number>): AsyncGenerator<TickRows> {
    if (!(toMicros > fromMicros)) return;
    const { files } = await filesFor(opts.dataDir, 'ticks', symbol, fromMicros, toMicros, skipHours);
    if (files.length === 0) return;
    const { conn } = await open();
    // one query at a time on the connection: queue behind any replay already reading
    let release!: () => void;
    const mine = new Promise<void>((r) => { release = r; });
    const prev = chain;
    chain = prev.then(() => mine);
    await prev;
    try {
      const sql = `SELECT epoch_us(ts) AS ts_us, price, bid, ask, size, flags, seq, source
        FROM read_parquet([${files.map(sqlStr).join(', ')}], hive_partitioning = false)
        WHERE epoch_us(ts) >= ${Math.floor(fromMicros)} AND epoch_us(ts) < ${Math.ceil(toMicros)} AND price IS NOT NULL AND NOT isnan(price)
        ORDER BY ts, seq`;
      const result = await conn.stream(sql);
      const out = createHotColumns(pageRows);
      let k = 0;
      for (;;) {
        const chunk = await result.fetchChunk();
        if (chunk === null || chunk.rowCount === 0) break;
        const cols = chunk.getColumns();
        const n = chunk.rowCount;
        for (let r = 0; r < n; r++) {
          out.tsMicros[k] = num(cols[0]![r]);
          out.price[k] = num(cols[1]![r]);
          out.bid[k] = num(cols[2]![r]);
          out.ask[k] = num(cols[3]![r]);
          out.size[k] = num(cols[4]![r]);
          out.flags[k] = num(cols[5]![r]);
          out.seq[k] = num(cols[6]![r]);
          out.sourceId[k] = srcIds.get(String(cols[7]![r] ?? '')) ?? 0;
          if (++k === pageRows) {
            out.length = k;
            yield out;
            k = 0;
          }
        }
      }
      if (k > 0) {
        out.length = k;
        yield out;
      }
    } finally {
      release();
    }
  }

  /** Journal rows in pages of `pageRows` (views over the transferred columns). */
  function* pages(j: JournalTicks): Generator<TickRows> {
    for (let a = 0; a < j.length; a += pageRows) {
      const b = Math.min(j.length, a + pageRows);
      yield {
        length: b - a, tsMicros: j.tsMicros.subarray(a, b), price: j.price.subarray(a, b), bid: j.bid.subarray(a, b), ask: j.ask.subarray(a, b),
        size: j.size.subarray(a, b), flags: j.flags.subarray(a, b), seq: j.seq.subarray(a, b), sourceId: j.sourceId.subarray(a, b),
      };
    }
  }

  async function* read(symbol: string, fromMicros: number, toMicros: number): AsyncGenerator<TickRows> {
    const id = opts.registry?.idOf(symbol) ?? 0;
    const hours = id > 0 ? await listJournalHours(journalDir, fromMicros, toMicros) : [];
    const skip = new Set(hours.map((h) => h.hourStartMicros));
    let cursor = fromMicros;
    for (const ref of hours) {
      const hs = Math.max(cursor, ref.hourStartMicros);
      const he = Math.min(toMicros, ref.hourStartMicros + HOUR_MICROS);
      if (hs > cursor) yield* readParquet(symbol, cursor, hs, skip);
      const r = await (opts.journalReader ?? sharedJournalReader()).read({
        hours: [ref], symbolId: id, fromMicros: hs, toMicros: he, tradesOnly: true, maxRows: JOURNAL_HOUR_MAX_ROWS,
      });
      if (r.tooMany) throw engineError('ENGINE_ERR_MEMORY_LIMIT', `replay of ${symbol}: journal hour ${new Date(ref.hourStartMicros / 1000).toISOString()} holds more than ${JOURNAL_HOUR_MAX_ROWS} trades`, { symbol });
      // deleted since the listing: compacted and verified, so Parquet has it
      if (r.hours[0]?.state === 'missing') yield* readParquet(symbol, hs, he, new Set());
      else yield* pages(r);
      cursor = he;
    }
    yield* readParquet(symbol, cursor, toMicros, skip);
  }

  return {
    reader: read,
    close: async () => {
      if (db === null) return;
      const { instance, conn } = await db;
      await chain;
      conn.closeSync();
      instance.closeSync();
    },
  };
}
