/**
 * CompactionService: the hourly compactor of DESIGN.md §2, run from the main thread with every heavy step
 * in a piscina pool (workers/compactor/tasks.ts), so the uWS thread never blocks on DuckDB or file I/O.
 *
 * One cycle (at start, at every hour boundary + `closeGraceMs`, and on back-off retries):
 *  1. **Closed journal hours.** Lists `<journalDir>/<YYYY-MM-DD>/<HH>.tpj`; an hour is closed when
 *     `now >= hourEnd + closeGraceMs` and it has no `<HH>.compacted` marker (engine/journal's mark of a
 *     deleted hour). Oldest first, a pool task reads the file read-only (journal-read.ts: whole CRC-checked
 *     blocks), splits TRADE/QUOTE records by symbol and writes one verified Parquet per symbol-hour plus
 *     1-minute bars (hour-writer.ts: temp file, verify rows/min/max/checksum, fsync, rename). Only then
 *     `deleteJournalHour(hour, recordsRead)` is called: the owner of the live Journal (the validator
 *     thread) deletes it with `Journal.deleteHour(hour, { expectedRecords })`, which refuses if late
 *     records arrived meanwhile; the hour is then compacted again next cycle. Re-running an hour rewrites
 *     the same files (atomic rename), so a crash anywhere leaves every tick exactly once in Parquet.
 *  2. **Day consolidation.** A date with hour files becomes `day.parquet` (consolidate.ts) once
 *     `now >= dayEnd + consolidateAfterMs` and no journal hour of that date is still pending.
 *  3. **Retention.** Partitions older than `retentionDays` are purged (partitions.ts).
 * A failure (DuckDB error, disk full, unwritable directory, a corrupt journal) keeps the journal, is
 * recorded in `status()` and the cycle is retried with exponential back-off (`retryBaseMs` doubling up to
 * `retryMaxMs`). Other hours still proceed.
 *
 * Wiring (engine): construct once with the data dir, a symbol-name lookup (registry), and a
 * `deleteJournalHour` that forwards to the journal owner; `start()` after the journal is open, `close()`
 * at shutdown; put `status()` in /api/v1/status.
 */
