/**
 * `tickpipe verify`: check every Parquet file under `<data-dir>/ticks` and `<data-dir>/bars` against the
 * layout contract (layout.ts). Problems (severity 'error' unless noted):
 *
 * | code | what |
 * |---|---|
 * | bad-partition | a directory or file name that is not `symbol=<SYM>` / `interval=1m` / `date=YYYY-MM-DD` / `hour=HH.parquet` / `day.parquet` (stale `.tmp` files: 'warning') |
 * | unreadable | DuckDB cannot read the file (or its columns are not the tick/bar columns) |
 * | ts-outside-partition | a row's `ts` lies outside the file's hour (hour file) or date (day file) |
 * | ts-ms-mismatch | `ts_ms` is not floor(ts / 1000 µs) |
 * | unsorted | rows are not in (ts, seq) order (ticks) / ts order (bars), in file order |
 * | duplicate-rows | identical rows, or ticks sharing (source, seq, ts) with seq > 0 |
 * | hour-beside-day | an hour file beside `day.parquet` whose rows differ from the day file's rows of that hour (readers ignore it: rows would be lost); when they are equal it is a leftover of an interrupted consolidation ('warning': the next compaction cycle removes it) |
 * | bars-mismatch | 1-minute bars that do not match the ticks of the same partition (bars, trades, volume, OHLC), or bars without ticks / ticks with trades but no bars |
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { CompactorDb } from './duck.ts';
import { BAR_FIGURES_SELECT, diffFigures, TICK_FIGURES_SELECT } from './figures.ts';
import { readFileFigures } from './hour-writer.ts';
import {
  BAR_COLUMN_NAMES, BAR_INTERVAL_1M, BARS_DIR, checkDataDir, dateOfDirName, DAY_FILE, hourOfFileName, isTmpName, MICROS_PER_DAY, MICROS_PER_HOUR,
  MICROS_PER_MINUTE, readParquetSql, TICK_COLUMN_NAMES, TICKS_DIR,
} from './layout.ts';

export interface VerifyProblem {
  severity: 'error' | 'warning';
  code: 'bad-partition' | 'unreadable' | 'ts-outside-partition' | 'ts-ms-mismatch' | 'unsorted' | 'duplicate-rows' | 'hour-beside-day' | 'bars-mismatch';
  path: string;
  message: string;
}

export interface VerifyReport {
  files: number;
  rows: number;
  problems: VerifyProblem[];
  errors: number;
  warnings: number;
}

interface PFile { kind: 'ticks' | 'bars'; symbolDir: string; date: string; name: string; path: string; start: number; end: number; hour: string | null }

const SYMBOL_RE = /^symbol=[^/]+$/;

async function ls(dir: string): Promise<{ name: string; dir: boolean }[]> {
  try {
    return (await readdir(dir, { withFileTypes: true })).map((e) => ({ name: e.name, dir: e.isDirectory() })).sort((a, b) => (a.name < b.name ? -1 : 1));
  } catch {
    return [];
  }
}

async function listPartition(root: string, kind: 'ticks' | 'bars', problems: VerifyProblem[], out: PFile[]): Promise<void> {
  for (const s of await ls(root)) {
    const sp = join(root, s.name);
    if (!s.dir || !SYMBOL_RE.test(s.name)) {
      problems.push({ severity: 'error', code: 'bad-partition', path: sp, message: `not a symbol=<SYM> directory` });
      continue;
    }
    for (const d of await ls(sp)) {
      const dp = join(sp, d.name);
      const date = d.dir ? dateOfDirName(d.name) : null;
      if (date === null || Number.isNaN(Date.parse(`${date}T00:00:00Z`)) || new Date(`${date}T00:00:00Z`).toISOString().slice(0, 10) !== date) {
        problems.push({ severity: 'error', code: 'bad-partition', path: dp, message: 'not a date=YYYY-MM-DD directory (or not a real date)' });
        continue;
      }
      const day0 = Date.parse(`${date}T00:00:00Z`) * 1000;
      for (const f of await ls(dp)) {
        const fp = join(dp, f.name);
        if (isTmpName(f.name)) {
          problems.push({ severity: 'warning', code: 'bad-partition', path: fp, message: 'temporary file left by an interrupted write (removed by the next retention run)' });
          continue;
        }
        const hour = hourOfFileName(f.name);
        if (!f.dir && hour !== null) out.push({ kind, symbolDir: s.name, date, name: f.name, path: fp, start: day0 + Number(hour) * MICROS_PER_HOUR, end: day0 + (Number(hour) + 1) * MICROS_PER_HOUR, hour });
        else if (!f.dir && f.name === DAY_FILE) out.push({ kind, symbolDir: s.name, date, name: f.name, path: fp, start: day0, end: day0 + MICROS_PER_DAY, hour: null });
        else problems.push({ severity: 'error', code: 'bad-partition', path: fp, message: 'not hour=HH.parquet or day.parquet' });
      }
    }
  }
}

async function one(conn: DuckDBConnection, sql: string): Promise<unknown[]> {
  return (await CompactorDb.rows(conn, sql))[0] ?? [];
}

/** Checks of one file; returns its row count (or -1 when unreadable). */
async function checkFile(conn: DuckDBConnection, f: PFile, problems: VerifyProblem[]): Promise<number> {
  const src = readParquetSql(f.path);
  const want = f.kind === 'ticks' ? TICK_COLUMN_NAMES : BAR_COLUMN_NAMES;
  let cols: string[];
  try {
    cols = (await CompactorDb.rows(conn, `DESCRIBE SELECT * FROM ${src}`)).map((r) => String(r[0]));
  } catch (err) {
    problems.push({ severity: 'error', code: 'unreadable', path: f.path, message: (err as Error).message.split('\n')[0] ?? 'unreadable' });
    return -1;
  }
  // Tick files written before src_index existed have the first ten columns only.
  const missing = want.filter((c) => !cols.includes(c) && c !== 'src_index');
  if (missing.length > 0) {
    problems.push({ severity: 'error', code: 'unreadable', path: f.path, message: `missing column(s) ${missing.join(', ')}` });
    return -1;
  }
  try {
    const order = f.kind === 'ticks' ? 'ts < pts OR (ts = pts AND seq < pseq)' : 'ts <= pts';
    const r = await one(conn,
      `WITH t AS (SELECT ts, ts_ms, ${f.kind === 'ticks' ? 'seq' : '0::UINTEGER AS seq'}, file_row_number AS rn FROM read_parquet('${f.path.replaceAll("'", "''")}', hive_partitioning = false, file_row_number = true)), ` +
      `o AS (SELECT ts, seq, lag(ts) OVER (ORDER BY rn) AS pts, lag(seq) OVER (ORDER BY rn) AS pseq FROM t) ` +
      `SELECT (SELECT count(*) FROM t)::DOUBLE, ` +
      `(SELECT count(*) FROM t WHERE epoch_us(ts) < ${f.start} OR epoch_us(ts) >= ${f.end})::DOUBLE, ` +
      `(SELECT count(*) FROM t WHERE ts_ms <> epoch_us(ts) // 1000)::DOUBLE, ` +
      `(SELECT count(*) FROM o WHERE ${order})::DOUBLE, ` +
      `(SELECT epoch_us(min(ts)) FROM t)::DOUBLE, (SELECT epoch_us(max(ts)) FROM t)::DOUBLE`);
    const [rows, outside, msBad, unsorted, minTs, maxTs] = r.map((x) => (x === null ? null : Number(x)));
    if ((outside ?? 0) > 0) {
      problems.push({ severity: 'error', code: 'ts-outside-partition', path: f.path,
        message: `${outside} row(s) outside [${new Date(f.start / 1000).toISOString()}, ${new Date(f.end / 1000).toISOString()}) (min ${new Date((minTs ?? 0) / 1000).toISOString()}, max ${new Date((maxTs ?? 0) / 1000).toISOString()})` });
    }
    if ((msBad ?? 0) > 0) problems.push({ severity: 'error', code: 'ts-ms-mismatch', path: f.path, message: `${msBad} row(s) whose ts_ms is not floor(ts / 1 ms)` });
    if ((unsorted ?? 0) > 0) problems.push({ severity: 'error', code: 'unsorted', path: f.path, message: `${unsorted} row(s) out of ${f.kind === 'ticks' ? '(ts, seq)' : 'ts'} order` });
    const dupSql = f.kind === 'ticks'
      ? `SELECT (SELECT count(*) FROM ${src}) - (SELECT count(*) FROM (SELECT DISTINCT * FROM ${src})), ` +
        `(SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM ${src} WHERE seq > 0 GROUP BY source, seq, ts HAVING count(*) > 1))`
      : `SELECT (SELECT count(*) FROM ${src}) - (SELECT count(DISTINCT ts) FROM ${src}), 0`;
    const [dupRows, dupKeys] = (await one(conn, dupSql)).map(Number);
    if ((dupRows ?? 0) > 0 || (dupKeys ?? 0) > 0) {
      problems.push({ severity: 'error', code: 'duplicate-rows', path: f.path,
        message: f.kind === 'ticks' ? `${dupRows} identical row(s), ${dupKeys} row(s) repeating a (source, seq, ts) key` : `${dupRows} bar(s) repeating a minute` });
    }
    return rows ?? 0;
  } catch (err) {
    problems.push({ severity: 'error', code: 'unreadable', path: f.path, message: (err as Error).message.split('\n')[0] ?? 'unreadable' });
    return -1;
  }
}

