/**
 * Replay cursor: reads journal files block by block into one grow-only buffer and hands out whole,
 * CRC-checked blocks as (views, byteOffset, count). No object per record, no object per block: the
 * caller reads the records through `views` at `byteOffset + k * 64` (schemas/records.ts accessors) and
 * copies them into its own ring or buffer before calling `next()` again.
 *
 * Pull style on purpose: the caller decides how to wait between blocks (a full ring can be awaited with
 * `parkAsync`); `Journal.replay(target, visitor)` is the push-style loop over it.
 *
 * Every block is checked (magic, count, CRC) before its records are handed out; a bad block or a file
 * that ends before the length the journal recorded as durable is ENGINE_ERR_JOURNAL naming the file and
 * byte offset. Torn tails never reach a cursor: `Journal.open` cuts them first.
 */
import { closeSync, openSync } from 'node:fs';
import { engineError } from '../errors.ts';
import type { SlotViews } from '../ring/ring.ts';
import {
  BH_COUNT_BYTE, BH_CRC_BYTE, BLOCK_HEADER_BYTES, BLOCK_MAGIC, FILE_HEADER_BYTES, JOURNAL_RECORD_BYTES, MAX_BLOCK_RECORDS,
  checkFileHeader, crc32Of, slotViewsOf,
} from './format.ts';
import { preadFully } from './recovery.ts';

/** One file to read: the hour, its path, and how many bytes of it are durable (read no further). */
export interface ReplaySource {
  readonly hourStartMicros: number;
  readonly path: string;
  readonly limitBytes: number;
}

const INITIAL_BUFFER_BYTES = 4 << 20;

function corrupt(path: string, byteOffset: number, reason: string): never {
  throw engineError('ENGINE_ERR_JOURNAL', `journal ${path} is corrupt at byte ${byteOffset}: ${reason}`, { file: path, byteOffset, reason });
}

export class JournalCursor {
  readonly #sources: readonly ReplaySource[];
  #srcIndex = -1;
  #src: ReplaySource | null = null;
  #fd = -1;
  #buf: ArrayBuffer;
  #u8: Uint8Array;
  #u32: Uint32Array;
  /** File offset of `#buf[0]`. */
  #bufStart = 0;
  /** Valid bytes in `#buf`. */
  #bufLen = 0;
  /** Buffer offset of the next unparsed block. */
  #parse = 0;
  #closed = false;

  /** Aliases over the cursor's buffer; replaced when the buffer grows, so read it after every `next()`. */
  views: SlotViews;
  /** Byte offset in `views` of the first record of the current block. */
  byteOffset = 0;
  /** Records in the current block (what `next()` returned). */
  count = 0;
  /** Hour of the current block's file. */
  hourStartMicros = Number.NaN;
  /** Totals so far. */
  records = 0;
  blocks = 0;
  hours = 0;