import { readdir, rm, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { engineError, isEngineError, toWire, type WireError } from '../../engine/errors.ts';
import { BARS_DIR, checkDataDir, dateOfDirName, hourOfFileName, MICROS_PER_DAY, MICROS_PER_HOUR, RETENTION_DAYS_DEFAULT, TICKS_DIR } from './layout.ts';
import { CompactorPool } from './pool.ts';
import type { CompactHourResult, ConsolidateTaskResult, PurgeTaskResult } from './tasks.ts';

const DAY_DIR_RE = /^(\d{4}-\d\d-\d\d)$/;
const TPJ_RE = /^(\d\d)\.tpj$/;
const MARK_RE = /^(\d\d)\.compacted$/;
const SYMBOL_DIR_RE = /^symbol=(.+)$/;

export interface CompactionServiceOptions {
  dataDir: string;
  /** Journal directory (default `<dataDir>/journal`, engine/journal's layout). */
  journalDir?: string;
  /** Registry name of a symbol id (undefined: unknown; the hour waits and the failure is reported). */
  symbolName(id: number): string | undefined;
  /** Name of a source id for the Parquet `source` column (default: 1 'sierra', 2 'sierra-depth', else `source<id>`). */
  sourceName?(id: number): string;
  /** Delete a compacted hour's journal (forwarded to the Journal owner: `Journal.deleteHour(h, { expectedRecords })`). */
  deleteJournalHour(hourStartMicros: number, expectedRecords: number): Promise<void>;
  /** Keep this many days of Parquet (default 365). */
  retentionDays?: number;
  /** Pool threads (default 1). */
  threads?: number;
  /** Nice value of the pool threads (CompactorPoolOptions.nice; default 0). */
  nice?: number;
  /** DuckDB threads per task (default 1). */
  duckdbThreads?: number;
  /** Wall clock in ms (default Date.now). */
  now?: () => number;
  /** An hour is closed this long after its end (default 10 s: late records of the reorder window). */
  closeGraceMs?: number;
  /** A day is consolidated this long after its end (default 1 h). */
  consolidateAfterMs?: number;
  /** First retry delay after a failure (default 1 s), doubling up to `retryMaxMs` (default 5 min). */
  retryBaseMs?: number;
  retryMaxMs?: number;
  /** Use this pool instead of creating one (not closed by the service). */
  pool?: CompactorPool;
  /**
   * Spot check of each compacted hour against its journal, after the Parquet is written and before the
   * journal is deleted (engine/spotcheck SpotChecker.checkJournalHour). Its findings go to its own status;
   * a failure of the check itself never blocks compaction.
   */
  spotChecker?: { checkJournalHour(journalPath: string, hourStartMicros: number): Promise<unknown> };
}

export type CompactionState = 'stopped' | 'idle' | 'running' | 'retrying' | 'closed';

export interface CompactionError {
  code: string;
  message: string;
  /**
   * The OS error behind it when known: `ENOSPC` for a full disk (from the error's errno, or DuckDB's
   * "No space left on device" message), `EACCES`, `ENOTDIR`, ... ; null otherwise.
   */
  errno: string | null;
  /** ms since epoch. */
  at: number;
  /** Hour (ISO) or date the failure concerns, when known. */
  what: string | null;
}

export interface CompactionStatus {
  state: CompactionState;
  lastRunAt: number | null;
  lastRunMs: number | null;
  lastSuccessAt: number | null;
  nextRunAt: number | null;
  hoursCompacted: number;
  /** Tick rows written (all symbol-hours). */
  rowsWritten: number;
  daysConsolidated: number;
  partitionsPurged: number;
  /** Journal day directories past retention holding only `.compacted` markers, removed. */
  journalDaysPruned: number;
  /** Closed hours still waiting for compaction (as of the last cycle). */
  pendingHours: number;
  durations: { lastHourMs: number | null; maxHourMs: number | null; meanHourMs: number | null; lastCycleMs: number | null };
  failures: number;
  consecutiveFailures: number;
  /** The last cycle failed because the disk is full (an ENOSPC among its errors): free space; retries go on. */
  diskFull: boolean;
  lastError: CompactionError | null;
  /** Errors of the last failed cycle (at most 20). */
  recentErrors: CompactionError[];
  disk: { ticksBytes: number; barsBytes: number; files: number; freeBytes: number | null; measuredAt: number | null };
}

function defaultSourceName(id: number): string {
  if (id === 1) return 'sierra';
  if (id === 2) return 'sierra-depth';
  return `source${id}`;
}

function isoHour(h: number): string {
  return new Date(h / 1000).toISOString().slice(0, 13) + ':00Z';
}

/** OS error names DuckDB spells out in its IO errors (it does not carry an errno). */
const OS_MESSAGES: readonly [RegExp, string][] = [
  [/no space left on device/i, 'ENOSPC'], [/disk quota exceeded/i, 'EDQUOT'], [/permission denied/i, 'EACCES'],
  [/read-only file system/i, 'EROFS'], [/not a directory/i, 'ENOTDIR'],
];

function errnoOf(w: WireError): string | null {
  const d = w.detail?.errno;
  if (typeof d === 'string' && d !== '') return d;
  const m = /\b(ENOSPC|EDQUOT|EACCES|EPERM|EROFS|ENOTDIR|EISDIR|ENOENT|EEXIST|EIO|EMFILE|ENFILE)\b/.exec(w.message);
  if (m) return m[1] as string;
  for (const [re, name] of OS_MESSAGES) if (re.test(w.message)) return name;
  return null;
}

/** The status entry of a failure (code, message, errno, when, what). */
export function compactionErrorOf(err: unknown, what: string | null, at: number): CompactionError {
  const w: WireError = toWire(err);
  return { code: w.code, message: w.message, errno: errnoOf(w), at, what };
}

export class CompactionService {
  readonly dataDir: string;
  readonly journalDir: string;
  readonly #opts: CompactionServiceOptions;
  readonly #pool: CompactorPool;
  readonly #ownPool: boolean;
  readonly #now: () => number;
  readonly #grace: number;
  readonly #consolidateAfter: number;
  readonly #retention: number;
  readonly #retryBase: number;
  readonly #retryMax: number;
  readonly #symbolNames: Record<number, string> = {};
  readonly #sourceNames: Record<number, string> = {};

  #state: CompactionState = 'stopped';
  #timer: ReturnType<typeof setTimeout> | null = null;
  #cycle: Promise<void> | null = null;
  #rerun = false;
  #hourMsSum = 0;
  readonly #st: CompactionStatus = {
    state: 'stopped', lastRunAt: null, lastRunMs: null, lastSuccessAt: null, nextRunAt: null, hoursCompacted: 0, rowsWritten: 0,
    daysConsolidated: 0, partitionsPurged: 0, journalDaysPruned: 0, pendingHours: 0,
    durations: { lastHourMs: null, maxHourMs: null, meanHourMs: null, lastCycleMs: null },
    failures: 0, consecutiveFailures: 0, diskFull: false, lastError: null, recentErrors: [],
    disk: { ticksBytes: 0, barsBytes: 0, files: 0, freeBytes: null, measuredAt: null },
  };

  constructor(opts: CompactionServiceOptions) {
    checkDataDir(opts.dataDir);
    if (typeof opts.symbolName !== 'function' || typeof opts.deleteJournalHour !== 'function') {
      throw engineError('ENGINE_ERR_INVALID_ARG', 'CompactionService needs symbolName(id) and deleteJournalHour(hour, records) functions', {});
    }
    const retention = opts.retentionDays ?? RETENTION_DAYS_DEFAULT;
    if (!Number.isInteger(retention) || retention < 1) {
      throw engineError('ENGINE_ERR_INVALID_ARG', `retentionDays must be an integer >= 1, got ${String(retention)}`, {});
    }
    this.dataDir = opts.dataDir;
    this.journalDir = opts.journalDir ?? join(opts.dataDir, 'journal');
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    this.#grace = opts.closeGraceMs ?? 10_000;
    this.#consolidateAfter = opts.consolidateAfterMs ?? 3_600_000;
    this.#retention = retention;
    this.#retryBase = opts.retryBaseMs ?? 1000;
    this.#retryMax = opts.retryMaxMs ?? 300_000;
    this.#ownPool = opts.pool === undefined;
    this.#pool = opts.pool ?? new CompactorPool({ threads: opts.threads ?? 1, nice: opts.nice ?? 0 });
  }

  /** Start: one cycle now (closed hours left from before), then at every hour boundary. */
  start(): void {
    if (this.#state !== 'stopped') return;
    this.#setState('idle');
    this.#schedule(0);
  }

  /** Run one cycle now (or wait for the running one and run again); resolves when it is done. */
  async runOnce(): Promise<void> {
    if (this.#state === 'closed') throw engineError('ENGINE_ERR_INVALID_ARG', 'CompactionService is closed', {});
    // A cycle already running may have listed the journal before the hours now closed: wait for it, then run
    // a fresh one (a rerun it would schedule goes through a timer, after this call would have returned).
    while (this.#cycle !== null) await this.#cycle.catch(() => undefined);
    this.#rerun = false;
    await this.#runCycle();
  }

  status(): CompactionStatus {
    const s = this.#st;
    return {
      ...s, state: this.#state, durations: { ...s.durations }, lastError: s.lastError === null ? null : { ...s.lastError },
      recentErrors: s.recentErrors.map((e) => ({ ...e })), disk: { ...s.disk },
    };
  }

  /** Stop the timer, wait for a running cycle, close the pool (if the service made it). Idempotent. */
  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#setState('closed');
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#cycle !== null) await this.#cycle.catch(() => undefined);
    if (this.#ownPool) await this.#pool.close();
  }

  // ---- internals -----------------------------------------------------------------------------------

  #setState(s: CompactionState): void {
    if (this.#state === 'closed') return;
    this.#state = s;
  }

  #schedule(delayMs: number): void {
    if (this.#state === 'closed' || this.#state === 'stopped') return;
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#st.nextRunAt = this.#now() + delayMs;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      if (this.#cycle !== null) { this.#rerun = true; return; }
      void this.#runCycle();
    }, delayMs);
    this.#timer.unref();
  }

  /** Delay to the next hour boundary + grace. */
  #untilNextBoundary(): number {
    const now = this.#now();
    const next = Math.floor(now / 3_600_000) * 3_600_000 + 3_600_000 + this.#grace;
    return Math.max(1000, next - now);
  }

  #runCycle(): Promise<void> {
    const p = this.#cycleBody().finally(() => {
      this.#cycle = null;
      if (this.#rerun && this.#state !== 'closed') {
        this.#rerun = false;
        this.#schedule(0);
      }
    });
    this.#cycle = p;
    return p;
  }

  async #cycleBody(): Promise<void> {
    const t0 = this.#now();
    const perf0 = performance.now();
    const wasRetrying = this.#state === 'retrying';
    this.#setState('running');
    this.#st.lastRunAt = t0;
    const errors: CompactionError[] = [];
    try {
      await this.#compactClosedHours(errors);
      if (this.#state !== 'closed') await this.#consolidateDays(errors);
      if (this.#state !== 'closed') await this.#purge(errors);
      if (this.#state !== 'closed') await this.#measureDisk(errors);
    } catch (err) {
      errors.push(compactionErrorOf(err, null, this.#now()));
    }
    const ms = performance.now() - perf0;
    this.#st.lastRunMs = ms;
    this.#st.durations.lastCycleMs = ms;
    if (errors.length > 0) {
      this.#st.failures += errors.length;
      this.#st.consecutiveFailures++;
      this.#st.lastError = errors[errors.length - 1] as CompactionError;
      this.#st.recentErrors = errors.slice(-20);
      this.#st.diskFull = errors.some((e) => e.errno === 'ENOSPC' || e.errno === 'EDQUOT');
      const delay = Math.min(this.#retryMax, this.#retryBase * 2 ** Math.min(30, this.#st.consecutiveFailures - 1));
      this.#setState('retrying');
      this.#schedule(delay);
    } else {
      this.#st.consecutiveFailures = 0;
      this.#st.diskFull = false;
      this.#st.lastSuccessAt = this.#now();
      if (wasRetrying || this.#state === 'running') this.#setState('idle');
      this.#schedule(this.#untilNextBoundary());
    }
  }

  /** Closed, not yet compacted journal hours: [hourStartMicros, path], oldest first. */
  async #closedHours(): Promise<{ hour: number; path: string }[]> {
    const out: { hour: number; path: string }[] = [];
    const nowUs = this.#now() * 1000;
    let days: string[];
    try {
      days = await readdir(this.journalDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return out;
      throw engineError('ENGINE_ERR_FILE_IO', `compactor: cannot list ${this.journalDir}: ${(err as Error).message}`, { path: this.journalDir }, err);
    }
    for (const day of days.sort()) {
      if (!DAY_DIR_RE.test(day)) continue;
      const day0 = Date.parse(`${day}T00:00:00Z`) * 1000;
      if (Number.isNaN(day0)) continue;
      let names: string[];
      try {
        names = await readdir(join(this.journalDir, day));
      } catch {
        continue; // removed meanwhile, or a stray file
      }
      const marked = new Set<string>();
      for (const n of names) { const m = MARK_RE.exec(n); if (m) marked.add(m[1] as string); }
      for (const n of names.sort()) {
        const m = TPJ_RE.exec(n);
        if (!m || marked.has(m[1] as string)) continue;
        const hh = Number(m[1]);
        if (hh > 23) continue;
        const hour = day0 + hh * MICROS_PER_HOUR;
        if (nowUs >= hour + MICROS_PER_HOUR + this.#grace * 1000) out.push({ hour, path: join(this.journalDir, day, n) });
      }
    }
    return out;
  }

  async #compactClosedHours(errors: CompactionError[]): Promise<void> {
    const hours = await this.#closedHours();
    this.#st.pendingHours = hours.length;
    for (const { hour, path } of hours) {
      if (this.#state === 'closed') return;
      const t0 = performance.now();
      try {
        let res: CompactHourResult | null = null;
        for (let attempt = 0; attempt < 2; attempt++) {
          res = await this.#pool.run<CompactHourResult>({
            kind: 'compact-hour', dataDir: this.dataDir, journalPath: path, hourStartMicros: hour,
            symbolNames: this.#symbolNames, sourceNames: this.#sourceNames, duckdbThreads: this.#opts.duckdbThreads ?? 1,
          });
          if (res.kind !== 'need-names') break;
          this.#resolveNames(res.symbolIds, res.sourceIds, hour);
        }
        if (res === null || res.kind !== 'compacted') throw engineError('ENGINE_ERR_INTERNAL', 'compactor: names still missing after resolving them', {});
        if (this.#opts.spotChecker !== undefined) await this.#opts.spotChecker.checkJournalHour(path, hour).catch(() => undefined);
        await this.#opts.deleteJournalHour(hour, res.records);
        const ms = performance.now() - t0;
        this.#st.hoursCompacted++;
        this.#st.pendingHours--;
        for (const s of res.symbols) this.#st.rowsWritten += s.rows;
        const d = this.#st.durations;
        d.lastHourMs = ms;
        d.maxHourMs = d.maxHourMs === null ? ms : Math.max(d.maxHourMs, ms);
        this.#hourMsSum += ms;
        d.meanHourMs = this.#hourMsSum / this.#st.hoursCompacted;
      } catch (err) {
        errors.push(compactionErrorOf(err, isoHour(hour), this.#now()));
      }
    }
  }

  #resolveNames(symbolIds: number[], sourceIds: number[], hour: number): void {
    for (const id of symbolIds) {
      const name = this.#opts.symbolName(id);
      if (typeof name !== 'string' || name.length === 0) {
        throw engineError('ENGINE_ERR_UNKNOWN_SYMBOL', `compactor: journal hour ${isoHour(hour)} holds symbol id ${id}, which has no name; the hour is kept`, { symbolId: id });
      }
      this.#symbolNames[id] = name;
    }
    for (const id of sourceIds) this.#sourceNames[id] = (this.#opts.sourceName ?? defaultSourceName)(id);
  }

  /** Dates (YYYY-MM-DD) that still have a journal hour file (pending compaction). */
  async #journalDates(): Promise<Set<string>> {
    const out = new Set<string>();
    let days: string[];
    try {
      days = await readdir(this.journalDir);
    } catch {
      return out;
    }
    for (const day of days) {
      if (!DAY_DIR_RE.test(day)) continue;
      const names = await readdir(join(this.journalDir, day)).catch(() => [] as string[]);
      if (names.some((n) => TPJ_RE.test(n) && !names.includes(n.replace('.tpj', '.compacted')))) out.add(day);
    }
    return out;
  }

  async #consolidateDays(errors: CompactionError[]): Promise<void> {
    const ticksRoot = join(this.dataDir, TICKS_DIR);
    const symDirs = await readdir(ticksRoot).catch(() => [] as string[]);
    if (symDirs.length === 0) return;
    const pending = await this.#journalDates();
    const nowUs = this.#now() * 1000;
    for (const sd of symDirs.sort()) {
      const m = SYMBOL_DIR_RE.exec(sd);
      if (!m) continue;
      const symbol = decodeURIComponent(m[1] as string);
      for (const dd of (await readdir(join(ticksRoot, sd)).catch(() => [] as string[])).sort()) {
        const date = dateOfDirName(dd);
        if (date === null || pending.has(date)) continue;
        const dayEnd = Date.parse(`${date}T00:00:00Z`) * 1000 + MICROS_PER_DAY;
        if (nowUs < dayEnd + this.#consolidateAfter * 1000) continue;
        const files = await readdir(join(ticksRoot, sd, dd)).catch(() => [] as string[]);
        if (!files.some((f) => hourOfFileName(f) !== null)) continue; // nothing to merge (or only day.parquet)
        if (this.#state === 'closed') return;
        try {
          const r = await this.#pool.run<ConsolidateTaskResult>({ kind: 'consolidate', dataDir: this.dataDir, symbol, date, duckdbThreads: this.#opts.duckdbThreads ?? 1 });
          if (r.ticksState === 'consolidated' || r.ticksState === 'recovered') this.#st.daysConsolidated++;
        } catch (err) {
          errors.push(compactionErrorOf(err, `${symbol} ${date}`, this.#now()));
        }
      }
    }
  }

  async #purge(errors: CompactionError[]): Promise<void> {
    const d = new Date(this.#now());
    const today = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
    const cutoff = new Date(today - this.#retention * 86_400_000).toISOString().slice(0, 10);
    try {
      const r = await this.#pool.run<PurgeTaskResult>({ kind: 'purge', dataDir: this.dataDir, cutoffDate: cutoff });
      this.#st.partitionsPurged += r.removed.length;
    } catch (err) {
      errors.push(compactionErrorOf(err, `purge before ${cutoff}`, this.#now()));
    }
    // The journal's `.compacted` markers (24 tiny files a day) past retention: a day directory that holds
    // nothing but markers is removed (one with a .tpj left is kept: that hour is still pending).
    try {
      for (const day of await readdir(this.journalDir).catch(() => [] as string[])) {
        if (!DAY_DIR_RE.test(day) || day >= cutoff) continue;
        const dir = join(this.journalDir, day);
        const names = await readdir(dir).catch(() => null);
        if (names === null || !names.every((n) => MARK_RE.test(n))) continue;
        await rm(dir, { recursive: true, force: true });
        this.#st.journalDaysPruned++;
      }
    } catch (err) {
      errors.push(compactionErrorOf(err, `journal markers before ${cutoff}`, this.#now()));
    }
  }

  /** Bytes under ticks/ and bars/ and free space (async walk; cold). */
  async #measureDisk(errors: CompactionError[]): Promise<void> {
    let files = 0;
    const walk = async (dir: string): Promise<number> => {
      let sum = 0;
      let ents;
      try {
        ents = await readdir(dir, { withFileTypes: true });
      } catch {
        return 0;
      }
      for (const e of ents) {
        const p = join(dir, e.name);
        if (e.isDirectory()) sum += await walk(p);
        else if (e.isFile()) {
          files++;
          sum += (await stat(p).catch(() => null))?.size ?? 0;
        }
      }
      return sum;
    };
    try {
      const ticksBytes = await walk(join(this.dataDir, TICKS_DIR));
      const barsBytes = await walk(join(this.dataDir, BARS_DIR));
      let freeBytes: number | null = null;
      try {
        const fs = await statfs(this.dataDir);
        freeBytes = fs.bavail * fs.bsize;
      } catch {
        freeBytes = null;
      }
      this.#st.disk = { ticksBytes, barsBytes, files, freeBytes, measuredAt: this.#now() };
    } catch (err) {
      if (!isEngineError(err)) errors.push(compactionErrorOf(err, 'disk usage', this.#now()));
    }
  }
}
