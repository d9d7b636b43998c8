/**
 * Sierra Chart `.scid` writer, for tests, the market simulator (demo source) and benchmarks.
 *
 * Writes what Sierra writes: a 56-byte header ("SCID", HeaderSize 56, RecordSize 40, Version 1,
 * UTCStartIndex 0) and 40-byte records (scid-format.ts). Records are encoded into a buffer and written
 * with positional writes when it fills (`writeSync`), on `flushSync()`, or on `flush()` (async, the
 * buffer is handed to the write and a fresh one takes its place). `trade()` has the simulator's
 * `TickSink.trade` signature, so a writer can be the simulator's sink directly.
 *
 * Modes:
 * - create (default): truncates the file and writes a header.
 * - `append`: validates the existing header (coded ENGINE_ERR_SCID_FORMAT on a bad one, on a trailing
 *   partial record, or when `legacyTime` disagrees with the file's DateTime encoding) and appends; a
 *   missing or empty file is created.
 * - `legacyTime`: DateTime as a float64 day count since 1899-12-30 (old files). A double resolves
 *   about 0.6 µs in 1989–2079, so µs timestamps round-trip exactly there; later ones are rounded.
 * - `raw`: for deliberately broken test files: `rawHeader` may lie (magic, sizes, version, how many
 *   header bytes are really written) and `rawBytes()` appends anything (e.g. a truncated record).
 *
 * Prices are stored as f32 (as Sierra does): pass f32-representable prices to round-trip exactly.
 */
import { closeSync, existsSync, fstatSync, openSync, readSync, write as fsWrite, writeSync, close as fsClose } from 'node:fs';
import { engineError } from '../../engine/errors.ts';
import { readScidHeader, scidDaysToUnixMicros, scidInt64ToUnixMicros } from './scid-decoder.ts';
import {
  HDR_HEADER_SIZE_BYTE, HDR_RECORD_SIZE_BYTE, HDR_UNUSED_BYTE, HDR_UTC_START_INDEX_BYTE, HDR_VERSION_BYTE, MICROS_PER_DAY,
  REC_ASK_VOLUME_BYTE, REC_BID_VOLUME_BYTE, REC_CLOSE_BYTE, REC_HIGH_BYTE, REC_LOW_BYTE, REC_NUM_TRADES_BYTE, REC_OPEN_BYTE,
  REC_TOTAL_VOLUME_BYTE, SC_EPOCH_OFFSET_MICROS, SCID_FIRST_SUB_TRADE_BITS, SCID_HEADER_BYTES, SCID_LAST_SUB_TRADE_BITS,
  SCID_MAGIC_TEXT, SCID_MAX_HEADER_BYTES, SCID_MAX_PLAUSIBLE_MICROS, SCID_MIN_PLAUSIBLE_MICROS, SCID_RECORD_BYTES, ScidSide,
  ScidSubTrade, TWO_POW_32,
} from './scid-format.ts';

const RB = SCID_RECORD_BYTES;

export interface ScidHeaderFields {
  /** 4 characters (default "SCID"). */
  magic?: string;
  /** HeaderSize field (default 56). */
  headerBytes?: number;
  /** RecordSize field (default 40). */
  recordBytes?: number;
  /** Version field (default 1). */
  version?: number;
  /** UTCStartIndex field (default 0). */
  utcStartIndex?: number;
}

export interface RawHeaderFields extends ScidHeaderFields {
  /** Header bytes actually written (default: the HeaderSize field, at least 56); may differ to lie. */
  writtenBytes?: number;
}

export interface ScidWriterOptions {
  /** Append to an existing file after validating its header (default false: create/truncate). */
  append?: boolean;
  /** Write DateTime as a legacy float64 day count (default false: int64 µs). */
  legacyTime?: boolean;
  /** Records buffered before a write (default 4096). */
  bufferRecords?: number;
  /** Allow `rawHeader` and `rawBytes()` (deliberately broken files, for tests). */
  raw?: boolean;
  /** Header to write in raw mode (create mode only). */
  rawHeader?: RawHeaderFields;
}

// ---- encoders (pure; usable to build files in memory) -------------------------------------------

