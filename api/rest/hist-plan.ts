/**
 * Planning a historical query: which rows come from the hot window, which from the journal and which from
 * Parquet, with no seam.
 *
 * The hot window answers only from `heldFromMicros` on (it holds EVERY trade from there; engine/hot). So a
 * request [start, end) is cut once, at `cut = clamp(heldFrom, start, end)`: the hot window gives [cut, end),
 * the stored data [start, cut). The hot rows are copied out FIRST (one consistent snapshot), so the cut
 * cannot move while the rest is read: no row is answered twice (stored rows ≥ cut are filtered out even when
 * an hour overlaps the window) and none is missed (everything before heldFrom is in the journal or Parquet).
 *
 * [start, cut) hour by hour (engine/history/plan.ts): an hour whose journal is still the truth (`.tpj`
 * present, no `.compacted` marker: compaction off, failed, not run yet, or running now) is answered from the
 * journal only, read off-thread, even if a Parquet file for it already exists (written, not yet verified and
 * followed by the journal's delete); every other hour from Parquet (`parquetRanges`). So an hour is answered
 * once whatever the compactor does meanwhile.
 *
 * Bars: whole minutes of the Parquet part whose hours have 1-minute bar files come from those files
 * (re-bucketed: first open, max high, min low, last close, sums, volume-weighted vwap); the minute edges,
 * ticks without bar files, journal rows and the hot rows are aggregated from ticks; one GROUP BY merges the
 * pieces, so a bar that straddles the cut or an hour boundary is one bar.
 */
import { HOT_BUSY, type HotWindow } from '../../engine/hot/hot-window.ts';
import { HotColumns } from '../../engine/hot/hot-columns.ts';
import { microsToIso } from '../../engine/latest/latest-table.ts';
import { SIDE_MASK, TradeFlag } from '../../schemas/records.ts';
import { resolvePartitionFiles } from '../../workers/compactor/partitions.ts';
import { clipRanges, subtractRanges, type Range } from '../../engine/history/plan.ts';
import { ApiError } from '../http/respond.ts';
import type { HotSnapshot } from './duck-pool.ts';

export const US_PER_MIN = 60_000_000;
export const US_PER_HOUR = 3_600_000_000;
export const US_PER_DAY = 86_400_000_000;

/** Bar intervals (DESIGN §6 / issue 5) in µs. */
export const INTERVALS: Readonly<Record<string, number>> = {
  '1s': 1_000_000, '1m': US_PER_MIN, '5m': 5 * US_PER_MIN, '15m': 15 * US_PER_MIN, '1h': US_PER_HOUR, '4h': 4 * US_PER_HOUR, '1d': US_PER_DAY,
};

const PAGE_ROWS = 65_536;
const BUSY_RETRIES = 20;

/**
 * Copy the hot rows of symbol `id` with ts in [start, end) into `out` (paging through `page`), and return
 * the window's heldFromMicros at the first page (+Infinity when it holds nothing).
 */
export function snapshotHot(hot: HotWindow, id: number, startUs: number, endUs: number, page: HotColumns, out: HotSnapshot): number {
  out.length = 0;
  let cursor = startUs;
  let skip = 0;
  let heldFrom = NaN;
  let busy = 0;
  for (;;) {
    const r = hot.since(id, cursor, page.capacity, page);
    if (r === HOT_BUSY) {
      if (++busy > BUSY_RETRIES) throw new ApiError(503, 'BUSY', 'the hot window is being rewritten too fast to read; retry');
      continue;
    }
    if (Number.isNaN(heldFrom)) heldFrom = page.heldFromMicros;
    else if (page.heldFromMicros > cursor) {
      // rows between pages expired (only a read slower than the window's turnover): refuse a gap
      throw new ApiError(503, 'BUSY', 'the hot window moved on while it was read; retry');
    }
    const n = page.length;
    if (skip > 0 && skip >= n && page.more) throw new ApiError(503, 'BUSY', 'too many ticks share one timestamp to page through; retry');
    let i = skip;
    const ts = page.tsMicros;
    out.reserve(out.length + (n - i));
    let hitEnd = false;
    for (; i < n; i++) {
      const t = ts[i] as number;
      if (t >= endUs) { hitEnd = true; break; }
      const k = out.length++;
      out.tsMicros[k] = t;
      out.price[k] = page.price[i] as number;
      out.bid[k] = page.bid[i] as number;
      out.ask[k] = page.ask[i] as number;
      out.size[k] = page.size[i] as number;
      out.flags[k] = page.flags[i] as number;
      out.seq[k] = page.seq[i] as number;
      out.sourceId[k] = page.sourceId[i] as number;
    }
    if (hitEnd || !page.more || out.length === 0) break;
    // next page from the last copied ts; skip the rows at that ts already copied
    const last = out.tsMicros[out.length - 1] as number;
    let same = 0;
    for (let j = out.length - 1; j >= 0 && out.tsMicros[j] === last; j--) same++;
    cursor = last;
    skip = same;
  }
  return heldFrom;
}

