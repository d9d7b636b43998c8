/**
 * File ingest loop of a Sierra Chart source worker: tails `.scid` and `.depth` files into one ring.
 *
 * Synchronous by design (file reads are sync, parking is `Atomics.wait`), so it runs in its own worker
 * thread with no async I/O pending. Per loop round, for each file: read new whole records when the
 * decoder wants input, decode into the ring; a full ring parks the thread until the consumer releases
 * slots (back-pressure: reading stops, nothing is dropped). When every file is idle the thread sleeps:
 * `pollMinMs` (1 ms by default) while data came within the last `activeMs`, then twice as long after each
 * empty round up to `pollMs` (250 ms by default; file watch events do not fire on /mnt/c under WSL2). A
 * live market is read within about a millisecond; a quiet one costs a few polls a second.
 *
 * Exactly once across worker restarts: every publish goes through an intent/commit step in a shared
 * progress table tied to the ring's write sequence (engine/ingest/progress.ts); a restarted worker resumes
 * from it. Across process restarts: the progress is saved to `<data-dir>/checkpoints/<source>.json`
 * every `checkpointEveryMs` and on stop.
 *
 * Bad input never stops the other files: a file (or folder) that does not exist yet is waited for; a bad
 * header or a corrupt record becomes a SOURCE_ERROR message (coded, naming the file and byte offset). A
 * corrupt .scid record is stepped over (and reported: a run of consecutive corrupt records is reported as
 * its first record plus one summary, not once per record); a corrupt .depth record stops that file (a
 * book cannot be trusted after it) until the file is replaced or shrinks. A file whose header is bad is
 * retried when it changes, and the same error is not reported twice in a row. A file shorter than its
 * header is waited for in follow mode (Sierra may be creating it) unless its magic is already wrong, and
 * is an error in a one-shot read.
 *
 * A file that shrinks or is replaced is re-read from its start after a FILE_RESET gap record (GAP kind
 * FILE_RESET, expected seq = the record index reached, got seq 0, time = the last event time handed on);
 * downstream dedupes repeated records (same source, symbol, time, price, size and record index). The same
 * happens when a new process finds that the file a checkpoint names is not the same file any more
 * (engine/checkpoint.ts: inode, size and content fingerprint).
 *
 * Daily .depth series (`<prefix>.YYYY-MM-DD.depth`): the file to start with is the checkpoint's, else the
 * first one from `fromDate`, else the newest present (when none is present yet, the newest one once one
 * appears). When the current file is read to its end and a later file exists, it moves on to the next
 * later file (after one last read of the current one).
 */