/** Write a header into `dv` at `off` (56 bytes, more when HeaderSize says so and `writtenBytes` allows). Returns bytes written. */
export function encodeScidHeader(dv: DataView, off: number, fields: RawHeaderFields = {}): number {
  const magic = fields.magic ?? SCID_MAGIC_TEXT;
  const headerBytes = fields.headerBytes ?? SCID_HEADER_BYTES;
  const written = fields.writtenBytes ?? Math.max(SCID_HEADER_BYTES, Math.min(headerBytes, SCID_MAX_HEADER_BYTES));
  for (let i = 0; i < written; i++) dv.setUint8(off + i, 0);
  for (let i = 0; i < 4 && i < written; i++) dv.setUint8(off + i, magic.charCodeAt(i) & 0xff);
  if (written >= 8) dv.setUint32(off + HDR_HEADER_SIZE_BYTE, headerBytes >>> 0, true);
  if (written >= 12) dv.setUint32(off + HDR_RECORD_SIZE_BYTE, (fields.recordBytes ?? RB) >>> 0, true);
  if (written >= 14) dv.setUint16(off + HDR_VERSION_BYTE, (fields.version ?? 1) & 0xffff, true);
  if (written >= 16) dv.setUint16(off + HDR_UNUSED_BYTE, 0, true);
  if (written >= 20) dv.setUint32(off + HDR_UTC_START_INDEX_BYTE, (fields.utcStartIndex ?? 0) >>> 0, true);
  return written;
}

/** DateTime of a record: int64 µs since 1899-12-30 as two u32 halves, or a legacy float64 day count. */
export function encodeScidDateTime(dv: DataView, off: number, unixMicros: number, legacyTime: boolean): void {
  const raw = unixMicros + SC_EPOCH_OFFSET_MICROS;
  if (!Number.isSafeInteger(unixMicros) || !Number.isSafeInteger(raw)) {
    throw engineError('ENGINE_ERR_INVALID_ARG', `timestamp ${String(unixMicros)} µs is not an integer that an SCID DateTime can hold exactly`);
  }
  if (legacyTime) {
    // One correctly rounded division of an exact integer: the nearest double to the true day count.
    dv.setFloat64(off, raw / MICROS_PER_DAY, true);
    return;
  }
  const hi = Math.floor(raw / TWO_POW_32);
  dv.setUint32(off, raw - hi * TWO_POW_32, true);
  dv.setInt32(off + 4, hi, true);
}

/** A general record in Sierra's field order (bars; or tick records with explicit volumes and Open). */
export function encodeScidRecord(
  dv: DataView, off: number, unixMicros: number, open: number, high: number, low: number, close: number,
  numTrades: number, totalVolume: number, bidVolume: number, askVolume: number, legacyTime = false,
): void {
  encodeScidDateTime(dv, off, unixMicros, legacyTime);
  dv.setFloat32(off + REC_OPEN_BYTE, open, true);
  dv.setFloat32(off + REC_HIGH_BYTE, high, true);
  dv.setFloat32(off + REC_LOW_BYTE, low, true);
  dv.setFloat32(off + REC_CLOSE_BYTE, close, true);
  dv.setUint32(off + REC_NUM_TRADES_BYTE, numTrades >>> 0, true);
  dv.setUint32(off + REC_TOTAL_VOLUME_BYTE, totalVolume >>> 0, true);
  dv.setUint32(off + REC_BID_VOLUME_BYTE, bidVolume >>> 0, true);
  dv.setUint32(off + REC_ASK_VOLUME_BYTE, askVolume >>> 0, true);
}

/**
 * A tick record as Sierra writes one: Close = price, High = ask, Low = bid, TotalVolume = size, the
 * size in AskVolume for a buy (side 1) or BidVolume for a sell (side 2), Open = the sub-trade marker
 * bits (FIRST / LAST) or 0 (NONE, MIDDLE).
 */
export function encodeScidTrade(
  dv: DataView, off: number, unixMicros: number, price: number, bid: number, ask: number, size: number,
  side: number, subTrade: number, numTrades = 1, legacyTime = false,
): void {
  encodeScidRecord(
    dv, off, unixMicros, 0, ask, bid, price, numTrades, size,
    side === ScidSide.SELL ? size : 0, side === ScidSide.BUY ? size : 0, legacyTime,
  );
  if (subTrade === ScidSubTrade.FIRST) dv.setUint32(off + REC_OPEN_BYTE, SCID_FIRST_SUB_TRADE_BITS, true);
  else if (subTrade === ScidSubTrade.LAST) dv.setUint32(off + REC_OPEN_BYTE, SCID_LAST_SUB_TRADE_BITS, true);
}

// ---- file writer --------------------------------------------------------------------------------

function ioError(path: string, what: string, err: unknown): Error {
  return engineError('ENGINE_ERR_FILE_IO', `${path}: ${what}: ${(err as Error).message}`, { file: path }, err);
}

function writeAllSync(fd: number, buf: Uint8Array, pos: number): void {
  let done = 0;
  while (done < buf.length) done += writeSync(fd, buf, done, buf.length - done, pos + done);
}

