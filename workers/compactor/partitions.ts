/**
 * Partition listing for readers (the exactly-once rule of layout.ts) and retention purge.
 */
import { readdir, rmdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { engineError } from '../../engine/errors.ts';
import { listDir, removeFile, removeTree } from './files.ts';
import {
  BAR_INTERVAL_1M, BARS_DIR, checkDataDir, checkDate, dateOfDirName, DAY_FILE, encodeSymbolSegment, hourOfFileName, isTmpName,
  type PartitionKind, RETENTION_DAYS_DEFAULT, TICKS_DIR,
} from './layout.ts';

export interface ResolveOptions {
  /** First date, inclusive (`YYYY-MM-DD`); default: no bound. */
  fromDate?: string;
  /** Last date, inclusive; default: no bound. */
  toDate?: string;
}

/**
 * The Parquet files that hold every row of `symbol` exactly once, in time order: per date directory,
 * `day.parquet` when it exists (its hour files, if any are left over, are ignored), otherwise the
 * `hour=HH.parquet` files. Pass the list to DuckDB `read_parquet([...])`.
 */
export async function resolvePartitionFiles(dataDir: string, kind: PartitionKind, symbol: string, opts: ResolveOptions = {}): Promise<string[]> {
  checkDataDir(dataDir);
  if (opts.fromDate !== undefined) checkDate(opts.fromDate);
  if (opts.toDate !== undefined) checkDate(opts.toDate);
  const symDir = kind === 'ticks'
    ? join(dataDir, TICKS_DIR, `symbol=${encodeSymbolSegment(symbol)}`)
    : join(dataDir, BARS_DIR, `interval=${BAR_INTERVAL_1M}`, `symbol=${encodeSymbolSegment(symbol)}`);
  const out: string[] = [];
  for (const name of await listDir(symDir)) {
    const date = dateOfDirName(name);
    if (date === null) continue;
    if (opts.fromDate !== undefined && date < opts.fromDate) continue;
    if (opts.toDate !== undefined && date > opts.toDate) continue;
    const dir = join(symDir, name);
    const files = await listDir(dir);
    if (files.includes(DAY_FILE)) {
      out.push(join(dir, DAY_FILE));
      continue;
    }
    for (const f of files) if (hourOfFileName(f) !== null) out.push(join(dir, f));
  }
  return out;
}

export interface PurgeOptions {
  /** "Now" for the default cutoff (ms since epoch); default Date.now(). */
  nowMs?: number;
  /** Temporary files (crash leftovers) older than this are removed too; default 1 h. */
  staleTmpMs?: number;
}

export interface PurgeResult {
  /** Partitions with a date before this were removed. */
  cutoffDate: string;
  /** Removed date directories (ticks and bars). */
  removed: string[];
  /** Stale temporary files removed from the remaining partitions. */
  removedTmp: string[];
}

/** Default cutoff: today (UTC) minus RETENTION_DAYS_DEFAULT days. */
export function defaultCutoffDate(nowMs: number = Date.now()): string {
  const d = new Date(nowMs);
  const today = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
  return new Date(today - RETENTION_DAYS_DEFAULT * 86_400_000).toISOString().slice(0, 10);
}

/** Directories `<root>/<prefix>=*` (sorted); a missing root is empty. */
async function subdirs(root: string, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of await listDir(root)) if (name.startsWith(`${prefix}=`)) out.push(join(root, name));
  return out;
}

/**
 * Remove every tick and bar partition dated before `cutoffDate` (default: 365 days before today, UTC);
 * the cutoff date itself is kept. Also removes compactor temporary files older than `staleTmpMs` left by
 * a crash, and symbol directories left empty.
 */
export async function purgeOlderThan(dataDir: string, cutoffDate?: string | Date, opts: PurgeOptions = {}): Promise<PurgeResult> {
  checkDataDir(dataDir);
  let cutoff: string;
  if (cutoffDate === undefined) cutoff = defaultCutoffDate(opts.nowMs);
  else if (cutoffDate instanceof Date) {
    if (Number.isNaN(cutoffDate.getTime())) throw engineError('ENGINE_ERR_INVALID_ARG', 'compactor: cutoff date is an invalid Date', {});
    cutoff = cutoffDate.toISOString().slice(0, 10);
  } else {
    checkDate(cutoffDate);
    cutoff = cutoffDate;
  }
  const nowMs = opts.nowMs ?? Date.now();
  const staleTmpMs = opts.staleTmpMs ?? 3_600_000;
  const symbolDirs = await subdirs(join(dataDir, TICKS_DIR), 'symbol');
  for (const interval of await subdirs(join(dataDir, BARS_DIR), 'interval')) symbolDirs.push(...(await subdirs(interval, 'symbol')));
  const removed: string[] = [];
  const removedTmp: string[] = [];
  for (const symDir of symbolDirs) {
    for (const name of await listDir(symDir)) {
      const date = dateOfDirName(name);
      if (date === null) continue;
      const dir = join(symDir, name);
      if (date < cutoff) {
        await removeTree(dir);
        removed.push(dir);
        continue;
      }
      for (const f of await listDir(dir)) {
        if (!isTmpName(f)) continue;
        const p = join(dir, f);
        const st = await stat(p).catch(() => null);
        if (st !== null && nowMs - st.mtimeMs > staleTmpMs) {
          await removeFile(p);
          removedTmp.push(p);
        }
      }
    }
    if ((await readdir(symDir).catch(() => ['?'])).length === 0) await rmdir(symDir).catch(() => undefined);
  }
  return { cutoffDate: cutoff, removed, removedTmp };
}
