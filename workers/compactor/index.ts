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
