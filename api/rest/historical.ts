/**
 * `GET /api/v1/ticks/historical?symbols=A[,B]&start_time=&end_time=[&interval=1s|1m|5m|15m|1h|4h|1d][&format=json|ndjson|csv|parquet][&compression=snappy|zstd|lz4|none]`
 *
 * Range [start_time, end_time) (ISO 8601 or Unix s/ms/µs; end defaults to now), across Parquet, the journal
 * hours not compacted (or not verifiably compacted) yet, and the hot window, with no seam (hist-plan.ts,
 * engine/history). Raw ticks, or OHLCV bars with `interval`. Journal hours are read by a pool thread
 * (engine/history/journal-reader.ts); every symbol is planned before the answer starts. DuckDB runs the query on its
 * own threads (async, pooled connections); text formats are streamed chunk by chunk with back-pressure
 * (the next chunk is fetched from DuckDB only once uWS has taken the previous one); Parquet is written by
 * DuckDB to a temporary file and sent with tryEnd/onWritable.
 *
 * Retention: a range wholly before the retention cutoff (today − retentionDays, UTC) is 410 DATA_UNAVAILABLE;
 * a range partly before it is answered from the cutoff on, and the answer says which part is unavailable
 * (`unavailable` in JSON, the `X-Tickpipe-Unavailable` header in every format). A journal hour that cannot be
 * read whole (corrupt) is answered with the ticks before the fault and listed in `unavailable` too. More than
 * `historicalLimits.journalMaxRows` journal ticks for one symbol is 413 RANGE_TOO_LARGE.
 *
 * Row shapes (also the CSV columns; Parquet keeps the on-disk column types):
 * - ticks: symbol, ts (ISO µs), ts_us, ts_ms, price, size, bid, ask, side ('B'|'S'|''), source, seq, flags
 * - bars:  symbol, ts (bar start), ts_us, ts_ms, open, high, low, close, volume, trades, buy_volume, sell_volume, vwap
 */
