/**
 * Day files of fixed-size entries on disk, for the quarantine and the gap store: append-only from the
 * validator thread, scanned asynchronously (never blocking) by readers on any thread.
 *
 * Layout: `<dir>/<YYYY-MM-DD>.<ext>`, the UTC day of the record's event time (a record whose time is not
 * a plausible time is filed under the day it arrived). A file starts with a 16-byte header (u32 magic,
 * u32 version, u32 entry bytes, u32 reserved) followed by 80-byte entries:
 *
 *   0  64 bytes  the record slot exactly as it arrived (schemas/records.ts layout)
 *  64  u32       code (quarantine: RejectReason, or 0 for a flagged-but-kept record; gaps: GapKind)
 *  68  u32       verdict flags (TradeFlag.V_* bits found on the record, kept or not)
 *  72  f64       arrival time, Unix µs (wall clock of the validator)
 *
 * Writes: `append()` copies into a staging buffer (no allocation); `writeStaged()` appends the staged
 * entries with `writeSync` (the validator calls it at the end of every ring batch, before the batch's
 * records can be acknowledged: a process kill after that loses nothing, the page cache keeps it);
 * `sync()` fdatasyncs the files written since the last sync (the validator calls it with each journal
 * commit). A torn tail (a partial entry after a crash mid-write) is cut when the writer opens the file,
 * and ignored by readers.
 */