import { closeSync, fstatSync, openSync, readdirSync, readSync, statSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { engineError, isEngineError, toWire, type EngineError } from '../../engine/errors.ts';
import { FINGERPRINT_HEAD_BYTES, fileFingerprint, loadCheckpoint, saveCheckpoint, type FileCheckpoint, type SourceCheckpoint } from '../../engine/checkpoint.ts';
import { AckedProgress } from '../../engine/ingest/acked.ts';
import { IngestProgress } from '../../engine/ingest/progress.ts';
import { RingState } from '../../engine/ring/layout.ts';
import { RingWriter, type PublishHook } from '../../engine/ring/ring.ts';
import { GapKind, readTsMicros, writeGap } from '../../schemas/records.ts';
import { DepthDecoder } from './depth-decoder.ts';
import { DEPTH_HEADER_BYTES, DEPTH_MAGIC_LE, DEPTH_RECORD_BYTES, depthFormatError, parseDepthHeader } from './depth-format.ts';
import { ScidDecoder, readScidHeader, type ScidHeader } from './scid-decoder.ts';
import { SCID_HEADER_BYTES, SCID_MAGIC_LE, SCID_RECORD_BYTES } from './scid-format.ts';
import { FileTailer } from './tailer.ts';

/** One input of a Sierra source: a single `.scid` file, or a daily series of `.depth` files. */
export interface IngestFileSpec {
  kind: 'scid' | 'depth';
  symbol: string;
  symbolId: number;
  sourceId: number;
  priceMultiplier?: number;
  mergeBundles?: boolean;
  /** `.scid`: the file. */
  path?: string;
  /** `.depth`: the folder (Sierra's Data/MarketDepthData) and the file prefix (`MNQZ25_FUT_CME`). */
  dir?: string;
  prefix?: string;
  /** `.depth`: first date to read (YYYY-MM-DD); default: the newest file present at start. */
  fromDate?: string;
}

export interface SierraIngestOptions {
  /** Source name: checkpoint file name and message tag. */
  name: string;
  ring: SharedArrayBuffer;
  progress: SharedArrayBuffer;
  files: IngestFileSpec[];
  dataDir: string;
  /** Keep tailing (live) or stop after reading every file to its end (default true). */
  follow?: boolean;
  /** The longest sleep between polls of idle files (default 250 ms). */
  pollMs?: number;
  /** The sleep between polls while data is arriving (default 1 ms, at most pollMs). */
  pollMinMs?: number;
  /** How long after the last data the polls stay at pollMinMs before backing off (default 50 ms). */
  activeMs?: number;
  checkpointEveryMs?: number;
  /**
   * Depth series: how often an idle (or absent) daily file looks for the next day's file by listing the folder
   * (default 1000 ms, never more often than pollMs). Listing a Sierra Data folder (thousands of files, over 9P
   * under WSL2) at every poll cost more than everything else the source did: 9 % of a core at a 1 ms poll.
   */
  depthListEveryMs?: number;
  maxChunkBytes?: number;
  /**
   * The ring's consumer releases slots only once their records are stored durably (the validator stage:
   * after the journal commit). Checkpoints then record the position the consumer RELEASED, never one it
   * has not stored (engine/ingest/acked.ts); default false: the position published.
   */
  durableConsumer?: boolean;
}

export interface IngestEvents {
  sourceError(err: EngineError): void;
  warn(message: string, detail?: Record<string, string | number | boolean | null>): void;
}

const DEPTH_NAME_RE = /^(.*)\.(\d{4})-(\d{2})-(\d{2})\.depth$/;

/**
 * The ingest loop's sleep after an empty round: `minMs` while data came within the last `activeMs` (a live
 * market is read within about `minMs`), then twice the last sleep, up to `maxMs` (a quiet one costs a few polls
 * a second).
 */
export function nextIdleSleep(current: number, minMs: number, maxMs: number, quietForMs: number, activeMs: number): number {
  if (quietForMs < activeMs) return minMs;
  return Math.min(maxMs, Math.max(minMs, current * 2));
}

/** YYYY-MM-DD of a yyyymmdd tag. */
function tagToDate(tag: number): string {
  const t = String(tag).padStart(8, '0');
  return `${t.slice(0, 4)}-${t.slice(4, 6)}-${t.slice(6, 8)}`;
}

/** yyyymmdd tag of a depth file name, or 0. */
export function depthFileTag(fileName: string): number {
  const m = DEPTH_NAME_RE.exec(fileName);
  return m ? Number(`${m[2]}${m[3]}${m[4]}`) : 0;
}

/** Depth files of a prefix in a folder, oldest first. A missing folder is an empty list. */
export function listDepthFiles(dir: string, prefix: string): { path: string; tag: number }[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw engineError('ENGINE_ERR_FILE_IO', `cannot list ${dir}: ${(err as Error).message}`, { file: dir }, err);
  }
  const out: { path: string; tag: number }[] = [];
  for (const n of names) {
    const m = DEPTH_NAME_RE.exec(n);
    if (m && m[1] === prefix) out.push({ path: join(dir, n), tag: depthFileTag(n) });
  }
  out.sort((a, b) => a.tag - b.tag);
  return out;
}

function specKey(s: IngestFileSpec): string {
  return s.kind === 'scid' ? `scid:${s.symbol}:${s.path ?? ''}` : `depth:${s.symbol}:${s.dir ?? ''}/${s.prefix ?? ''}`;
}

function preadExact(fd: number, bytes: number, offset: number): Uint8Array {
  const buf = new Uint8Array(bytes);
  let got = 0;
  while (got < bytes) {
    const n = readSync(fd, buf, got, bytes - got, offset + got);
    if (n === 0) break;
    got += n;
  }
  return got === bytes ? buf : buf.subarray(0, got);
}

/** The part of a decoder this loop needs (both Sierra decoders). */
interface AnyDecoder {
  push(chunk: Uint8Array, fileOffset?: number): void;
  decodeInto(w: RingWriter): number;
  readonly nextRecordIndex: number;
  readonly bytesConsumed: number;
}

/** Why a file stopped, and what it looked like then (it is retried once it changed). */
interface Failure {
  ino: number;
  dev: number;
  size: number;
  mtimeMs: number;
  /** Failed at a record (records may have been handed on): retried only when replaced or shrunk. */
  atRecord: boolean;
}

/** A run of consecutive corrupt .scid records: the first is reported at once, the rest as one summary. */
interface BadRun { firstIndex: number; lastIndex: number; firstOffset: number; lastOffset: number }

