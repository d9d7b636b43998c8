/**
 * Compaction of one symbol-hour: typed-array columns → verified, ZSTD Parquet tick file → 1-minute bars.
 *
 * Sequence (each step must succeed before the next; any failure removes the temporary file and leaves
 * whatever was in place before untouched):
 *  1. one JS pass over the columns: validate, decide whether a sort is needed, compute the figures;
 *  2. refuse when the date is already consolidated into `day.parquet` (a new hour file there would
 *     duplicate rows for readers; see layout.ts);
 *  3. DuckDB `COPY (SELECT … FROM tickpipe_scan()) TO '.hour=HH.parquet.<tag>.tmp'` (unsorted input: from
 *     `(SELECT * FROM tickpipe_scan() ORDER BY ts, seq)`), ZSTD, Parquet V2 encodings (layout.ts);
 *  4. re-read the temporary file with DuckDB and compare rows, min/max ts, checksum and volume with the
 *     JS figures (ENGINE_ERR_COMPACT on any difference);
 *  5. fsync, rename over `hour=HH.parquet` (so writing the same hour again replaces it: idempotent),
 *     fsync the directory;
 *  6. bars from the final tick file, verified against the JS figures (trades, traded volume, minutes),
 *     written the same way.
 * Only when the returned promise resolves may the caller delete the hour's journal.
 */
import { join } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { engineError, type ErrorDetail } from '../../engine/errors.ts';
import { SIDE_MASK, TradeFlag } from '../../schemas/records.ts';
import { CompactorDb, compactError, withDb } from './duck.ts';
import { diffFigures, type FileFigures, scanTickColumns, TICK_FIGURES_SELECT, type TickColumns } from './figures.ts';
import { ensureDir, exists, fileBytes, fsyncPath, removeQuietly, renameInto } from './files.ts';
import {
  checkDataDir, checkDate, DAY_FILE, hourFileName, MICROS_PER_HOUR, MICROS_PER_MINUTE, PARQUET_COPY_OPTIONS, partitionDir, readParquetSql, sqlString,
  tmpPathFor, utcDateHour,
} from './layout.ts';

/** Test-only hooks into the write sequence (never set them in production code). */
export interface CompactTestHooks {
  /** After validation, before DuckDB writes the temporary file. */
  beforeCopy?: (tmpPath: string) => void | Promise<void>;
  /** After the temporary file is written, before it is verified. */
  beforeVerify?: (tmpPath: string) => void | Promise<void>;
}

export interface WriteHourOptions {
  dataDir: string;
  symbol: string;
  /** Unix µs of the hour's start (a whole UTC hour). Every ts must lie in [start, start + 1 h). */
  hourStartMicros: number;
  columns: TickColumns;
  count: number;
  /** The source name of every row, or names indexed by `columns.sourceId` (at most 256). */
  source: string | readonly string[];
  /** Session to use (one per worker thread); without it a session is opened and closed for this call. */
  db?: CompactorDb;
  testHooks?: CompactTestHooks;
}

export interface BarsWriteResult {
  path: string;
  /** Bars written (minutes with at least one trade). */
  rows: number;
  trades: number;
  /** Σ volume, exact decimal text. */
  volume: string;
  bytes: number;
}

export interface HourWriteResult extends FileFigures {
  path: string;
  bytes: number;
  /** Wall time of the whole call, ms. */
  elapsedMs: number;
  /** The input was already in (ts, seq) order (no sort was needed). */
  sorted: boolean;
  bars: BarsWriteResult;
}

const SOURCE_NAME_RE = /^[\x20-\x7e]{1,64}$/;

/** SQL expression of the `source` column (validates the names). */
export function sourceSql(source: string | readonly string[], withIds: boolean): string {
  const names = typeof source === 'string' ? [source] : source;
  if (names.length === 0 || names.length > 256) {
    throw engineError('ENGINE_ERR_INVALID_ARG', `compactor: give 1 to 256 source names, got ${names.length}`, { sources: names.length });
  }
  for (const n of names) {
    if (typeof n !== 'string' || !SOURCE_NAME_RE.test(n)) {
      throw engineError('ENGINE_ERR_INVALID_ARG', `compactor: bad source name ${JSON.stringify(n)} (1-64 printable ASCII characters)`, {});
    }
  }
  if (!withIds) {
    if (typeof source !== 'string' && names.length !== 1) {
      throw engineError('ENGINE_ERR_INVALID_ARG', 'compactor: several source names need columns.sourceId', { sources: names.length });
    }
    return sqlString(names[0] as string);
  }
  return `list_value(${names.map(sqlString).join(', ')})[source_id::INTEGER + 1]`;
}

