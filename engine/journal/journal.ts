/**
 * The journal: append-only, group-committed, hour-partitioned durability for live records (DESIGN.md §2,
 * the kdb+ tickerplant log idea). Every validated record is appended before it is acknowledged
 * downstream; on restart the open hours are replayed; a compacted and verified hour deletes its journal.
 *
 * Files: `<data-dir>/journal/<YYYY-MM-DD>/<HH>.tpj`, one per UTC hour of the record's **event time**
 * (`tsMicros`), format in `format.ts`. A record that arrives late for an older hour goes into that hour's
 * file, so a file always holds exactly its hour, which is what the compactor reads.
 *
 * Group commit. `append()` copies the 64-byte slot into a staging buffer and returns the record's commit
 * sequence (1, 2, 3 … for this Journal instance; not persisted). A commit writes the staging buffer as one
 * block per hour touched (`pwrite`, positions reserved up front) and then `fdatasync`s each file (enough
 * for an append-only file: it flushes the size with the data; plus an `fsync` of a directory that got a
 * new entry). `committedSeq` is the highest sequence that is durable; acknowledge downstream only up to
 * it, or in `onCommit`. A commit starts
 *  - every `commitIntervalMs` (default 100) from a timer, when anything is staged;
 *  - at once when the staging buffer reaches `commitRecords` records (default 65536 = 4 MiB: at 1 M records/s
 *    that is a commit every ~65 ms, and two buffers ride out a 100+ ms fsync stall);
 *  - when the owner calls `flush()` (async) or `flushSync()`.
 * Async commits run `fs.write`/`fs.fdatasync` on the libuv pool while appends continue into a second
 * staging buffer, so the event loop only pays for the CRC and the syscall submission. Only one async
 * commit is in flight; a timer tick that finds one running chains the next commit to its end, so a record
 * is durable within `commitIntervalMs` plus at most two commit durations. When both buffers are busy,
 * `append()` returns `APPEND_FULL` (nothing was taken): back-pressure, like a full ring. The owner then
 * awaits `flush()` (or calls `flushSync()`) and retries.
 *
 * `flushSync()` makes everything appended so far durable before it returns, even while an async commit is
 * in flight: it re-issues that commit's writes synchronously (same bytes at the same reserved positions,
 * so the duplicate write is harmless) and then writes the staging buffer, and fsyncs. It blocks the thread
 * for the duration of the fsync: meant for synchronous owners and for exit paths.
 *
 * Late records for compacted hours. `deleteHour(hour)` (called only once the hour's Parquet is verified:
 * the caller's responsibility) writes a marker `<HH>.compacted` beside the file, then removes `<HH>.tpj`.
 * The marker is what makes a late record visible: `append()` of a record whose hour has a marker returns
 * `APPEND_COMPACTED_HOUR` (the record is NOT journaled; the caller must report it, e.g. quarantine it or
 * count it as a late correction) instead of re-creating the hour's file, whose lone late records would
 * otherwise make the compactor overwrite a complete hour. Markers survive restarts (24 tiny files a day);
 * pruning them with retention is left to the retention job. A marker found beside its `.tpj` at open
 * (a crash between the two steps) finishes the delete.
 *
 * Failures. Any write, fsync, open or mkdir error is ENGINE_ERR_FILE_IO naming the path and the errno;
 * the journal then goes to a failed state: the commit sequence stops, `flush()` rejects, `append()` and
 * `flushSync()` throw the same error, and `onError` (if given) is called once. There is no retry: after a
 * failed fsync the page cache may hold data the disk does not (Postgres' "fsyncgate"), so the owner must
 * restart, and the reopened journal cuts the torn tail and replays what is durable.
 *
 * One `Journal` per data directory and process (there is no inter-process lock).
 */
