/**
 * Parquet layout on disk (DESIGN.md §6): paths, partition names, column contract, and the rule readers
 * follow to see every row exactly once.
 *
 * ```
 * <data-dir>/ticks/symbol=<SYM>/date=<YYYY-MM-DD>/hour=<HH>.parquet          one file per symbol-hour (UTC)
 * <data-dir>/ticks/symbol=<SYM>/date=<YYYY-MM-DD>/day.parquet                after day consolidation
 * <data-dir>/bars/interval=1m/symbol=<SYM>/date=<YYYY-MM-DD>/hour=<HH>.parquet
 * <data-dir>/bars/interval=1m/symbol=<SYM>/date=<YYYY-MM-DD>/day.parquet
 * ```
 *
 * - Dates and hours are **UTC**. `symbol` and `date` (and `interval`) are Hive partition keys taken from
 *   directory names; they are not stored inside the files. The hour is in the file name only.
 * - Every file is written by DuckDB with ZSTD, sorted by `ts` then `seq`, first under a hidden temporary
 *   name (`.<name>.<tag>.tmp`, which no `*.parquet` glob matches), verified by re-reading it, fsynced,
 *   then renamed into place (atomic on POSIX), and the directory is fsynced.
 *
 * Tick columns (in this order):
 *
 * | column  | DuckDB type   | Parquet                                   | meaning |
 * |---------|---------------|-------------------------------------------|---------|
 * | ts      | TIMESTAMPTZ   | INT64 TIMESTAMP(MICROS, isAdjustedToUTC=true) | event time, µs, UTC instant |
 * | ts_ms   | BIGINT        | INT64                                     | floor(ts / 1000 µs), Unix ms |
 * | price   | DOUBLE        | DOUBLE                                    | trade price in real units; NULL when unknown (a quote) |
 * | size    | UINTEGER      | INT32 (UINT_32)                           | contracts / shares |
 * | bid     | DOUBLE        | DOUBLE                                    | bid in force; NULL when unknown |
 * | ask     | DOUBLE        | DOUBLE                                    | ask in force; NULL when unknown |
 * | side    | VARCHAR       | BYTE_ARRAY (UTF8), dictionary             | 'B' aggressor buy, 'S' aggressor sell, '' unknown |
 * | source  | VARCHAR       | BYTE_ARRAY (UTF8), dictionary             | source name (e.g. 'sierra', 'dxlink') |
 * | seq     | UINTEGER      | INT32 (UINT_32)                           | per-source, per-symbol sequence from ingest |
 * | flags   | UINTEGER      | INT32 (UINT_32)                           | `TradeFlag` bits of schemas/records.ts (sub-trades, validator verdicts) |
 * | src_index | UINTEGER    | INT32 (UINT_32)                           | record index in the source (the `.scid` record for Sierra files; spot checks re-read it); NULL when unknown |
 *
 * `src_index` was added after the first ten columns: files written before it lack the column. Readers that
 * mix both read with `union_by_name = true` (DuckDB) or select the first ten columns; consolidation does.
 *
 * Why TIMESTAMPTZ: DuckDB writes it as a Parquet TIMESTAMP with `isAdjustedToUTC=true`, which pyarrow /
 * pandas read as `datetime64[us, UTC]` and polars as `Datetime("us", "UTC")`: UTC-aware, no guessing.
 * (A plain TIMESTAMP is written with `isAdjustedToUTC=false` and comes back naive.) `ts_ms` is there for
 * consumers that want a plain integer (the Redis contract uses `ts_ms` too).
 *
 * Why NULL for unknown prices: the ring carries NaN for "unknown" (records.ts); SQL, polars and DuckDB
 * treat NULL as missing, pandas shows both as NaN.
 *
 * Bar columns: ts (TIMESTAMPTZ, bar start), ts_ms, open, high, low, close, volume, trades, buy_volume,
 * sell_volume, vwap. Bars count only rows with a price (trades); buy/sell volume use `side`.
 *
 * ## Reading: exactly once
 *
 * Day consolidation writes and verifies `day.parquet` first, and only then removes the hour files of that
 * date. So at every instant every row is in at least one file, and for a moment (between the rename of the
 * day file and the unlink of the hours, or after a crash between the two) a date directory may hold both
 * forms. The rule, applied by {@link resolvePartitionFiles} and by every engine query:
 *
 * > **In a date directory that holds `day.parquet`, ignore the `hour=*.parquet` files.**
 *
 * The next `consolidateDay` of that date finishes the job (it checks that each remaining hour is contained
 * in the day file before removing it). External readers that glob `symbol=*\/date=*\/*.parquet` directly
 * (DuckDB, polars, pandas) read every row once except during that short window on the one date being
 * consolidated (normally just after midnight UTC for the previous day); to be safe at any time, either read
 * `date=*\/day.parquet` for closed days and `hour=*.parquet` only for the open day, or dedupe on
 * `(symbol, source, seq, ts)`.
 */