/** A page buffer for snapshotHot (allocate once per app). */
export function createHotPage(): HotColumns {
  return new HotColumns(PAGE_ROWS);
}

const HOUR_FILE_RE = /date=(\d{4}-\d\d-\d\d)[/\\](?:hour=(\d\d)|day)\.parquet$/;

/**
 * Parquet files of `symbol` that may hold rows in [a, b), and the set of hour starts they cover. Hour files of
 * `skipHours` are left out (hours answered from the journal); a day file is kept (filter its rows by time).
 */
export async function filesFor(
  dataDir: string, kind: 'ticks' | 'bars', symbol: string, a: number, b: number, skipHours: ReadonlySet<number> = new Set(),
): Promise<{ files: string[]; hours: Set<number> }> {
  const hours = new Set<number>();
  if (!(b > a)) return { files: [], hours };
  const fromDate = new Date(Math.floor(a / 1000)).toISOString().slice(0, 10);
  const toDate = new Date(Math.floor((b - 1) / 1000)).toISOString().slice(0, 10);
  const all = await resolvePartitionFiles(dataDir, kind, symbol, { fromDate, toDate });
  const files: string[] = [];
  for (const f of all) {
    const m = HOUR_FILE_RE.exec(f);
    if (m === null) continue;
    const day = Date.parse(`${m[1] as string}T00:00:00Z`) * 1000;
    if (m[2] === undefined) {
      if (day < b && day + US_PER_DAY > a) {
        files.push(f);
        for (let h = 0; h < 24; h++) hours.add(day + h * US_PER_HOUR);
      }
    } else {
      const h = day + Number(m[2]) * US_PER_HOUR;
      if (h < b && h + US_PER_HOUR > a && !skipHours.has(h)) {
        files.push(f);
        hours.add(h);
      }
    }
  }
  return { files, hours };
}

export const sqlStr = (s: string): string => `'${s.replaceAll("'", "''")}'`;
const tsLit = (us: number): string => `TIMESTAMPTZ '${microsToIso(us) as string}'`;
const readParquet = (files: readonly string[]): string => `read_parquet([${files.map(sqlStr).join(', ')}], hive_partitioning = false)`;

/** SQL list of source names indexed by source id (hot rows carry ids). */
export function sourceListSql(names: readonly string[], snap: HotSnapshot): string {
  let max = 0;
  for (let i = 0; i < snap.length; i++) if ((snap.sourceId[i] as number) > max) max = snap.sourceId[i] as number;
  const list: string[] = [];
  for (let i = 0; i <= max; i++) list.push(sqlStr(names[i] ?? `source-${i}`));
  return `list_value(${list.join(', ')})`;
}

const HOT_SIDE = `CASE flags & ${SIDE_MASK} WHEN ${TradeFlag.SIDE_BUY} THEN 'B' WHEN ${TradeFlag.SIDE_SELL} THEN 'S' ELSE '' END`;
const nanNull = (c: string): string => `CASE WHEN isnan(${c}) THEN NULL ELSE ${c} END`;

export interface TickPlan {
  /** Parquet tick files that may hold rows in `parquetRanges` (hour files of journal hours left out). */
  tickFiles: string[];
  /** The parts of [start, cut) answered from Parquet: [start, cut) minus the journal hours; ordered, disjoint. */
  parquetRanges: Range[];
  startUs: number;
  cutUs: number;
  endUs: number;
  /** Rows in the hot snapshot (0: the query does not read the hot scan at all). */
  hotRows: number;
  /** Rows from journal hours (engine/history; 0: the journal scan is not read). Inside [start, cut) already. */
  journalRows: number;
}

const rangeWhere = (ranges: readonly Range[]): string =>
  ranges.map(([a, b]) => `(ts >= ${tsLit(a)} AND ts < ${tsLit(b)})`).join(' OR ') || 'false';

/**
 * Raw ticks in file order: Parquet and journal rows of [start, cut) in (ts, seq) order, then the hot rows in
 * window order. Columns ready for the text formats (no BigInt): ts_us DOUBLE, price, size, bid, ask, side,
 * source, seq, flags. `journalSources` is the SQL list of source names for journal rows (the compactor's
 * names, see journalSourceListSql).
 */
