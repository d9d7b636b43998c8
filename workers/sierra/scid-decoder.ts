/**
 * Sierra Chart `.scid` decoder: header validation, a streaming ring decoder and a columns decoder.
 *
 * `ScidDecoder` is pure and resumable: no threads, no I/O, no allocation in the record loop. Feed it
 * chunks of the file (`push`, any size, split anywhere, header included) and drain it into a ring
 * (`decodeInto`). A trailing partial record is not an error: its bytes are copied into a small
 * grow-only scratch and completed by the next chunk. A full ring is back-pressure: `decodeInto` returns
 * fewer slots (0 when full) and keeps its place, so the caller parks and calls again.
 *
 * The caller's loop (a file source):
 *   read a chunk → push(chunk) → until `needsInput`: decodeInto(ring); when it returns 0, park on the
 *   ring (waitForSpace) → store `checkpoint` when convenient → read the next chunk (the buffer may be
 *   reused: once `needsInput` is true the decoder keeps no reference to it).
 * Records are read in place from the chunk through one DataView per chunk; only a partial record, the
 * header, or (merge mode) an open bundle is ever copied.
 *
 * What goes into the ring (schemas/records.ts):
 * - Tick files: one `RecordKind.TRADE` per record. Close → price, Low → bid, High → ask (× the price
 *   multiplier), TotalVolume → size, AskVolume > 0 → SIDE_BUY, BidVolume > 0 → SIDE_SELL (both may be
 *   set on a record that carries both), NumTrades → numTrades, bid/ask sizes 0 (Sierra stores none).
 *   Open marker bits 0xFD709EF9 → SUB_FIRST, 0xFD709F01 → SUB_LAST, Open 0 between them → SUB_MIDDLE.
 * - **seq = the source record index** (u32), and TRADE_SRC_INDEX = the record index too. For a file
 *   source the record index *is* the sequence: decoding the same bytes again after a restart yields the
 *   same seq, so a replay from a checkpoint is idempotent downstream.
 * - `mergeBundles`: a complete FIRST..LAST bundle becomes one TRADE: ts = first sub-trade's, price,
 *   bid and ask = last sub-trade's, size = sum of TotalVolume (clamped to u32), sides OR-ed, flags
 *   MERGED_BUNDLE, numTrades = number of records merged, seq = srcIndex = index of the FIRST record
 *   (so seq jumps by the bundle length after a merged record). Only complete bundles are merged: a
 *   FIRST followed by another FIRST, a corrupt record, more than SCID_MAX_BUNDLE_RECORDS records, or the
 *   end of input (after `end()`) passes through unmerged with its SUB_* flags. While a bundle's LAST has
 *   not arrived yet, the bundle's records stay pending (they are not consumed, so `bytesConsumed` is
 *   always a safe checkpoint); when they span two chunks they are copied to the scratch.
 * - Bar files: one `RecordKind.BAR` per record via `writeBar` (OHLC × multiplier, TotalVolume,
 *   NumTrades, BidVolume, AskVolume).
 *
 * Per-file decisions, made once from the first record this decoder decodes (pass them back as
 * options when resuming from a checkpoint so a resumed decoder decides the same; read them from
 * `recordMode` / `timeEncoding`):
 * - Record mode (option `recordMode`, default 'auto'): TICK when the first record's Open bits are 0 or
 *   a sub-trade marker; BAR when its Open is a finite price other than those and all of O, H, L, C are
 *   finite with Low ≤ Open ≤ High and Low ≤ Close ≤ High (every bar satisfies this; a tick record
 *   never has a price in Open); anything else (NaN, inf, −0 bits …) is decided TICK.
 * - Time encoding (option `timeEncoding`, default 'auto'): the int64 µs reading when it is plausible
 *   (Unix time in [1950, 2200)); otherwise the legacy float64 day-count reading when that is plausible
 *   (records then carry TradeFlag.LEGACY_TIME); otherwise the record is corrupt (see below).
 *
 * Errors vs flags:
 * - Coded errors (`ENGINE_ERR_SCID_FORMAT`, detail `{ file, byteOffset, … }`, message naming both): a
 *   bad header (magic, HeaderSize < 56 or > 64 KiB, RecordSize ≠ 40, Version > 1), an empty file or one
 *   shorter than its header (known at `end()`), and a record whose timestamp is implausible in the
 *   file's encoding (a garbage or zeroed record: its time is its identity, so it cannot be flagged and
 *   passed on; a year-30000 tick would poison partitions). On a record error the records before it are
 *   published, the decoder stays positioned AT the bad record (so `nextRecordIndex` / `bytesConsumed`
 *   name it) and every call rethrows; the caller may `skipRecord()` to step over it deliberately.
 * - Passed through for the validator to flag (never dropped here): prices that are NaN, negative or
 *   outside the quote, crossed quotes, timestamps going backwards, unknown Open bits in a tick file.
 */
import { engineError, type EngineError, type ErrorDetail } from '../../engine/errors.ts';
import type { RingWriter, SlotViews } from '../../engine/ring/ring.ts';
import { RecordKind, TradeFlag, writeBar, writeTrade } from '../../schemas/records.ts';
import {
  HDR_HEADER_SIZE_BYTE, HDR_RECORD_SIZE_BYTE, HDR_UTC_START_INDEX_BYTE, HDR_VERSION_BYTE, MICROS_PER_DAY,
  REC_ASK_VOLUME_BYTE, REC_BID_VOLUME_BYTE, REC_CLOSE_BYTE, REC_HIGH_BYTE, REC_LOW_BYTE, REC_NUM_TRADES_BYTE,
  REC_OPEN_BYTE, REC_TOTAL_VOLUME_BYTE, SC_EPOCH_OFFSET_DAYS, SC_EPOCH_OFFSET_MICROS, SCID_FIRST_SUB_TRADE_BITS,
  SCID_HEADER_BYTES, SCID_LAST_SUB_TRADE_BITS, SCID_MAGIC_LE, SCID_MAX_BUNDLE_RECORDS, SCID_MAX_HEADER_BYTES,
  SCID_MAX_PLAUSIBLE_MICROS, SCID_MAX_VERSION, SCID_MIN_PLAUSIBLE_MICROS, SCID_RECORD_BYTES, TWO_POW_32,
} from './scid-format.ts';

const RB = SCID_RECORD_BYTES;
const MIN_US = SCID_MIN_PLAUSIBLE_MICROS;
const MAX_US = SCID_MAX_PLAUSIBLE_MICROS;
const EPOCH_US = SC_EPOCH_OFFSET_MICROS;
const FIRST_BITS = SCID_FIRST_SUB_TRADE_BITS;
const LAST_BITS = SCID_LAST_SUB_TRADE_BITS;
const KIND_TRADE = RecordKind.TRADE;
const F_BUY = TradeFlag.SIDE_BUY;
const F_SELL = TradeFlag.SIDE_SELL;
const F_FIRST = TradeFlag.SUB_FIRST;
const F_LAST = TradeFlag.SUB_LAST;
const F_MIDDLE = TradeFlag.SUB_MIDDLE;
const F_MERGED = TradeFlag.MERGED_BUNDLE;
const F_LEGACY = TradeFlag.LEGACY_TIME;
const U32_MAX = 0xffffffff;

