/**
 * Backfill of one Sierra Chart `.scid` file straight to Parquet, through the same Validator as live data
 * (engine/validate/validator.ts). Runs in a compactor pool thread (tasks.ts, `tickpipe backfill`) or
 * in-thread (bench/backfill.bench.ts, with `onKept` feeding a hot window).
 *
 * Steps:
 *  1. The range [start, end) is widened to whole UTC hours (a partial hour would overwrite a complete
 *     hour file). The first record at or after `start` is found by binary search on the record times
 *     (Sierra files are in time order; the validator flags what is not).
 *  2. The file is read in chunks into a ScidDecoder → a private ring (the same decoder as the live
 *     source: sub-trade flags, legacy times, price multiplier, seq = srcIndex = record index).
 *  3. Every record goes through `Validator.check`: kept records (with any V_* verdict bits) go to the
 *     columns of their UTC hour; rejected ones are staged for the engine's quarantine store with their
 *     reason, and gap records the validator emits for its gap store (below). A corrupt record (implausible time:
 *     ENGINE_ERR_SCID_FORMAT naming file and byte offset) is skipped, listed in the file's corrupt list
 *     and reported as an error; the rest of the file continues (at most MAX_CORRUPT, then the file stops).
 *  4. An hour is complete once a kept record is newer than its end by more than the reorder window
 *     (older records would be rejected OUT_OF_ORDER): it is written with writeHourParquet (verified,
 *     atomic) and then its done marker. The last hour of the file is written but not marked done (the
 *     file may still grow), so a rerun rewrites it.
 * Idempotent and resumable: a rerun decodes and validates everything again (cheap, and it keeps the
 * validator's state identical) but skips hours whose done marker and Parquet file exist; rewriting an
 * hour replaces its files. Running twice adds no rows.
 *
 * Quarantine and gaps go where the engine keeps its own, in the same format (engine/validate/stores.ts,
 * record-log.ts): `<data-dir>/quarantine/<YYYY-MM-DD>.tpq` and `<data-dir>/gaps/<YYYY-MM-DD>.tpg`, so
 * `GET /api/v1/quarantine`, `/api/v1/gaps` and `engine.quarantine.query()` see backfill rejects beside live
 * ones. The records carry the task's `symbolId` (the engine registry's id of the symbol: the caller picks it,
 * scripts/commands/backfill.ts uses the engine's order of TICKPIPE_SYMBOLS) and `sourceId` (1, 'sierra': the
 * same as the live .scid source, whose seq is also the record index). The day files are append-only and
 * shared (other backfill threads, a running engine): a day file is created with its header by an atomic
 * link, an hour's entries are appended with one O_APPEND write per day file, and an entry whose record is already in the day file (same
 * source, symbol, seq and time for a reject; same source, symbol, kind, span and sequences for a gap) is not
 * written again, so a rerun, a resumed run or a backfill over what the engine already ingested adds nothing
 * twice. An hour's entries are written (and fdatasynced) before its Parquet and done marker.
 *
 * Files beside the Parquet (written to a temp name and renamed):
 *   <data-dir>/backfill/done/symbol=<SYM>/date=<D>/hour=<HH>.json      done marker (file, rows, checksum)
 *   <data-dir>/quarantine/backfill/corrupt/<file name>.ndjson          corrupt records of a file (byte offsets)
 */