import { join } from 'node:path';
import { engineError } from '../../engine/errors.ts';

export const TICKS_DIR = 'ticks';
export const BARS_DIR = 'bars';
export const BAR_INTERVAL_1M = '1m';
export const DAY_FILE = 'day.parquet';
export const MICROS_PER_HOUR = 3_600_000_000;
export const MICROS_PER_DAY = 86_400_000_000;
export const MICROS_PER_MINUTE = 60_000_000;
/** Retention: partitions older than this many days are purged. */
export const RETENTION_DAYS_DEFAULT = 365;

export const TICK_COLUMN_NAMES = ['ts', 'ts_ms', 'price', 'size', 'bid', 'ask', 'side', 'source', 'seq', 'flags', 'src_index'] as const;
export const BAR_COLUMN_NAMES = [
  'ts', 'ts_ms', 'open', 'high', 'low', 'close', 'volume', 'trades', 'buy_volume', 'sell_volume', 'vwap',
] as const;

const HOUR_FILE_RE = /^hour=(\d\d)\.parquet$/;
const DATE_DIR_RE = /^date=(\d{4}-\d\d-\d\d)$/;
const DATE_RE = /^\d{4}-\d\d-\d\d$/;
const SYMBOL_SAFE_RE = /[A-Za-z0-9_.\-$^#]/;
/** DuckDB expands these in file paths given to read_parquet; a data dir must not contain them. */
const GLOB_CHARS_RE = /[*?[\]{}]/;

export type PartitionKind = 'ticks' | 'bars';

/**
 * Symbol as a path segment: characters outside `[A-Za-z0-9_.-$^#]` (e.g. '/' in a spread name) and a
 * leading '.' are percent-encoded (%XX, upper-case hex), so any registry symbol is one safe directory name.
 * Ordinary symbols (MNQZ25, ESZ25, $SPX) are unchanged.
 */
export function encodeSymbolSegment(symbol: string): string {
  if (typeof symbol !== 'string' || symbol.length === 0 || symbol.length > 64) {
    throw engineError('ENGINE_ERR_INVALID_ARG', `compactor: bad symbol ${JSON.stringify(symbol)}`, { symbol: String(symbol) });
  }
  let out = '';
  for (let i = 0; i < symbol.length; i++) {
    const ch = symbol[i] as string;
    const code = ch.charCodeAt(0);
    if (code < 0x20 || code > 0x7e) {
      throw engineError('ENGINE_ERR_INVALID_ARG', `compactor: symbol ${JSON.stringify(symbol)} has a non-printable or non-ASCII character`, { symbol });
    }
    out += (i === 0 && ch === '.') || !SYMBOL_SAFE_RE.test(ch) ? `%${code.toString(16).toUpperCase().padStart(2, '0')}` : ch;
  }
  return out;
}

export function checkDataDir(dataDir: string): void {
  if (typeof dataDir !== 'string' || dataDir.length === 0) {
    throw engineError('ENGINE_ERR_INVALID_ARG', 'compactor: dataDir must be a non-empty path', {});
  }
  if (GLOB_CHARS_RE.test(dataDir) || dataDir.includes("'")) {
    throw engineError('ENGINE_ERR_INVALID_ARG', `compactor: data dir ${JSON.stringify(dataDir)} contains a glob character or a quote (* ? [ ] { } ')`, { dataDir });
  }
}

export function checkDate(date: string): void {
  if (typeof date !== 'string' || !DATE_RE.test(date) || Number.isNaN(Date.parse(`${date}T00:00:00Z`)) || new Date(`${date}T00:00:00Z`).toISOString().slice(0, 10) !== date) {
    throw engineError('ENGINE_ERR_INVALID_ARG', `compactor: bad date ${JSON.stringify(date)} (want YYYY-MM-DD)`, { date: String(date) });
  }
}

/** UTC date `YYYY-MM-DD` and hour `HH` of a Unix-µs instant. */
export function utcDateHour(tsMicros: number): { date: string; hour: string } {
  const iso = new Date(Math.floor(tsMicros / 1000)).toISOString();
  return { date: iso.slice(0, 10), hour: iso.slice(11, 13) };
}

/** Unix µs of `YYYY-MM-DD`T00:00Z. */
export function dateStartMicros(date: string): number {
  checkDate(date);
  return Date.parse(`${date}T00:00:00Z`) * 1000;
}

export function partitionDir(dataDir: string, kind: PartitionKind, symbol: string, date: string): string {
  const sym = `symbol=${encodeSymbolSegment(symbol)}`;
  const d = `date=${date}`;
  return kind === 'ticks' ? join(dataDir, TICKS_DIR, sym, d) : join(dataDir, BARS_DIR, `interval=${BAR_INTERVAL_1M}`, sym, d);
}

export const hourFileName = (hour: string): string => `hour=${hour}.parquet`;

/** Hour (`'00'`..`'23'`) of an `hour=HH.parquet` file name, or null for anything else. */
export function hourOfFileName(name: string): string | null {
  const m = HOUR_FILE_RE.exec(name);
  if (!m) return null;
  const h = Number(m[1]);
  return h <= 23 ? (m[1] as string) : null;
}

/** Date of a `date=YYYY-MM-DD` directory name, or null. */
export function dateOfDirName(name: string): string | null {
  const m = DATE_DIR_RE.exec(name);
  return m ? (m[1] as string) : null;
}

let tmpCounter = 0;
/** Hidden temporary name beside `finalPath` (same directory, so the rename is atomic). */
export function tmpPathFor(dir: string, finalName: string): string {
  tmpCounter = (tmpCounter + 1) >>> 0;
  return join(dir, `.${finalName}.${process.pid}-${tmpCounter}-${Math.floor(Math.random() * 0xffffffff).toString(16)}.tmp`);
}

export const isTmpName = (name: string): boolean => name.startsWith('.') && name.endsWith('.tmp');

/** Quote a string as a SQL literal. */
export const sqlString = (s: string): string => `'${s.replaceAll("'", "''")}'`;

/**
 * COPY options of every file the compactor writes. ZSTD, and Parquet format V2 encodings
 * (DELTA_BINARY_PACKED for ts/ts_ms/seq, DELTA_LENGTH_BYTE_ARRAY / BYTE_STREAM_SPLIT where a dictionary
 * does not fit): on a realistic tape they make the tick file ~2.7x smaller than V1 (2.5 vs 6.7 bytes/row)
 * and the write no slower. Current pyarrow (pandas), polars and DuckDB read them; very old readers
 * (pyarrow before ~8, Spark's vectorised reader before 3.3) do not: switch to 'V1' here if one must.
 */
export const PARQUET_VERSION = 'V2';
export const PARQUET_COPY_OPTIONS = `FORMAT parquet, COMPRESSION zstd, PARQUET_VERSION ${PARQUET_VERSION}`;

/**
 * `read_parquet(...)` of one file or a list, with Hive partitioning OFF: DuckDB would otherwise add the
 * `symbol`/`date` directory keys as columns (and a day file copied from hour files would carry them).
 */
export function readParquetSql(paths: string | readonly string[]): string {
  if (typeof paths === 'string') return `read_parquet(${sqlString(paths)}, hive_partitioning = false)`;
  // union_by_name: files written before a column was added (src_index) read as NULL in that column.
  return `read_parquet([${paths.map(sqlString).join(', ')}], hive_partitioning = false, union_by_name = true)`;
}