// ---- header -------------------------------------------------------------------------------------

export interface ScidHeader {
  /** HeaderSize from the file: records start at this byte offset. */
  readonly headerBytes: number;
  /** RecordSize from the file (always 40 once validated). */
  readonly recordBytes: number;
  readonly version: number;
  readonly utcStartIndex: number;
}

function formatError(file: string, byteOffset: number, what: string, extra?: ErrorDetail): EngineError {
  return engineError('ENGINE_ERR_SCID_FORMAT', `${file}: ${what} (byte offset ${byteOffset})`, { file, byteOffset, ...extra });
}

/** Validate the header fields present in the first `have` bytes at `off` (cold path). */
function checkHeaderPrefix(dv: DataView, off: number, have: number, file: string): void {
  if (have >= 4 && dv.getUint32(off, true) !== SCID_MAGIC_LE) {
    let text = '';
    for (let i = 0; i < 4; i++) {
      const c = dv.getUint8(off + i);
      text += c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`;
    }
    throw formatError(file, 0, `not a Sierra Chart intraday file: magic is "${text}", expected "SCID"`);
  }
  if (have >= 8) {
    const hb = dv.getUint32(off + HDR_HEADER_SIZE_BYTE, true);
    if (hb < SCID_HEADER_BYTES || hb > SCID_MAX_HEADER_BYTES) {
      throw formatError(file, HDR_HEADER_SIZE_BYTE, `HeaderSize ${hb} is outside ${SCID_HEADER_BYTES}..${SCID_MAX_HEADER_BYTES}`, { headerBytes: hb });
    }
  }
  if (have >= 12) {
    const rb = dv.getUint32(off + HDR_RECORD_SIZE_BYTE, true);
    if (rb !== RB) throw formatError(file, HDR_RECORD_SIZE_BYTE, `RecordSize ${rb} is not ${RB}`, { recordBytes: rb });
  }
  if (have >= 14) {
    const v = dv.getUint16(off + HDR_VERSION_BYTE, true);
    if (v > SCID_MAX_VERSION) throw formatError(file, HDR_VERSION_BYTE, `unsupported header Version ${v} (known: 0..${SCID_MAX_VERSION})`, { version: v });
  }
}

function headerFrom(dv: DataView, off: number): ScidHeader {
  return {
    headerBytes: dv.getUint32(off + HDR_HEADER_SIZE_BYTE, true),
    recordBytes: dv.getUint32(off + HDR_RECORD_SIZE_BYTE, true),
    version: dv.getUint16(off + HDR_VERSION_BYTE, true),
    utcStartIndex: dv.getUint32(off + HDR_UTC_START_INDEX_BYTE, true),
  };
}

function shortFileError(file: string, fileBytes: number, dv: DataView | null, off: number): EngineError {
  if (fileBytes === 0) return formatError(file, 0, 'empty file: no SCID header');
  const claimed = dv !== null && fileBytes >= 8 ? dv.getUint32(off + HDR_HEADER_SIZE_BYTE, true) : SCID_HEADER_BYTES;
  return formatError(file, fileBytes, `file of ${fileBytes} bytes is shorter than its ${claimed}-byte header`, { fileBytes, headerBytes: claimed });
}

/**
 * Validate and read a `.scid` header. `bytes` is the start of the file (at least the header);
 * `fileBytes` is the whole file's size (default `bytes.length`) for the "header bigger than the file"
 * check. Throws ENGINE_ERR_SCID_FORMAT with `{ file, byteOffset }`.
 */
export function readScidHeader(bytes: Uint8Array, fileName: string, fileBytes: number = bytes.length): ScidHeader {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const have = Math.min(bytes.length, fileBytes);
  checkHeaderPrefix(dv, 0, Math.min(have, SCID_HEADER_BYTES), fileName);
  if (have < SCID_HEADER_BYTES) throw shortFileError(fileName, have, have >= 8 ? dv : null, 0);
  const h = headerFrom(dv, 0);
  if (h.headerBytes > fileBytes) throw shortFileError(fileName, fileBytes, dv, 0);
  return h;
}

// ---- time ---------------------------------------------------------------------------------------

/** Unix µs from the int64 DateTime halves (no BigInt; exact for the plausible window). */
export function scidInt64ToUnixMicros(lo: number, hi: number): number {
  return (hi * TWO_POW_32 - EPOCH_US) + lo;
}

/**
 * Unix µs from a legacy float64 day count since 1899-12-30, rounded to the µs. Whole days and the
 * fraction are converted separately so the only error is the double's own (about 0.3 µs in 1989–2079).
 */
export function scidDaysToUnixMicros(days: number): number {
  const whole = Math.floor(days);
  return (whole - SC_EPOCH_OFFSET_DAYS) * MICROS_PER_DAY + Math.round((days - whole) * MICROS_PER_DAY);
}

const isPlausible = (us: number): boolean => us >= MIN_US && us < MAX_US;

// ---- modes --------------------------------------------------------------------------------------

export type ScidRecordMode = 'tick' | 'bar';
export type ScidTimeEncoding = 'int64' | 'float64';

const MODE_NONE = 0;
const MODE_TICK = 1;
const MODE_BAR = 2;
const TIME_NONE = 0;
const TIME_INT64 = 1;
const TIME_FLOAT64 = 2;

/** The bar-file rule (see the module comment), applied to one record. */
function detectMode(dv: DataView, p: number): number {
  const bits = dv.getUint32(p + REC_OPEN_BYTE, true);
  if (bits === 0 || bits === FIRST_BITS || bits === LAST_BITS) return MODE_TICK;
  const o = dv.getFloat32(p + REC_OPEN_BYTE, true);
  const h = dv.getFloat32(p + REC_HIGH_BYTE, true);
  const l = dv.getFloat32(p + REC_LOW_BYTE, true);
  const c = dv.getFloat32(p + REC_CLOSE_BYTE, true);
  // NaN fails every comparison, so this also requires all four to be numbers; ±inf fails isFinite.
  if (Number.isFinite(o) && Number.isFinite(h) && Number.isFinite(l) && o !== 0 && l <= o && o <= h && l <= c && c <= h) return MODE_BAR;
  return MODE_TICK;
}

/** TIME_INT64 / TIME_FLOAT64 when that reading of the record is plausible (int64 first), else TIME_NONE. */
function detectTime(dv: DataView, p: number): number {
  if (isPlausible(scidInt64ToUnixMicros(dv.getUint32(p, true), dv.getInt32(p + 4, true)))) return TIME_INT64;
  if (isPlausible(scidDaysToUnixMicros(dv.getFloat64(p, true)))) return TIME_FLOAT64;
  return TIME_NONE;
}

function badTimeError(file: string, byteOffset: number, recordIndex: number, dv: DataView, p: number, enc: number): EngineError {
  const asInt = scidInt64ToUnixMicros(dv.getUint32(p, true), dv.getInt32(p + 4, true));
  const asDays = dv.getFloat64(p, true);
  const how = enc === TIME_INT64 ? 'the file\'s int64 µs encoding' : enc === TIME_FLOAT64 ? 'the file\'s legacy float64 day-count encoding' : 'either encoding (int64 µs, float64 days)';
  return formatError(
    file, byteOffset,
    `record ${recordIndex}: DateTime is not a plausible time (1950..2200) in ${how}; int64 reading ${String(asInt)} Unix µs, float64 reading ${String(asDays)} days`,
    { recordIndex },
  );
}

/** Split a price multiplier so that ×0.01 is applied as ÷100 (exact for prices stored ×100). */
function splitMultiplier(m: number): { num: number; den: number } {
  if (m < 1) {
    const inv = 1 / m;
    const r = Math.round(inv);
    if (r >= 1 && Math.abs(inv - r) <= 1e-9 * r) return { num: 1, den: r };
  }
  return { num: m, den: 1 };
}

function checkMultiplier(m: number): void {
  if (typeof m !== 'number' || !Number.isFinite(m) || m <= 0) {
    throw engineError('ENGINE_ERR_INVALID_ARG', `priceMultiplier must be a positive finite number, got ${String(m)}`);
  }
}

// ---- streaming decoder --------------------------------------------------------------------------

export interface ScidDecoderOptions {
  /** Named in every error. */
  fileName: string;
  /** u8 source id written into every slot (default 0). */
  sourceId?: number;
  /** u16 symbol id written into every slot (default 0). */
  symbolId?: number;
  /** Prices × this (default 1); 0.01 for feeds that store prices ×100 (applied as ÷100, exact). */
  priceMultiplier?: number;
  /** Merge complete sub-trade bundles into one TRADE (default false). */
  mergeBundles?: boolean;
  /** Record index to start from (a checkpoint), default 0. */
  startRecordIndex?: number;
  /**
   * The file's header, already read and validated (`readScidHeader`). When given, the pushed bytes
   * start at record `startRecordIndex` (file offset headerBytes + index·40). Without it the pushed bytes
   * start at file offset 0 (header first) and records before `startRecordIndex` are skipped.
   */
  header?: ScidHeader;
  /** Force tick or bar decoding (default 'auto': decided from the first decoded record). */
  recordMode?: 'auto' | ScidRecordMode;
  /** Force the DateTime encoding (default 'auto': decided from the first decoded record). */
  timeEncoding?: 'auto' | ScidTimeEncoding;
  /**
   * Resuming with `header`: whether record `startRecordIndex` is inside a sub-trade bundle (a FIRST was
   * seen and no LAST yet), so its Open-0 records keep SUB_MIDDLE. From `checkpoint.inBundle`. Without
   * `header` the skipped records are scanned for it.
   */
  inBundle?: boolean;
}

/** Everything a resumed decoder needs to continue exactly where this one is (`ScidDecoder.checkpoint`). */
export interface ScidCheckpoint {
  /** File offset to read from: headerBytes + recordIndex·40. */
  readonly byteOffset: number;
  /** Next record to decode (`startRecordIndex`). */
  readonly recordIndex: number;
  readonly header: ScidHeader;
  readonly recordMode: ScidRecordMode | null;
  readonly timeEncoding: ScidTimeEncoding | null;
  readonly inBundle: boolean;
}

/** Decoder options that resume from a checkpoint (push the file's bytes from `cp.byteOffset`). */
export function scidResumeOptions(cp: ScidCheckpoint, base: Omit<ScidDecoderOptions, 'header' | 'startRecordIndex' | 'recordMode' | 'timeEncoding' | 'inBundle'>): ScidDecoderOptions {
  return {
    ...base, header: cp.header, startRecordIndex: cp.recordIndex, inBundle: cp.inBundle,
    recordMode: cp.recordMode ?? 'auto', timeEncoding: cp.timeEncoding ?? 'auto',
  };
}

const EMPTY = new Uint8Array(0);
const EMPTY_VIEW = new DataView(new ArrayBuffer(0));
const STAGE_HEADER = 0;
const STAGE_RECORDS = 1;
/** Decoded records per claim at most (bounds the work between two publishes). */
const MAX_BATCH = 8192;

export class ScidDecoder {
  readonly fileName: string;
  readonly #sourceId: number;
  readonly #symbolId: number;
  readonly #mulNum: number;
  readonly #mulDen: number;
  readonly #initialOffset: number;

  #stage: number;
  #header: ScidHeader | null;
  #headerBytes: number;
  #mode: number;
  #time: number;
  #nextIndex: number;
  #skipUntil = 0;
  #recordsDecoded = 0;
  #slotsWritten = 0;
  #inBundle = false;
  #ended = false;
  #needsInput = true;
  #error: EngineError | null = null;
  #errorIsRecord = false;
  readonly #cur = new Cursor();

  // Current chunk (the caller's bytes, read in place).
  #chunk: Uint8Array = EMPTY;
  #cdv: DataView = EMPTY_VIEW;
  #cpos = 0;
  #cend = 0;
  // Carry: grow-only scratch for the header, a partial record, or an open bundle that spans chunks.
  #carry: Uint8Array = new Uint8Array(256);
  #kdv: DataView = new DataView(this.#carry.buffer);
  #kpos = 0;
  #klen = 0;

  constructor(opts: ScidDecoderOptions) {
    this.fileName = String(opts.fileName);
    this.#sourceId = opts.sourceId ?? 0;
    this.#symbolId = opts.symbolId ?? 0;
    if (!Number.isInteger(this.#sourceId) || this.#sourceId < 0 || this.#sourceId > 0xff) {
      throw engineError('ENGINE_ERR_INVALID_ARG', `sourceId must be a u8, got ${String(opts.sourceId)}`);
    }
    if (!Number.isInteger(this.#symbolId) || this.#symbolId < 0 || this.#symbolId > 0xffff) {
      throw engineError('ENGINE_ERR_INVALID_ARG', `symbolId must be a u16, got ${String(opts.symbolId)}`);
    }
    const m = opts.priceMultiplier ?? 1;
    checkMultiplier(m);
    const { num, den } = splitMultiplier(m);
    this.#mulNum = num;
    this.#mulDen = den;
    this.#cur.merge = opts.mergeBundles === true;
    this.#cur.sourceId = this.#sourceId;
    this.#cur.symbolId = this.#symbolId;
    this.#cur.mulNum = num;
    this.#cur.mulDen = den;
    const start = opts.startRecordIndex ?? 0;
    if (!Number.isSafeInteger(start) || start < 0) {
      throw engineError('ENGINE_ERR_INVALID_ARG', `startRecordIndex must be a non-negative integer, got ${String(start)}`);
    }
    const rm = opts.recordMode ?? 'auto';
    this.#mode = rm === 'tick' ? MODE_TICK : rm === 'bar' ? MODE_BAR : MODE_NONE;
    const te = opts.timeEncoding ?? 'auto';
    this.#time = te === 'int64' ? TIME_INT64 : te === 'float64' ? TIME_FLOAT64 : TIME_NONE;
    if (opts.header) {
      const h = opts.header;
      if (h.recordBytes !== RB || h.headerBytes < SCID_HEADER_BYTES || h.headerBytes > SCID_MAX_HEADER_BYTES) {
        throw engineError('ENGINE_ERR_INVALID_ARG', `header option is not a validated SCID header (HeaderSize ${h.headerBytes}, RecordSize ${h.recordBytes})`);
      }
      this.#header = h;
      this.#headerBytes = h.headerBytes;
      this.#stage = STAGE_RECORDS;
      this.#nextIndex = start;
      this.#initialOffset = h.headerBytes + start * RB;
      this.#inBundle = opts.inBundle === true;
    } else {
      this.#header = null;
      this.#headerBytes = 0;
      this.#stage = STAGE_HEADER;
      this.#nextIndex = 0;
      this.#skipUntil = start;
      this.#initialOffset = 0;
    }
  }

  // ---- state ----

  /** The validated header (null until its bytes have been pushed). */
  get header(): ScidHeader | null { return this.#header; }
  /** Bytes pushed and not consumed yet (partial record, open bundle, undecoded records, partial header). */
  get pendingBytes(): number { return (this.#klen - this.#kpos) + (this.#cend - this.#cpos); }
  /** Source records consumed by this decoder (emitted one by one or merged; skipped ones not counted). */
  get recordsDecoded(): number { return this.#recordsDecoded; }
  /** Ring slots published by this decoder (fewer than recordsDecoded when bundles are merged). */
  get slotsWritten(): number { return this.#slotsWritten; }
  /** Index of the next record to decode: every record before it has been published. */
  get nextRecordIndex(): number { return this.#nextIndex; }
  /**
   * File offset reached: headerBytes + nextRecordIndex·40 once the header is read (0 before, or the
   * start offset when resuming with `header`). This is the checkpoint: resuming there neither loses
   * nor repeats a record. `bytesConsumed − startOffset + pendingBytes` = bytes pushed, always.
   */
  get bytesConsumed(): number {
    return this.#stage === STAGE_HEADER ? this.#initialOffset : this.#headerBytes + this.#nextIndex * RB;
  }
  /**
   * The resume point with the per-file decisions and the sub-trade state (allocates; call it when
   * saving a checkpoint, not per batch). Null until the header has been read.
   */
  get checkpoint(): ScidCheckpoint | null {
    if (this.#header === null || this.#stage === STAGE_HEADER) return null;
    return {
      byteOffset: this.bytesConsumed, recordIndex: this.#nextIndex, header: this.#header,
      recordMode: this.recordMode, timeEncoding: this.timeEncoding, inBundle: this.#inBundle,
    };
  }
  /** File offset the first pushed byte stands for (0, or headerBytes + startRecordIndex·40 with `header`). */
  get startOffset(): number { return this.#initialOffset; }
  /** Decided (or forced) record mode; null until the first record. Store it with the checkpoint. */
  get recordMode(): ScidRecordMode | null { return this.#mode === MODE_TICK ? 'tick' : this.#mode === MODE_BAR ? 'bar' : null; }
  /** Decided (or forced) DateTime encoding; null until the first record. Store it with the checkpoint. */
  get timeEncoding(): ScidTimeEncoding | null { return this.#time === TIME_INT64 ? 'int64' : this.#time === TIME_FLOAT64 ? 'float64' : null; }
  /**
   * True when no progress is possible without more input: the last `decodeInto` stopped because the
   * pending bytes hold no decodable record (less than a record, or an open bundle waiting for its LAST
   * in merge mode), not because the ring was full. Read the next chunk when this is true; park on the
   * ring when it is false and `decodeInto` returned 0.
   */
  get needsInput(): boolean { return this.#needsInput; }
  /** `end()` was called. */
  get ended(): boolean { return this.#ended; }

  // ---- input ----

  /**
   * Hand the next bytes of the file to the decoder. The chunk is read in place: keep it unchanged
   * until `needsInput` is true. From then on the decoder holds no reference to it (what it still needs,
   * a partial record or an open bundle, has been copied to its scratch), so a reader may reuse its
   * buffer for the next read. Pushing again before that is allowed (the unread rest is copied), just
   * slower. Header bytes are validated as soon as they arrive (coded error on a bad header).
   */
  push(chunk: Uint8Array): void {
    if (this.#error) throw this.#error;
    if (this.#ended) throw engineError('ENGINE_ERR_INVALID_ARG', `${this.fileName}: push() after end()`, { file: this.fileName });
    // Whatever the previous chunk still holds (normally a partial record) moves to the carry, whose
    // consumed prefix is dropped first.
    const left = this.#cend - this.#cpos;
    if (this.#kpos > 0) {
      this.#carry.copyWithin(0, this.#kpos, this.#klen);
      this.#klen -= this.#kpos;
      this.#kpos = 0;
    }
    if (left > 0) this.#appendCarry(this.#chunk, this.#cpos, left);
    this.#chunk = chunk;
    this.#cdv = chunk.length === 0 ? EMPTY_VIEW : new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.#cpos = 0;
    this.#cend = chunk.length;
    if (this.#stage === STAGE_HEADER) this.#absorbHeader();
    if (this.#stage === STAGE_RECORDS) this.#completePartial();
    if (this.#stage === STAGE_HEADER || this.pendingBytes < RB) this.#starved();
    else this.#needsInput = false;
  }

  /**
   * No progress without more input: copy what the chunk still holds (less than a record, or an open
   * bundle) to the carry, so the caller's buffer is free.
   */
  #starved(): void {
    this.#needsInput = true;
    const left = this.#cend - this.#cpos;
    if (left > 0) {
      if (this.#kpos > 0 && this.#kpos === this.#klen) { this.#kpos = 0; this.#klen = 0; }
      this.#appendCarry(this.#chunk, this.#cpos, left);
    }
    this.#chunk = EMPTY;
    this.#cdv = EMPTY_VIEW;
    this.#cpos = 0;
    this.#cend = 0;
  }

  /**
   * No more input will come (a whole file was pushed). A file shorter than its header becomes a coded
   * error now; an open sub-trade bundle is released unmerged by the next `decodeInto`; a trailing
   * partial record stays pending (never emitted, not an error: a live file may still be completing it).
   */
  end(): void {
    if (this.#error) throw this.#error;
    this.#ended = true;
    if (this.#stage === STAGE_HEADER) {
      const have = this.#klen - this.#kpos;
      this.#error = shortFileError(this.fileName, have, have >= 8 ? this.#kdv : null, this.#kpos);
      throw this.#error;
    }
    if (this.pendingBytes < RB) this.#starved();
    else this.#needsInput = false;
  }

  /**
   * After a record error: step over the bad record (it is dropped, deliberately, by the caller) and
   * clear the error. Throws INVALID_ARG when there is no record error.
   */
  skipRecord(): void {
    if (!this.#error || !this.#errorIsRecord) throw engineError('ENGINE_ERR_INVALID_ARG', `${this.fileName}: skipRecord() without a record error`);
    if (this.#klen - this.#kpos >= RB) this.#kpos += RB;
    else this.#cpos += RB;
    this.#nextIndex++;
    this.#error = null;
    this.#errorIsRecord = false;
    if (this.pendingBytes < RB) this.#starved();
    else this.#needsInput = false;
  }

  #appendCarry(src: Uint8Array, from: number, n: number): void {
    const need = this.#klen + n;
    if (need > this.#carry.length) {
      let cap = this.#carry.length * 2;
      while (cap < need) cap *= 2;
      const next = new Uint8Array(cap);
      next.set(this.#carry.subarray(0, this.#klen));
      this.#carry = next;
      this.#kdv = new DataView(next.buffer);
    }
    this.#carry.set(src.subarray(from, from + n), this.#klen);
    this.#klen = need;
  }

  /** Header stage: move header bytes from the chunk into the carry, validating as they arrive. */
  #absorbHeader(): void {
    let have = this.#klen - this.#kpos;
    // First the 14 bytes that say what the header is, then the rest of HeaderSize.
    if (have < 14) {
      const k = Math.min(14 - have, this.#cend - this.#cpos);
      if (k > 0) { this.#appendCarry(this.#chunk, this.#cpos, k); this.#cpos += k; have += k; }
      try {
        checkHeaderPrefix(this.#kdv, this.#kpos, have, this.fileName);
      } catch (err) {
        this.#error = err as EngineError;
        throw err;
      }
      if (have < 14) return;
    }
    const hb = this.#kdv.getUint32(this.#kpos + HDR_HEADER_SIZE_BYTE, true);
    if (have < hb) {
      const k = Math.min(hb - have, this.#cend - this.#cpos);
      if (k > 0) { this.#appendCarry(this.#chunk, this.#cpos, k); this.#cpos += k; have += k; }
      if (have < hb) return;
    }
    this.#header = headerFrom(this.#kdv, this.#kpos);
    this.#headerBytes = hb;
    this.#kpos = 0;
    this.#klen = 0;
    this.#stage = STAGE_RECORDS;
  }

  /** Make the carry hold whole records only, taking the missing bytes from the chunk (or all of it). */
  #completePartial(): void {
    const rem = (this.#klen - this.#kpos) % RB;
    if (rem === 0) return;
    const k = Math.min(RB - rem, this.#cend - this.#cpos);
    if (k > 0) { this.#appendCarry(this.#chunk, this.#cpos, k); this.#cpos += k; }
  }

  /** Move one whole record from the chunk to the end of the carry (open bundle spanning chunks). */
  #pullRecord(): boolean {
    if (this.#cend - this.#cpos < RB || (this.#klen - this.#kpos) % RB !== 0) return false;
    this.#appendCarry(this.#chunk, this.#cpos, RB);
    this.#cpos += RB;
    return true;
  }

  // ---- decoding ----

  /**
   * Decode as many whole records as the ring has room for: claim once and publish once per batch.
   * Returns the number of slots published (0 when the ring is full, the header is incomplete, or no
   * whole record is pending; see `needsInput`). Throws ENGINE_ERR_SCID_FORMAT on a corrupt record,
   * after publishing the records before it.
   */
  decodeInto(w: RingWriter): number {
    if (this.#error) throw this.#error;
    if (this.#stage === STAGE_HEADER) { this.#starved(); return 0; }
    let total = 0;
    for (;;) {
      let fromCarry: boolean;
      let avail: number;
      const kWhole = ((this.#klen - this.#kpos) / RB) | 0;
      if (kWhole > 0) {
        fromCarry = true;
        avail = kWhole;
      } else {
        if (this.#klen > this.#kpos) { this.#starved(); break; } // a partial record and no chunk bytes
        this.#kpos = 0;
        this.#klen = 0;
        fromCarry = false;
        avail = ((this.#cend - this.#cpos) / RB) | 0;
        if (avail === 0) { this.#starved(); break; }
      }
      if (this.#skipUntil > this.#nextIndex) {
        // Skipped records are not decoded, but their markers still say whether a bundle is open.
        const k = Math.min(avail, this.#skipUntil - this.#nextIndex);
        const dv = fromCarry ? this.#kdv : this.#cdv;
        let p = fromCarry ? this.#kpos : this.#cpos;
        for (let i = 0; i < k; i++, p += RB) {
          const bits = dv.getUint32(p + REC_OPEN_BYTE, true);
          if (bits === FIRST_BITS) this.#inBundle = true;
          else if (bits === LAST_BITS) this.#inBundle = false;
        }
        if (fromCarry) this.#kpos = p;
        else this.#cpos = p;
        this.#nextIndex += k;
        continue;
      }
      if (this.#mode === MODE_NONE || this.#time === TIME_NONE) this.#decide(fromCarry);
      let want = avail < MAX_BATCH ? avail : MAX_BATCH;
      if (want > w.slotCount) want = w.slotCount;
      const room = w.claim(want);
      if (room === 0) { this.#needsInput = false; break; }
      const before = this.#nextIndex;
      total += this.#batch(w, room, fromCarry);
      if (this.#nextIndex === before) { this.#starved(); break; } // an open bundle waits for data
    }
    return total;
  }

  /** Decide record mode and time encoding from the next record (cold: once per file). */
  #decide(fromCarry: boolean): void {
    const dv = fromCarry ? this.#kdv : this.#cdv;
    const p = fromCarry ? this.#kpos : this.#cpos;
    if (this.#mode === MODE_NONE) this.#mode = detectMode(dv, p);
    if (this.#time === TIME_NONE) {
      const t = detectTime(dv, p);
      if (t === TIME_NONE) this.#recordError(badTimeError(this.fileName, this.#headerBytes + this.#nextIndex * RB, this.#nextIndex, dv, p, TIME_NONE));
      this.#time = t;
    }
  }

  #recordError(e: EngineError): never {
    this.#error = e;
    this.#errorIsRecord = true;
    this.#needsInput = false;
    throw e;
  }

  /**
   * Decode one batch from the carry or the chunk into `room` claimed slots and publish it. The record
   * loop itself is the module-level `runTicks` / `runBars` over the plain `Cursor` (no private-member
   * access in the hot loop: V8 handles those poorly under OSR); bundles and errors come back here.
   */
  #batch(w: RingWriter, room: number, fromCarry: boolean): number {
    const c = this.#cur;
    c.dv = fromCarry ? this.#kdv : this.#cdv;
    c.p = fromCarry ? this.#kpos : this.#cpos;
    c.end = this.#segmentEnd(fromCarry);
    c.idx = this.#nextIndex;
    c.inBundle = this.#inBundle;
    c.legacy = this.#time === TIME_FLOAT64;
    c.slot = 0;
    c.stop = STOP_DONE;
    const bars = this.#mode === MODE_BAR;
    for (;;) {
      if (bars) runBars(c, w, room);
      else runTicks(c, w, room);
      if (c.stop !== STOP_BUNDLE) break;
      // Merge mode, at a FIRST record with a free slot.
      const len = this.#scanBundle(fromCarry, c.p);
      if (fromCarry) { c.dv = this.#kdv; c.end = this.#segmentEnd(true); } // the scan may pull into a regrown carry
      if (len === 0) { c.stop = STOP_DONE; break; } // its LAST has not arrived: leave the bundle pending
      if (len === 1) { c.passFirst = c.idx; continue; } // incomplete: the FIRST goes through unmerged
      this.#writeMerged(w.views, w.slotByte(c.slot), c.dv, c.p, len, c.idx, c.legacy ? F_LEGACY : 0);
      c.slot++;
      c.idx += len;
      c.p += len * RB;
      c.inBundle = false;
    }
    const slots = c.slot;
    // State first, publish last: a ring publish hook (exactly-once ingest progress, workers/sierra/ingest.ts)
    // reads nextRecordIndex / bytesConsumed as they will be once these slots are visible.
    this.#slotsWritten += slots;
    this.#recordsDecoded += c.idx - this.#nextIndex;
    this.#nextIndex = c.idx;
    this.#inBundle = c.inBundle;
    if (fromCarry) this.#kpos = c.p;
    else this.#cpos = c.p;
    w.publish(slots);
    const dv = c.dv;
    c.dv = EMPTY_VIEW; // no reference to the caller's chunk outlives the call
    if (c.stop === STOP_BAD) this.#recordError(badTimeError(this.fileName, this.#headerBytes + c.idx * RB, c.idx, dv, c.p, this.#time));
    return slots;
  }

  #segmentEnd(fromCarry: boolean): number {
    return fromCarry
      ? this.#kpos + (((this.#klen - this.#kpos) / RB) | 0) * RB
      : this.#cpos + (((this.#cend - this.#cpos) / RB) | 0) * RB;
  }

  /**
   * Merge mode, at a FIRST record at `p`: the number of records of the complete bundle (≥ 2), 1 when
   * the bundle is incomplete (pass the FIRST through unmerged), 0 when its end has not arrived yet.
   * In the carry, records are pulled from the chunk as needed so the bundle is contiguous.
   */
  #scanBundle(fromCarry: boolean, p: number): number {
    let dv = fromCarry ? this.#kdv : this.#cdv;
    let end = this.#segmentEnd(fromCarry);
    const legacy = this.#time === TIME_FLOAT64;
    for (let j = 1; j < SCID_MAX_BUNDLE_RECORDS; j++) {
      const q = p + j * RB;
      if (q + RB > end) {
        if (!fromCarry || !this.#pullRecord()) return this.#ended ? 1 : 0;
        dv = this.#kdv;
        end += RB;
      }
      const ts = legacy ? scidDaysToUnixMicros(dv.getFloat64(q, true)) : scidInt64ToUnixMicros(dv.getUint32(q, true), dv.getInt32(q + 4, true));
      if (!isPlausible(ts)) return 1;
      const bits = dv.getUint32(q + REC_OPEN_BYTE, true);
      if (bits === LAST_BITS) return j + 1;
      if (bits === FIRST_BITS) return 1;
    }
    return 1;
  }

  #writeMerged(v: SlotViews, b: number, dv: DataView, p: number, len: number, idx: number, timeFlag: number): void {
    let size = 0;
    let flags = F_MERGED | timeFlag;
    for (let j = 0, q = p; j < len; j++, q += RB) {
      size += dv.getUint32(q + REC_TOTAL_VOLUME_BYTE, true);
      if (dv.getUint32(q + REC_ASK_VOLUME_BYTE, true) !== 0) flags |= F_BUY;
      if (dv.getUint32(q + REC_BID_VOLUME_BYTE, true) !== 0) flags |= F_SELL;
    }
    const ts = timeFlag !== 0 ? scidDaysToUnixMicros(dv.getFloat64(p, true)) : scidInt64ToUnixMicros(dv.getUint32(p, true), dv.getInt32(p + 4, true));
    const last = p + (len - 1) * RB;
    const num = this.#mulNum;
    const den = this.#mulDen;
    writeTrade(
      v, b, KIND_TRADE, this.#sourceId, this.#symbolId, idx, ts,
      dv.getFloat32(last + REC_CLOSE_BYTE, true) * num / den,
      dv.getFloat32(last + REC_LOW_BYTE, true) * num / den,
      dv.getFloat32(last + REC_HIGH_BYTE, true) * num / den,
      size > U32_MAX ? U32_MAX : size, flags, 0, 0, idx, len,
    );
  }
}

// ---- hot loops ----------------------------------------------------------------------------------

const STOP_DONE = 0; // room used up or no whole record left in the segment
const STOP_BAD = 1; // the record at `p` has an implausible time
const STOP_BUNDLE = 2; // merge mode: a FIRST record at `p` needs the bundle logic

/**
 * Loop state shared by the decoder and the module-level record loops: plain fields (monomorphic, fast
 * named access), one instance per decoder, never exported.
 */
class Cursor {
  dv: DataView = EMPTY_VIEW;
  /** Byte position in `dv` of the next record, and the end of the whole records. */
  p = 0;
  end = 0;
  /** Source index of the record at `p`. */
  idx = 0;
  /** Next slot of the current claim. */
  slot = 0;
  inBundle = false;
  legacy = false;
  stop = STOP_DONE;
  /** Merge mode: index of an incomplete bundle's FIRST that passes through unmerged (else −1). */
  passFirst = -1;
  // Per decoder, set once.
  merge = false;
  sourceId = 0;
  symbolId = 0;
  mulNum = 1;
  mulDen = 1;
}

/** Tick records → TRADE slots until `room` slots are written, the segment ends, or a stop. The hot loop. */
function runTicks(c: Cursor, w: RingWriter, room: number): void {
  const v = w.views;
  const dv = c.dv;
  const end = c.end;
  const legacy = c.legacy;
  const timeFlag = legacy ? F_LEGACY : 0;
  const num = c.mulNum;
  const den = c.mulDen;
  const src = c.sourceId;
  const sym = c.symbolId;
  const merge = c.merge;
  const divide = den !== 1; // ×0.01 as ÷100: exact for prices stored ×100
  let p = c.p;
  let idx = c.idx;
  let slot = c.slot;
  let inBundle = c.inBundle;
  let stop = STOP_DONE;
  while (slot < room && p < end) {
    const ts = legacy
      ? scidDaysToUnixMicros(dv.getFloat64(p, true))
      : (dv.getInt32(p + 4, true) * TWO_POW_32 - EPOCH_US) + dv.getUint32(p, true);
    if (!(ts >= MIN_US && ts < MAX_US)) { stop = STOP_BAD; break; }
    const openBits = dv.getUint32(p + REC_OPEN_BYTE, true);
    let flags = timeFlag;
    if (dv.getUint32(p + REC_ASK_VOLUME_BYTE, true) !== 0) flags |= F_BUY;
    if (dv.getUint32(p + REC_BID_VOLUME_BYTE, true) !== 0) flags |= F_SELL;
    if (openBits === 0) {
      if (inBundle) flags |= F_MIDDLE;
    } else if (openBits === FIRST_BITS) {
      if (merge && idx !== c.passFirst) { stop = STOP_BUNDLE; break; }
      flags |= F_FIRST;
      inBundle = true;
    } else if (openBits === LAST_BITS) {
      flags |= F_LAST;
      inBundle = false;
    }
    const close = dv.getFloat32(p + REC_CLOSE_BYTE, true);
    const low = dv.getFloat32(p + REC_LOW_BYTE, true);
    const high = dv.getFloat32(p + REC_HIGH_BYTE, true);
    writeTrade(
      v, w.slotByte(slot), KIND_TRADE, src, sym, idx, ts,
      divide ? close / den : close * num,
      divide ? low / den : low * num,
      divide ? high / den : high * num,
      dv.getUint32(p + REC_TOTAL_VOLUME_BYTE, true), flags, 0, 0, idx,
      dv.getUint32(p + REC_NUM_TRADES_BYTE, true),
    );
    slot++;
    idx++;
    p += RB;
  }
  c.p = p;
  c.idx = idx;
  c.slot = slot;
  c.inBundle = inBundle;
  c.stop = stop;
}

/** Bar records → BAR slots. */
function runBars(c: Cursor, w: RingWriter, room: number): void {
  const v = w.views;
  const dv = c.dv;
  const end = c.end;
  const legacy = c.legacy;
  const num = c.mulNum;
  const den = c.mulDen;
  const src = c.sourceId;
  const sym = c.symbolId;
  let p = c.p;
  let idx = c.idx;
  let slot = c.slot;
  let stop = STOP_DONE;
  while (slot < room && p < end) {
    const ts = legacy
      ? scidDaysToUnixMicros(dv.getFloat64(p, true))
      : (dv.getInt32(p + 4, true) * TWO_POW_32 - EPOCH_US) + dv.getUint32(p, true);
    if (!(ts >= MIN_US && ts < MAX_US)) { stop = STOP_BAD; break; }
    writeBar(
      v, w.slotByte(slot), src, sym, idx, ts,
      dv.getFloat32(p + REC_OPEN_BYTE, true) * num / den,
      dv.getFloat32(p + REC_HIGH_BYTE, true) * num / den,
      dv.getFloat32(p + REC_LOW_BYTE, true) * num / den,
      dv.getFloat32(p + REC_CLOSE_BYTE, true) * num / den,
      dv.getUint32(p + REC_TOTAL_VOLUME_BYTE, true),
      dv.getUint32(p + REC_NUM_TRADES_BYTE, true),
      dv.getUint32(p + REC_BID_VOLUME_BYTE, true),
      dv.getUint32(p + REC_ASK_VOLUME_BYTE, true),
    );
    slot++;
    idx++;
    p += RB;
  }
  c.p = p;
  c.idx = idx;
  c.slot = slot;
  c.stop = stop;
}

// ---- columns decoder (no ring) ------------------------------------------------------------------

export interface ScidColumnsOptions {
  fileName: string;
  priceMultiplier?: number;
  recordMode?: 'auto' | ScidRecordMode;
  timeEncoding?: 'auto' | ScidTimeEncoding;
  /** First record to decode (default 0). */
  startRecord?: number;
  /** Decode at most this many records (default: all whole records). */
  maxRecords?: number;
}

/**
 * One typed array per field, one row per source record (bundles are never merged here). Tick files:
 * `close` is the trade price, `low` the bid, `high` the ask, `open` 0 (the markers are in `flags`).
 * Bar files: OHLC as stored. Prices are × the multiplier. `flags` holds TradeFlag bits (sides, sub-trade
 * markers for ticks, LEGACY_TIME).
 */
export interface ScidColumns {
  header: ScidHeader;
  recordMode: ScidRecordMode;
  timeEncoding: ScidTimeEncoding;
  /** Index of row 0 in the file. */
  startRecord: number;
  count: number;
  /** Whole records in the file after the header. */
  fileRecords: number;
  /** Bytes after the last whole record (a partial record: not decoded, not an error). */
  trailingBytes: number;
  tsMicros: Float64Array;
  open: Float64Array;
  high: Float64Array;
  low: Float64Array;
  close: Float64Array;
  numTrades: Uint32Array;
  totalVolume: Uint32Array;
  bidVolume: Uint32Array;
  askVolume: Uint32Array;
  flags: Uint32Array;
}

/**
 * Decode a whole file (or a prefix of it: `bytes` from file offset 0) into columns, for tools that do
 * not use a ring (inspect, backfill planning, spot checks). Same rules and errors as `ScidDecoder`;
 * allocates the columns once.
 */
export function decodeScidColumns(bytes: Uint8Array, opts: ScidColumnsOptions): ScidColumns {
  const file = opts.fileName;
  const header = readScidHeader(bytes, file);
  const m = opts.priceMultiplier ?? 1;
  checkMultiplier(m);
  const { num, den } = splitMultiplier(m);
  const hb = header.headerBytes;
  const fileRecords = Math.floor((bytes.length - hb) / RB);
  const trailingBytes = bytes.length - hb - fileRecords * RB;
  const start = opts.startRecord ?? 0;
  if (!Number.isSafeInteger(start) || start < 0) throw engineError('ENGINE_ERR_INVALID_ARG', `startRecord must be a non-negative integer, got ${String(start)}`);
  const max = opts.maxRecords ?? Infinity;
  const count = Math.max(0, Math.min(fileRecords - start, max));
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const cols: ScidColumns = {
    header, recordMode: 'tick', timeEncoding: 'int64', startRecord: start, count, fileRecords, trailingBytes,
    tsMicros: new Float64Array(count), open: new Float64Array(count), high: new Float64Array(count),
    low: new Float64Array(count), close: new Float64Array(count), numTrades: new Uint32Array(count),
    totalVolume: new Uint32Array(count), bidVolume: new Uint32Array(count), askVolume: new Uint32Array(count),
    flags: new Uint32Array(count),
  };
  const rm = opts.recordMode ?? 'auto';
  const te = opts.timeEncoding ?? 'auto';
  if (count === 0) {
    if (rm !== 'auto') cols.recordMode = rm;
    if (te !== 'auto') cols.timeEncoding = te;
    return cols;
  }
  const p0 = hb + start * RB;
  const mode = rm === 'tick' ? MODE_TICK : rm === 'bar' ? MODE_BAR : detectMode(dv, p0);
  const time = te === 'int64' ? TIME_INT64 : te === 'float64' ? TIME_FLOAT64 : detectTime(dv, p0);
  if (time === TIME_NONE) throw badTimeError(file, p0, start, dv, p0, TIME_NONE);
  cols.recordMode = mode === MODE_BAR ? 'bar' : 'tick';
  cols.timeEncoding = time === TIME_FLOAT64 ? 'float64' : 'int64';
  const legacy = time === TIME_FLOAT64;
  const timeFlag = legacy ? F_LEGACY : 0;
  const { tsMicros, open, high, low, close, numTrades, totalVolume, bidVolume, askVolume, flags } = cols;
  let inBundle = false;
  for (let i = 0, p = p0; i < count; i++, p += RB) {
    const ts = legacy
      ? scidDaysToUnixMicros(dv.getFloat64(p, true))
      : scidInt64ToUnixMicros(dv.getUint32(p, true), dv.getInt32(p + 4, true));
    if (!isPlausible(ts)) throw badTimeError(file, p, start + i, dv, p, time);
    tsMicros[i] = ts;
    high[i] = dv.getFloat32(p + REC_HIGH_BYTE, true) * num / den;
    low[i] = dv.getFloat32(p + REC_LOW_BYTE, true) * num / den;
    close[i] = dv.getFloat32(p + REC_CLOSE_BYTE, true) * num / den;
    numTrades[i] = dv.getUint32(p + REC_NUM_TRADES_BYTE, true);
    totalVolume[i] = dv.getUint32(p + REC_TOTAL_VOLUME_BYTE, true);
    const bv = dv.getUint32(p + REC_BID_VOLUME_BYTE, true);
    const av = dv.getUint32(p + REC_ASK_VOLUME_BYTE, true);
    bidVolume[i] = bv;
    askVolume[i] = av;
    let f = timeFlag;
    if (mode === MODE_BAR) {
      open[i] = dv.getFloat32(p + REC_OPEN_BYTE, true) * num / den;
    } else {
      if (av !== 0) f |= F_BUY;
      if (bv !== 0) f |= F_SELL;
      const bits = dv.getUint32(p + REC_OPEN_BYTE, true);
      if (bits === 0) { if (inBundle) f |= F_MIDDLE; }
      else if (bits === FIRST_BITS) { f |= F_FIRST; inBundle = true; }
      else if (bits === LAST_BITS) { f |= F_LAST; inBundle = false; }
    }
    flags[i] = f;
  }
  return cols;
}

// ---- price scale detection ----------------------------------------------------------------------

export interface PriceScaleGuess {
  /** The multiplier that makes the prices tick-aligned (the smallest of ×0.01, ×1, ×100 that does). */
  multiplier: number;
  /** 0..1. Below 0.9 is "unsure" and comes with a warning. */
  confidence: number;
  distinctPrices: number;
  /** Fraction of distinct prices tick-aligned at each candidate multiplier. */
  alignedFraction: { x0_01: number; x1: number; x100: number };
  /** Set when the configured multiplier disagrees with the detected one, or when unsure. */
  warning: string | null;
}

const SCALE_CANDIDATES = [0.01, 1, 100] as const;
const ALIGNED_ENOUGH = 0.98;
const FULL_CONFIDENCE_SAMPLE = 20;
const F32_REL_EPS = 2 ** -23;

function alignedAt(price: number, m: number, tick: number): boolean {
  const x = m < 1 ? price / Math.round(1 / m) : price * m;
  const q = x / tick;
  const err = Math.abs(q - Math.round(q)) * tick;
  // Sierra stores f32: allow the f32 rounding of the stored value (scaled) plus a hair of f64 noise.
  return err <= Math.abs(x) * F32_REL_EPS + tick * 1e-9;
}

/**
 * Guess the price multiplier from tick-size alignment (cold path; allocates).
 *
 * Rule: among ×0.01, ×1, ×100, pick the smallest multiplier at which ≥ 98 % of the distinct non-zero
 * prices are multiples of `tickSize` (within f32 rounding). The smallest, because alignment at m
 * implies alignment at 100·m: prices stored ×100 are integers, hence aligned at ×1 too, but only ×0.01
 * also survives the division. The residual doubt is that prices aligned at the smaller scale by chance
 * (about 1 in 100 per distinct price) or too few distinct prices: confidence =
 * aligned(m) × (1 − aligned(next smaller)) × (1 − 0.01^n) × min(1, n / 20).
 */
export function detectPriceScale(samplePrices: ArrayLike<number>, tickSize: number, configuredMultiplier = 1): PriceScaleGuess {
  if (!(tickSize > 0) || !Number.isFinite(tickSize)) throw engineError('ENGINE_ERR_INVALID_ARG', `tickSize must be a positive number, got ${String(tickSize)}`);
  checkMultiplier(configuredMultiplier);
  const distinct = new Set<number>();
  for (let i = 0; i < samplePrices.length; i++) {
    const p = samplePrices[i];
    if (p !== undefined && Number.isFinite(p) && p !== 0) distinct.add(p);
  }
  const n = distinct.size;
  const frac = [0, 0, 0];
  for (const p of distinct) {
    for (let c = 0; c < SCALE_CANDIDATES.length; c++) if (alignedAt(p, SCALE_CANDIDATES[c] ?? 1, tickSize)) frac[c] = (frac[c] ?? 0) + 1;
  }
  for (let c = 0; c < frac.length; c++) frac[c] = n === 0 ? 0 : (frac[c] ?? 0) / n;
  const alignedFraction = { x0_01: frac[0] ?? 0, x1: frac[1] ?? 0, x100: frac[2] ?? 0 };
  const fmt = (x: number): string => `×${String(x)}`;
  if (n === 0) {
    return { multiplier: configuredMultiplier, confidence: 0, distinctPrices: 0, alignedFraction, warning: 'no non-zero prices to detect the price scale from' };
  }
  let chosen = -1;
  for (let c = 0; c < SCALE_CANDIDATES.length; c++) if ((frac[c] ?? 0) >= ALIGNED_ENOUGH) { chosen = c; break; }
  if (chosen < 0) {
    return {
      multiplier: configuredMultiplier, confidence: 0, distinctPrices: n, alignedFraction,
      warning: `prices are not aligned to tick size ${tickSize} at ×0.01, ×1 or ×100 (is the tick size right?); keeping the configured ${fmt(configuredMultiplier)}`,
    };
  }
  const multiplier = SCALE_CANDIDATES[chosen] ?? 1;
  const smaller = chosen > 0 ? (frac[chosen - 1] ?? 0) : 0;
  const confidence = (frac[chosen] ?? 0) * (1 - smaller) * (1 - 0.01 ** n) * Math.min(1, n / FULL_CONFIDENCE_SAMPLE);
  const warnings: string[] = [];
  if (Math.abs(multiplier - configuredMultiplier) > 1e-12 * multiplier) {
    warnings.push(`configured price multiplier ${fmt(configuredMultiplier)} disagrees with the detected ${fmt(multiplier)} (tick size ${tickSize}, ${n} distinct prices)`);
  }
  if (confidence < 0.9) {
    warnings.push(`price scale ${fmt(multiplier)} is unsure (confidence ${confidence.toFixed(2)} from ${n} distinct prices)`);
  }
  return { multiplier, confidence, distinctPrices: n, alignedFraction, warning: warnings.length > 0 ? warnings.join('; ') : null };
}
