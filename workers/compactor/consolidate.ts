/**
 * Day consolidation: the hour files of one symbol-date become one `day.parquet` (ticks, then bars).
 *
 * Order, chosen so that no row is ever absent from the directory (layout.ts, "Reading: exactly once"):
 *  1. figures of every hour file (and a check that each holds only its own hour, so hour order is time
 *     order);
 *  2. DuckDB copies the hour files, in hour order, into a temporary file (each hour is sorted and the
 *     hours are disjoint, so the result is sorted by (ts, seq) without a sort);
 *  3. verify: rows, checksum and volume equal the sums over the hours, min/max ts equal theirs;
 *  4. fsync, rename to `day.parquet`, fsync the directory;
 *  5. only then remove the hour files (and fsync the directory).
 * A crash between 4 and 5 leaves `day.parquet` beside some hour files; readers ignore hour files where a
 * day file exists, and the next run finishes the job: it removes each remaining hour only after checking
 * that the day file holds exactly that hour's rows (same figures over the hour's time range), and fails
 * with ENGINE_ERR_COMPACT (touching nothing) if one does not match.
 */
import { join } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { engineError } from '../../engine/errors.ts';
import { type CompactorDb, compactError, withDb } from './duck.ts';
import { BAR_FIGURES_SELECT, diffFigures, type FileFigures, sumFigures, TICK_FIGURES_SELECT } from './figures.ts';
import { fileBytes, fsyncPath, listDir, removeFile, removeQuietly } from './files.ts';
import { assertFiguresEqual, commitFile, readFileFigures } from './hour-writer.ts';
import {
  checkDataDir, checkDate, DAY_FILE, dateStartMicros, hourOfFileName, MICROS_PER_HOUR, PARQUET_COPY_OPTIONS, partitionDir,
  type PartitionKind, readParquetSql, sqlString, tmpPathFor,
} from './layout.ts';

export interface ConsolidateTestHooks {
  /** After `day.parquet` is in place, before any hour file is removed (throw here to simulate a crash). */
  afterDayFile?: (kind: PartitionKind, dayPath: string) => void | Promise<void>;
}

export interface ConsolidateOptions {
  db?: CompactorDb;
  testHooks?: ConsolidateTestHooks;
}

export interface DayConsolidation {
  /**
   * `consolidated`: hour files merged into a new day file; `recovered`: a day file was already there and
   * the leftover hour files it contains were removed; `already`: only a day file, nothing to do;
   * `empty`: no files at all.
   */
  state: 'consolidated' | 'recovered' | 'already' | 'empty';
  /** The day file, or null when the date has no data. */
  path: string | null;
  hoursMerged: number;
  hoursRemoved: number;
  /** Figures of the day file (null when empty). */
  figures: FileFigures | null;
  bytes: number;
}

export interface ConsolidateResult {
  ticks: DayConsolidation;
  bars: DayConsolidation;
}

/** Merge the hour files of `symbol` on `date` (UTC, `YYYY-MM-DD`) into `day.parquet`, ticks then bars. */
export async function consolidateDay(dataDir: string, symbol: string, date: string, opts: ConsolidateOptions = {}): Promise<ConsolidateResult> {
  checkDataDir(dataDir);
  checkDate(date);
  return withDb(opts.db, (db) => db.exclusive(async (conn) => {
    const ticks = await consolidateKind(conn, 'ticks', dataDir, symbol, date, opts.testHooks);
    const bars = await consolidateKind(conn, 'bars', dataDir, symbol, date, opts.testHooks);
    return { ticks, bars };
  }));
}

function hourRangeWhere(hourStart: number): string {
  return `epoch_us(ts) >= ${hourStart} AND epoch_us(ts) < ${hourStart + MICROS_PER_HOUR}`;
}

async function consolidateKind(
  conn: DuckDBConnection, kind: PartitionKind, dataDir: string, symbol: string, date: string, hooks: ConsolidateTestHooks | undefined,
): Promise<DayConsolidation> {
  const select = kind === 'ticks' ? TICK_FIGURES_SELECT : BAR_FIGURES_SELECT;
  const dir = partitionDir(dataDir, kind, symbol, date);
  const names = await listDir(dir);
  const hours: { hour: string; path: string; start: number }[] = [];
  const day0 = dateStartMicros(date);
  for (const name of names) {
    const h = hourOfFileName(name);
    if (h !== null) hours.push({ hour: h, path: join(dir, name), start: day0 + Number(h) * MICROS_PER_HOUR });
  }
  const dayPath = join(dir, DAY_FILE);
  const hasDay = names.includes(DAY_FILE);
  if (!hasDay && hours.length === 0) return { state: 'empty', path: null, hoursMerged: 0, hoursRemoved: 0, figures: null, bytes: 0 };

  if (hasDay) {
    // Finish an interrupted consolidation: remove only hours whose rows the day file holds exactly.
    for (const h of hours) {
      const hourFig = await readFileFigures(conn, h.path, select);
      const dayFig = await readFileFigures(conn, dayPath, select, hourRangeWhere(h.start));
      const diff = diffFigures(hourFig, dayFig);
      if (diff.length > 0) {
        throw engineError('ENGINE_ERR_COMPACT',
          `compactor: ${h.path} and ${dayPath} disagree for hour ${h.hour} (${diff.join(', ')}); nothing removed: inspect and rebuild the day`,
          { path: h.path, dayPath, mismatch: diff.join(','), reason: 'day-hour-conflict' });
      }
    }
    for (const h of hours) await removeFile(h.path);
    if (hours.length > 0) await fsyncPath(dir, true);
    const figures = await readFileFigures(conn, dayPath, select);
    return { state: hours.length > 0 ? 'recovered' : 'already', path: dayPath, hoursMerged: 0, hoursRemoved: hours.length, figures, bytes: await fileBytes(dayPath) };
  }

  const parts: FileFigures[] = [];
  for (const h of hours) {
    const f = await readFileFigures(conn, h.path, select);
    if (f.rows > 0 && ((f.minTsMicros as number) < h.start || (f.maxTsMicros as number) >= h.start + MICROS_PER_HOUR)) {
      throw engineError('ENGINE_ERR_COMPACT', `compactor: ${h.path} holds rows outside hour ${h.hour}; not consolidating ${date}`, { path: h.path, reason: 'hour-range' });
    }
    parts.push(f);
  }
  const expected = sumFigures(parts);
  const tmp = tmpPathFor(dir, DAY_FILE);
  let bytes: number;
  try {
    try {
      // Hour files are sorted and disjoint: reading them in hour order (insertion order is preserved)
      // yields (ts, seq) order with no sort and no materialised copy.
      await conn.run(`COPY (SELECT * FROM ${readParquetSql(hours.map((h) => h.path))}) TO ${sqlString(tmp)} (${PARQUET_COPY_OPTIONS})`);
    } catch (err) {
      throw compactError(`DuckDB could not write ${dayPath}`, err, { path: dayPath, symbol, date });
    }
    const actual = await readFileFigures(conn, tmp, select);
    assertFiguresEqual(`${kind} ${symbol} ${date} (day of ${hours.length} hours)`, dayPath, expected, actual);
    bytes = await fileBytes(tmp);
    await commitFile(tmp, dayPath, dir);
  } catch (err) {
    await removeQuietly(tmp);
    throw err;
  }
  await hooks?.afterDayFile?.(kind, dayPath);
  for (const h of hours) await removeFile(h.path);
  await fsyncPath(dir, true);
  return { state: 'consolidated', path: dayPath, hoursMerged: hours.length, hoursRemoved: hours.length, figures: expected, bytes };
}