/**
 * The projection from the scan columns (ts TIMESTAMPTZ, price, bid, ask DOUBLE, size, flags, seq UINTEGER,
 * source_id UTINYINT, src_index UINTEGER) to the tick file's columns (layout.ts); `src_index` is NULL unless
 * `withSrcIndex` (the caller gave `columns.srcIndex`). `from` is `tickpipe_scan()` here; the bench
 * baseline applies it to a staging table.
 */
export function tickSelectSql(source: string, from = 'tickpipe_scan()', withSrcIndex = false): string {
  const buy = TradeFlag.SIDE_BUY;
  const sell = TradeFlag.SIDE_SELL;
  return `SELECT ts, epoch_ms(ts) AS ts_ms, CASE WHEN isnan(price) THEN NULL ELSE price END AS price, size, ` +
    `CASE WHEN isnan(bid) THEN NULL ELSE bid END AS bid, CASE WHEN isnan(ask) THEN NULL ELSE ask END AS ask, ` +
    `CASE flags & ${SIDE_MASK} WHEN ${buy} THEN 'B' WHEN ${sell} THEN 'S' ELSE '' END AS side, ` +
    `${source} AS source, seq, flags, ${withSrcIndex ? 'src_index' : 'NULL::UINTEGER AS src_index'} FROM ${from}`;
}

/** Figures of a Parquet file read back by DuckDB (`select` is TICK_FIGURES_SELECT or BAR_FIGURES_SELECT). */
export async function readFileFigures(conn: DuckDBConnection, path: string, select: string, where = ''): Promise<FileFigures> {
  let row;
  try {
    row = (await CompactorDb.rows(conn, `SELECT ${select} FROM ${readParquetSql(path)}${where ? ` WHERE ${where}` : ''}`))[0];
  } catch (err) {
    throw compactError(`cannot read back ${path}`, err, { path });
  }
  if (row === undefined) throw engineError('ENGINE_ERR_COMPACT', `compactor: no figures from ${path}`, { path });
  return {
    rows: Number(row[0]),
    minTsMicros: row[1] === null ? null : Number(row[1]),
    maxTsMicros: row[2] === null ? null : Number(row[2]),
    checksum: String(row[3]),
    volume: String(row[4]),
  };
}

/** Throw ENGINE_ERR_COMPACT naming the figures that differ. */
export function assertFiguresEqual(what: string, path: string, expected: FileFigures, actual: FileFigures): void {
  const diff = diffFigures(expected, actual);
  if (diff.length === 0) return;
  const detail: ErrorDetail = { path, mismatch: diff.join(',') };
  for (const k of diff) {
    detail[`expected_${k}`] = expected[k as keyof FileFigures];
    detail[`actual_${k}`] = actual[k as keyof FileFigures];
  }
  const parts = diff.map((k) => `${k} expected ${String(expected[k as keyof FileFigures])} got ${String(actual[k as keyof FileFigures])}`);
  throw engineError('ENGINE_ERR_COMPACT', `compactor: verification of ${what} failed (${parts.join('; ')}); the file was not put in place`, detail);
}

/** fsync `tmp`, rename it over `finalPath`, fsync the directory. */
export async function commitFile(tmp: string, finalPath: string, dir: string): Promise<void> {
  await fsyncPath(tmp, false);
  await renameInto(tmp, finalPath);
  await fsyncPath(dir, true);
}

/**
 * Write, verify and put in place the tick file of one symbol-hour, then its 1-minute bars. Idempotent:
 * writing the same hour again replaces both files.
 */