import {
  closeSync, fdatasync, fdatasyncSync, fsync, fsyncSync, mkdirSync, openSync, readdirSync, unlinkSync, write, writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { TS_MICROS_BYTE } from '../../schemas/records.ts';
import { type EngineError, engineError, isEngineError } from '../errors.ts';
import type { SlotViews } from '../ring/ring.ts';
import { JournalCursor, type ReplaySource } from './cursor.ts';
import {
  BLOCK_HEADER_BYTES, FILE_HEADER_BYTES, HOUR_MICROS, JOURNAL_DIR_NAME, JOURNAL_RECORD_BYTES, MAX_BLOCK_RECORDS,
  MAX_TS_MICROS, compactedMarkerPath, crc32Of, dayDirOf, hourFilePath, hourStartOf, isHourStart, parseDayDir,
  parseHourFile, writeBlockHeader, writeFileHeader,
} from './format.ts';
import { recoverJournalFile } from './recovery.ts';

/** `append()` result: both staging buffers are busy; nothing was taken. Await `flush()` (or `flushSync()`) and retry. */
export const APPEND_FULL = 0;
/** `append()` result: the record's hour was compacted and its journal deleted; the record was NOT journaled. */
export const APPEND_COMPACTED_HOUR = -1;
/** `append()` result: `tsMicros` is not a time the journal can file (NaN, negative, beyond 2^53 µs). */
export const APPEND_BAD_TIME = -2;

export const DEFAULT_COMMIT_INTERVAL_MS = 100;
export const DEFAULT_COMMIT_RECORDS = 65_536;

export interface JournalOptions {
  /** `<data-dir>`: the journal lives in `<data-dir>/journal`. */
  dataDir: string;
  /** Commit at least this often while records are staged (default 100). 0 = no timer: the owner flushes. */
  commitIntervalMs?: number;
  /** Staging buffer size in records (default 65536 = 4 MiB; two are allocated); a full buffer starts a commit at once. */
  commitRecords?: number;
  /** After every commit: the new `committedSeq`, how long the commit took (write + fsync, µs) and its records. */
  onCommit?: (committedSeq: number, commitMicros: number, records: number) => void;
  /** Called once when the journal fails (see "Failures" above). */
  onError?: (err: EngineError) => void;
}

export type RecoveryAction = 'truncated-torn-tail' | 'finished-delete';

/** What `Journal.open` repaired. */
export interface JournalRecovery {
  readonly hourStartMicros: number;
  readonly path: string;
  readonly action: RecoveryAction;
  /** Bytes cut from the end of the file (torn tail). */
  readonly bytesCut: number;
  /** Whole records kept in the file. */
  readonly records: number;
}

export interface JournalHour {
  readonly hourStartMicros: number;
  /** The `.tpj` file, or the `.compacted` marker. */
  readonly path: string;
  readonly state: 'open' | 'compacted';
  /** Durable records in the file (0 for a compacted hour). */
  readonly records: number;
  /** Durable bytes of the file, header included. */
  readonly durableBytes: number;
  /** Records appended for the hour but not committed yet. */
  readonly pendingRecords: number;
}

export interface JournalStats {
  readonly appendedSeq: number;
  readonly committedSeq: number;
  readonly commits: number;
  readonly bytesCommitted: number;
  readonly fullRejections: number;
  readonly compactedHourRejections: number;
  readonly badTimeRejections: number;
  readonly openHours: number;
  readonly compactedHours: number;
}

export interface ReplayStats {
  readonly hours: number;
  readonly blocks: number;
  readonly records: number;
}

/** Receives one whole, CRC-checked block: `count` records at `byteOffset + k * 64` in `views` (valid during the call only). */
export type ReplayVisitor = (views: SlotViews, byteOffset: number, count: number, hourStartMicros: number) => void;

/** File header + block header space in front of the staged records, so a commit is one contiguous write. */
const STAGE_RECORDS_BYTE = FILE_HEADER_BYTES + BLOCK_HEADER_BYTES;
const STAGE_RECORDS_I32 = STAGE_RECORDS_BYTE >> 2;

const enum State { OPEN, CLOSING, CLOSED, FAILED }

interface HourFile {
  readonly hourStartMicros: number;
  readonly path: string;
  readonly dayDir: string;
  fd: number;
  /** End of what has been handed to write() (positions of later blocks are reserved from here). */
  reservedBytes: number;
  reservedRecords: number;
  durableBytes: number;
  durableRecords: number;
}

interface WriteOp {
  readonly file: HourFile;
  readonly fd: number;
  readonly buf: Uint8Array;
  readonly off: number;
  readonly len: number;
  readonly pos: number;
  readonly recordsEnd: number;
}

interface Slab {
  readonly u8: Uint8Array;
  readonly u32: Uint32Array;
  readonly f64: Float64Array;
  /** Regrouping space for commits that touch several hours (grow-only). */
  scratch: Uint8Array;
  scratchU32: Uint32Array;
}

interface Batch {
  readonly slab: Slab;
  readonly ops: WriteOp[];
  readonly files: HourFile[];
  readonly fds: number[];
  /** Directories that got a new entry and must be fsynced after the files. */
  readonly dirs: string[];
  readonly lastSeq: number;
  readonly records: number;
  readonly bytes: number;
  readonly startMs: number;
  durable: boolean;
  done: Promise<void> | null;
  /** File descriptors to close once this (async) commit has finished with them. */
  closeAfter: number[];
}

function newSlab(records: number): Slab {
  const buf = new ArrayBuffer(STAGE_RECORDS_BYTE + records * JOURNAL_RECORD_BYTES);
  return { u8: new Uint8Array(buf), u32: new Uint32Array(buf), f64: new Float64Array(buf), scratch: new Uint8Array(0), scratchU32: new Uint32Array(0) };
}

function errnoOf(err: unknown): string | null {
  return (err as NodeJS.ErrnoException | null)?.code ?? null;
}

function ioError(what: string, path: string, err: unknown): EngineError {
  if (isEngineError(err)) return err;
  return engineError('ENGINE_ERR_FILE_IO', `journal: cannot ${what} ${path}: ${(err as Error)?.message ?? String(err)}`, { file: path, errno: errnoOf(err) }, err);
}

function writeFullySync(op: WriteOp): void {
  let done = 0;
  while (done < op.len) done += writeSync(op.fd, op.buf, op.off + done, op.len - done, op.pos + done);
}

function writeAsync(fd: number, buf: Uint8Array, off: number, len: number, pos: number): Promise<number> {
  return new Promise((resolve, reject) => {
    write(fd, buf, off, len, pos, (err, n) => (err ? reject(err) : resolve(n)));
  });
}

function fdatasyncAsync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => {
    fdatasync(fd, (err) => (err ? reject(err) : resolve()));
  });
}

