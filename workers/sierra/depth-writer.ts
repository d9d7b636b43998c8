/**
 * Writer of Sierra Chart `.depth` files: for tests, benchmarks and the simulator (the demo source writes
 * real files that the engine then tails like Sierra's own).
 *
 * - `DepthWriter.toFile(path)` creates (or truncates) a file and writes the 64-byte header;
 *   `{ append: true }` continues an existing file after validating its header (a file ending in a
 *   partial record is a coded error unless `truncatePartialRecord`), or creates it when missing/empty.
 * - `DepthWriter.toMemory()` builds the same bytes in memory (`contents()`), for fast property tests.
 * - `record()` writes one record; `snapshot()` writes CLEAR_BOOK, the levels and the end-of-batch flag on
 *   the last record; `update()` writes a batch of level commands with the flag on the last one. The
 *   writer also satisfies the simulator's `DepthSink` (`depth()` is `record()`).
 * - `{ raw: true }` writes deliberately broken files: no header is written for you (`header()` writes any
 *   magic/sizes/length), `record()` accepts any byte values and non-finite prices, `writeBytes()` appends
 *   anything (for example half a record).
 *
 * Output is buffered (64 KiB by default) and written with positional `writeSync`; `flush()` pushes it
 * to the file (a tailer sees only flushed bytes), `close()` flushes and closes.
 */