export async function writeHourParquet(opts: WriteHourOptions): Promise<HourWriteResult> {
  const t0 = performance.now();
  const { dataDir, symbol, hourStartMicros, columns, count } = opts;
  checkDataDir(dataDir);
  if (!Number.isSafeInteger(hourStartMicros) || hourStartMicros < 0 || hourStartMicros % MICROS_PER_HOUR !== 0) {
    throw engineError('ENGINE_ERR_INVALID_ARG', `compactor: hourStartMicros ${hourStartMicros} is not a whole UTC hour in Unix µs`, { hourStartMicros });
  }
  const withIds = columns.sourceId !== undefined;
  const srcSql = sourceSql(opts.source, withIds);
  const sourceCount = typeof opts.source === 'string' ? 1 : opts.source.length;
  const scan = scanTickColumns(columns, count, hourStartMicros, sourceCount);
  const { date, hour } = utcDateHour(hourStartMicros);
  const dir = partitionDir(dataDir, 'ticks', symbol, date);
  const finalPath = join(dir, hourFileName(hour));
  const hooks = opts.testHooks;

  return withDb(opts.db, (db) => db.exclusive(async (conn) => {
    if (await exists(join(dir, DAY_FILE))) {
      throw engineError('ENGINE_ERR_COMPACT',
        `compactor: ${symbol} ${date} is already consolidated into ${DAY_FILE}; a new hour file would duplicate rows (rebuild the day instead)`,
        { path: join(dir, DAY_FILE), symbol, date, reason: 'day-consolidated' });
    }
    await ensureDir(dir);
    const tmp = tmpPathFor(dir, hourFileName(hour));
    let bytes: number;
    try {
      await hooks?.beforeCopy?.(tmp);
      // Unsorted input: sort the raw scan columns (45 B/row) before the projection adds its strings.
      const from = scan.sorted ? 'tickpipe_scan()' : '(SELECT * FROM tickpipe_scan() ORDER BY ts, seq)';
      const sql = `COPY (${tickSelectSql(srcSql, from, columns.srcIndex !== undefined)}) TO ${sqlString(tmp)} (${PARQUET_COPY_OPTIONS})`;
      try {
        // Sorted input: one scanning thread keeps file order = input order, and DuckDB holds no copy.
        await db.runWithScan(conn, { columns, count, maxThreads: scan.sorted ? 1 : db.threads }, sql);
      } catch (err) {
        throw compactError(`DuckDB could not write ${finalPath}`, err, { path: finalPath, symbol, date, hour });
      }
      await hooks?.beforeVerify?.(tmp);
      const actual = await readFileFigures(conn, tmp, TICK_FIGURES_SELECT);
      assertFiguresEqual(`${symbol} ${date} hour ${hour}`, finalPath, scan, actual);
      bytes = await fileBytes(tmp);
      await commitFile(tmp, finalPath, dir);
    } catch (err) {
      await removeQuietly(tmp);
      throw err;
    }
    const bars = await writeBarsLocked(conn, dataDir, symbol, date, hour, finalPath, {
      rows: scan.tradeMinutes, trades: scan.trades, volume: scan.tradeVolume,
    });
    return {
      path: finalPath,
      rows: scan.rows,
      minTsMicros: scan.minTsMicros,
      maxTsMicros: scan.maxTsMicros,
      checksum: scan.checksum,
      volume: scan.volume,
      bytes,
      elapsedMs: performance.now() - t0,
      sorted: scan.sorted,
      bars,
    };
  }));
}

interface BarExpect {
  rows: number;
  trades: number;
  volume: string;
}

/**
 * 1-minute bars of a tick file. Columns: layout.ts. Counts rows with a price only. Minutes are bucketed
 * on the integer `epoch_us(ts) // 60 000 000` (UTC minutes): `date_trunc` on a TIMESTAMPTZ goes through
 * ICU calendars and was 4x slower for the whole query.
 */
function barSelectSql(tickPath: string): string {
  return `WITH t AS (SELECT epoch_us(ts) // ${MICROS_PER_MINUTE} AS bar, ts AS t_us, seq, price, size, side ` +
    `FROM ${readParquetSql(tickPath)} WHERE price IS NOT NULL) ` +
    `SELECT to_timestamp((bar * 60)::DOUBLE) AS ts, bar * 60000 AS ts_ms, first(price ORDER BY t_us, seq) AS open, max(price) AS high, ` +
    `min(price) AS low, last(price ORDER BY t_us, seq) AS close, sum(size)::BIGINT AS volume, count(*)::BIGINT AS trades, ` +
    `coalesce(sum(size) FILTER (WHERE side = 'B'), 0)::BIGINT AS buy_volume, ` +
    `coalesce(sum(size) FILTER (WHERE side = 'S'), 0)::BIGINT AS sell_volume, ` +
    `CASE WHEN sum(size) > 0 THEN sum(price * size) / sum(size) END AS vwap ` +
    `FROM t GROUP BY bar ORDER BY bar`;
}