import { closeSync, fdatasyncSync, fstatSync, ftruncateSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { engineError } from '../errors.ts';
import type { SlotViews } from '../ring/ring.ts';

export const LOG_HEADER_BYTES = 16;
export const LOG_ENTRY_BYTES = 80;
export const LOG_VERSION = 1;
const DAY_MICROS = 86_400_000_000;
const MIN_PLAUSIBLE = 946_684_800_000_000; // 2000-01-01
const MAX_PLAUSIBLE = 4_102_444_800_000_000; // 2100-01-01
const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;

function dayOf(tsMicros: number, arrivedMicros: number): number {
  const t = tsMicros >= MIN_PLAUSIBLE && tsMicros < MAX_PLAUSIBLE ? tsMicros : arrivedMicros;
  return Math.floor(t / DAY_MICROS);
}

function dayName(day: number): string {
  return new Date(day * 86_400_000).toISOString().slice(0, 10);
}

function parseDayName(name: string, ext: string): number | null {
  if (!name.endsWith(`.${ext}`)) return null;
  const m = DATE_RE.exec(name.slice(0, -(ext.length + 1)));
  if (!m) return null;
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  return Number.isFinite(ms) ? ms / 86_400_000 : null;
}

function ioError(what: string, path: string, err: unknown): Error {
  const e = err as NodeJS.ErrnoException;
  return engineError('ENGINE_ERR_FILE_IO', `${what} ${path}: ${e?.code ?? ''} ${e?.message ?? String(err)}`.trim(), { file: path, errno: e?.code ?? null }, err);
}

/** Writer side (one thread per directory). */
export class RecordLogWriter {
  readonly dir: string;
  readonly #ext: string;
  readonly #magic: number;
  readonly #stage: Uint8Array;
  readonly #stageU32: Uint32Array;
  readonly #stageF64: Float64Array;
  readonly #stageDay: Float64Array;
  readonly #cap: number;
  #n = 0;
  readonly #fds = new Map<number, number>();
  readonly #dirty = new Set<number>();
  #appended = 0;

  /** Opens nothing yet; creates `dir`. Unwritable directory: ENGINE_ERR_FILE_IO. */
  constructor(dir: string, ext: string, magic: number, stageEntries = 4096) {
    this.dir = dir;
    this.#ext = ext;
    this.#magic = magic;
    this.#cap = stageEntries;
    const buf = new ArrayBuffer(stageEntries * LOG_ENTRY_BYTES);
    this.#stage = new Uint8Array(buf);
    this.#stageU32 = new Uint32Array(buf);
    this.#stageF64 = new Float64Array(buf);
    this.#stageDay = new Float64Array(stageEntries);
    try {
      mkdirSync(dir, { recursive: true });
    } catch (err) {
      throw ioError('cannot create', dir, err);
    }
  }

  /** Entries appended by this writer. */
  get appended(): number { return this.#appended; }

  /** Stage one entry (the 64-byte slot at `b`). Writes the stage first when it is full. */
  append(v: SlotViews, b: number, code: number, verdict: number, arrivedMicros: number): void {
    if (this.#n === this.#cap) this.writeStaged();
    const n = this.#n;
    const o = n * LOG_ENTRY_BYTES;
    this.#stage.set(v.u8.subarray(b, b + 64), o);
    this.#stageU32[(o + 64) >> 2] = code >>> 0;
    this.#stageU32[(o + 68) >> 2] = verdict >>> 0;
    this.#stageF64[(o + 72) >> 3] = arrivedMicros;
    this.#stageDay[n] = dayOf(v.f64[(b + 8) >> 3] ?? NaN, arrivedMicros);
    this.#n = n + 1;
    this.#appended++;
  }

  /** Append the staged entries to their day files (writeSync; no fsync). */
  writeStaged(): void {
    const n = this.#n;
    if (n === 0) return;
    let i = 0;
    while (i < n) {
      const day = this.#stageDay[i]!;
      let j = i + 1;
      while (j < n && this.#stageDay[j] === day) j++;
      const fd = this.#fd(day);
      const off = i * LOG_ENTRY_BYTES;
      const len = (j - i) * LOG_ENTRY_BYTES;
      try {
        let done = 0;
        while (done < len) done += writeSync(fd, this.#stage, off + done, len - done);
      } catch (err) {
        throw ioError('cannot write', this.#path(day), err);
      }
      this.#dirty.add(day);
      i = j;
    }
    this.#n = 0;
  }

  /** Write what is staged and fdatasync every file written since the last sync. */
  sync(): void {
    this.writeStaged();
    for (const day of this.#dirty) {
      const fd = this.#fds.get(day);
      if (fd === undefined) continue;
      try { fdatasyncSync(fd); } catch (err) { throw ioError('cannot fsync', this.#path(day), err); }
    }
    this.#dirty.clear();
  }

  close(): void {
    try { this.sync(); } finally {
      for (const fd of this.#fds.values()) { try { closeSync(fd); } catch { /* closing anyway */ } }
      this.#fds.clear();
    }
  }

  #path(day: number): string {
    return join(this.dir, `${dayName(day)}.${this.#ext}`);
  }

  #fd(day: number): number {
    const have = this.#fds.get(day);
    if (have !== undefined) return have;
    const path = this.#path(day);
    let fd: number;
    try {
      fd = openSync(path, 'a+');
      const size = fstatSync(fd).size;
      if (size < LOG_HEADER_BYTES) {
        if (size > 0) ftruncateSync(fd, 0);
        const h = new Uint32Array([this.#magic, LOG_VERSION, LOG_ENTRY_BYTES, 0]);
        writeSync(fd, new Uint8Array(h.buffer));
      } else {
        const whole = LOG_HEADER_BYTES + Math.floor((size - LOG_HEADER_BYTES) / LOG_ENTRY_BYTES) * LOG_ENTRY_BYTES;
        if (whole !== size) ftruncateSync(fd, whole); // torn tail of a crash mid-write
      }
    } catch (err) {
      throw ioError('cannot open', path, err);
    }
    if (this.#fds.size >= 8) { // keep a few days open; close the oldest
      const oldest = Math.min(...this.#fds.keys());
      const ofd = this.#fds.get(oldest)!;
      try { if (this.#dirty.has(oldest)) fdatasyncSync(ofd); closeSync(ofd); } catch { /* best effort */ }
      this.#fds.delete(oldest);
      this.#dirty.delete(oldest);
    }
    this.#fds.set(day, fd);
    return fd;
  }
}

/** One entry handed to a scan visitor: `views`/`b` address the 64-byte record (valid during the call). */
export type LogVisitor = (views: SlotViews, b: number, code: number, verdict: number, arrivedMicros: number) => boolean | void;

/** Day files of a log directory, oldest first, restricted to [fromDay, toDay]. */
export async function listLogDays(dir: string, ext: string, fromDay = -Infinity, toDay = Infinity): Promise<number[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw ioError('cannot list', dir, err);
  }
  const days: number[] = [];
  for (const n of names) {
    const d = parseDayName(n, ext);
    if (d !== null && d >= fromDay && d <= toDay) days.push(d);
  }
  return days.sort((a, b) => a - b);
}

const SCAN_CHUNK_ENTRIES = 8192;

/**
 * Scan the whole entries of one day file asynchronously (1 chunk = 8192 entries per read; the event loop
 * runs between chunks). The visitor returns true to stop. A missing file is empty; a file with a foreign
 * header is ENGINE_ERR_FILE_IO naming it.
 */
export async function scanLogFile(dir: string, ext: string, magic: number, day: number, visit: LogVisitor): Promise<boolean> {
  const path = join(dir, `${dayName(day)}.${ext}`);
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw ioError('cannot open', path, err);
  }
  try {
    const size = (await fh.stat()).size;
    if (size < LOG_HEADER_BYTES) return false;
    const h = new Uint32Array(4);
    await fh.read(new Uint8Array(h.buffer), 0, LOG_HEADER_BYTES, 0);
    if (h[0] !== magic || h[1] !== LOG_VERSION || h[2] !== LOG_ENTRY_BYTES) {
      throw engineError('ENGINE_ERR_FILE_IO', `${path} is not a tickpipe ${ext} file (bad magic, version or entry size)`, { file: path });
    }
    const total = Math.floor((size - LOG_HEADER_BYTES) / LOG_ENTRY_BYTES);
    const buf = new ArrayBuffer(SCAN_CHUNK_ENTRIES * LOG_ENTRY_BYTES);
    const u8 = new Uint8Array(buf);
    const views: SlotViews = { f64: new Float64Array(buf), f32: new Float32Array(buf), i32: new Int32Array(buf), u32: new Uint32Array(buf), u16: new Uint16Array(buf), u8 };
    for (let done = 0; done < total;) {
      const n = Math.min(SCAN_CHUNK_ENTRIES, total - done);
      const len = n * LOG_ENTRY_BYTES;
      let got = 0;
      while (got < len) {
        const r = await fh.read(u8, got, len - got, LOG_HEADER_BYTES + done * LOG_ENTRY_BYTES + got);
        if (r.bytesRead === 0) break;
        got += r.bytesRead;
      }
      const whole = Math.floor(got / LOG_ENTRY_BYTES);
      for (let k = 0; k < whole; k++) {
        const b = k * LOG_ENTRY_BYTES;
        if (visit(views, b, views.u32[(b + 64) >> 2]!, views.u32[(b + 68) >> 2]!, views.f64[(b + 72) >> 3]!) === true) return true;
      }
      if (whole < n) break;
      done += n;
    }
    return false;
  } finally {
    await fh.close();
  }
}

export { dayName as logDayName };