import { closeSync, fstatSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { engineError } from '../../engine/errors.ts';
import { DEPTH_FLAG_END_OF_BATCH, DepthCommand } from '../../schemas/records.ts';
import {
  DEPTH_FILE_VERSION, DEPTH_HEADER_BYTES, DEPTH_MAGIC_LE, DEPTH_RECORD_BYTES, HDR_HEADER_SIZE_BYTE, HDR_MAGIC_BYTE,
  HDR_RECORD_SIZE_BYTE, HDR_VERSION_BYTE, MAX_DEPTH_COMMAND, REC_COMMAND_BYTE, REC_FLAGS_BYTE, REC_NUM_ORDERS_BYTE,
  REC_PRICE_BYTE, REC_QUANTITY_BYTE, REC_RESERVED_BYTE, depthFormatError, parseDepthHeader, writeScDateTime,
} from './depth-format.ts';

export interface DepthLevel {
  price: number;
  quantity: number;
  /** Default 1 when quantity > 0, else 0. */
  numOrders?: number;
}

export interface DepthUpdate {
  /** A DepthCommand (ADD_*, MODIFY_*, DELETE_*, CLEAR_BOOK). */
  command: number;
  price: number;
  quantity: number;
  numOrders?: number;
}

export interface DepthWriterOptions {
  /** Version field of a new header (default 1). */
  version?: number;
  /** Stored price = price / priceMultiplier (default 1), to write files of feeds that store ×100. */
  priceMultiplier?: number;
  /** Deliberately broken files: nothing is validated and no header is written for you. */
  raw?: boolean;
  /** Output buffer size (default 64 KiB). */
  bufferBytes?: number;
}

export interface DepthFileWriterOptions extends DepthWriterOptions {
  /** Continue an existing file (validated) instead of truncating it. */
  append?: boolean;
  /** With `append`: cut a partial trailing record off instead of failing. */
  truncatePartialRecord?: boolean;
}

/** Header fields for raw mode; anything left out takes the valid value. */
export interface RawDepthHeader {
  magic?: number;
  headerBytes?: number;
  recordBytes?: number;
  version?: number;
  /** Bytes actually written (default 64; may be shorter or longer than headerBytes). */
  length?: number;
}

const REC = DEPTH_RECORD_BYTES;
const EOB = DEPTH_FLAG_END_OF_BATCH;

function checkInt(what: string, v: number, lo: number, hi: number): void {
  if (!Number.isInteger(v) || v < lo || v > hi) {
    throw engineError('ENGINE_ERR_INVALID_ARG', `${what} must be an integer in [${lo}, ${hi}], got ${String(v)}`);
  }
}

export class DepthWriter {
  /** Path written, or null in memory. */
  readonly path: string | null;
  readonly raw: boolean;
  readonly #fd: number;
  readonly #mult: number;
  #buf: Uint8Array;
  #dv: DataView;
  #len = 0;
  /** File offset of #buf[0]. */
  #fileOff = 0;
  #headerBytes = DEPTH_HEADER_BYTES;
  #records = 0;
  #closed = false;

  private constructor(path: string | null, fd: number, opts: DepthWriterOptions) {
    this.path = path;
    this.#fd = fd;
    this.raw = opts.raw === true;
    const mult = opts.priceMultiplier ?? 1;
    if (!Number.isFinite(mult) || mult <= 0) throw engineError('ENGINE_ERR_INVALID_ARG', `priceMultiplier must be a finite number above 0, got ${String(mult)}`);
    this.#mult = mult;
    const size = opts.bufferBytes ?? 64 * 1024;
    checkInt('bufferBytes', size, 1024, 1 << 30);
    this.#buf = new Uint8Array(size);
    this.#dv = new DataView(this.#buf.buffer);
  }

  /** A file writer: creates/truncates `path` and writes the header (unless raw), or appends (validated). */
  static toFile(path: string, opts: DepthFileWriterOptions = {}): DepthWriter {
    if (opts.append === true && opts.raw !== true) return DepthWriter.#openAppend(path, opts);
    let fd: number;
    try {
      fd = openSync(path, 'w');
    } catch (err) {
      throw engineError('ENGINE_ERR_FILE_IO', `cannot create ${path}: ${(err as Error).message}`, { file: path }, err);
    }
    const w = new DepthWriter(path, fd, opts);
    if (!w.raw) w.#writeHeader(DEPTH_MAGIC_LE, DEPTH_HEADER_BYTES, REC, opts.version ?? DEPTH_FILE_VERSION, DEPTH_HEADER_BYTES);
    return w;
  }

  /** An in-memory writer; `contents()` returns the bytes. */
  static toMemory(opts: DepthWriterOptions = {}): DepthWriter {
    const w = new DepthWriter(null, -1, opts);
    if (!w.raw) w.#writeHeader(DEPTH_MAGIC_LE, DEPTH_HEADER_BYTES, REC, opts.version ?? DEPTH_FILE_VERSION, DEPTH_HEADER_BYTES);
    return w;
  }

  static #openAppend(path: string, opts: DepthFileWriterOptions): DepthWriter {
    let fd: number;
    try {
      try {
        fd = openSync(path, 'r+');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        fd = openSync(path, 'w+');
      }
    } catch (err) {
      throw engineError('ENGINE_ERR_FILE_IO', `cannot open ${path} for appending: ${(err as Error).message}`, { file: path }, err);
    }
    try {
      const size = fstatSync(fd).size;
      const w = new DepthWriter(path, fd, opts);
      if (size === 0) {
        w.#writeHeader(DEPTH_MAGIC_LE, DEPTH_HEADER_BYTES, REC, opts.version ?? DEPTH_FILE_VERSION, DEPTH_HEADER_BYTES);
        return w;
      }
      const head = new Uint8Array(Math.min(size, DEPTH_HEADER_BYTES));
      readSync(fd, head, 0, head.length, 0);
      const h = parseDepthHeader(head, path, size);
      const body = size - h.headerBytes;
      let whole = size;
      if (body % REC !== 0) {
        if (opts.truncatePartialRecord !== true) {
          throw depthFormatError(path, size - (body % REC), `file ends in a partial record (${body % REC} of ${REC} bytes); refusing to append after it`);
        }
        whole = size - (body % REC);
        ftruncateSync(fd, whole);
      }
      w.#headerBytes = h.headerBytes;
      w.#records = (whole - h.headerBytes) / REC;
      w.#fileOff = whole;
      return w;
    } catch (err) {
      try { closeSync(fd); } catch { /* already closed */ }
      throw err;
    }
  }

  /** Records in the file (those found when appending plus those written since). */
  get recordCount(): number { return this.#records; }
  /** Bytes in the file so far, flushed or buffered. */
  get byteLength(): number { return this.#fileOff + this.#len; }
  /** Byte offset of the first record (HeaderSize of the file). */
  get headerBytes(): number { return this.#headerBytes; }

  /** Raw mode: write a header with any field values, `length` bytes long (zero padded or cut). */
  header(fields: RawDepthHeader = {}): void {
    if (!this.raw) throw engineError('ENGINE_ERR_INVALID_ARG', 'header() is for raw writers: a normal writer writes its header itself');
    this.#writeHeader(fields.magic ?? DEPTH_MAGIC_LE, fields.headerBytes ?? DEPTH_HEADER_BYTES, fields.recordBytes ?? REC, fields.version ?? DEPTH_FILE_VERSION, fields.length ?? DEPTH_HEADER_BYTES);
  }

  /** Raw mode: append arbitrary bytes (half a record, garbage). */
  writeBytes(bytes: Uint8Array): void {
    if (!this.raw) throw engineError('ENGINE_ERR_INVALID_ARG', 'writeBytes() is for raw writers');
    this.#ensure(bytes.length);
    if (bytes.length > this.#buf.length) { this.#put(bytes); return; }
    this.#buf.set(bytes, this.#len);
    this.#len += bytes.length;
  }

  /** Write one record. `tsMicros` is Unix µs (an integer). */
  record(tsMicros: number, command: number, flags: number, numOrders: number, price: number, quantity: number): void {
    const stored = price / this.#mult;
    if (!this.raw) {
      checkInt('command', command, 0, MAX_DEPTH_COMMAND);
      checkInt('flags', flags, 0, 0xff);
      checkInt('numOrders', numOrders, 0, 0xffff);
      checkInt('quantity', quantity, 0, 0xffffffff);
      if (!Number.isFinite(Math.fround(stored))) throw engineError('ENGINE_ERR_INVALID_ARG', `price ${String(price)} does not fit a finite f32`);
    }
    this.#ensure(REC);
    const dv = this.#dv;
    const p = this.#len;
    writeScDateTime(dv, p, tsMicros);
    dv.setUint8(p + REC_COMMAND_BYTE, command & 0xff);
    dv.setUint8(p + REC_FLAGS_BYTE, flags & 0xff);
    dv.setUint16(p + REC_NUM_ORDERS_BYTE, numOrders & 0xffff, true);
    dv.setFloat32(p + REC_PRICE_BYTE, stored, true);
    dv.setUint32(p + REC_QUANTITY_BYTE, quantity >>> 0, true);
    dv.setUint32(p + REC_RESERVED_BYTE, 0, true);
    this.#len = p + REC;
    this.#records++;
  }

  /** The simulator's DepthSink: same as `record()`. */
  depth(tsMicros: number, command: number, flags: number, numOrders: number, price: number, quantity: number): void {
    this.record(tsMicros, command, flags, numOrders, price, quantity);
  }

  /**
   * A full book snapshot as Sierra writes it: CLEAR_BOOK, the bid levels (ADD_BID_LEVEL, in the given
   * order), the ask levels (ADD_ASK_LEVEL), and the end-of-batch flag on the last record (on the
   * CLEAR_BOOK itself when both sides are empty). All records share `tsMicros`.
   */
  snapshot(tsMicros: number, bids: readonly DepthLevel[], asks: readonly DepthLevel[]): void {
    const total = 1 + bids.length + asks.length;
    this.record(tsMicros, DepthCommand.CLEAR_BOOK, total === 1 ? EOB : 0, 0, 0, 0);
    let k = 1;
    for (const l of bids) {
      k++;
      this.record(tsMicros, DepthCommand.ADD_BID_LEVEL, k === total ? EOB : 0, l.numOrders ?? (l.quantity > 0 ? 1 : 0), l.price, l.quantity);
    }
    for (const l of asks) {
      k++;
      this.record(tsMicros, DepthCommand.ADD_ASK_LEVEL, k === total ? EOB : 0, l.numOrders ?? (l.quantity > 0 ? 1 : 0), l.price, l.quantity);
    }
  }

  /** One batch of level commands sharing `tsMicros`, the end-of-batch flag on the last. Empty: nothing written. */
  update(tsMicros: number, updates: readonly DepthUpdate[]): void {
    const n = updates.length;
    for (let i = 0; i < n; i++) {
      const u = updates[i]!;
      this.record(tsMicros, u.command, i === n - 1 ? EOB : 0, u.numOrders ?? (u.quantity > 0 ? 1 : 0), u.price, u.quantity);
    }
  }

  /** Push buffered bytes to the file (no-op in memory). */
  flush(): void {
    if (this.#fd < 0 || this.#len === 0) return;
    this.#put(this.#buf.subarray(0, this.#len));
    this.#len = 0;
  }

  /** Flush and close (idempotent). */
  close(): void {
    if (this.#closed) return;
    this.flush();
    this.#closed = true;
    if (this.#fd >= 0) closeSync(this.#fd);
  }

  /** In-memory writers: a copy of everything written. */
  contents(): Uint8Array {
    if (this.#fd >= 0) throw engineError('ENGINE_ERR_INVALID_ARG', 'contents() is for in-memory writers; read the file instead');
    return this.#buf.slice(0, this.#len);
  }

  #writeHeader(magic: number, headerBytes: number, recordBytes: number, version: number, length: number): void {
    checkInt('header length', length, 0, 1 << 24);
    const h = new Uint8Array(Math.max(length, 16));
    const dv = new DataView(h.buffer);
    dv.setUint32(HDR_MAGIC_BYTE, magic >>> 0, true);
    dv.setUint32(HDR_HEADER_SIZE_BYTE, headerBytes >>> 0, true);
    dv.setUint32(HDR_RECORD_SIZE_BYTE, recordBytes >>> 0, true);
    dv.setUint32(HDR_VERSION_BYTE, version >>> 0, true);
    const bytes = h.subarray(0, length);
    this.#ensure(bytes.length);
    if (bytes.length > this.#buf.length) this.#put(bytes);
    else { this.#buf.set(bytes, this.#len); this.#len += bytes.length; }
    this.#headerBytes = headerBytes;
  }

  /** Make room for `n` more bytes: flush to the file, or grow the memory buffer. */
  #ensure(n: number): void {
    if (this.#closed) throw engineError('ENGINE_ERR_INVALID_ARG', `${this.path ?? 'memory'}: write after close()`);
    if (this.#len + n <= this.#buf.length) return;
    if (this.#fd >= 0) { this.flush(); return; }
    let cap = this.#buf.length * 2;
    while (cap < this.#len + n) cap *= 2;
    const b = new Uint8Array(cap);
    b.set(this.#buf.subarray(0, this.#len));
    this.#buf = b;
    this.#dv = new DataView(b.buffer);
  }

  /** Write bytes straight to the file at the current end (file mode), or append in memory. */
  #put(bytes: Uint8Array): void {
    if (this.#fd < 0) {
      this.#ensure(bytes.length);
      this.#buf.set(bytes, this.#len);
      this.#len += bytes.length;
      return;
    }
    let off = 0;
    while (off < bytes.length) {
      const n = writeSync(this.#fd, bytes, off, bytes.length - off, this.#fileOff);
      off += n;
      this.#fileOff += n;
    }
  }
}