/** Bars of a partition file vs. the ticks of the same partition. */
async function checkBars(conn: DuckDBConnection, bars: PFile, ticks: PFile | undefined, problems: VerifyProblem[]): Promise<void> {
  if (ticks === undefined) {
    problems.push({ severity: 'error', code: 'bars-mismatch', path: bars.path, message: 'bars without a tick file for the same partition' });
    return;
  }
  try {
    const t = await one(conn,
      `SELECT count(DISTINCT epoch_us(ts) // ${MICROS_PER_MINUTE})::DOUBLE, count(*)::DOUBLE, coalesce(sum(size), 0)::DOUBLE, ` +
      `coalesce(max(price), 0)::DOUBLE, coalesce(min(price), 0)::DOUBLE FROM ${readParquetSql(ticks.path)} WHERE price IS NOT NULL`);
    const b = await one(conn,
      `SELECT count(*)::DOUBLE, coalesce(sum(trades), 0)::DOUBLE, coalesce(sum(volume), 0)::DOUBLE, coalesce(max(high), 0)::DOUBLE, coalesce(min(low), 0)::DOUBLE, ` +
      `coalesce(bool_and(low <= open AND open <= high AND low <= close AND close <= high AND buy_volume + sell_volume <= volume), true) FROM ${readParquetSql(bars.path)}`);
    const names = ['bars', 'trades', 'volume', 'high', 'low'];
    const diffs: string[] = [];
    for (let i = 0; i < names.length; i++) if (Number(t[i]) !== Number(b[i])) diffs.push(`${names[i]} ${String(b[i])} (ticks say ${String(t[i])})`);
    if (b[5] !== true) diffs.push('a bar has open/close outside [low, high] or buy+sell volume above its volume');
    if (diffs.length > 0) problems.push({ severity: 'error', code: 'bars-mismatch', path: bars.path, message: `bars disagree with ${ticks.path}: ${diffs.join('; ')}` });
  } catch (err) {
    problems.push({ severity: 'error', code: 'bars-mismatch', path: bars.path, message: (err as Error).message.split('\n')[0] ?? 'bars check failed' });
  }
}