function fsyncDirSync(dir: string): void {
  const fd = openSync(dir, 'r');
  try { fsyncSync(fd); } finally { closeSync(fd); }
}

function fsyncDirAsync(dir: string): Promise<void> {
  const fd = openSync(dir, 'r');
  return new Promise<void>((resolve, reject) => {
    fsync(fd, (err) => {
      try { closeSync(fd); } catch { /* the fsync result is what matters */ }
      if (err) reject(err);
      else resolve();
    });
  });
}

/** Rethrow a callback's exception outside the journal's own control flow (it is the caller's bug, not a journal failure). */
function rethrowLater(err: unknown): void {
  queueMicrotask(() => { throw err; });
}

export class Journal {
  /** `<data-dir>/journal`. */
  readonly dir: string;
  /** What `open` repaired (torn tails cut, interrupted deletes finished). */
  readonly recovery: readonly JournalRecovery[];

  readonly #capRecords: number;
  readonly #onCommit: JournalOptions['onCommit'];
  readonly #onError: JournalOptions['onError'];
  readonly #files: Map<number, HourFile>;
  readonly #compacted: Set<number>;
  readonly #slabA: Slab;
  readonly #slabB: Slab;
  #timer: ReturnType<typeof setInterval> | null = null;

  #state = State.OPEN;
  #failed: EngineError | null = null;
  #stage: Slab;
  #stageU32: Uint32Array;
  #count = 0;
  #stageHour = Number.NaN;
  #mixed = false;
  /** Hour of the last accepted record: [#curStart, #curEnd) skips the hour lookup on the hot path. */
  #curStart = Number.POSITIVE_INFINITY;
  #curEnd = Number.NEGATIVE_INFINITY;
  #appended = 0;
  #committed = 0;
  #inflight: Batch | null = null;
  #chainPending = false;

  #commits = 0;
  #bytesCommitted = 0;
  #fullRejections = 0;
  #compactedRejections = 0;
  #badTimeRejections = 0;

  private constructor(dir: string, opts: JournalOptions, capRecords: number, files: Map<number, HourFile>, compacted: Set<number>, recovery: JournalRecovery[]) {
    this.dir = dir;
    this.recovery = recovery;
    this.#capRecords = capRecords;
    this.#onCommit = opts.onCommit;
    this.#onError = opts.onError;
    this.#files = files;
    this.#compacted = compacted;
    this.#slabA = newSlab(capRecords);
    this.#slabB = newSlab(capRecords);
    this.#stage = this.#slabA;
    this.#stageU32 = this.#slabA.u32;
    const interval = opts.commitIntervalMs ?? DEFAULT_COMMIT_INTERVAL_MS;
    if (interval > 0) {
      this.#timer = setInterval(() => this.#tick(), interval);
      this.#timer.unref(); // the owner keeps its thread alive; the journal must not hold a finished process open
    }
  }

  /**
   * Open (creating `<data-dir>/journal` if needed), scan every day directory, finish interrupted deletes and
   * cut torn tails. Throws ENGINE_ERR_FILE_IO when the directory cannot be created or written, and
   * ENGINE_ERR_JOURNAL when a file is corrupt (a bad block with valid blocks after it) or misplaced.
   */
  static open(opts: JournalOptions): Journal {
    const interval = opts.commitIntervalMs ?? DEFAULT_COMMIT_INTERVAL_MS;
    const cap = opts.commitRecords ?? DEFAULT_COMMIT_RECORDS;
    if (!(Number.isFinite(interval) && interval >= 0)) {
      throw engineError('ENGINE_ERR_INVALID_ARG', `commitIntervalMs must be a number of ms >= 0, got ${String(interval)}`);
    }
    if (!Number.isInteger(cap) || cap < 1 || cap > MAX_BLOCK_RECORDS) {
      throw engineError('ENGINE_ERR_INVALID_ARG', `commitRecords must be an integer 1 .. ${MAX_BLOCK_RECORDS}, got ${String(cap)}`);
    }
    if (typeof opts.dataDir !== 'string' || opts.dataDir === '') throw engineError('ENGINE_ERR_INVALID_ARG', 'dataDir must be a non-empty path');
    const dir = join(opts.dataDir, JOURNAL_DIR_NAME);
    try {
      mkdirSync(dir, { recursive: true });
      // A real write probe: access(W_OK) says yes to root on a read-only mount or directory.
      const probe = join(dir, `.probe-${process.pid}`);
      closeSync(openSync(probe, 'w'));
      unlinkSync(probe);
    } catch (err) {
      throw ioError('create or write the journal directory', dir, err);
    }
    const files = new Map<number, HourFile>();
    const compacted = new Set<number>();
    const recovery: JournalRecovery[] = [];
    let days: string[];
    try {
      days = readdirSync(dir);
    } catch (err) {
      throw ioError('list', dir, err);
    }
    for (const day of days.sort()) {
      const dayMicros = parseDayDir(day);
      if (dayMicros === null) continue;
      const dayDir = join(dir, day);
      let names: string[];
      try {
        names = readdirSync(dayDir);
      } catch (err) {
        if (errnoOf(err) === 'ENOTDIR') continue; // a stray file named like a day
        throw ioError('list', dayDir, err);
      }
      const tpj = new Set<number>();
      const marked = new Set<number>();
      for (const name of names) {
        const p = parseHourFile(name);
        if (p === null) continue;
        const h = dayMicros + p.hour * HOUR_MICROS;
        if (p.kind === 'tpj') tpj.add(h);
        else marked.add(h);
      }
      for (const h of marked) {
        compacted.add(h);
        if (tpj.has(h)) {
          const path = hourFilePath(dir, h);
          try {
            unlinkSync(path);
            fsyncDirSync(dayDir);
          } catch (err) {
            throw ioError('finish deleting compacted journal', path, err);
          }
          recovery.push({ hourStartMicros: h, path, action: 'finished-delete', bytesCut: 0, records: 0 });
        }
      }
      for (const h of [...tpj].sort((a, b) => a - b)) {
        if (marked.has(h)) continue;
        const path = hourFilePath(dir, h);
        const scan = recoverJournalFile(path, h);
        files.set(h, {
          hourStartMicros: h, path, dayDir, fd: -1,
          reservedBytes: scan.validBytes, reservedRecords: scan.records, durableBytes: scan.validBytes, durableRecords: scan.records,
        });
        if (scan.bytesCut > 0) recovery.push({ hourStartMicros: h, path, action: 'truncated-torn-tail', bytesCut: scan.bytesCut, records: scan.records });
      }
    }
    return new Journal(dir, opts, cap, files, compacted, recovery);
  }