class FileState {
  readonly spec: IngestFileSpec;
  readonly slot: number;
  readonly key: string;
  path: string;
  /** Depth series: the current file's date as yyyymmdd (0: no file of the series seen yet). */
  tag: number;
  tailer: FileTailer | null = null;
  decoder: AnyDecoder | null = null;
  depth: DepthDecoder | null = null;
  scid: ScidDecoder | null = null;
  failed: Failure | null = null;
  /** The message last reported for this file (the same error is not reported twice in a row). */
  lastReport: string | null = null;
  /** The last folder-listing error reported (depth series). */
  lastListError: string | null = null;
  /** performance.now() of the last listing of the depth folder while looking for the next day's file. */
  lastListAt = -Infinity;
  /** Emit a FILE_RESET before the first record (a checkpoint named an earlier version of this file, which had reached this record index); -1: none. */
  resetPending = -1;
  badRun: BadRun | null = null;
  done = false;

  constructor(spec: IngestFileSpec, slot: number, path: string, tag: number) {
    this.spec = spec;
    this.slot = slot;
    this.key = specKey(spec);
    this.path = path;
    this.tag = tag;
  }

  get needsInput(): boolean {
    if (this.scid) return this.scid.needsInput;
    if (this.depth) return this.depth.pendingRecords === 0;
    return true;
  }

  /** Drop the open file (tailer and decoder); the next pump opens it again at the progress position. */
  drop(): void {
    this.tailer?.close();
    this.tailer = null;
    this.decoder = null; this.scid = null; this.depth = null;
  }
}

/** Publish hook: the intent/commit steps around every publish of the current file's decoder. */
class ProgressHook implements PublishHook {
  readonly #progress: IngestProgress;
  readonly #w: RingWriter;
  file: FileState | null = null;
  acked: AckedProgress | null = null;

  constructor(progress: IngestProgress, w: RingWriter) {
    this.#progress = progress;
    this.#w = w;
  }