/** Verify every Parquet file of a data directory (see the module comment). */
export async function verifyDataDir(dataDir: string, opts: { db?: CompactorDb; onFile?: (path: string) => void } = {}): Promise<VerifyReport> {
  checkDataDir(dataDir);
  const problems: VerifyProblem[] = [];
  const files: PFile[] = [];
  await listPartition(join(dataDir, TICKS_DIR), 'ticks', problems, files);
  const barsRoot = join(dataDir, BARS_DIR);
  for (const iv of await ls(barsRoot)) {
    if (!iv.dir || iv.name !== `interval=${BAR_INTERVAL_1M}`) {
      problems.push({ severity: 'error', code: 'bad-partition', path: join(barsRoot, iv.name), message: `not an interval=${BAR_INTERVAL_1M} directory` });
      continue;
    }
    await listPartition(join(barsRoot, iv.name), 'bars', problems, files);
  }
  const db = opts.db ?? await CompactorDb.open({ threads: 1 });
  let rows = 0;
  try {
    await db.exclusive(async (conn) => {
      const key = (f: PFile): string => `${f.kind}/${f.symbolDir}/${f.date}/${f.name}`;
      const byKey = new Map(files.map((f) => [key(f), f]));
      const readable = new Set<string>();
      for (const f of files) {
        opts.onFile?.(f.path);
        const n = await checkFile(conn, f, problems);
        if (n >= 0) {
          readable.add(key(f));
          if (f.kind === 'ticks') rows += n;
        }
      }
      for (const f of files) {
        if (!readable.has(key(f))) continue;
        // hour files beside a day file
        if (f.hour !== null && byKey.has(`${f.kind}/${f.symbolDir}/${f.date}/${DAY_FILE}`)) {
          const day = byKey.get(`${f.kind}/${f.symbolDir}/${f.date}/${DAY_FILE}`) as PFile;
          const select = f.kind === 'ticks' ? TICK_FIGURES_SELECT : BAR_FIGURES_SELECT;
          const a = await readFileFigures(conn, f.path, select);
          const b = await readFileFigures(conn, day.path, select, `epoch_us(ts) >= ${f.start} AND epoch_us(ts) < ${f.end}`);
          const diff = diffFigures(a, b);
          problems.push(diff.length === 0
            ? { severity: 'warning', code: 'hour-beside-day', path: f.path, message: `leftover of an interrupted consolidation: ${DAY_FILE} holds the same rows (readers ignore this file; the next compaction cycle removes it)` }
            : { severity: 'error', code: 'hour-beside-day', path: f.path, message: `differs from ${DAY_FILE} for this hour (${diff.join(', ')}): readers ignore hour files beside a day file, so these rows are not seen` });
        }
        // bars vs ticks
        if (f.kind === 'bars') {
          const t = byKey.get(`ticks/${f.symbolDir}/${f.date}/${f.name}`);
          if (t === undefined || readable.has(key(t))) await checkBars(conn, f, t, problems); // an unreadable tick file is reported already
        } else if (!(f.hour !== null && byKey.has(`ticks/${f.symbolDir}/${f.date}/${DAY_FILE}`))) { // beside a day file: checked above
          const b = byKey.get(`bars/${f.symbolDir}/${f.date}/${f.name}`);
          if (b === undefined) {
            const trades = Number((await one(conn, `SELECT count(*)::DOUBLE FROM ${readParquetSql(f.path)} WHERE price IS NOT NULL`))[0]);
            if (trades > 0) problems.push({ severity: 'error', code: 'bars-mismatch', path: f.path, message: `${trades} trade(s) but no 1-minute bar file for this partition` });
          }
        }
      }
    });
  } finally {
    if (opts.db === undefined) await db.close();
  }
  const errors = problems.filter((p) => p.severity === 'error').length;
  return { files: files.length, rows, problems, errors, warnings: problems.length - errors };
}