import { closeSync, existsSync, fdatasyncSync, fstatSync, ftruncateSync, linkSync, mkdirSync, openSync, readSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { threadId, type MessagePort } from 'node:worker_threads';
import { engineError, isEngineError, toWire, type WireError } from '../../engine/errors.ts';
import { slotViewsOf } from '../../engine/journal/format.ts';
import { createRing, RingReader, RingWriter, type SlotViews } from '../../engine/ring/ring.ts';
import { LOG_ENTRY_BYTES, LOG_HEADER_BYTES, LOG_VERSION, logDayName, scanLogFile } from '../../engine/validate/record-log.ts';
import { GAPS_DIR, GAPS_EXT, GAPS_MAGIC, QUARANTINE_DIR, QUARANTINE_EXT, QUARANTINE_MAGIC } from '../../engine/validate/stores.ts';
import { RejectReason, Validator, VERDICT_MASK } from '../../engine/validate/validator.ts';
import {
  GAP_END_TS_MICROS_BYTE, GAP_EXPECTED_SEQ_BYTE, GAP_GOT_SEQ_BYTE, GAP_KIND_BYTE, RECORD_SLOT_BYTES, RecordKind, SEQ_BYTE,
  SOURCE_ID_BYTE, SYMBOL_ID_BYTE, TRADE_FLAGS_BYTE, TRADE_PRICE_BYTE, TRADE_SRC_INDEX_BYTE, TS_MICROS_BYTE,
  TRADE_ASK_BYTE, TRADE_BID_BYTE, TRADE_SIZE_BYTE,
} from '../../schemas/records.ts';
import { readScidHeader, ScidDecoder, scidDaysToUnixMicros, scidInt64ToUnixMicros, type ScidHeader } from '../sierra/scid-decoder.ts';
import { SCID_MAX_HEADER_BYTES, SCID_MAX_PLAUSIBLE_MICROS, SCID_MIN_PLAUSIBLE_MICROS, SCID_RECORD_BYTES } from '../sierra/scid-format.ts';
import type { CompactorDb } from './duck.ts';
import type { TickColumns } from './figures.ts';
import { writeHourParquet } from './hour-writer.ts';
import { DAY_FILE, encodeSymbolSegment, hourFileName, MICROS_PER_HOUR, partitionDir, utcDateHour } from './layout.ts';

/** Corrupt records skipped per file before the file is abandoned. */
export const MAX_CORRUPT = 1000;
/** Complete hours waiting for their Parquet write while decoding goes on. */
const MAX_PENDING_WRITES = 2;
const CHUNK_BYTES_DEFAULT = 4 << 20;
/** Ring slots: also the records decoded between two looks at the event loop while an hour is being written. */
const RING_SLOTS = 2048;
const SYMBOL_ID = 1;
const SOURCE_ID = 1;

export interface BackfillFileTask {
  kind: 'backfill-file';
  dataDir: string;
  file: string;
  symbol: string;
  /** Source name in the Parquet `source` column (default 'sierra'). */
  sourceName?: string;
  /** Symbol id in the records (quarantine and gap entries): the engine registry's id of `symbol` (default 1). */
  symbolId?: number;
  /** Source id in the records (default 1: the engine's .scid source, 'sierra'). */
  sourceId?: number;
  /** Tick size for the validator (NaN/0: not checked). */
  tickSize: number;
  priceMultiplier?: number;
  /** Unix µs; null = no bound. Widened to whole hours. */
  startMicros: number | null;
  endMicros: number | null;
  /** Validator reorder window, µs (default 500 ms). */
  reorderWindowMicros?: number;
  duckdbThreads?: number;
  chunkBytes?: number;
  /** Progress messages `{ bytes }` (bytes read since the previous message). */
  progressPort?: MessagePort;
}

export interface CorruptRecord { file: string; byteOffset: number; recordIndex: number; message: string }

export interface BackfillFileResult {
  kind: 'backfill-file';
  file: string;
  symbol: string;
  /** Records decoded inside the range. */
  records: number;
  kept: number;
  rejected: number;
  /** Quarantine / gap entries appended to the engine's stores this run (entries already there are not repeated). */
  quarantineWritten: number;
  gapsWritten: number;
  /** Hours written this run / skipped because already done. */
  hoursWritten: number;
  hoursSkipped: number;
  rowsWritten: number;
  gaps: number;
  corrupt: CorruptRecord[];
  /** A problem that stopped or spoiled the file (missing, bad header, too many corrupt records, a write failure). */
  errors: WireError[];
  counters: Record<string, number>;
  bytesRead: number;
}

export interface BackfillHooks {
  /** Called for every kept TRADE slot (after the validator set its verdict bits). */
  onKept?: (views: SlotViews, b: number) => void;
  /**
   * Called once every record is decoded and validated and every hour handed to the writer (only their
   * Parquet writes are left): the caller may start decoding the next file on this thread meanwhile.
   */
  onDecoded?: () => void;
}

/** Hour writes in flight on this thread, over all files (module state: one per pool thread). */
let threadWrites = 0;
const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => { setImmediate(resolve); });

const DAY_MICROS = 86_400_000_000;
/** record-log.ts files an entry under its event day when plausible, else under its arrival day. */
const MIN_PLAUSIBLE = 946_684_800_000_000;
const MAX_PLAUSIBLE = 4_102_444_800_000_000;

/** Staged store entries (record-log.ts layout: the 64-byte slot, u32 code, u32 verdict, f64 arrival µs). */
class LogEntries {
  n = 0;
  views: SlotViews = slotViewsOf(new ArrayBuffer(0));
  push(v: SlotViews, b: number, code: number, verdict: number, arrivedMicros: number): void {
    if ((this.n + 1) * LOG_ENTRY_BYTES > this.views.u8.length) {
      const next = slotViewsOf(new ArrayBuffer(Math.max(64, this.n * 2) * LOG_ENTRY_BYTES));
      next.u8.set(this.views.u8);
      this.views = next;
    }
    const o = this.n * LOG_ENTRY_BYTES;
    this.views.u8.set(v.u8.subarray(b, b + RECORD_SLOT_BYTES), o);
    this.views.u32[(o + 64) >> 2] = code >>> 0;
    this.views.u32[(o + 68) >> 2] = verdict >>> 0;
    this.views.f64[(o + 72) >> 3] = arrivedMicros;
    this.n++;
  }
}