  /** Highest commit sequence handed out by `append` (records accepted so far by this instance). */
  get appendedSeq(): number {
    return this.#appended;
  }

  /** Highest commit sequence that is durable (written and fsynced). */
  get committedSeq(): number {
    return this.#committed;
  }

  /** Records appended but not yet durable. */
  get pendingRecords(): number {
    return this.#appended - this.#committed;
  }

  /** The failure that stopped the journal, or null. */
  get failure(): EngineError | null {
    return this.#failed;
  }

  /**
   * Stage the 64-byte record at byte `b` of `v` (a ring's `views`, or `slotViewsOf(buffer)`). Returns its
   * commit sequence (> 0), or `APPEND_FULL` / `APPEND_COMPACTED_HOUR` / `APPEND_BAD_TIME` (<= 0, nothing taken).
   * Throws the failure once the journal has failed, and ENGINE_ERR_JOURNAL after close.
   */
  append(v: SlotViews, b: number): number {
    if (this.#state !== State.OPEN) this.#throwUnusable();
    const ts = v.f64[(b + TS_MICROS_BYTE) >> 3] as number;
    if (!(ts >= this.#curStart && ts < this.#curEnd)) {
      const r = this.#enterHour(ts);
      if (r <= 0) return r;
    }
    let n = this.#count;
    if (n === this.#capRecords) {
      // Full. Normally a commit of this buffer is already in flight or chained; start one if the pool is free.
      if (this.#inflight !== null) {
        this.#chainPending = true;
        this.#fullRejections++;
        return APPEND_FULL;
      }
      this.#startAsync();
      n = 0;
    }
    if (n === 0) this.#stageHour = this.#curStart;
    else if (this.#curStart !== this.#stageHour) this.#mixed = true;
    const d = this.#stageU32;
    const s = v.u32;
    const o = STAGE_RECORDS_I32 + (n << 4);
    const i = b >> 2;
    d[o] = s[i] as number; d[o + 1] = s[i + 1] as number; d[o + 2] = s[i + 2] as number; d[o + 3] = s[i + 3] as number;
    d[o + 4] = s[i + 4] as number; d[o + 5] = s[i + 5] as number; d[o + 6] = s[i + 6] as number; d[o + 7] = s[i + 7] as number;
    d[o + 8] = s[i + 8] as number; d[o + 9] = s[i + 9] as number; d[o + 10] = s[i + 10] as number; d[o + 11] = s[i + 11] as number;
    d[o + 12] = s[i + 12] as number; d[o + 13] = s[i + 13] as number; d[o + 14] = s[i + 14] as number; d[o + 15] = s[i + 15] as number;
    this.#count = n + 1;
    const seq = ++this.#appended;
    if (n + 1 === this.#capRecords) {
      if (this.#inflight === null) this.#startAsync();
      else this.#chainPending = true;
    }
    return seq;
  }

  /** Make everything appended before this call durable; resolves to `committedSeq`. Never blocks the event loop on I/O. */
  async flush(): Promise<number> {
    this.#checkFlushable();
    const target = this.#appended;
    while (this.#committed < target) {
      const inflight = this.#inflight;
      if (inflight !== null) {
        await inflight.done;
        if (this.#failed !== null) throw this.#failed;
        continue;
      }
      if (this.#count === 0) throw engineError('ENGINE_ERR_INTERNAL', `journal: ${target - this.#committed} records neither staged nor in flight`);
      this.#startAsync();
    }
    return this.#committed;
  }

  /** Make everything appended so far durable before returning (blocks for the write and fsync); returns `committedSeq`. */
  flushSync(): number {
    this.#checkFlushable();
    const inflight = this.#inflight !== null && !this.#inflight.durable ? this.#inflight : null;
    if (this.#count === 0 && inflight === null) return this.#committed;
    const t0 = performance.now();
    let batch: Batch | null = null;
    try {
      if (inflight !== null) this.#execSync(inflight);
      if (this.#count > 0) {
        batch = this.#seal(this.#stage);
        this.#execSync(batch);
      }
    } catch (err) {
      throw this.#fail(err);
    }
    let records = 0;
    if (inflight !== null) {
      this.#markDurable(inflight);
      records += inflight.records;
    }
    if (batch !== null) {
      this.#markDurable(batch);
      records += batch.records;
      this.#resetStage(this.#stage);
    }
    this.#notifyCommit((performance.now() - t0) * 1000, records);
    return this.#committed;
  }

  /** Open and compacted hours, oldest first. */
  listHours(): JournalHour[] {
    const out: JournalHour[] = [];
    for (const f of this.#files.values()) {
      out.push({
        hourStartMicros: f.hourStartMicros, path: f.path, state: 'open', records: f.durableRecords, durableBytes: f.durableBytes,
        pendingRecords: f.reservedRecords - f.durableRecords + this.#stagedFor(f.hourStartMicros),
      });
    }
    for (const h of this.#compacted) {
      out.push({ hourStartMicros: h, path: compactedMarkerPath(this.dir, h), state: 'compacted', records: 0, durableBytes: 0, pendingRecords: 0 });
    }
    return out.sort((a, b) => a.hourStartMicros - b.hourStartMicros);
  }

  /**
   * A pull cursor over the durable records of one hour, or of every open hour oldest first ('open-hours').
   * Within an hour, records come in commit order (the order they were appended). Reads only what was
   * durable when the cursor was opened. Asking for a compacted hour is ENGINE_ERR_JOURNAL (read its Parquet).
   */
  openCursor(target: number | 'open-hours'): JournalCursor {
    const sources: ReplaySource[] = [];
    if (target === 'open-hours') {
      for (const f of [...this.#files.values()].sort((a, b) => a.hourStartMicros - b.hourStartMicros)) {
        sources.push({ hourStartMicros: f.hourStartMicros, path: f.path, limitBytes: f.durableBytes });
      }
    } else {
      if (!isHourStart(target)) throw engineError('ENGINE_ERR_INVALID_ARG', `replay target must be 'open-hours' or an hour start in Unix µs, got ${String(target)}`);
      if (this.#compacted.has(target)) {
        throw engineError('ENGINE_ERR_JOURNAL', `journal hour ${new Date(target / 1000).toISOString()} was compacted and deleted; read its Parquet`, { hourStartMicros: target, reason: 'compacted' });
      }
      const f = this.#files.get(target);
      if (f !== undefined) sources.push({ hourStartMicros: f.hourStartMicros, path: f.path, limitBytes: f.durableBytes });
    }
    return new JournalCursor(sources);
  }

  /** Push-style replay: `visitor` gets every durable block of the target, in order (see `openCursor`). */
  replay(target: number | 'open-hours', visitor: ReplayVisitor): ReplayStats {
    const c = this.openCursor(target);
    try {
      for (let n = c.next(); n > 0; n = c.next()) visitor(c.views, c.byteOffset, n, c.hourStartMicros);
    } finally {
      c.close();
    }
    return { hours: c.hours, blocks: c.blocks, records: c.records };
  }

  /**
   * Delete an hour's journal once its Parquet is verified (the caller's responsibility). Commits anything
   * pending first; with `expectedRecords` (the count the compactor wrote and verified) it refuses with
   * ENGINE_ERR_JOURNAL when the file holds a different number, e.g. late records arrived after the
   * compactor read it. Writes the `.compacted` marker (file and directory fsynced), then removes the `.tpj`
   * and fsyncs the directory again; later records for the hour are refused with `APPEND_COMPACTED_HOUR`.
   * Idempotent.
   * The synchronous part fsyncs (a few ms, once per hour).
   */
  async deleteHour(hourStartMicros: number, opts: { expectedRecords?: number } = {}): Promise<void> {
    if (!isHourStart(hourStartMicros)) throw engineError('ENGINE_ERR_INVALID_ARG', `not an hour start in Unix µs: ${String(hourStartMicros)}`);
    if (this.#compacted.has(hourStartMicros)) return;
    await this.flush();
    // From here on synchronous: no append can slip in between the count check and the delete.
    this.flushSync();
    const f = this.#files.get(hourStartMicros);
    const records = f?.durableRecords ?? 0;
    if (opts.expectedRecords !== undefined && opts.expectedRecords !== records) {
      throw engineError('ENGINE_ERR_JOURNAL', `journal hour ${new Date(hourStartMicros / 1000).toISOString()} holds ${records} records, the caller verified ${opts.expectedRecords}; not deleted (compact it again)`, {
        hourStartMicros, expectedRecords: opts.expectedRecords, records, reason: 'record count mismatch',
      });
    }
    const dayDir = dayDirOf(this.dir, hourStartMicros);
    const marker = compactedMarkerPath(this.dir, hourStartMicros);
    try {
      mkdirSync(dayDir, { recursive: true });
      const fd = openSync(marker, 'w');
      try {
        writeSync(fd, `compacted ${new Date().toISOString()} records=${records}\n`);
        fdatasyncSync(fd);
      } finally {
        closeSync(fd);
      }
      fsyncDirSync(dayDir); // the marker's entry is durable before the journal's removal can be
      if (f !== undefined) {
        if (f.fd >= 0) {
          const inflight = this.#inflight;
          if (inflight !== null && inflight.fds.includes(f.fd)) inflight.closeAfter.push(f.fd);
          else closeSync(f.fd);
          f.fd = -1;
        }
        unlinkSync(f.path);
      }
      fsyncDirSync(dayDir);
    } catch (err) {
      throw this.#fail(ioError('delete compacted hour', f?.path ?? marker, err));
    }
    this.#files.delete(hourStartMicros);
    this.#compacted.add(hourStartMicros);
    this.#curStart = Number.POSITIVE_INFINITY;
    this.#curEnd = Number.NEGATIVE_INFINITY;
  }

  stats(): JournalStats {
    return {
      appendedSeq: this.#appended, committedSeq: this.#committed, commits: this.#commits, bytesCommitted: this.#bytesCommitted,
      fullRejections: this.#fullRejections, compactedHourRejections: this.#compactedRejections, badTimeRejections: this.#badTimeRejections,
      openHours: this.#files.size, compactedHours: this.#compacted.size,
    };
  }

  /** Commit what is pending, then release the files. On a failed journal: releases the files and rethrows the failure. */
  async close(): Promise<void> {
    if (this.#state === State.CLOSED) return;
    this.#stopTimer();
    if (this.#state === State.FAILED) {
      await this.#idle();
      this.#closeFiles();
      throw this.#failed as EngineError;
    }
    this.#state = State.CLOSING;
    try {
      await this.flush();
      await this.#idle();
    } finally {
      this.#closeFiles();
      if (this.#state === State.CLOSING) this.#state = State.CLOSED;
    }
    if (this.#failed !== null) throw this.#failed;
  }

  /** Synchronous close (exit paths): `flushSync()`, then release the files (after an in-flight async commit, if any). */
  closeSync(): void {
    if (this.#state === State.CLOSED) return;
    this.#stopTimer();
    if (this.#state !== State.FAILED) {
      this.#state = State.CLOSING;
      try {
        this.flushSync();
      } finally {
        if (this.#state === State.CLOSING) this.#state = State.CLOSED;
      }
    }
    if (this.#inflight === null) this.#closeFiles();
    // else: #asyncDone closes them once the pool is done with the descriptors
  }

  // ---- internals ------------------------------------------------------------------------------------

  #enterHour(ts: number): number {
    if (!(ts >= 0 && ts <= MAX_TS_MICROS)) {
      this.#badTimeRejections++;
      return APPEND_BAD_TIME;
    }
    const h = hourStartOf(ts);
    if (this.#compacted.has(h)) {
      this.#compactedRejections++;
      return APPEND_COMPACTED_HOUR;
    }
    this.#curStart = h;
    this.#curEnd = h + HOUR_MICROS;
    return 1;
  }

  #stagedFor(hour: number): number {
    if (this.#count === 0) return 0;
    if (!this.#mixed) return this.#stageHour === hour ? this.#count : 0;
    let n = 0;
    const f64 = this.#stage.f64;
    for (let k = 0; k < this.#count; k++) {
      if (hourStartOf(f64[(STAGE_RECORDS_BYTE + k * JOURNAL_RECORD_BYTES + TS_MICROS_BYTE) >> 3] as number) === hour) n++;
    }
    return n;
  }

  #throwUnusable(): never {
    if (this.#failed !== null) throw this.#failed;
    throw engineError('ENGINE_ERR_JOURNAL', `journal ${this.dir} is closed`, { reason: 'closed' });
  }

  #checkFlushable(): void {
    if (this.#state === State.OPEN || this.#state === State.CLOSING) return;
    this.#throwUnusable();
  }

  #tick(): void {
    if (this.#state !== State.OPEN || this.#count === 0) return;
    if (this.#inflight !== null) {
      this.#chainPending = true;
      return;
    }
    try {
      this.#startAsync();
    } catch {
      // #fail has recorded the error and told onError; the next append or flush throws it
    }
  }

  /** Seal the staging buffer into a batch, swap buffers and run the batch on the libuv pool. */
  #startAsync(): void {
    let batch: Batch;
    try {
      batch = this.#seal(this.#stage);
    } catch (err) {
      throw this.#fail(err);
    }
    this.#resetStage(this.#stage === this.#slabA ? this.#slabB : this.#slabA);
    this.#inflight = batch;
    batch.done = this.#execAsync(batch).then(
      () => this.#asyncDone(batch),
      (err: unknown) => { this.#inflight = null; this.#fail(err); this.#releaseDeferred(batch); },
    );
  }

  #asyncDone(batch: Batch): void {
    const already = batch.durable;
    this.#markDurable(batch);
    this.#inflight = null;
    this.#releaseDeferred(batch);
    if (this.#state === State.CLOSED) {
      this.#closeFiles();
      return;
    }
    if (this.#state === State.OPEN && this.#count > 0 && (this.#chainPending || this.#count >= this.#capRecords)) {
      try {
        this.#startAsync();
      } catch {
        // recorded by #fail
      }
    }
    if (!already) this.#notifyCommit((performance.now() - batch.startMs) * 1000, batch.records);
  }

  #releaseDeferred(batch: Batch): void {
    for (const fd of batch.closeAfter) {
      try { closeSync(fd); } catch { /* nothing left to release */ }
    }
    batch.closeAfter.length = 0;
    if (this.#state === State.CLOSED || this.#state === State.FAILED) this.#closeFiles();
  }

  #resetStage(slab: Slab): void {
    this.#stage = slab;
    this.#stageU32 = slab.u32;
    this.#count = 0;
    this.#mixed = false;
    this.#stageHour = Number.NaN;
    this.#chainPending = false;
  }

  /** The hour's file, created (with its day directory) when new; new directory entries are added to `dirs`. */
  #fileFor(hour: number, dirs: string[]): HourFile {
    let f = this.#files.get(hour);
    if (f === undefined) {
      const path = hourFilePath(this.dir, hour);
      const dayDir = dayDirOf(this.dir, hour);
      let fd: number;
      try {
        if (mkdirSync(dayDir, { recursive: true }) !== undefined && !dirs.includes(this.dir)) dirs.push(this.dir);
        fd = openSync(path, 'wx');
      } catch (err) {
        throw ioError('create journal file', path, err);
      }
      if (!dirs.includes(dayDir)) dirs.push(dayDir);
      f = { hourStartMicros: hour, path, dayDir, fd, reservedBytes: 0, reservedRecords: 0, durableBytes: 0, durableRecords: 0 };
      this.#files.set(hour, f);
    } else if (f.fd < 0) {
      try {
        f.fd = openSync(f.path, 'r+');
      } catch (err) {
        throw ioError('open journal file', f.path, err);
      }
    }
    return f;
  }

  /** Turn the staged records into write operations at reserved positions (one block per hour touched). */
  #seal(slab: Slab): Batch {
    const n = this.#count;
    const ops: WriteOp[] = [];
    const files: HourFile[] = [];
    const fds: number[] = [];
    const dirs: string[] = [];
    let bytes = 0;
    const push = (file: HourFile, buf: Uint8Array, off: number, len: number, recs: number): void => {
      ops.push({ file, fd: file.fd, buf, off, len, pos: file.reservedBytes, recordsEnd: file.reservedRecords + recs });
      file.reservedBytes += len;
      file.reservedRecords += recs;
      bytes += len;
      if (!files.includes(file)) {
        files.push(file);
        fds.push(file.fd);
      }
    };
    if (!this.#mixed) {
      const file = this.#fileFor(this.#stageHour, dirs);
      const payload = n * JOURNAL_RECORD_BYTES;
      writeBlockHeader(slab.u32, FILE_HEADER_BYTES, n, crc32Of(slab.u8, STAGE_RECORDS_BYTE, payload));
      let off = FILE_HEADER_BYTES;
      if (file.reservedBytes === 0) {
        writeFileHeader(slab.u8, 0, this.#stageHour);
        off = 0;
      }
      push(file, slab.u8, off, STAGE_RECORDS_BYTE + payload - off, n);
    } else {
      this.#sealMixed(slab, n, dirs, push);
    }
    return {
      slab, ops, files, fds, dirs, lastSeq: this.#appended, records: n, bytes, startMs: performance.now(),
      durable: false, done: null, closeAfter: [],
    };
  }

  /** Several hours in one commit (late records): regroup into the slab's scratch, one block per hour, arrival order kept. */
  #sealMixed(slab: Slab, n: number, dirs: string[], push: (f: HourFile, buf: Uint8Array, off: number, len: number, recs: number) => void): void {
    const hourOf = new Float64Array(n);
    const groupOf = new Map<number, number>();
    const hours: number[] = [];
    const counts: number[] = [];
    for (let k = 0; k < n; k++) {
      const h = hourStartOf(slab.f64[(STAGE_RECORDS_BYTE + k * JOURNAL_RECORD_BYTES + TS_MICROS_BYTE) >> 3] as number);
      hourOf[k] = h;
      const g = groupOf.get(h);
      if (g === undefined) {
        groupOf.set(h, hours.length);
        hours.push(h);
        counts.push(1);
      } else counts[g] = (counts[g] as number) + 1;
    }
    const files = hours.map((h) => this.#fileFor(h, dirs));
    // layout: per group [file header if new][block header][records]
    const starts: number[] = [];
    const fill: number[] = [];
    let size = 0;
    for (let g = 0; g < hours.length; g++) {
      starts.push(size);
      const head = (files[g] as HourFile).reservedBytes === 0 ? FILE_HEADER_BYTES + BLOCK_HEADER_BYTES : BLOCK_HEADER_BYTES;
      fill.push(size + head);
      size += head + (counts[g] as number) * JOURNAL_RECORD_BYTES;
    }
    if (slab.scratch.length < size) {
      const buf = new ArrayBuffer(Math.max(size, slab.u8.length + 64 * FILE_HEADER_BYTES));
      slab.scratch = new Uint8Array(buf);
      slab.scratchU32 = new Uint32Array(buf);
    }
    const src = slab.u32;
    const dst = slab.scratchU32;
    for (let k = 0; k < n; k++) {
      const g = groupOf.get(hourOf[k] as number) as number;
      const at = fill[g] as number;
      const from = STAGE_RECORDS_I32 + (k << 4);
      const to = at >> 2;
      for (let w = 0; w < 16; w++) dst[to + w] = src[from + w] as number;
      fill[g] = at + JOURNAL_RECORD_BYTES;
    }
    for (let g = 0; g < hours.length; g++) {
      const file = files[g] as HourFile;
      const start = starts[g] as number;
      const cnt = counts[g] as number;
      let blockAt = start;
      if (file.reservedBytes === 0) {
        writeFileHeader(slab.scratch, start, hours[g] as number);
        blockAt = start + FILE_HEADER_BYTES;
      }
      const payload = cnt * JOURNAL_RECORD_BYTES;
      writeBlockHeader(dst, blockAt, cnt, crc32Of(slab.scratch, blockAt + BLOCK_HEADER_BYTES, payload));
      push(file, slab.scratch, start, blockAt + BLOCK_HEADER_BYTES + payload - start, cnt);
    }
  }

  #execSync(batch: Batch): void {
    let i = 0;
    try {
      for (; i < batch.ops.length; i++) writeFullySync(batch.ops[i] as WriteOp);
    } catch (err) {
      throw ioError('write', (batch.ops[i] as WriteOp).file.path, err);
    }
    for (let k = 0; k < batch.files.length; k++) {
      try {
        fdatasyncSync(batch.fds[k] as number);
      } catch (err) {
        throw ioError('fsync', (batch.files[k] as HourFile).path, err);
      }
    }
    for (const d of batch.dirs) {
      try {
        fsyncDirSync(d);
      } catch (err) {
        throw ioError('fsync directory', d, err);
      }
    }
  }

  async #execAsync(batch: Batch): Promise<void> {
    for (const op of batch.ops) {
      try {
        let done = 0;
        while (done < op.len) done += await writeAsync(op.fd, op.buf, op.off + done, op.len - done, op.pos + done);
      } catch (err) {
        throw ioError('write', op.file.path, err);
      }
    }
    for (let k = 0; k < batch.files.length; k++) {
      try {
        await fdatasyncAsync(batch.fds[k] as number);
      } catch (err) {
        throw ioError('fsync', (batch.files[k] as HourFile).path, err);
      }
    }
    for (const d of batch.dirs) {
      try {
        await fsyncDirAsync(d);
      } catch (err) {
        throw ioError('fsync directory', d, err);
      }
    }
  }

  #markDurable(batch: Batch): void {
    if (batch.durable) return;
    batch.durable = true;
    for (const op of batch.ops) {
      const end = op.pos + op.len;
      if (end > op.file.durableBytes) op.file.durableBytes = end;
      if (op.recordsEnd > op.file.durableRecords) op.file.durableRecords = op.recordsEnd;
    }
    if (batch.lastSeq > this.#committed) this.#committed = batch.lastSeq;
    this.#commits++;
    this.#bytesCommitted += batch.bytes;
  }

  #notifyCommit(commitMicros: number, records: number): void {
    const cb = this.#onCommit;
    if (cb === undefined) return;
    try {
      cb(this.#committed, commitMicros, records);
    } catch (err) {
      rethrowLater(err);
    }
  }

  /** Enter the failed state once; returns the coded error to throw. */
  #fail(err: unknown): EngineError {
    if (this.#failed !== null) return this.#failed;
    const e = isEngineError(err) ? err : ioError('commit to', this.dir, err);
    this.#failed = e;
    this.#state = State.FAILED;
    this.#stopTimer();
    const cb = this.#onError;
    if (cb !== undefined) {
      try {
        cb(e);
      } catch (cbErr) {
        rethrowLater(cbErr);
      }
    }
    return e;
  }

  async #idle(): Promise<void> {
    while (this.#inflight !== null) await this.#inflight.done;
  }

  #stopTimer(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }

  #closeFiles(): void {
    if (this.#inflight !== null) return; // the pool still uses the descriptors; #asyncDone calls back here
    for (const f of this.#files.values()) {
      if (f.fd >= 0) {
        try { closeSync(f.fd); } catch { /* already closed */ }
        f.fd = -1;
      }
    }
  }
}
