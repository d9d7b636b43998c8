/**
 * Tasks the compactor's piscina pool runs (pool-boot.mjs → default export). Every task returns a plain
 * result object; a failure is returned as `{ kind: 'error', error: WireError }` (never thrown), because
 * piscina clones thrown errors without their `code` and `detail`.
 *
 * Each pool thread keeps one DuckDB session (CompactorDb) for all its tasks.
 */
import { engineError, toWire, type WireError } from '../../engine/errors.ts';
import { runBackfillFile, type BackfillFileTask, type BackfillFileResult } from './backfill.ts';
import { consolidateDay } from './consolidate.ts';
import { CompactorDb } from './duck.ts';
import { writeHourParquet } from './hour-writer.ts';
import { splitJournalHourFile } from './journal-read.ts';
import { purgeOlderThan } from './partitions.ts';

export interface CompactHourTask {
  kind: 'compact-hour';
  dataDir: string;
  /** The closed hour's `.tpj` file. */
  journalPath: string;
  hourStartMicros: number;
  /** Names known so far, by id (symbol ids u16, source ids u8). */
  symbolNames: Record<number, string>;
  sourceNames: Record<number, string>;
  duckdbThreads?: number;
}

export interface SymbolHourResult {
  symbol: string;
  rows: number;
  path: string;
  bytes: number;
  bars: number;
}

export type CompactHourResult =
  | { kind: 'need-names'; symbolIds: number[]; sourceIds: number[] }
  | {
    kind: 'compacted';
    /** Records of every kind read from the journal file (what deleteHour must find). */
    records: number;
    tickRecords: number;
    otherRecords: number;
    tailBytes: number;
    symbols: SymbolHourResult[];
    elapsedMs: number;
  };

export interface ConsolidateTask { kind: 'consolidate'; dataDir: string; symbol: string; date: string; duckdbThreads?: number }
export interface ConsolidateTaskResult { kind: 'consolidated'; symbol: string; date: string; ticksState: string; barsState: string; hoursMerged: number; rows: number }
export interface PurgeTask { kind: 'purge'; dataDir: string; cutoffDate: string }
export interface PurgeTaskResult { kind: 'purged'; cutoffDate: string; removed: string[]; removedTmp: string[] }

export type PoolTask = CompactHourTask | ConsolidateTask | PurgeTask | BackfillFileTask;
export type PoolResult = CompactHourResult | ConsolidateTaskResult | PurgeTaskResult | BackfillFileResult | { kind: 'error'; error: WireError };

let db: CompactorDb | null = null;
let dbThreads = 0;

async function session(threads = 1): Promise<CompactorDb> {
  if (db !== null && dbThreads === threads && !db.closed) return db;
  if (db !== null) await db.close();
  db = await CompactorDb.open({ threads });
  dbThreads = threads;
  return db;
}

async function compactHour(t: CompactHourTask): Promise<CompactHourResult> {
  const t0 = performance.now();
  const split = splitJournalHourFile(t.journalPath, t.hourStartMicros);
  const needSym: number[] = [];
  const needSrc = new Set<number>();
  for (const s of split.bySymbol) {
    if (t.symbolNames[s.symbolId] === undefined) needSym.push(s.symbolId);
    for (const src of s.sourceIds) if (t.sourceNames[src] === undefined) needSrc.add(src);
  }
  if (needSym.length > 0 || needSrc.size > 0) return { kind: 'need-names', symbolIds: needSym, sourceIds: [...needSrc] };
  const conn = await session(t.duckdbThreads);
  const symbols: SymbolHourResult[] = [];
  for (const s of split.bySymbol) {
    const symbol = t.symbolNames[s.symbolId] as string;
    const res = await writeHourParquet({
      dataDir: t.dataDir, symbol, hourStartMicros: t.hourStartMicros, columns: s.columns, count: s.count,
      source: s.sourceIds.map((id) => t.sourceNames[id] as string), db: conn,
    });
    symbols.push({ symbol, rows: res.rows, path: res.path, bytes: res.bytes + res.bars.bytes, bars: res.bars.rows });
  }
  return {
    kind: 'compacted', records: split.records, tickRecords: split.tickRecords, otherRecords: split.otherRecords, tailBytes: split.tailBytes,
    symbols, elapsedMs: performance.now() - t0,
  };
}

async function run(task: PoolTask): Promise<PoolResult> {
  switch (task.kind) {
    case 'compact-hour':
      return compactHour(task);
    case 'consolidate': {
      const r = await consolidateDay(task.dataDir, task.symbol, task.date, { db: await session(task.duckdbThreads) });
      return {
        kind: 'consolidated', symbol: task.symbol, date: task.date, ticksState: r.ticks.state, barsState: r.bars.state,
        hoursMerged: r.ticks.hoursMerged, rows: r.ticks.figures?.rows ?? 0,
      };
    }
    case 'purge': {
      const r = await purgeOlderThan(task.dataDir, task.cutoffDate);
      return { kind: 'purged', cutoffDate: r.cutoffDate, removed: r.removed, removedTmp: r.removedTmp };
    }
    case 'backfill-file':
      return runBackfillFile(task, await session(task.duckdbThreads));
    default:
      throw engineError('ENGINE_ERR_INTERNAL', `compactor pool: unknown task kind ${JSON.stringify((task as { kind?: unknown }).kind)}`);
  }
}

/** Piscina handler. */
export default async function handle(task: PoolTask): Promise<PoolResult> {
  try {
    return await run(task);
  } catch (err) {
    return { kind: 'error', error: toWire(err) };
  }
}