async function writeBarsLocked(
  conn: DuckDBConnection, dataDir: string, symbol: string, date: string, hour: string, tickPath: string, expectIn: BarExpect | null,
): Promise<BarsWriteResult> {
  const dir = partitionDir(dataDir, 'bars', symbol, date);
  const finalPath = join(dir, hourFileName(hour));
  let expect = expectIn;
  if (expect === null) {
    try {
      const r = (await CompactorDb.rows(conn,
        `SELECT count(DISTINCT epoch_us(ts) // ${MICROS_PER_MINUTE})::DOUBLE, count(*)::DOUBLE, coalesce(sum(size)::HUGEINT, 0::HUGEINT)::VARCHAR ` +
        `FROM ${readParquetSql(tickPath)} WHERE price IS NOT NULL`))[0] ?? [];
      expect = { rows: Number(r[0]), trades: Number(r[1]), volume: String(r[2]) };
    } catch (err) {
      throw compactError(`cannot read ${tickPath}`, err, { path: tickPath });
    }
  }
  await ensureDir(dir);
  const tmp = tmpPathFor(dir, hourFileName(hour));
  try {
    try {
      await conn.run(`COPY (${barSelectSql(tickPath)}) TO ${sqlString(tmp)} (${PARQUET_COPY_OPTIONS})`);
    } catch (err) {
      throw compactError(`DuckDB could not write bars ${finalPath}`, err, { path: finalPath, symbol, date, hour });
    }
    let got;
    try {
      got = (await CompactorDb.rows(conn,
        `SELECT count(*)::DOUBLE, coalesce(sum(trades), 0)::DOUBLE, coalesce(sum(volume)::HUGEINT, 0::HUGEINT)::VARCHAR, ` +
        `coalesce(bool_and(buy_volume + sell_volume <= volume AND low <= open AND open <= high AND low <= close AND close <= high), true) ` +
        `FROM ${readParquetSql(tmp)}`))[0] ?? [];
    } catch (err) {
      throw compactError(`cannot read back bars ${finalPath}`, err, { path: finalPath });
    }
    const rows = Number(got[0]);
    const trades = Number(got[1]);
    const volume = String(got[2]);
    if (rows !== expect.rows || trades !== expect.trades || volume !== expect.volume || got[3] !== true) {
      throw engineError('ENGINE_ERR_COMPACT',
        `compactor: verification of bars ${finalPath} failed (bars ${rows}/${expect.rows}, trades ${trades}/${expect.trades}, volume ${volume}/${expect.volume}, consistent ${String(got[3])}); the file was not put in place`,
        { path: finalPath, rows, trades, volume, expectedRows: expect.rows, expectedTrades: expect.trades, expectedVolume: expect.volume });
    }
    const bytes = await fileBytes(tmp);
    await commitFile(tmp, finalPath, dir);
    return { path: finalPath, rows, trades, volume, bytes };
  } catch (err) {
    await removeQuietly(tmp);
    throw err;
  }
}

export interface WriteBarsOptions {
  dataDir: string;
  symbol: string;
  /** `YYYY-MM-DD` (UTC). */
  date: string;
  /** `'00'`..`'23'`. */
  hour: string;
  db?: CompactorDb;
}

/**
 * (Re)build the 1-minute bars of an existing hour tick file (e.g. after a crash between the tick file
 * and its bars). Verified against figures DuckDB reads from the tick file.
 */
export async function writeHourBars(opts: WriteBarsOptions): Promise<BarsWriteResult> {
  checkDataDir(opts.dataDir);
  checkDate(opts.date);
  if (!/^([01]\d|2[0-3])$/.test(opts.hour)) {
    throw engineError('ENGINE_ERR_INVALID_ARG', `compactor: bad hour ${JSON.stringify(opts.hour)} (want '00'..'23')`, {});
  }
  const tickPath = join(partitionDir(opts.dataDir, 'ticks', opts.symbol, opts.date), hourFileName(opts.hour));
  if (!(await exists(tickPath))) {
    throw engineError('ENGINE_ERR_FILE_IO', `compactor: no tick file ${tickPath} to build bars from`, { path: tickPath, errno: 'ENOENT' });
  }
  return withDb(opts.db, (db) => db.exclusive((conn) => writeBarsLocked(conn, opts.dataDir, opts.symbol, opts.date, opts.hour, tickPath, null)));
}
