/**
 * A HistoryReader (hub.ts) over the Parquet tick files of the compactor
 * (`<data-dir>/ticks/symbol=<SYM>/date=<D>/hour=<HH>.parquet` or `day.parquet`): the WebSocket replay's
 * source for trades older than the hot window.
 *
 * One DuckDB instance of its own (in memory, 1 thread, no extension loading), opened on first use; the
 * query runs on DuckDB's thread and is read in chunks of `pageRows`, so the uWS thread only awaits.
 * File choice (day vs hour files) is the REST API's (`filesFor`, api/rest/hist-plan.ts). Rows are trades
 * only (price not NaN), in (ts, seq) order, `fromMicros ≤ ts < toMicros`. Source names in the files map
 * back to ids through `sourceNames` (unknown names: id 0).
 */
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHotColumns } from '../../engine/hot/hot-columns.ts';
import { filesFor, sqlStr } from '../rest/hist-plan.ts';
import type { HistoryReader, TickRows } from './hub.ts';

export interface ParquetHistoryOptions {
  dataDir: string;
  /** Source names by id (as the engine's ApiDeps.sourceNames). */
  sourceNames: readonly string[];
  /** Rows per batch handed to the hub (default 4096). */
  pageRows?: number;
}

export interface ParquetHistory {
  readonly reader: HistoryReader;
  close(): Promise<void>;
}

const num = (v: unknown): number => (typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : v === null || v === undefined ? NaN : Number(v));

export function createParquetHistory(opts: ParquetHistoryOptions): ParquetHistory {
  const pageRows = opts.pageRows ?? 4096;
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

  async function* read(symbol: string, fromMicros: number, toMicros: number): AsyncGenerator<TickRows> {
    const { files } = await filesFor(opts.dataDir, 'ticks', symbol, fromMicros, toMicros);
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