function entryDay(v: SlotViews, b: number): number {
  const ts = v.f64[(b + TS_MICROS_BYTE) >> 3] as number;
  const t = ts >= MIN_PLAUSIBLE && ts < MAX_PLAUSIBLE ? ts : (v.f64[(b + 72) >> 3] as number);
  return Math.floor(t / DAY_MICROS);
}

/** Create a day file with its header unless it exists: by link(2), so concurrent writers never write two headers. */
function ensureLogFile(dir: string, ext: string, magic: number, day: number): void {
  const path = join(dir, `${logDayName(day)}.${ext}`);
  if (existsSync(path)) return;
  mkdirSync(dir, { recursive: true });
  const tmp = `${path}.${process.pid}-${threadId}.tmp`;
  writeFileSync(tmp, new Uint8Array(new Uint32Array([magic, LOG_VERSION, LOG_ENTRY_BYTES, 0]).buffer));
  try {
    linkSync(tmp, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  } finally {
    unlinkSync(tmp);
  }
}

/**
 * Append whole entries to a shared day file: one O_APPEND write (appends of other writers never interleave
 * inside it), then fdatasync. The file is never truncated here while its size looks torn: another writer
 * may be in the middle of its append; only a tail still torn a moment later (a crash mid-write) is cut back
 * to whole entries, as the engine's writer does when it opens the file.
 */
async function appendEntries(path: string, u8: Uint8Array, len: number): Promise<void> {
  const fd = openSync(path, 'a');
  try {
    let size = fstatSync(fd).size;
    for (let tries = 0; (size - LOG_HEADER_BYTES) % LOG_ENTRY_BYTES !== 0 && tries < 20; tries++) {
      await new Promise((r) => setTimeout(r, 5));
      size = fstatSync(fd).size;
    }
    const whole = LOG_HEADER_BYTES + Math.floor((size - LOG_HEADER_BYTES) / LOG_ENTRY_BYTES) * LOG_ENTRY_BYTES;
    if (whole !== size) ftruncateSync(fd, whole);
    let done = 0;
    while (done < len) done += writeSync(fd, u8, done, len - done);
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Appends one backfill task's entries to a shared store (the engine's quarantine or gap day files), leaving
 * out entries whose key is already in the day file. Keys are only collected for the task's own source and
 * symbol (`keyOf` returns null for others).
 */
class StoreAppender {
  readonly #dir: string;
  readonly #ext: string;
  readonly #magic: number;
  readonly #keyOf: (v: SlotViews, b: number, code: number) => string | null;
  readonly #seen = new Map<number, Set<string>>();

  constructor(dir: string, ext: string, magic: number, keyOf: (v: SlotViews, b: number, code: number) => string | null) {
    this.#dir = dir;
    this.#ext = ext;
    this.#magic = magic;
    this.#keyOf = keyOf;
  }

  async #keysOf(day: number): Promise<Set<string>> {
    let keys = this.#seen.get(day);
    if (keys !== undefined) return keys;
    keys = new Set<string>();
    ensureLogFile(this.#dir, this.#ext, this.#magic, day);
    const into = keys;
    await scanLogFile(this.#dir, this.#ext, this.#magic, day, (v, b, code) => {
      const k = this.#keyOf(v, b, code);
      if (k !== null) into.add(k);
    });
    this.#seen.set(day, keys);
    return keys;
  }

  /** Append what is not there yet (one write per day file, fdatasynced); returns the entries written. */
  async append(e: LogEntries): Promise<number> {
    if (e.n === 0) return 0;
    const v = e.views;
    const byDay = new Map<number, number[]>();
    for (let k = 0; k < e.n; k++) {
      const b = k * LOG_ENTRY_BYTES;
      const day = entryDay(v, b);
      const keys = await this.#keysOf(day);
      const key = this.#keyOf(v, b, v.u32[(b + 64) >> 2] as number);
      if (key !== null) {
        if (keys.has(key)) continue;
        keys.add(key);
      }
      let list = byDay.get(day);
      if (list === undefined) byDay.set(day, (list = []));
      list.push(b);
    }
    let written = 0;
    for (const [day, offsets] of byDay) {
      const out = new Uint8Array(offsets.length * LOG_ENTRY_BYTES);
      offsets.forEach((b, i) => out.set(v.u8.subarray(b, b + LOG_ENTRY_BYTES), i * LOG_ENTRY_BYTES));
      const path = join(this.#dir, `${logDayName(day)}.${this.#ext}`);
      try {
        await appendEntries(path, out, out.length);
      } catch (err) {
        throw engineError('ENGINE_ERR_FILE_IO', `backfill: cannot append to ${path}: ${(err as Error).message}`, { file: path, errno: (err as NodeJS.ErrnoException).code ?? null }, err);
      }
      written += offsets.length;
    }
    return written;
  }
}

/** Read buffers, kept per thread by size (each file reads through one; see spareSets on fresh memory). */
const readBuffers: Uint8Array[] = [];

/** A read buffer of `bytes` not in use by another file on this thread; give it back with `readBuffers.push`. */
function readBuffer(bytes: number): Uint8Array {
  const i = readBuffers.findIndex((b) => b.length === bytes);
  return i >= 0 ? readBuffers.splice(i, 1)[0] as Uint8Array : new Uint8Array(bytes);
}

/** One set of hour columns (capacity `cap` rows). */
interface ColumnSet {
  cap: number;
  ts: Float64Array;
  price: Float64Array;
  bid: Float64Array;
  ask: Float64Array;
  size: Uint32Array;
  flags: Uint32Array;
  seq: Uint32Array;
  src: Uint32Array;
}

/** Bytes per row of a ColumnSet. */
const COLUMN_SET_ROW_BYTES = 4 * 8 + 4 * 4;
/** Column sets kept for reuse per thread, and the bytes they may hold in all. */
const SPARE_SETS_MAX = 2;
const SPARE_BYTES_MAX = 512 * 1024 * 1024;

/**
 * Column sets of hours already written, kept per thread (module state: one per pool thread) for the next
 * hours and the next files. Memory touched for the first time is expensive (a page fault per 4 KiB: ~20 µs
 * each on the Firecracker VM the benches run on, 48 B a row → ~0.25 µs a row), so a set is reused rather
 * than allocated again. Bounded: at most SPARE_SETS_MAX sets and SPARE_BYTES_MAX bytes are kept.
 */
const spareSets: ColumnSet[] = [];

function newColumnSet(cap: number): ColumnSet {
  return {
    cap, ts: new Float64Array(cap), price: new Float64Array(cap), bid: new Float64Array(cap), ask: new Float64Array(cap),
    size: new Uint32Array(cap), flags: new Uint32Array(cap), seq: new Uint32Array(cap), src: new Uint32Array(cap),
  };
}

/** A set of at least `cap` rows: the largest spare when it is big enough, else a new one. */
function takeColumnSet(cap: number): ColumnSet {
  let best = -1;
  for (let i = 0; i < spareSets.length; i++) if (best < 0 || (spareSets[i] as ColumnSet).cap > (spareSets[best] as ColumnSet).cap) best = i;
  if (best >= 0 && (spareSets[best] as ColumnSet).cap >= cap) return spareSets.splice(best, 1)[0] as ColumnSet;
  return newColumnSet(cap);
}

/** Give a set back once nothing reads it any more (its hour is written). */
function returnColumnSet(set: ColumnSet): void {
  spareSets.push(set);
  spareSets.sort((x, y) => y.cap - x.cap); // keep the biggest
  let bytes = 0;
  let keep = 0;
  while (keep < spareSets.length && keep < SPARE_SETS_MAX && bytes + (spareSets[keep] as ColumnSet).cap * COLUMN_SET_ROW_BYTES <= SPARE_BYTES_MAX) {
    bytes += (spareSets[keep] as ColumnSet).cap * COLUMN_SET_ROW_BYTES;
    keep++;
  }
  spareSets.length = keep;
}

/** Growable columns of one hour (typed arrays as plain fields: monomorphic access in the per-tick push). */
class HourAcc implements ColumnSet {
  readonly hour: number;
  n = 0;
  cap: number;
  ts: Float64Array;
  price: Float64Array;
  bid: Float64Array;
  ask: Float64Array;
  size: Uint32Array;
  flags: Uint32Array;
  seq: Uint32Array;
  src: Uint32Array;
  readonly quarantine = new LogEntries();
  readonly gaps = new LogEntries();
  constructor(hour: number, cap: number) {
    this.hour = hour;
    const c = takeColumnSet(cap);
    this.cap = c.cap;
    this.ts = c.ts; this.price = c.price; this.bid = c.bid; this.ask = c.ask;
    this.size = c.size; this.flags = c.flags; this.seq = c.seq; this.src = c.src;
  }
  /** Hand the columns back for reuse (the hour is written; nothing reads them any more). */
  release(): void {
    returnColumnSet({
      cap: this.cap, ts: this.ts, price: this.price, bid: this.bid, ask: this.ask, size: this.size, flags: this.flags, seq: this.seq, src: this.src,
    });
  }
  /** The columns for writeHourParquet (no copy). */
  get cols(): TickColumns {
    return { tsMicros: this.ts, price: this.price, bid: this.bid, ask: this.ask, size: this.size, flags: this.flags, seq: this.seq, srcIndex: this.src };
  }
  #grow(): void {
    const cap = this.cap * 2;
    const f = (a: Float64Array): Float64Array => { const x = new Float64Array(cap); x.set(a); return x; };
    const u = (a: Uint32Array): Uint32Array => { const x = new Uint32Array(cap); x.set(a); return x; };
    this.ts = f(this.ts); this.price = f(this.price); this.bid = f(this.bid); this.ask = f(this.ask);
    this.size = u(this.size); this.flags = u(this.flags); this.seq = u(this.seq); this.src = u(this.src);
    this.cap = cap;
  }
  push(v: SlotViews, b: number): void {
    if (this.n === this.cap) this.#grow();
    const i = this.n++;
    const f64 = v.f64;
    const u32 = v.u32;
    const q = b >> 3;
    const w = b >> 2;
    this.ts[i] = f64[q + (TS_MICROS_BYTE >> 3)] as number;
    this.price[i] = f64[q + (TRADE_PRICE_BYTE >> 3)] as number;
    this.bid[i] = f64[q + (TRADE_BID_BYTE >> 3)] as number;
    this.ask[i] = f64[q + (TRADE_ASK_BYTE >> 3)] as number;
    this.size[i] = u32[w + (TRADE_SIZE_BYTE >> 2)] as number;
    this.flags[i] = u32[w + (TRADE_FLAGS_BYTE >> 2)] as number;
    this.seq[i] = u32[w + (SEQ_BYTE >> 2)] as number;
    this.src[i] = u32[w + (TRADE_SRC_INDEX_BYTE >> 2)] as number;
  }
}

export function doneMarkerPath(dataDir: string, symbol: string, hourStartMicros: number): string {
  const { date, hour } = utcDateHour(hourStartMicros);
  return join(dataDir, 'backfill', 'done', `symbol=${encodeSymbolSegment(symbol)}`, `date=${date}`, `hour=${hour}.json`);
}

async function existsFile(p: string): Promise<boolean> {
  return stat(p).then(() => true, () => false);
}

/** Write `text` to `path` atomically (temp + rename); empty text removes the file. */
async function writeAtomic(path: string, text: string): Promise<void> {
  if (text.length === 0) {
    await rm(path, { force: true });
    return;
  }
  const dir = join(path, '..');
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${basename(path)}.${process.pid}-${Math.floor(Math.random() * 1e9)}.tmp`);
  await writeFile(tmp, text);
  await rename(tmp, path);
}

function fileError(file: string, err: unknown): Error {
  if (isEngineError(err)) return err;
  const code = (err as NodeJS.ErrnoException).code ?? 'EUNKNOWN';
  return engineError('ENGINE_ERR_FILE_IO', `backfill: cannot read ${file} (${code}): ${(err as Error).message}`, { file, errno: code }, err);
}

/** Unix µs of record `i` in the file's time encoding (NaN when unreadable or implausible). */
function recordTime(fd: number, header: ScidHeader, i: number, buf: Uint8Array, legacy: boolean): number {
  const n = readSync(fd, buf, 0, 8, header.headerBytes + i * SCID_RECORD_BYTES);
  if (n < 8) return Number.NaN;
  const dv = new DataView(buf.buffer, buf.byteOffset, 8);
  const t = legacy ? scidDaysToUnixMicros(dv.getFloat64(0, true)) : scidInt64ToUnixMicros(dv.getUint32(0, true), dv.getInt32(4, true));
  return t >= SCID_MIN_PLAUSIBLE_MICROS && t < SCID_MAX_PLAUSIBLE_MICROS ? t : Number.NaN;
}

/** Records re-read before the binary search's answer, in case a garbage record misled it (4 MiB). */
const SEARCH_MARGIN_RECORDS = 100_000;

/**
 * A record index at or before the first record whose time is >= `t` (binary search; Sierra writes in time
 * order). The time encoding (int64 µs or legacy float64 days) is the one of record 0, as the decoder
 * decides; an unreadable record counts as earlier. Records before `t` are skipped by the caller anyway,
 * so starting a little early (SEARCH_MARGIN_RECORDS) costs little and guards against a corrupt record.
 */
function firstRecordAtOrAfter(fd: number, header: ScidHeader, records: number, t: number): number {
  if (records === 0) return 0;
  const buf = new Uint8Array(8);
  const legacy = Number.isNaN(recordTime(fd, header, 0, buf, false)) && !Number.isNaN(recordTime(fd, header, 0, buf, true));
  let lo = 0;
  let hi = records;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const ts = recordTime(fd, header, mid, buf, legacy);
    if (!(ts >= t)) lo = mid + 1;
    else hi = mid;
  }
  return Math.max(0, lo - SEARCH_MARGIN_RECORDS);
}

/**
 * Backfill one `.scid` file (see the module comment). Never throws for a file problem: missing/corrupt
 * files and write failures come back in `errors` / `corrupt`.
 */
export async function runBackfillFile(task: BackfillFileTask, db: CompactorDb, hooks: BackfillHooks = {}): Promise<BackfillFileResult> {
  const res: BackfillFileResult = {
    kind: 'backfill-file', file: task.file, symbol: task.symbol, records: 0, kept: 0, rejected: 0, quarantineWritten: 0, gapsWritten: 0, hoursWritten: 0, hoursSkipped: 0,
    rowsWritten: 0, gaps: 0, corrupt: [], errors: [], counters: {}, bytesRead: 0,
  };
  const startUs = task.startMicros === null ? Number.NEGATIVE_INFINITY : Math.floor(task.startMicros / MICROS_PER_HOUR) * MICROS_PER_HOUR;
  const endUs = task.endMicros === null ? Number.POSITIVE_INFINITY : Math.ceil(task.endMicros / MICROS_PER_HOUR) * MICROS_PER_HOUR;
  const window = task.reorderWindowMicros ?? 500_000;
  const source = task.sourceName ?? 'sierra';
  const symbolId = task.symbolId ?? SYMBOL_ID;
  const sourceId = task.sourceId ?? SOURCE_ID;
  if (!Number.isInteger(symbolId) || symbolId < 1 || symbolId > 0xffff || !Number.isInteger(sourceId) || sourceId < 1 || sourceId > 0xff) {
    throw engineError('ENGINE_ERR_INVALID_ARG', `backfill: symbolId must be 1..65535 and sourceId 1..255, got ${String(symbolId)} / ${String(sourceId)}`, { symbolId, sourceId });
  }
  const progress = task.progressPort;
  let fd = -1;
  try {
    fd = openSync(task.file, 'r');
  } catch (err) {
    res.errors.push(toWire(fileError(task.file, err)));
    progress?.close();
    return res;
  }
  const validator = new Validator({
    tickSizeOf: () => task.tickSize, reorderWindowMicros: window, staleAfterMicros: 0,
  });
  const mine = (v: SlotViews, b: number): boolean => v.u8[b + SOURCE_ID_BYTE] === sourceId && v.u16[(b + SYMBOL_ID_BYTE) >> 1] === symbolId;
  // a reject is the same entry when it is the same record (source, symbol, seq, time); kept-but-flagged entries (code 0) are not rejects
  const quarantineStore = new StoreAppender(join(task.dataDir, QUARANTINE_DIR), QUARANTINE_EXT, QUARANTINE_MAGIC, (v, b, code) =>
    (code !== 0 && mine(v, b) ? `${v.u32[(b + SEQ_BYTE) >> 2] as number}:${v.f64[(b + TS_MICROS_BYTE) >> 3] as number}` : null));
  const gapStore = new StoreAppender(join(task.dataDir, GAPS_DIR), GAPS_EXT, GAPS_MAGIC, (v, b) =>
    (v.u8[b] === RecordKind.GAP && mine(v, b)
      ? `${v.u32[(b + GAP_KIND_BYTE) >> 2] as number}:${v.f64[(b + TS_MICROS_BYTE) >> 3] as number}:${v.f64[(b + GAP_END_TS_MICROS_BYTE) >> 3] as number}:` +
        `${v.u32[(b + GAP_EXPECTED_SEQ_BYTE) >> 2] as number}:${v.u32[(b + GAP_GOT_SEQ_BYTE) >> 2] as number}`
      : null));
  const hours = new Map<number, HourAcc>();
  const gapSlot = new Float64Array(RECORD_SLOT_BYTES / 8);
  const gapViews: SlotViews = {
    f64: gapSlot, f32: new Float32Array(gapSlot.buffer), i32: new Int32Array(gapSlot.buffer), u32: new Uint32Array(gapSlot.buffer),
    u16: new Uint16Array(gapSlot.buffer), u8: new Uint8Array(gapSlot.buffer),
  };
  let newestKept = Number.NEGATIVE_INFINITY;

  let capHint = 65_536;
  /** The hour being filled (skips the map lookup per tick); reset when an hour is handed to the writer. */
  let cur: HourAcc | null = null;
  let curHour = Number.NaN;
  const accFor = (hour: number): HourAcc => {
    let a = hours.get(hour);
    if (a === undefined) {
      a = new HourAcc(hour, capHint);
      hours.set(hour, a);
    }
    return a;
  };

  /** Hours already written: a rejected record or gap of such an hour is filed with the hour being read. */
  const flushed = new Set<number>();
  const fileHour = (hour: number): number => {
    if (!flushed.has(hour)) return hour;
    return newestKept - (newestKept % MICROS_PER_HOUR);
  };

  const flushHour = async (a: HourAcc, markDone: boolean): Promise<void> => {
    const done = doneMarkerPath(task.dataDir, task.symbol, a.hour);
    const { date, hour } = utcDateHour(a.hour);
    const dir = partitionDir(task.dataDir, 'ticks', task.symbol, date);
    if (await existsFile(done) && (await existsFile(join(dir, hourFileName(hour))) || await existsFile(join(dir, DAY_FILE)))) {
      res.hoursSkipped++;
      return;
    }
    try {
      res.quarantineWritten += await quarantineStore.append(a.quarantine);
      res.gapsWritten += await gapStore.append(a.gaps);
      let rows = 0;
      let checksum = '0';
      if (a.n > 0) {
        const w = await writeHourParquet({
          dataDir: task.dataDir, symbol: task.symbol, hourStartMicros: a.hour, columns: a.cols, count: a.n, source, db,
        });
        rows = w.rows;
        checksum = w.checksum;
      }
      res.hoursWritten++;
      res.rowsWritten += rows;
      if (markDone) {
        await writeAtomic(done, `${JSON.stringify({ file: task.file, symbol: task.symbol, hour: new Date(a.hour / 1000).toISOString(), rows, checksum, quarantined: a.quarantine.n, writtenAt: new Date().toISOString() })}\n`);
      }
    } catch (err) {
      res.errors.push(toWire(err));
    }
  };

  // Writes of complete hours run behind the decoding (DuckDB works on its own threads while this thread
  // decodes and validates the next hour); at most MAX_PENDING_WRITES hours wait, bounding memory.
  let writes: Promise<void> = Promise.resolve();
  let pendingWrites = 0;
  const enqueue = (a: HourAcc, markDone: boolean): void => {
    if (a === cur) { cur = null; curHour = Number.NaN; }
    hours.delete(a.hour);
    flushed.add(a.hour);
    pendingWrites++;
    threadWrites++;
    // the next hour is probably as big: start its columns at that size (fewer regrowth copies)
    capHint = Math.max(65_536, Math.min(1 << 24, a.n + (a.n >> 3)));
    writes = writes.then(() => flushHour(a, markDone)).finally(() => {
      pendingWrites--;
      threadWrites--;
      a.release(); // flushHour is done with the columns (DuckDB copied them into the file)
    });
  };
  const flushComplete = async (): Promise<void> => {
    const ready: HourAcc[] = [];
    for (const a of hours.values()) if (a.hour + MICROS_PER_HOUR + window < newestKept) ready.push(a);
    ready.sort((x, y) => x.hour - y.hour);
    for (const a of ready) enqueue(a, true);
    while (pendingWrites >= MAX_PENDING_WRITES) await writes;
  };

  let chunk: Uint8Array | null = null;
  try {
    const size = fstatSync(fd).size;
    const head = new Uint8Array(Math.min(size, SCID_MAX_HEADER_BYTES));
    readSync(fd, head, 0, head.length, 0);
    const header = readScidHeader(head, task.file, size);
    const records = Math.floor((size - header.headerBytes) / SCID_RECORD_BYTES);
    const index = Number.isFinite(startUs) ? firstRecordAtOrAfter(fd, header, records, startUs) : 0;
    // First hour's columns sized from the file's mean records per hour (later hours: from the previous one).
    if (records > 0) {
      const buf = new Uint8Array(8);
      const legacy = Number.isNaN(recordTime(fd, header, 0, buf, false)) && !Number.isNaN(recordTime(fd, header, 0, buf, true));
      const first = recordTime(fd, header, index, buf, legacy);
      const last = recordTime(fd, header, records - 1, buf, legacy);
      const hoursSpanned = last >= first ? Math.floor(last / MICROS_PER_HOUR) - Math.floor(first / MICROS_PER_HOUR) + 1 : 1;
      capHint = Math.max(65_536, Math.min(1 << 24, Math.ceil(((records - index) / hoursSpanned) * 1.25)));
    }
    const sab = createRing({ slotCount: RING_SLOTS, slotBytes: RECORD_SLOT_BYTES });
    const writer = RingWriter.attach(sab);
    const reader = RingReader.attach(sab);
    const v = reader.views;
    const decoder = new ScidDecoder({
      fileName: task.file, sourceId, symbolId, priceMultiplier: task.priceMultiplier ?? 1, header, startRecordIndex: index,
    });
    chunk = readBuffer(task.chunkBytes ?? CHUNK_BYTES_DEFAULT);
    let pos = header.headerBytes + index * SCID_RECORD_BYTES;
    let pastEnd = false;
    let ended = false;
    while (!pastEnd) {
      if (decoder.needsInput) {
        if (ended) break;
        const n = pos < size ? readSync(fd, chunk, 0, Math.min(chunk.length, size - pos), pos) : 0;
        if (n === 0) {
          decoder.end();
          ended = true;
        } else {
          pos += n;
          res.bytesRead += n;
          progress?.postMessage({ bytes: n });
          decoder.push(chunk.subarray(0, n));
        }
      }
      for (;;) {
        let got: number;
        try {
          got = decoder.decodeInto(writer);
        } catch (err) {
          if (!isEngineError(err, 'ENGINE_ERR_SCID_FORMAT') || err.detail.recordIndex === undefined) throw err;
          res.corrupt.push({ file: task.file, byteOffset: Number(err.detail.byteOffset), recordIndex: Number(err.detail.recordIndex), message: err.message });
          if (res.corrupt.length >= MAX_CORRUPT) {
            throw engineError('ENGINE_ERR_SCID_FORMAT', `${task.file}: ${MAX_CORRUPT} corrupt records; the rest of the file is not read (last at byte offset ${String(err.detail.byteOffset)})`, { file: task.file, byteOffset: Number(err.detail.byteOffset) });
          }
          decoder.skipRecord(); // step over it (it is listed and reported); the records before it are in the ring
          got = 1;
        }
        const avail = reader.available();
        for (let i = 0; i < avail; i++) {
          const b = reader.slotByte(i);
          if (v.u8[b] !== RecordKind.TRADE) continue; // a bar file: not ticks
          const ts = v.f64[(b + TS_MICROS_BYTE) >> 3] as number;
          if (ts < startUs) continue;
          if (ts >= endUs) {
            if (ts >= endUs + window) pastEnd = true;
            continue;
          }
          res.records++;
          const verdict = validator.check(v, b);
          const hour = ts - (ts % MICROS_PER_HOUR);
          if (verdict === 0) {
            res.kept++;
            if (hour !== curHour || cur === null) {
              cur = accFor(hour);
              curHour = hour;
            }
            cur.push(v, b);
            if (ts > newestKept) newestKept = ts;
            hooks.onKept?.(v, b);
          } else if (verdict !== RejectReason.REPLAYED) {
            res.rejected++;
            accFor(fileHour(hour)).quarantine.push(v, b, verdict, ((v.u32[(b + TRADE_FLAGS_BYTE) >> 2] as number) & VERDICT_MASK) >>> 0, Date.now() * 1000);
          }
          while (validator.nextGap(gapViews, 0)) {
            res.gaps++;
            accFor(fileHour(hour)).gaps.push(gapViews, 0, gapViews.u32[GAP_KIND_BYTE >> 2] as number, 0, Date.now() * 1000);
          }
        }
        reader.release(avail);
        if (got === 0 && avail === 0) break;
        // An hour is being written (this file's or, chained by `onDecoded`, an earlier file's): DuckDB's COPY
        // pulls its rows through tickpipe_scan() on this thread and each step of the write continues here,
        // so let the event loop run them between batches (a batch is at most RING_SLOTS records, < 1 ms).
        if (threadWrites > 0) await yieldToEventLoop();
      }
      await flushComplete();
    }
    // The rest: every hour left is written; the newest is not marked done (the file may still grow) unless a
    // record past the range's end proved it complete.
    const rest = [...hours.values()].sort((x, y) => x.hour - y.hour);
    for (let k = 0; k < rest.length; k++) enqueue(rest[k] as HourAcc, k < rest.length - 1 || pastEnd);
    hooks.onDecoded?.();
    await writes;
  } catch (err) {
    res.errors.push(toWire(fileError(task.file, err)));
  } finally {
    closeSync(fd);
    progress?.close();
    if (chunk !== null && readBuffers.length < 2) readBuffers.push(chunk); // the decoder is done with it
  }
  await writes; // hours already handed to the writer finish even when the file stopped early (flushHour never throws)
  if (res.corrupt.length > 0) {
    try {
      await writeAtomic(join(task.dataDir, 'quarantine', 'backfill', 'corrupt', `${basename(task.file)}.ndjson`),
        res.corrupt.map((c) => `${JSON.stringify(c)}\n`).join(''));
    } catch (err) {
      res.errors.push(toWire(err));
    }
    const first = res.corrupt[0] as CorruptRecord;
    res.errors.push(toWire(engineError('ENGINE_ERR_SCID_FORMAT',
      `${task.file}: ${res.corrupt.length} corrupt record(s) skipped, first at byte offset ${first.byteOffset} (record ${first.recordIndex}); listed in quarantine/backfill/corrupt`,
      { file: task.file, byteOffset: first.byteOffset, recordIndex: first.recordIndex, count: res.corrupt.length })));
  }
  res.counters = validator.counters();
  return res;
}