  beforePublish(n: number): void {
    const f = this.file;
    if (f === null || f.decoder === null) return;
    const lastTs = n > 0 ? readTsMicros(this.#w.views, this.#w.slotByte(n - 1)) : this.#progress.get(f.slot).lastTsMicros;
    this.#progress.begin(f.slot, f.decoder.nextRecordIndex, f.decoder.bytesConsumed, lastTs, n);
  }

  afterPublish(_n: number): void {
    if (this.file !== null) {
      this.#progress.commit();
      this.acked?.record(this.file.slot, this.#progress.get(this.file.slot));
    }
  }
}

export class SierraIngest {
  readonly #o: Required<Omit<SierraIngestOptions, 'files'>> & { files: IngestFileSpec[] };
  readonly #w: RingWriter;
  readonly #progress: IngestProgress;
  readonly #files: FileState[] = [];
  readonly #hook: ProgressHook;
  #acked: AckedProgress | null = null;
  readonly #events: IngestEvents;
  readonly #sleepWord = new Int32Array(new SharedArrayBuffer(4));
  #lastCheckpoint = 0;
  #sourceErrors = 0;
  #fileResets = 0;
  #lastCheckpointError: string | null = null;

  constructor(opts: SierraIngestOptions, events: IngestEvents) {
    this.#o = {
      follow: true, pollMs: 250, pollMinMs: 1, activeMs: 50, checkpointEveryMs: 1000, depthListEveryMs: 1000, maxChunkBytes: 4 * 1024 * 1024, durableConsumer: false, ...opts,
    };
    this.#events = events;
    this.#w = RingWriter.attach(opts.ring);
    this.#progress = IngestProgress.attach(opts.progress, opts.ring);
    if (this.#progress.files < opts.files.length) {
      throw engineError('ENGINE_ERR_INVALID_ARG', `progress table has ${this.#progress.files} slots for ${opts.files.length} files`);
    }
    this.#hook = new ProgressHook(this.#progress, this.#w);
    this.#w.setPublishHook(this.#hook);
    const cp = this.#loadCheckpoint();
    const wasSeeded = opts.files.map((_, slot) => this.#progress.isSeeded(slot));
    opts.files.forEach((spec, slot) => {
      const f = this.#initFile(spec, slot, cp);
      this.#files.push(f);
    });
    if (this.#o.durableConsumer) {
      const acked = new AckedProgress(opts.ring, opts.files.length);
      for (const f of this.#files) {
        const saved = cp.files[f.key];
        if (!wasSeeded[f.slot]) acked.set(f.slot, this.#progress.get(f.slot));
        // a restarted worker: what it had published may not be stored yet; the durable checkpoint is
        else if (saved && saved.path !== undefined && sameFile(saved as FileCheckpoint & { path: string })) acked.set(f.slot, { ...saved, tag: saved.tag ?? 0 });
        else acked.set(f.slot, { recordIndex: 0, offset: 0, lastTsMicros: 0, tag: this.#progress.get(f.slot).tag });
      }
      this.#acked = acked;
      this.#hook.acked = acked;
    }
  }

  /** Position to checkpoint for a file: the published one, or (durableConsumer) the one the consumer released. */
  #checkpointProgress(f: FileState): { recordIndex: number; offset: number; lastTsMicros: number; tag: number } {
    const a = this.#acked;
    if (a === null) return this.#progress.get(f.slot);
    a.advance();
    if (a.drained) a.set(f.slot, this.#progress.get(f.slot));
    return a.get(f.slot);
  }

  /** A corrupt checkpoint is fatal for this source (coded, naming the file): guessing a position would duplicate or lose ticks. */
  #loadCheckpoint(): SourceCheckpoint {
    return loadCheckpoint(this.#o.dataDir, this.#o.name);
  }

  #initFile(spec: IngestFileSpec, slot: number, cp: SourceCheckpoint): FileState {
    const key = specKey(spec);
    if (spec.kind === 'scid') {
      if (!spec.path) throw engineError('ENGINE_ERR_CONFIG', `scid input for ${spec.symbol} needs a path`);
    } else if (!spec.dir || !spec.prefix) {
      throw engineError('ENGINE_ERR_CONFIG', `depth input for ${spec.symbol} needs dir and prefix`);
    }
    const saved: FileCheckpoint | undefined = cp.files[key];
    let resetPending = -1;
    if (!this.#progress.isSeeded(slot)) {
      // Fresh process: seed from the durable checkpoint when the file is still the same one; otherwise
      // read that file (for a series: the file of the checkpoint's date) from its start.
      if (saved && saved.path !== undefined) {
        if (sameFile(saved as FileCheckpoint & { path: string })) {
          this.#progress.seed(slot, saved.recordIndex, saved.offset, saved.lastTsMicros, saved.tag ?? 0);
        } else {
          this.#progress.seed(slot, 0, 0, saved.lastTsMicros, saved.tag ?? 0);
          if (saved.offset > 0) resetPending = saved.recordIndex;
        }
      } else {
        this.#progress.seed(slot, 0, 0, 0, 0);
      }
    }
    const p = this.#progress.get(slot);
    if (spec.kind === 'scid') {
      const f = new FileState(spec, slot, spec.path!, 0);
      f.resetPending = resetPending;
      return f;
    }
    // depth: the file of the series the progress points at (or the next one after it), else the start file
    const f = new FileState(spec, slot, '', 0);
    f.resetPending = resetPending;
    const series = this.#listSeries(f);
    const from = spec.fromDate ? Number(spec.fromDate.replaceAll('-', '')) : 0;
    let pick: { path: string; tag: number } | undefined;
    if (p.tag > 0) pick = series.find((s) => s.tag >= p.tag);
    else if (from > 0) pick = series.find((s) => s.tag >= from);
    else pick = series[series.length - 1];
    if (pick) {
      if (pick.tag !== p.tag) this.#progress.switchFile(slot, pick.tag);
      f.path = pick.path;
      f.tag = pick.tag;
    } else if (p.tag > 0 || from > 0) {
      // not there yet: wait for the file of that date (or a later one)
      f.tag = p.tag > 0 ? p.tag : from;
      f.path = join(spec.dir!, `${spec.prefix!}.${tagToDate(f.tag)}.depth`);
      if (f.tag !== p.tag) this.#progress.switchFile(slot, f.tag);
    } else {
      // no file of the series yet and no start date: the newest one, once one appears
      f.tag = 0;
      f.path = join(spec.dir!, `${spec.prefix!}.YYYY-MM-DD.depth`);
    }
    return f;
  }

  get stats(): Record<string, number> {
    const s: Record<string, number> = { sourceErrors: this.#sourceErrors, fileResets: this.#fileResets };
    let records = 0;
    for (const f of this.#files) records += this.#progress.get(f.slot).recordIndex;
    s.recordIndexSum = records;
    return s;
  }

  /** Run until the ring leaves RUNNING (or, without follow, until every file is read to its end). */
  run(): void {
    const maxSleep = this.#o.pollMs;
    const minSleep = Math.min(this.#o.pollMinMs, maxSleep);
    let sleep = minSleep;
    let lastData = performance.now();
    for (;;) {
      if (this.#w.state !== RingState.RUNNING) break;
      let progressed = false;
      let full = false;
      let allDone = true;
      for (const f of this.#files) {
        const r = this.#pump(f);
        if (r === 'progress') progressed = true;
        else if (r === 'full') full = true;
        if (!f.done) allDone = false;
      }
      const now = performance.now();
      if (now - this.#lastCheckpoint >= this.#o.checkpointEveryMs) this.#saveCheckpointReporting();
      if (!this.#o.follow && allDone && !full) break;
      if (progressed || full) {
        lastData = now;
        sleep = minSleep;
      }
      if (full) this.#w.waitForSpace(1, 100);
      else if (!progressed) {
        Atomics.wait(this.#sleepWord, 0, 0, sleep);
        sleep = nextIdleSleep(sleep, minSleep, maxSleep, now - lastData, this.#o.activeMs);
      }
    }
    for (const f of this.#files) {
      this.#endBadRun(f);
      // A one-shot read leaves a trailing partial record unread: say so (a live file completes it later).
      const t = f.tailer;
      if (!this.#o.follow && t !== null && f.failed === null && t.size > t.offset) {
        this.#events.warn(`${f.path} ends with a partial record of ${t.size - t.offset} bytes at byte offset ${t.offset}; not read`, { file: f.path, byteOffset: t.offset });
      }
    }
    this.#saveCheckpointReporting();
    this.#w.setPublishHook(null);
    for (const f of this.#files) f.tailer?.close();
  }

  /**
   * A checkpoint that cannot be written (disk full, permissions) does not stop the ingest: the records
   * keep flowing and the error is reported (once until it changes or a save succeeds). A restart then
   * resumes from the last checkpoint that was written (duplicates, never loss).
   */
  #saveCheckpointReporting(): void {
    try {
      this.saveCheckpoint();
      this.#lastCheckpointError = null;
    } catch (err) {
      const e = isEngineError(err) ? err : engineError('ENGINE_ERR_FILE_IO', String(err));
      if (e.message !== this.#lastCheckpointError) {
        this.#lastCheckpointError = e.message;
        this.#sourceErrors++;
        this.#events.sourceError(e);
      }
    }
  }

  /** Save every file's committed progress durably. */
  saveCheckpoint(): void {
    this.#lastCheckpoint = performance.now();
    const cp: SourceCheckpoint = { version: 1, source: this.#o.name, files: {} };
    for (const f of this.#files) {
      const p = this.#checkpointProgress(f);
      // durableConsumer: the released position may still be in the previous file of a depth series
      const path = p.tag !== f.tag && f.spec.kind === 'depth' && p.tag > 0 ? join(f.spec.dir!, `${f.spec.prefix!}.${tagToDate(p.tag)}.depth`) : f.path;
      const id = path === f.path ? f.tailer?.identity ?? null : null;
      let ino = id?.ino ?? 0;
      let dev = id?.dev ?? 0;
      let fingerprint: string | null = null;
      let headBytes = 0;
      try {
        const fd = openSync(path, 'r');
        try {
          const st = fstatSync(fd);
          // The fingerprint is of the file the progress belongs to: skip it when the path already names
          // another one (the restart then sees the other inode and reads that file from its start).
          if (id === null || (st.ino === id.ino && st.dev === id.dev)) {
            ino = st.ino; dev = st.dev;
            headBytes = Math.min(st.size, FINGERPRINT_HEAD_BYTES);
            if (st.isFile() && st.size >= p.offset) fingerprint = fileFingerprint(fd, headBytes, p.offset);
          }
        } finally {
          closeSync(fd);
        }
      } catch { /* not there (yet): no fingerprint */ }
      const fc: FileCheckpoint = { offset: p.offset, recordIndex: p.recordIndex, ino, dev, lastTsMicros: p.lastTsMicros, updatedAt: new Date().toISOString(), path, tag: p.tag };
      if (fingerprint !== null) { fc.fingerprint = fingerprint; fc.fingerprintHeadBytes = headBytes; }
      cp.files[f.key] = fc;
    }
    saveCheckpoint(this.#o.dataDir, cp);
  }

  /** Report an error of a file through `sourceError`, unless it is the one last reported for it. */
  #report(err: unknown, f: FileState): void {
    const e = isEngineError(err) ? err : engineError('ENGINE_ERR_FILE_IO', `${f.path}: ${(err as Error)?.message ?? String(err)}`, { file: f.path }, err);
    if (e.message === f.lastReport) return;
    f.lastReport = e.message;
    this.#sourceErrors++;
    this.#events.sourceError(e);
  }

  /** Stop a file after an error; it is retried once it changed (see #changedSinceFailure). */
  #fail(f: FileState, err: unknown, atRecord: boolean, st?: Stats): void {
    this.#endBadRun(f);
    this.#report(err, f);
    let s = st;
    if (!s) { try { s = statSync(f.path); } catch { /* gone */ } }
    f.failed = { ino: s?.ino ?? -1, dev: s?.dev ?? -1, size: s?.size ?? -1, mtimeMs: s?.mtimeMs ?? -1, atRecord };
    f.drop();
    f.done = true;
  }

  /**
   * May a failed file be tried again? After a record error (records were handed on) only when it was
   * replaced or shrank: it is then read again from its start after a FILE_RESET. After a header (or open)
   * error when anything about it changed; nothing of it was handed on.
   */
  #changedSinceFailure(f: FileState, st: Stats): boolean {
    const x = f.failed!;
    if (st.ino !== x.ino || st.dev !== x.dev || st.size < x.size) {
      f.lastReport = null; // another file: its errors are news
      return true;
    }
    return !x.atRecord && (st.size !== x.size || st.mtimeMs !== x.mtimeMs);
  }

  /** Open a file at its progress position: returns false while it is absent, failed or shorter than its header. */
  #open(f: FileState): boolean {
    if (f.spec.kind === 'depth' && f.tag === 0) { f.done = true; return false; } // no file of the series yet
    let fd: number;
    try {
      fd = openSync(f.path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') { f.done = true; return false; }
      this.#fail(f, engineError('ENGINE_ERR_FILE_IO', `cannot open ${f.path}: ${(err as Error).message}`, { file: f.path }, err), false);
      return false;
    }
    try {
      const st = fstatSync(fd);
      if (f.failed) {
        if (!this.#changedSinceFailure(f, st)) { f.done = true; return false; }
        f.failed = null;
        const p = this.#progress.get(f.slot);
        if (p.offset > 0 || p.recordIndex > 0) { this.#restart(f, 'replaced'); } // re-read from the start
      }
      if (!st.isFile()) {
        this.#fail(f, engineError('ENGINE_ERR_FILE_IO', `${f.path} is ${st.isDirectory() ? 'a directory' : 'not a regular file'}, not a Sierra Chart file`, { file: f.path }), false, st);
        return false;
      }
      const scid = f.spec.kind === 'scid';
      const minHeader = scid ? SCID_HEADER_BYTES : DEPTH_HEADER_BYTES;
      const head = preadExact(fd, Math.min(st.size, 65_536), 0);
      if (st.size < minHeader) {
        // Sierra may be creating it: wait in follow mode, unless what is there is already wrong.
        const magicOk = head.length < 4 || new DataView(head.buffer, head.byteOffset, 4).getUint32(0, true) === (scid ? SCID_MAGIC_LE : DEPTH_MAGIC_LE);
        if (magicOk && this.#o.follow) { f.done = true; return false; }
        let err: unknown;
        try {
          if (scid) readScidHeader(head, f.path, st.size);
          else if (head.length >= 16) parseDepthHeader(head, f.path, st.size);
          else err = depthFormatError(f.path, head.length === 0 ? 0 : magicOk ? head.length : 0, head.length === 0 ? 'empty file, no SCDD header' : magicOk ? `file of ${head.length} bytes is shorter than a .depth header` : 'bad magic (not an SCDD market depth file)');
        } catch (e) { err = e; }
        this.#fail(f, err ?? engineError(scid ? 'ENGINE_ERR_SCID_FORMAT' : 'ENGINE_ERR_DEPTH_FORMAT', `${f.path}: file of ${st.size} bytes is shorter than its header (byte offset 0)`, { file: f.path, byteOffset: 0 }), false, st);
        return false;
      }
      const header = scid ? readScidHeader(head, f.path, st.size) : parseDepthHeader(head, f.path, st.size);
      const rb = scid ? SCID_RECORD_BYTES : DEPTH_RECORD_BYTES;
      let p = this.#progress.get(f.slot);
      if (p.offset > st.size || (p.offset > 0 && (p.offset < header.headerBytes || (p.offset - header.headerBytes) % rb !== 0))) {
        // Shorter than the position reached (shrank while nobody watched), or a position that is not a
        // record boundary of this file's header: not the file the position belongs to.
        this.#restart(f, 'truncated');
        p = this.#progress.get(f.slot);
      }
      const start = p.offset >= header.headerBytes ? (p.offset - header.headerBytes) / rb : 0;
      // The tailer must read the file this descriptor has open: a replacement in between is 'replaced'.
      const tailer = new FileTailer(f.path, { startOffset: 0, identity: { ino: st.ino, dev: st.dev }, maxChunkBytes: this.#o.maxChunkBytes });
      if (scid) {
        const inBundle = start > 0 ? scidInBundleAt(fd, header.headerBytes, start) : false;
        f.scid = new ScidDecoder({
          fileName: f.path, sourceId: f.spec.sourceId, symbolId: f.spec.symbolId, priceMultiplier: f.spec.priceMultiplier ?? 1,
          mergeBundles: f.spec.mergeBundles ?? false, header: header as ScidHeader, startRecordIndex: start, inBundle,
        });
        f.decoder = f.scid;
      } else {
        f.depth = new DepthDecoder({ fileName: f.path, sourceId: f.spec.sourceId, symbolId: f.spec.symbolId, priceMultiplier: f.spec.priceMultiplier ?? 1, startRecordIndex: start, fileBytes: st.size });
        f.depth.push(head.subarray(0, header.headerBytes));
        f.decoder = f.depth;
      }
      tailer.setAlignment(header.headerBytes, rb);
      tailer.seek(header.headerBytes + start * rb);
      f.tailer = tailer;
      f.done = false;
      f.lastReport = null;
      if (f.resetPending >= 0) {
        const reached = f.resetPending;
        f.resetPending = -1;
        this.#fileResets++;
        this.#emitGap(f, GapKind.FILE_RESET, reached);
      }
      return true;
    } catch (err) {
      this.#fail(f, err, false);
      return false;
    } finally {
      closeSync(fd);
    }
  }

  /** One step for one file. */
  #pump(f: FileState): 'progress' | 'idle' | 'full' {
    if (!f.decoder && !this.#open(f)) {
      return this.#maybeNextDepthFile(f) ? 'progress' : 'idle';
    }
    const dec = f.decoder!;
    this.#hook.file = f;
    try {
      if (f.needsInput) {
        const ev = f.tailer!.read();
        if (ev === 'data') {
          dec.push(f.tailer!.chunk, f.tailer!.chunkOffset);
        } else if (ev === 'idle' || ev === 'missing') {
          // (a run of corrupt records stays open across polls: it ends at the next good record)
          f.done = true;
          return this.#maybeNextDepthFile(f) ? 'progress' : 'idle';
        } else {
          this.#reset(f, ev);
          return 'progress';
        }
      }
      const n = dec.decodeInto(this.#w);
      f.done = false;
      if (n > 0) {
        this.#endBadRun(f);
        return 'progress';
      }
      return f.needsInput ? 'progress' : 'full';
    } catch (err) {
      if (f.scid && isEngineError(err, 'ENGINE_ERR_SCID_FORMAT') && typeof err.detail.recordIndex === 'number' && f.scid.header) {
        // a corrupt record: report it, step over it, go on with the file
        this.#badRecord(f, err, err.detail.recordIndex, typeof err.detail.byteOffset === 'number' ? err.detail.byteOffset : -1);
        try { f.scid.skipRecord(); return 'progress'; } catch (e2) { this.#fail(f, e2, true); return 'idle'; }
      }
      this.#fail(f, err, true);
      return 'idle';
    } finally {
      this.#hook.file = null;
    }
  }

  /** A corrupt .scid record: the first of a run is reported at once, the rest of the run when it ends. */
  #badRecord(f: FileState, err: EngineError, index: number, byteOffset: number): void {
    const run = f.badRun;
    if (run !== null && index === run.lastIndex + 1) {
      run.lastIndex = index;
      run.lastOffset = byteOffset;
      return;
    }
    this.#endBadRun(f);
    this.#report(err, f);
    f.badRun = { firstIndex: index, lastIndex: index, firstOffset: byteOffset, lastOffset: byteOffset };
  }

  #endBadRun(f: FileState): void {
    const run = f.badRun;
    if (run === null) return;
    f.badRun = null;
    const more = run.lastIndex - run.firstIndex;
    if (more === 0) return;
    this.#report(engineError(
      'ENGINE_ERR_SCID_FORMAT',
      `${f.path}: ${more} more corrupt records after record ${run.firstIndex}, records ${run.firstIndex + 1}..${run.lastIndex} (byte offset ${run.firstOffset + SCID_RECORD_BYTES} to ${run.lastOffset}), stepped over`,
      { file: f.path, byteOffset: run.firstOffset + SCID_RECORD_BYTES, lastByteOffset: run.lastOffset, recordIndex: run.firstIndex + 1, records: more },
    ), f);
  }

  /** The tailer saw the file shrink or be replaced: drop it, say so in the ring and start it again from its beginning. */
  #reset(f: FileState, why: 'truncated' | 'replaced'): void {
    f.drop();
    this.#restart(f, why);
  }

  /** FILE_RESET in the ring, then the progress of the file back to its start (in this order: a crash in between repeats the marker, never loses it). */
  #restart(f: FileState, why: 'truncated' | 'replaced'): void {
    this.#events.warn(`${f.path} was ${why}; re-reading it from the start`, { file: f.path });
    this.#endBadRun(f);
    this.#fileResets++;
    f.resetPending = -1;
    this.#emitGap(f, GapKind.FILE_RESET, this.#progress.get(f.slot).recordIndex);
    this.#progress.switchFile(f.slot, f.tag);
    this.#acked?.record(f.slot, this.#progress.get(f.slot));
  }

  /** A GAP record: `expectedSeq` = the record index the file had reached, got 0; time = last event time handed on. */
  #emitGap(f: FileState, kind: number, reachedIndex: number): void {
    for (;;) {
      if (this.#w.claim(1) === 1) break;
      if (this.#w.state === RingState.STOPPED) return;
      this.#w.waitForSpace(1, 100);
    }
    const now = Date.now() * 1000;
    const last = this.#progress.get(f.slot).lastTsMicros;
    writeGap(this.#w.views, this.#w.slotByte(0), f.spec.sourceId, f.spec.symbolId, 0, last > 0 ? last : now, now, kind, reachedIndex >>> 0, 0, 0);
    this.#w.publish(1);
  }

  /** Files of a depth series; a folder that cannot be listed (other than missing) is reported once, then waited for. */
  #listSeries(f: FileState): { path: string; tag: number }[] {
    try {
      const out = listDepthFiles(f.spec.dir!, f.spec.prefix!);
      f.lastListError = null;
      return out;
    } catch (err) {
      const e = isEngineError(err) ? err : engineError('ENGINE_ERR_FILE_IO', String(err), { file: f.spec.dir! });
      if (e.message !== f.lastListError) {
        f.lastListError = e.message;
        this.#sourceErrors++;
        this.#events.sourceError(e);
      }
      return [];
    }
  }

  /** Daily depth files: when the current one is idle (or absent) and a newer one exists, move on to it. */
  #maybeNextDepthFile(f: FileState): boolean {
    if (f.spec.kind !== 'depth' || (f.decoder !== null && !f.needsInput)) return false;
    const now = performance.now();
    if (now - f.lastListAt < this.#o.depthListEveryMs) return false;
    f.lastListAt = now;
    const series = this.#listSeries(f);
    const next = f.tag === 0 ? series[series.length - 1] : series.find((s) => s.tag > f.tag);
    if (!next) return false;
    // Only leave the current file once it has been read to its end (whole records).
    if (f.tailer) {
      const ev = f.tailer.read();
      if (ev === 'data') { f.decoder!.push(f.tailer.chunk, f.tailer.chunkOffset); f.done = false; return true; }
      if (ev === 'idle' && f.tailer.size > f.tailer.offset) {
        this.#events.warn(`${f.path} ends with a partial record of ${f.tailer.size - f.tailer.offset} bytes at byte offset ${f.tailer.offset}; moving on to ${next.path}`, { file: f.path, byteOffset: f.tailer.offset });
      }
    }
    this.#endBadRun(f);
    f.drop();
    f.failed = null;
    f.lastReport = null;
    f.resetPending = -1;
    f.path = next.path;
    f.tag = next.tag;
    f.done = false;
    this.#progress.switchFile(f.slot, next.tag);
    this.#acked?.record(f.slot, this.#progress.get(f.slot));
    return true;
  }
}

/** Is the file a checkpoint names still that file, at least as long as the checkpoint's offset? */
function sameFile(saved: FileCheckpoint & { path: string }): boolean {
  let fd: number;
  try { fd = openSync(saved.path, 'r'); } catch { return false; }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.ino !== saved.ino || st.dev !== saved.dev || st.size < saved.offset) return false;
    if (saved.fingerprint === undefined) return true; // a checkpoint written before fingerprints
    return fileFingerprint(fd, saved.fingerprintHeadBytes ?? 0, saved.offset) === saved.fingerprint;
  } catch {
    return false;
  } finally {
    closeSync(fd);
  }
}

/** Is record `index` of a .scid file inside a sub-trade bundle? (scan back for the last marker) */
function scidInBundleAt(fd: number, headerBytes: number, index: number): boolean {
  const back = Math.min(index, 256);
  const bytes = preadExact(fd, back * SCID_RECORD_BYTES, headerBytes + (index - back) * SCID_RECORD_BYTES);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = back - 1; i >= 0; i--) {
    const bits = dv.getUint32(i * SCID_RECORD_BYTES + 8, true);
    if (bits === 0xfd709ef9) return true; // FIRST
    if (bits === 0xfd709f01) return false; // LAST
  }
  return false;
}

export { toWire };
