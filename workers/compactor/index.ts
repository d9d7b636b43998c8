/** Parquet compaction core (DESIGN.md §2 compactor, §6 Parquet layout). Layout and reading rules: layout.ts. */
export { CompactorDb, type CompactorDbOptions, CHUNK_ROWS } from './duck.ts';
export {
  writeHourParquet, writeHourBars, type WriteHourOptions, type WriteBarsOptions, type HourWriteResult, type BarsWriteResult,
  type CompactTestHooks,
} from './hour-writer.ts';
export { consolidateDay, type ConsolidateOptions, type ConsolidateResult, type DayConsolidation } from './consolidate.ts';
export { purgeOlderThan, resolvePartitionFiles, defaultCutoffDate, type PurgeOptions, type PurgeResult, type ResolveOptions } from './partitions.ts';
export { scanTickColumns, type TickColumns, type FileFigures, type TickScan, PRICE_SCALE, CHECKSUM_PRICE_LIMIT } from './figures.ts';
export {
  TICK_COLUMN_NAMES, BAR_COLUMN_NAMES, RETENTION_DAYS_DEFAULT, partitionDir, encodeSymbolSegment, utcDateHour, type PartitionKind,
} from './layout.ts';
export { CompactionService, type CompactionServiceOptions, type CompactionStatus, type CompactionError, type CompactionState } from './service.ts';
export { CompactorPool, type CompactorPoolOptions } from './pool.ts';
export { runBackfillFile, type BackfillFileTask, type BackfillFileResult } from './backfill.ts';
export { verifyDataDir, type VerifyProblem, type VerifyReport } from './verify.ts';
export { readJournalHour, splitJournalHourFile, forEachJournalBlock, walkJournalBlocksSync } from './journal-read.ts';