function writeAll(fd: number, buf: Uint8Array, pos: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const step = (done: number): void => {
      if (done >= buf.length) { resolve(); return; }
      fsWrite(fd, buf, done, buf.length - done, pos + done, (err, n) => {
        if (err) reject(err);
        else step(done + n);
      });
    };
    step(0);
  });
}

export class ScidWriter {
  readonly path: string;
  readonly legacyTime: boolean;
  readonly #raw: boolean;
  #fd: number;
  #buf: Uint8Array;
  #dv: DataView;
  #len = 0;
  /** File offset where the buffer's first byte goes. */
  #pos: number;
  #records = 0;
  #inflight: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(path: string, fd: number, pos: number, opts: ScidWriterOptions) {
    this.path = path;
    this.#fd = fd;
    this.#pos = pos;
    this.legacyTime = opts.legacyTime === true;
    this.#raw = opts.raw === true;
    const cap = Math.max(1, opts.bufferRecords ?? 4096) * RB;
    this.#buf = new Uint8Array(cap);
    this.#dv = new DataView(this.#buf.buffer);
  }

  /** Create (or with `append`, open and validate) a file. Sync I/O: opening is a one-off. */
  static open(path: string, opts: ScidWriterOptions = {}): ScidWriter {
    if (opts.rawHeader && !opts.raw) throw engineError('ENGINE_ERR_INVALID_ARG', 'rawHeader needs raw: true');
    if (opts.append && existsSync(path)) {
      let fd: number;
      try { fd = openSync(path, 'r+'); } catch (err) { throw ioError(path, 'cannot open for append', err); }
      try {
        const size = fstatSync(fd).size;
        if (size > 0) {
          const head = new Uint8Array(Math.min(size, SCID_MAX_HEADER_BYTES));
          readSync(fd, head, 0, head.length, 0);
          const h = readScidHeader(head, path, size);
          const body = size - h.headerBytes;
          if (body % RB !== 0 && !opts.raw) {
            throw engineError('ENGINE_ERR_SCID_FORMAT', `${path}: ends with a partial record of ${body % RB} bytes; appending would misalign every record after it (byte offset ${size - (body % RB)})`, { file: path, byteOffset: size - (body % RB) });
          }
          if (body >= RB) {
            const last = new Uint8Array(RB);
            const at = h.headerBytes + (Math.floor(body / RB) - 1) * RB;
            readSync(fd, last, 0, RB, at);
            const ldv = new DataView(last.buffer);
            const asInt = scidInt64ToUnixMicros(ldv.getUint32(0, true), ldv.getInt32(4, true));
            const intOk = asInt >= SCID_MIN_PLAUSIBLE_MICROS && asInt < SCID_MAX_PLAUSIBLE_MICROS;
            const asDays = scidDaysToUnixMicros(ldv.getFloat64(0, true));
            const daysOk = asDays >= SCID_MIN_PLAUSIBLE_MICROS && asDays < SCID_MAX_PLAUSIBLE_MICROS;
            if ((opts.legacyTime === true && intOk) || (opts.legacyTime !== true && !intOk && daysOk)) {
              throw engineError('ENGINE_ERR_SCID_FORMAT', `${path}: the file's DateTime encoding (${intOk ? 'int64 µs' : 'float64 days'}) differs from the writer's legacyTime=${String(opts.legacyTime === true)} (byte offset ${at})`, { file: path, byteOffset: at });
            }
          }
          return new ScidWriter(path, fd, size, opts);
        }
        const w = new ScidWriter(path, fd, 0, opts);
        w.#writeHeader(opts);
        return w;
      } catch (err) {
        closeSync(fd);
        throw err;
      }
    }
    let fd: number;
    try { fd = openSync(path, 'w'); } catch (err) { throw ioError(path, 'cannot create', err); }
    const w = new ScidWriter(path, fd, 0, opts);
    w.#writeHeader(opts);
    return w;
  }

  #writeHeader(opts: ScidWriterOptions): void {
    const fields: RawHeaderFields = opts.raw && opts.rawHeader ? opts.rawHeader : {};
    const want = fields.writtenBytes ?? Math.max(SCID_HEADER_BYTES, Math.min(fields.headerBytes ?? SCID_HEADER_BYTES, SCID_MAX_HEADER_BYTES));
    const bytes = new Uint8Array(Math.max(want, 0));
    const written = encodeScidHeader(new DataView(bytes.buffer), 0, { ...fields, writtenBytes: bytes.length });
    this.#append(bytes.subarray(0, written));
  }

  /** Records written (buffered ones included). */
  get recordsWritten(): number { return this.#records; }
  /** File size once everything buffered is written. */
  get fileBytes(): number { return this.#pos + this.#len; }

  #reserve(n: number): number {
    if (this.#closed) throw engineError('ENGINE_ERR_INVALID_ARG', `${this.path}: writer is closed`);
    if (this.#len + n > this.#buf.length) {
      this.flushSync();
      if (n > this.#buf.length) {
        this.#buf = new Uint8Array(n);
        this.#dv = new DataView(this.#buf.buffer);
      }
    }
    const at = this.#len;
    this.#len += n;
    return at;
  }

  #append(bytes: Uint8Array): void {
    const at = this.#reserve(bytes.length);
    this.#buf.set(bytes, at);
  }

  /**
   * One tick record (the simulator's `TickSink.trade`): side 1 = bought at the ask, 2 = sold at the
   * bid, 0 = unknown; subTrade 0 none, 1 first, 2 middle, 3 last.
   */
  trade(tsMicros: number, price: number, bid: number, ask: number, size: number, side: number, subTrade: number, numTrades = 1): void {
    const at = this.#reserve(RB);
    try {
      encodeScidTrade(this.#dv, at, tsMicros, price, bid, ask, size, side, subTrade, numTrades, this.legacyTime);
    } catch (err) {
      this.#len -= RB;
      throw err;
    }
    this.#records++;
  }

  /** One record in Sierra's field order (bar files; or ticks with explicit volumes). */
  record(tsMicros: number, open: number, high: number, low: number, close: number, numTrades: number, totalVolume: number, bidVolume: number, askVolume: number): void {
    const at = this.#reserve(RB);
    try {
      encodeScidRecord(this.#dv, at, tsMicros, open, high, low, close, numTrades, totalVolume, bidVolume, askVolume, this.legacyTime);
    } catch (err) {
      this.#len -= RB;
      throw err;
    }
    this.#records++;
  }

  /** One bar, in `writeBar`'s argument order. */
  bar(tsMicros: number, open: number, high: number, low: number, close: number, volume: number, numTrades: number, bidVolume: number, askVolume: number): void {
    this.record(tsMicros, open, high, low, close, numTrades, volume, bidVolume, askVolume);
  }

  /** Raw mode only: append arbitrary bytes (a truncated record, garbage, a hand-made record). */
  rawBytes(bytes: Uint8Array): void {
    if (!this.#raw) throw engineError('ENGINE_ERR_INVALID_ARG', `${this.path}: rawBytes() needs a writer opened with raw: true`);
    this.#append(bytes);
  }

  /** Write what is buffered, now (positional writeSync). */
  flushSync(): void {
    if (this.#len === 0) return;
    try {
      writeAllSync(this.#fd, this.#buf.subarray(0, this.#len), this.#pos);
    } catch (err) {
      throw ioError(this.path, 'write failed', err);
    }
    this.#pos += this.#len;
    this.#len = 0;
  }

  /** Write what is buffered without blocking: the buffer goes to the write, a fresh one replaces it. */
  flush(): Promise<void> {
    if (this.#len === 0) return this.#inflight;
    const out = this.#buf.subarray(0, this.#len);
    const pos = this.#pos;
    this.#pos += this.#len;
    this.#len = 0;
    this.#buf = new Uint8Array(this.#buf.length);
    this.#dv = new DataView(this.#buf.buffer);
    const fd = this.#fd;
    const path = this.path;
    this.#inflight = this.#inflight.then(() => writeAll(fd, out, pos)).catch((err: unknown) => { throw ioError(path, 'write failed', err); });
    return this.#inflight;
  }

  /** Flush and close (sync). Idempotent. */
  closeSync(): void {
    if (this.#closed) return;
    try {
      this.flushSync();
    } finally {
      this.#closed = true;
      closeSync(this.#fd);
      this.#fd = -1;
    }
  }

  /** Flush (waiting for async flushes in flight) and close. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.flush();
    } finally {
      this.#closed = true;
      const fd = this.#fd;
      this.#fd = -1;
      await new Promise<void>((resolve, reject) => fsClose(fd, (err) => { if (err) reject(ioError(this.path, 'close failed', err)); else resolve(); }));
    }
  }
}

/** Build a whole file in memory (tests, benchmarks): header then the records `fill` encodes. */
export function buildScidBytes(records: number, fill: (dv: DataView, off: number, index: number) => void, header: RawHeaderFields = {}): Uint8Array {
  const headerBytes = header.writtenBytes ?? Math.max(SCID_HEADER_BYTES, Math.min(header.headerBytes ?? SCID_HEADER_BYTES, SCID_MAX_HEADER_BYTES));
  const out = new Uint8Array(headerBytes + records * RB);
  const dv = new DataView(out.buffer);
  encodeScidHeader(dv, 0, { ...header, writtenBytes: headerBytes });
  for (let i = 0; i < records; i++) fill(dv, headerBytes + i * RB, i);
  return out;
}