export function tickSql(p: TickPlan, hotScan: string, sourceList: string, forParquet: boolean, journalScan = '', journalSources = ''): string {
  const parts: string[] = [];
  if (p.tickFiles.length > 0 && p.parquetRanges.length > 0) {
    parts.push(`SELECT ts, 0 AS part, seq AS k, 0 AS o, price, size, bid, ask, side, source, seq, flags FROM ${readParquet(p.tickFiles)} ` +
      `WHERE ${rangeWhere(p.parquetRanges)}`);
  }
  if (p.journalRows > 0) {
    parts.push(`SELECT ts, 0 AS part, seq AS k, ord AS o, ${nanNull('price')} AS price, size, ${nanNull('bid')} AS bid, ${nanNull('ask')} AS ask, ${HOT_SIDE} AS side, ` +
      `${journalSources}[source_id::INTEGER + 1] AS source, seq, flags FROM ${journalScan}()`);
  }
  if (p.hotRows > 0 || parts.length === 0) parts.push(`SELECT ts, 1 AS part, ord AS k, 0 AS o, ${nanNull('price')} AS price, size, ${nanNull('bid')} AS bid, ${nanNull('ask')} AS ask, ${HOT_SIDE} AS side, ` +
    `${sourceList}[source_id::INTEGER + 1] AS source, seq, flags FROM ${hotScan}()`);
  const cols = forParquet
    ? `ts, epoch_ms(ts) AS ts_ms, price, size, bid, ask, side, source, seq, flags`
    : `epoch_us(ts)::DOUBLE AS ts_us, price, size::DOUBLE AS size, bid, ask, side, source, seq::DOUBLE AS seq, flags::DOUBLE AS flags`;
  // Order. DuckDB keeps the row order of ONE file scan (preserve_insertion_order, the default: row groups keep
  // their batch order), and each compactor file is sorted by (ts, seq); so one file and no hot or journal rows
  // needs no sort, which is the common "one day" case (day.parquet) and saves most of the time of a
  // million-row answer. It does NOT keep the order across a multi-file read_parquet (measured: whole files
  // come out of place under parallel scans), so anything else is sorted explicitly. bench/api.bench.ts checks
  // the order of a million-row answer; test/api-historical.test.ts compares exact order.
  if (p.hotRows === 0 && p.journalRows === 0 && parts.length === 1 && p.tickFiles.length === 1) return `SELECT ${cols} FROM (${parts[0] as string})`;
  return `SELECT ${cols} FROM (${parts.join(' UNION ALL ')}) ORDER BY part, ts, k, o`;
}

/**
 * SQL list of source names for journal rows, indexed by source id: the names the compactor writes to
 * Parquet for them (engine.ts `sourceName`: the configured name, else `source<id>`), so an hour reads the
 * same before and after it is compacted.
 */
export function journalSourceListSql(names: readonly string[], rows: { length: number; sourceId: Uint8Array }): string {
  let max = 0;
  for (let i = 0; i < rows.length; i++) if ((rows.sourceId[i] as number) > max) max = rows.sourceId[i] as number;
  const list: string[] = [];
  for (let i = 0; i <= max; i++) list.push(sqlStr(names[i] || `source${i}`));
  return `list_value(${list.join(', ')})`;
}

export interface BarPlan extends TickPlan {
  bucketUs: number;
  /** 1-minute bar files used for `barRanges` (empty: ticks everywhere). */
  barFiles: string[];
  /** Whole minutes inside `parquetRanges` answered from bar files (ordered, disjoint; empty with no bar files). */
  barRanges: Range[];
}

/**
 * Decide which whole minutes of the Parquet part come from 1-minute bar files (bucket ≥ 1 min only). Journal
 * hours never do (their bar file, if any, may be from an older compaction of fewer ticks).
 * `journalHours` are left out of the file lists.
 */
export async function planBars(dataDir: string, symbol: string, p: TickPlan, bucketUs: number, journalHours: ReadonlySet<number> = new Set()): Promise<BarPlan> {
  const plan: BarPlan = { ...p, bucketUs, barFiles: [], barRanges: [] };
  if (bucketUs < US_PER_MIN || bucketUs % US_PER_MIN !== 0) return plan;
  const m0 = Math.ceil(p.startUs / US_PER_MIN) * US_PER_MIN;
  const m1 = Math.floor(p.cutUs / US_PER_MIN) * US_PER_MIN;
  if (m1 - m0 < 2 * US_PER_MIN) return plan;
  const ranges = clipRanges(p.parquetRanges, m0, m1);
  if (ranges.length === 0) return plan;
  const bars = await filesFor(dataDir, 'bars', symbol, m0, m1, journalHours);
  if (bars.files.length === 0) return plan;
  const ticks = await filesFor(dataDir, 'ticks', symbol, m0, m1, journalHours);
  // every hour with ticks must have its bars, else use ticks everywhere (never a silent hole)
  for (const h of ticks.hours) if (!journalHours.has(h) && !bars.hours.has(h)) return plan;
  plan.barFiles = bars.files;
  plan.barRanges = ranges;
  return plan;
}

/**
 * OHLCV bars (ts_us DOUBLE = bucket start, open, high, low, close, volume, trades, buy_volume, sell_volume,
 * vwap), buckets aligned to the Unix epoch in UTC. Only rows with a price (trades) count, as in the
 * compactor's bars.
 */
