/** The journal: append-only, group-committed, hour-partitioned durability for live records (see journal.ts). */
export {
  APPEND_BAD_TIME, APPEND_COMPACTED_HOUR, APPEND_FULL, DEFAULT_COMMIT_INTERVAL_MS, DEFAULT_COMMIT_RECORDS, Journal,
  type JournalHour, type JournalOptions, type JournalRecovery, type JournalStats, type RecoveryAction, type ReplayStats,
  type ReplayVisitor,
} from './journal.ts';
export { JournalCursor, type ReplaySource } from './cursor.ts';
export { HOUR_MICROS, hourFilePath, hourStartOf, isHourStart, slotViewsOf } from './format.ts';