  constructor(sources: readonly ReplaySource[]) {
    this.#sources = sources;
    let largest = 0;
    for (const src of sources) largest = Math.max(largest, src.limitBytes);
    // a whole small file in one read, big files in 4 MiB reads (the buffer grows for blocks larger than that)
    this.#buf = new ArrayBuffer(Math.max(4096, Math.min(INITIAL_BUFFER_BYTES, 1 << Math.ceil(Math.log2(largest + 1)))));
    this.#u8 = new Uint8Array(this.#buf);
    this.#u32 = new Uint32Array(this.#buf);
    this.views = slotViewsOf(this.#buf);
  }

  /** Load the next block; returns its record count (> 0), or 0 when every source is done (the cursor closes itself). */
  next(): number {
    if (this.#closed) return 0;
    try {
      for (;;) {
        const src = this.#src;
        if (src === null) {
          if (!this.#openNext()) {
            this.close();
            return 0;
          }
          continue;
        }
        const filePos = this.#bufStart + this.#parse;
        if (filePos >= src.limitBytes) {
          this.#closeFile();
          continue;
        }
        if (this.#bufLen - this.#parse < BLOCK_HEADER_BYTES && !this.#fill(BLOCK_HEADER_BYTES)) {
          corrupt(src.path, filePos, `file ends inside a block header, before the ${src.limitBytes} bytes recorded as durable`);
        }
        const h = (this.#parse >> 2);
        const magic = this.#u32[h] ?? 0;
        const count = this.#u32[h + (BH_COUNT_BYTE >> 2)] ?? 0;
        const crc = this.#u32[h + (BH_CRC_BYTE >> 2)] ?? 0;
        if (magic !== BLOCK_MAGIC) corrupt(src.path, filePos, 'bad block magic');
        if (count === 0 || count > MAX_BLOCK_RECORDS) corrupt(src.path, filePos, `bad record count ${count}`);
        const need = BLOCK_HEADER_BYTES + count * JOURNAL_RECORD_BYTES;
        if (filePos + need > src.limitBytes) corrupt(src.path, filePos, `block runs past the ${src.limitBytes} bytes recorded as durable`);
        if (this.#bufLen - this.#parse < need && !this.#fill(need)) {
          corrupt(src.path, filePos, `file ends inside a block, before the ${src.limitBytes} bytes recorded as durable`);
        }
        const payloadAt = this.#parse + BLOCK_HEADER_BYTES;
        if (crc32Of(this.#u8, payloadAt, need - BLOCK_HEADER_BYTES) !== crc) corrupt(src.path, filePos, 'payload CRC mismatch');
        this.byteOffset = payloadAt;
        this.count = count;
        this.#parse += need;
        this.records += count;
        this.blocks++;
        return count;
      }
    } catch (err) {
      this.close();
      throw err;
    }
  }

  close(): void {
    this.#closeFile();
    this.#closed = true;
    this.count = 0;
  }

  #openNext(): boolean {
    for (;;) {
      this.#srcIndex++;
      const src = this.#sources[this.#srcIndex];
      if (src === undefined) return false;
      if (src.limitBytes <= FILE_HEADER_BYTES) continue; // nothing durable beyond (or even in) the header
      try {
        this.#fd = openSync(src.path, 'r');
      } catch (err) {
        throw engineError('ENGINE_ERR_FILE_IO', `cannot open journal ${src.path} for replay: ${(err as Error).message}`, { file: src.path, errno: (err as NodeJS.ErrnoException).code ?? null }, err);
      }
      this.#src = src;
      this.#bufStart = 0;
      this.#bufLen = 0;
      this.#parse = 0;
      if (!this.#fill(FILE_HEADER_BYTES)) corrupt(src.path, 0, 'file shorter than its header');
      const hc = checkFileHeader(this.#u8, 0);
      if (!hc.ok) corrupt(src.path, 0, `file header: ${hc.reason}`);
      if (hc.hourStartMicros !== src.hourStartMicros) corrupt(src.path, 0, 'file header names another hour');
      this.#parse = FILE_HEADER_BYTES;
      this.hourStartMicros = src.hourStartMicros;
      this.hours++;
      return true;
    }
  }

  /** Make at least `need` bytes available from `#parse`; false when the file (or its durable limit) ends first. */
  #fill(need: number): boolean {
    const src = this.#src;
    if (src === null) return false;
    if (this.#parse > 0) {
      this.#u8.copyWithin(0, this.#parse, this.#bufLen);
      this.#bufStart += this.#parse;
      this.#bufLen -= this.#parse;
      this.#parse = 0;
    }
    if (this.#buf.byteLength < need) {
      let cap = this.#buf.byteLength;
      while (cap < need) cap *= 2;
      const grown = new ArrayBuffer(cap);
      const u8 = new Uint8Array(grown);
      u8.set(this.#u8.subarray(0, this.#bufLen));
      this.#buf = grown;
      this.#u8 = u8;
      this.#u32 = new Uint32Array(grown);
      this.views = slotViewsOf(grown);
    }
    while (this.#bufLen < need) {
      const fileEnd = this.#bufStart + this.#bufLen;
      const want = Math.min(this.#buf.byteLength - this.#bufLen, src.limitBytes - fileEnd);
      if (want <= 0) return false;
      let n: number;
      try {
        n = preadFully(this.#fd, this.#u8, this.#bufLen, want, fileEnd);
      } catch (err) {
        throw engineError('ENGINE_ERR_FILE_IO', `cannot read journal ${src.path}: ${(err as Error).message}`, { file: src.path, errno: (err as NodeJS.ErrnoException).code ?? null }, err);
      }
      if (n === 0) return false;
      this.#bufLen += n;
    }
    return true;
  }

  #closeFile(): void {
    if (this.#fd >= 0) {
      try { closeSync(this.#fd); } catch { /* already closed: nothing to release */ }
    }
    this.#fd = -1;
    this.#src = null;
  }
}