export function barSql(p: BarPlan, hotScan: string, forParquet: boolean, journalScan = ''): string {
  const parts: string[] = [];
  /** 1-minute bars asked and bar files used: their rows are already the answer (no bucket is shared with ticks). */
  const direct = p.bucketUs === US_PER_MIN && p.barFiles.length > 0;
  const tickCols = `epoch_us(ts) AS t, 0 AS part, seq AS k, price AS open, price AS high, price AS low, price AS close, size::DOUBLE AS volume, 1.0 AS trades, ` +
    `CASE WHEN side = 'B' THEN size ELSE 0 END::DOUBLE AS buy_volume, CASE WHEN side = 'S' THEN size ELSE 0 END::DOUBLE AS sell_volume, price * size AS pv`;
  const scanCols = (part: number): string => `epoch_us(ts) AS t, ${part} AS part, ord AS k, price AS open, price AS high, price AS low, price AS close, size::DOUBLE AS volume, 1.0 AS trades, ` +
    `CASE WHEN flags & ${SIDE_MASK} = ${TradeFlag.SIDE_BUY} THEN size ELSE 0 END::DOUBLE AS buy_volume, ` +
    `CASE WHEN flags & ${SIDE_MASK} = ${TradeFlag.SIDE_SELL} THEN size ELSE 0 END::DOUBLE AS sell_volume, price * size AS pv`;
  // Parquet minutes answered from ticks: everything of the Parquet part that bar files do not answer
  const tickRanges = p.barFiles.length > 0 ? subtractRanges(p.parquetRanges, p.barRanges) : p.parquetRanges;
  if (p.barFiles.length > 0 && !direct) {
    parts.push(`SELECT epoch_us(ts) AS t, 0 AS part, 0 AS k, open, high, low, close, volume::DOUBLE AS volume, trades::DOUBLE AS trades, ` +
      `buy_volume::DOUBLE AS buy_volume, sell_volume::DOUBLE AS sell_volume, coalesce(vwap * volume, 0) AS pv FROM ${readParquet(p.barFiles)} ` +
      `WHERE ${rangeWhere(p.barRanges)}`);
  }
  if (p.tickFiles.length > 0 && tickRanges.length > 0) {
    parts.push(`SELECT ${tickCols} FROM ${readParquet(p.tickFiles)} WHERE price IS NOT NULL AND (${rangeWhere(tickRanges)})`);
  }
  // journal rows: ordered after Parquet rows of the same µs (their hours never share one) by (ts, seq)
  if (p.journalRows > 0) parts.push(`SELECT ${scanCols(0).replace('ord AS k', 'seq AS k')} FROM ${journalScan}() WHERE NOT isnan(price)`);
  if (p.hotRows > 0 || parts.length === 0) parts.push(`SELECT ${scanCols(1)} FROM ${hotScan}() WHERE NOT isnan(price)`);
  const b = p.bucketUs;
  const agg = `SELECT (t // ${b}) * ${b} AS bucket, first(open ORDER BY t, part, k) AS open, max(high) AS high, min(low) AS low, ` +
    `last(close ORDER BY t, part, k) AS close, sum(volume) AS volume, sum(trades) AS trades, sum(buy_volume) AS buy_volume, ` +
    `sum(sell_volume) AS sell_volume, CASE WHEN sum(volume) > 0 THEN sum(pv) / sum(volume) END AS vwap FROM (${parts.join(' UNION ALL ')}) GROUP BY 1`;
  const cols = forParquet
    ? `make_timestamptz(bucket) AS ts, (bucket // 1000) AS ts_ms, open, high, low, close, volume::BIGINT AS volume, trades::BIGINT AS trades, buy_volume::BIGINT AS buy_volume, sell_volume::BIGINT AS sell_volume, vwap`
    : `bucket::DOUBLE AS ts_us, open, high, low, close, volume, trades, buy_volume, sell_volume, vwap`;
  if (!direct) return `SELECT ${cols} FROM (${agg}) ORDER BY bucket`;
  // 1-minute bars from bar files: their rows are the answer as they are; only the tick-made bars outside them
  // are aggregated (no bucket is shared between the two: bar ranges are whole minutes). One sort over the whole.
  const fileRows = `SELECT epoch_us(ts) AS bucket, open, high, low, close, volume::DOUBLE AS volume, trades::DOUBLE AS trades, buy_volume::DOUBLE AS buy_volume, ` +
    `sell_volume::DOUBLE AS sell_volume, vwap FROM ${readParquet(p.barFiles)} WHERE ${rangeWhere(p.barRanges)}`;
  return `SELECT ${cols} FROM (${fileRows} UNION ALL ${agg}) ORDER BY bucket`;
}