import { readFile, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { sharedJournalReader } from '../../engine/history/journal-reader.ts';
import { rangesWithout, readJournalPart } from '../../engine/history/plan.ts';
import { JOURNAL_DIR_NAME } from '../../engine/journal/format.ts';
import { microsToIso } from '../../engine/latest/latest-table.ts';
import type { SymbolMeta } from '../../engine/symbols/registry.ts';
import { Query } from '../http/request.ts';
import { ApiError } from '../http/respond.ts';
import { ResponseStream, sendBuffer } from '../http/stream.ts';
import { HotSnapshot, type PooledConn, type ScanRows } from './duck-pool.ts';
import {
  barSql, filesFor, INTERVALS, journalSourceListSql, planBars, snapshotHot, sourceListSql, sqlStr, tickSql, type TickPlan,
} from './hist-plan.ts';
import { resolveSymbol, type RouteCtx, type RouteHandler, type Services } from './context.ts';

const FORMATS = ['json', 'ndjson', 'csv', 'parquet'] as const;
type Format = (typeof FORMATS)[number];

/**
 * Parquet codec of an answer. Default: zstd for ticks, like the files on disk (tick timestamps compress ~3x
 * better than with snappy: a smaller answer, a shorter transfer); snappy for bars (their doubles compress
 * little, and snappy wrote a year of 1-minute bars ~40 % faster in bench runs). `compression=` overrides.
 */
const PARQUET_CODECS: Readonly<Record<string, string>> = { snappy: 'snappy', zstd: 'zstd', lz4: 'lz4_raw', none: 'uncompressed' };

const CONTENT_TYPE: Record<Format, string> = {
  json: 'application/json', ndjson: 'application/x-ndjson', csv: 'text/csv; charset=utf-8', parquet: 'application/vnd.apache.parquet',
};

export const TICK_FIELDS = ['symbol', 'ts', 'ts_us', 'ts_ms', 'price', 'size', 'bid', 'ask', 'side', 'source', 'seq', 'flags'] as const;
export const BAR_FIELDS = ['symbol', 'ts', 'ts_us', 'ts_ms', 'open', 'high', 'low', 'close', 'volume', 'trades', 'buy_volume', 'sell_volume', 'vwap'] as const;
/** DuckDB result columns after ts_us (index 0), in the order of the fields after ts_ms. */
const TICK_VALUE_FIELDS = ['price', 'size', 'bid', 'ask', 'side', 'source', 'seq', 'flags'] as const;
const BAR_VALUE_FIELDS = ['open', 'high', 'low', 'close', 'volume', 'trades', 'buy_volume', 'sell_volume', 'vwap'] as const;

interface Request {
  metas: SymbolMeta[];
  startUs: number;
  endUs: number;
  bucketUs: number | null;
  interval: string;
  format: Format;
  /** Parquet codec of a parquet answer. */
  compression: string;
  unavailable: { from: string; to: string; reason: string }[];
}

function parse(s: Services, ctx: RouteCtx): Request {
  const q = new Query(ctx.query);
  const syms = q.symbols();
  const start = q.time('start_time');
  if (start === undefined) throw new ApiError(400, 'BAD_REQUEST', 'parameter start_time is required (ISO 8601, e.g. 2025-11-11T14:00:00Z)');
  const nowUs = s.deps.now() * 1000;
  const end = q.time('end_time') ?? nowUs;
  if (!(end > start)) throw new ApiError(400, 'BAD_REQUEST', 'end_time must be after start_time');
  const interval = q.str('interval') ?? 'raw';
  const bucketUs = interval === 'raw' || interval === 'tick' ? null : INTERVALS[interval];
  if (bucketUs === undefined) throw new ApiError(400, 'BAD_REQUEST', `interval must be one of ${Object.keys(INTERVALS).join(', ')} (or omitted for raw ticks)`);
  const fmt = q.str('format') ?? 'json';
  if (!(FORMATS as readonly string[]).includes(fmt)) throw new ApiError(400, 'BAD_REQUEST', `format must be one of ${FORMATS.join(', ')}`);
  const format = fmt as Format;
  const comp = q.str('compression') ?? (bucketUs === null ? 'zstd' : 'snappy');
  const compression = PARQUET_CODECS[comp];
  if (compression === undefined) throw new ApiError(400, 'BAD_REQUEST', `compression must be one of ${Object.keys(PARQUET_CODECS).join(', ')}`);
  const metas = syms.map((x) => resolveSymbol(s, ctx, x));
  if (format === 'parquet' && metas.length > 1) throw new ApiError(400, 'BAD_REQUEST', 'format=parquet answers one symbol per request');
  // retention: partitions dated before (today − retentionDays) are purged (workers/compactor purgeOlderThan)
  const d = new Date(s.deps.now());
  const today = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
  const cutoffUs = (today - s.deps.retentionDays * 86_400_000) * 1000;
  const unavailable: Request['unavailable'] = [];
  let startUs = start;
  if (end <= cutoffUs) {
    throw new ApiError(410, 'DATA_UNAVAILABLE', `data before ${microsToIso(cutoffUs) as string} is unavailable: it is older than the retention of ${s.deps.retentionDays} days`);
  }
  if (start < cutoffUs) {
    unavailable.push({ from: microsToIso(start) as string, to: microsToIso(cutoffUs) as string, reason: `older than the retention of ${s.deps.retentionDays} days` });
    startUs = cutoffUs;
  }
  return { metas, startUs, endUs: end, bucketUs, interval, format, compression, unavailable };
}

/** CSV cell: numbers as is, null empty, strings quoted when needed. */
function csvCell(v: string | number | null): string {
  if (v === null) return '';
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : '';
  return /[",\r\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v;
}

/** Limits of a historical query (mutable for tests). */
export const historicalLimits = {
  /**
   * Most ticks one request may take from journal hours (not compacted yet), per symbol: they are held in
   * memory for the query (~45 B each). Above it the answer is 413 RANGE_TOO_LARGE.
   */
  journalMaxRows: 8_000_000,
};

/** Everything one symbol's query needs, gathered before the answer starts (so `unavailable` is complete). */
interface SymbolPlan {
  meta: SymbolMeta;
  snap: HotSnapshot;
  journal: ScanRows;
  journalHours: Set<number>;
  plan: TickPlan;
}

async function planSymbol(s: Services, meta: SymbolMeta, r: Request): Promise<SymbolPlan> {
  const hot = s.deps.hot;
  const snap = new HotSnapshot();
  let heldFrom = Infinity;
  if (hot !== null && meta.id <= hot.symbols) heldFrom = snapshotHot(hot, meta.id, r.startUs, r.endUs, s.hotPage, snap);
  const cutUs = Math.min(r.endUs, Math.max(r.startUs, heldFrom));
  // [start, cut): journal hours (off-thread read), then Parquet for the rest
  const jp = await readJournalPart({
    reader: sharedJournalReader(), journalDir: join(s.deps.dataDir, JOURNAL_DIR_NAME), symbolId: meta.id,
    fromMicros: r.startUs, toMicros: cutUs, tradesOnly: false, maxRows: historicalLimits.journalMaxRows,
  });
  if (jp.tooMany) {
    throw new ApiError(413, 'RANGE_TOO_LARGE', `${meta.symbol}: the range holds more than ${historicalLimits.journalMaxRows} ticks in journal hours not compacted to Parquet yet; ask for a shorter range`);
  }
  for (const f of jp.faults) r.unavailable.push({ from: microsToIso(f.fromMicros) as string, to: microsToIso(f.toMicros) as string, reason: `${meta.symbol}: ${f.reason}` });
  const parquetRanges = rangesWithout(r.startUs, cutUs, jp.hours);
  const { files } = await filesFor(s.deps.dataDir, 'ticks', meta.symbol, r.startUs, cutUs, jp.hours);
  const j = jp.ticks;
  const journal: ScanRows = j;
  return {
    meta, snap, journal, journalHours: jp.hours,
    plan: { tickFiles: files, parquetRanges, startUs: r.startUs, cutUs, endUs: r.endUs, hotRows: snap.length, journalRows: j.length },
  };
}

async function sqlFor(s: Services, conn: PooledConn, sp: SymbolPlan, r: Request, forParquet: boolean): Promise<string> {
  conn.setHot(sp.snap);
  conn.setJournal(sp.journal);
  if (r.bucketUs === null) {
    return tickSql(sp.plan, conn.hotScan, sourceListSql(s.deps.sourceNames, sp.snap), forParquet, conn.journalScan, journalSourceListSql(s.deps.sourceNames, sp.journal));
  }
  return barSql(await planBars(s.deps.dataDir, sp.meta.symbol, sp.plan, r.bucketUs, sp.journalHours), conn.hotScan, forParquet, conn.journalScan);
}

function headers(r: Request): Record<string, string> {
  const h: Record<string, string> = { 'cache-control': 'no-store' };
  // header values: printable ASCII only (reasons may quote file paths)
  if (r.unavailable.length > 0) h['x-tickpipe-unavailable'] = r.unavailable.map((u) => `${u.from}/${u.to} ${u.reason}`).join('; ').replace(/[^\x20-\x7e]/g, '?');
  return h;
}

async function answerParquet(s: Services, ctx: RouteCtx, res: Parameters<RouteHandler>[0], r: Request): Promise<void> {
  const pool = await s.duck();
  const meta = r.metas[0] as SymbolMeta;
  const sp = await planSymbol(s, meta, r);
  if (ctx.aborted) return;
  const tmp = join(tmpdir(), `tickpipe-api-${process.pid}-${randomBytes(6).toString('hex')}.parquet`);
  let body: Buffer;
  try {
    const rows = await pool.with(async (conn) => {
      const sql = await sqlFor(s, conn, sp, r, true);
      if (ctx.aborted) return 0;
      const out = await conn.conn.run(`COPY (${sql}) TO ${sqlStr(tmp)} (FORMAT parquet, COMPRESSION ${r.compression})`);
      return out.rowsChanged;
    });
    if (ctx.aborted) return;
    ctx.rows = rows;
    body = await readFile(tmp);
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  if (ctx.aborted) return;
  const fname = `${meta.symbol}_${r.interval}.parquet`;
  await sendBuffer(res, ctx, 200, CONTENT_TYPE.parquet, body, { ...headers(r), 'content-disposition': `attachment; filename="${fname}"` });
}

const INT_FIELDS: ReadonlySet<string> = new Set(['size', 'seq', 'flags', 'volume', 'trades', 'buy_volume', 'sell_volume']);
const STR_FIELDS: ReadonlySet<string> = new Set(['side', 'source']);

/**
 * One text line per row, formatted by DuckDB (on its threads, in C++) instead of in JS: the uWS thread only
 * joins the lines and writes them. Integers print as integers, doubles in shortest round-trip form (21000.0,
 * 21013.25), NULL as null / an empty CSV cell, ISO times with 6 fractional digits. The inner query keeps its
 * order (a projection over an ordered subquery).
 */
export function lineSql(inner: string, format: 'json' | 'ndjson' | 'csv', symbol: string, valueFields: readonly string[]): string {
  const iso = `strftime(make_timestamptz(ts_us::BIGINT), '%Y-%m-%dT%H:%M:%S.%fZ')`;
  const tsUs = `(ts_us::BIGINT)::VARCHAR`;
  const tsMs = `((ts_us::BIGINT) // 1000)::VARCHAR`;
  let expr: string;
  if (format === 'csv') {
    const cells = [sqlStr(csvCell(symbol)), iso, tsUs, tsMs, ...valueFields.map((f) => (STR_FIELDS.has(f)
      ? `CASE WHEN ${f} IS NULL THEN '' WHEN regexp_matches(${f}, '[",\r\n]') THEN '"' || replace(${f}, '"', '""') || '"' ELSE ${f} END`
      : INT_FIELDS.has(f) ? `coalesce((${f}::BIGINT)::VARCHAR, '')` : `coalesce(${f}::VARCHAR, '')`))];
    expr = cells.join(` || ',' || `);
  } else {
    expr = `${sqlStr(`{"symbol":${JSON.stringify(symbol)},"ts":"`)} || ${iso} || '","ts_us":' || ${tsUs} || ',"ts_ms":' || ${tsMs}`;
    for (const f of valueFields) {
      const v = STR_FIELDS.has(f) ? `coalesce(to_json(${f})::VARCHAR, 'null')` : INT_FIELDS.has(f) ? `coalesce((${f}::BIGINT)::VARCHAR, 'null')` : `coalesce(${f}::VARCHAR, 'null')`;
      expr += ` || ',"${f}":' || ${v}`;
    }
    expr += ` || '}'`;
  }
  return `SELECT ${expr} AS line FROM (${inner})`;
}

async function answerText(s: Services, ctx: RouteCtx, res: Parameters<RouteHandler>[0], r: Request): Promise<void> {
  const pool = await s.duck();
  const stream = new ResponseStream(res, ctx);
  const valueFields = r.bucketUs === null ? TICK_VALUE_FIELDS : BAR_VALUE_FIELDS;
  const fields = r.bucketUs === null ? TICK_FIELDS : BAR_FIELDS;
  const first = { v: true };
  let rows = 0;
  const begin = (): void => {
    if (stream.started) return;
    stream.start(200, CONTENT_TYPE[r.format], headers(r));
    ctx.streaming = true;
  };
  let head = '';
  if (r.format === 'csv') {
    head = `${fields.join(',')}\n`;
  }
  // every symbol planned (hot snapshot, journal hours read) before the head goes out: `unavailable` is complete
  const plans: SymbolPlan[] = [];
  for (const meta of r.metas) {
    plans.push(await planSymbol(s, meta, r));
    if (ctx.aborted) return;
  }
  if (r.format === 'json') {
    head = `{"symbols":${JSON.stringify(r.metas.map((m) => m.symbol))},"interval":${JSON.stringify(r.interval)},"start":"${microsToIso(r.startUs) as string}",` +
      `"end":"${microsToIso(r.endUs) as string}","unavailable":${JSON.stringify(r.unavailable)},"data":[`;
  }
  for (const sp of plans) {
    if (ctx.aborted) return;
    const meta = sp.meta;
    await pool.with(async (conn) => {
      const sql = lineSql(await sqlFor(s, conn, sp, r, false), r.format as 'json' | 'ndjson' | 'csv', meta.symbol, valueFields);
      const result = await conn.conn.stream(sql);
      // the head goes out only once the first query is accepted: errors before it are plain JSON errors
      begin();
      if (head !== '') { await stream.write(head); head = ''; }
      let buf = '';
      for (;;) {
        if (ctx.aborted) return;
        const chunk = await result.fetchChunk();
        if (chunk === null || chunk.rowCount === 0) break;
        rows += chunk.rowCount;
        const vec = chunk.getColumnVector(0);
        const n = chunk.rowCount;
        const sep = r.format === 'json' ? ',' : '\n';
        for (let i = 0; i < n; i++) {
          const line = vec.getItem(i) as string;
          if (r.format === 'json') {
            buf += first.v ? line : `${sep}${line}`;
            first.v = false;
          } else {
            buf += `${line}${sep}`;
          }
        }
        if (buf.length >= 256 * 1024) {
          if (!(await stream.write(buf))) return;
          buf = '';
        }
      }
      if (buf !== '' && !(await stream.write(buf))) return;
    });
  }
  if (ctx.aborted) return;
  begin();
  if (head !== '') await stream.write(head);
  if (r.format === 'json') await stream.write(']}');
  ctx.rows = rows;
  stream.end(200);
}

export function historicalRoute(s: Services): RouteHandler {
  return async (res, _req, ctx) => {
    const r = parse(s, ctx);
    if (r.format === 'parquet') await answerParquet(s, ctx, res, r);
    else await answerText(s, ctx, res, r);
  };
}
