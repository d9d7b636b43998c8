/**
 * Read-only, incremental reader of the journal files that another thread (the validator's `Journal`)
 * is writing: the Redis sink's catch-up source. It never opens a `Journal` (that would repair files the
 * owner is appending to) and never writes.
 *
 * `next()` hands out one whole, CRC-checked block at a time as (views, byteOffset, count), like
 * `JournalCursor`, and remembers per file how far it got, so calling it again later continues with what
 * was committed since. It returns 0 when nothing more is readable right now. Unlike `JournalCursor` it
 * expects the tail of an open hour to be in motion: a block that is still being written (short, or its
 * CRC does not match yet) is simply "not yet". Only a bad block that stays bad while a valid block
 * follows it (checked again after `corruptAfterMs`) is corruption: reported through `onCorrupt` as
 * ENGINE_ERR_JOURNAL and skipped, its records counted in `skippedRecords` when the count is readable.
 * A file deleted meanwhile (its hour was compacted) is dropped from the list.
 *
 * Files: `<data-dir>/journal/<YYYY-MM-DD>/<HH>.tpj` of hours >= `fromHourMicros`, oldest hour first.
 */
import { closeSync, fstatSync, openSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { type EngineError, engineError } from '../../engine/errors.ts';
import type { SlotViews } from '../../engine/ring/ring.ts';
import {
  BH_COUNT_BYTE, BH_CRC_BYTE, BLOCK_HEADER_BYTES, BLOCK_MAGIC, FILE_HEADER_BYTES, HOUR_MICROS, JOURNAL_DIR_NAME, JOURNAL_RECORD_BYTES,
  MAX_BLOCK_RECORDS, checkFileHeader, crc32Of, parseDayDir, parseHourFile, slotViewsOf,
} from '../../engine/journal/format.ts';
import { findValidBlock, preadFully } from '../../engine/journal/recovery.ts';

interface TailFile {
  readonly hourStartMicros: number;
  readonly path: string;
  pos: number;
  /** performance.now() when the block at `badPos` was first seen bad (0 = none). */
  badSinceMs: number;
  badPos: number;
  gone: boolean;
}

export interface JournalTailOptions {
  dataDir: string;
  /** Hours before this (Unix µs, any time inside the hour works) are not read. */
  fromMicros: number;
  /** A bad block followed by a valid one is declared corrupt when still bad this long after it was first seen (default 1000). */
  corruptAfterMs?: number;
  onCorrupt?: (err: EngineError) => void;
}

export class JournalTail {
  readonly dir: string;
  readonly #fromHour: number;
  readonly #corruptAfterMs: number;
  readonly #onCorrupt: ((err: EngineError) => void) | undefined;
  readonly #files = new Map<number, TailFile>();
  #order: TailFile[] = [];
  #idx = 0;
  #buf = new ArrayBuffer(1 << 16);
  #u8 = new Uint8Array(this.#buf);
  #u32 = new Uint32Array(this.#buf);
  /** Aliases over the reader's buffer (replaced when it grows: read after every `next()`). */
  views: SlotViews = slotViewsOf(this.#buf);
  byteOffset = BLOCK_HEADER_BYTES;
  count = 0;
  hourStartMicros = Number.NaN;
  records = 0;
  blocks = 0;
  skippedRecords = 0;
  corruptBlocks = 0;

  constructor(opts: JournalTailOptions) {
    this.dir = join(opts.dataDir, JOURNAL_DIR_NAME);
    this.#fromHour = opts.fromMicros - (opts.fromMicros % HOUR_MICROS);
    this.#corruptAfterMs = opts.corruptAfterMs ?? 1000;
    this.#onCorrupt = opts.onCorrupt;
  }

  /** Next whole block (records at `byteOffset + k * 64` in `views`), or 0 when nothing more is readable now. */
  next(): number {
    if (this.#idx >= this.#order.length) {
      this.#rescan();
      this.#idx = 0;
    }
    while (this.#idx < this.#order.length) {
      const f = this.#order[this.#idx]!;
      const n = f.gone ? 0 : this.#readBlock(f);
      if (n > 0) return n;
      this.#idx++;
    }
    this.count = 0;
    return 0;
  }

  /** Start the next `next()` from the oldest file again (after it returned 0 once, new data may be anywhere). */
  rewind(): void {
    this.#idx = this.#order.length;
  }

  #rescan(): void {
    let days: string[];
    try {
      days = readdirSync(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw engineError('ENGINE_ERR_FILE_IO', `cannot list journal directory ${this.dir}: ${(err as Error).message}`, { file: this.dir }, err);
    }
    const fromDay = this.#fromHour - (this.#fromHour % (24 * HOUR_MICROS));
    for (const day of days) {
      const dayMicros = parseDayDir(day);
      if (dayMicros === null || dayMicros < fromDay) continue;
      let names: string[];
      try {
        names = readdirSync(join(this.dir, day));
      } catch {
        continue; // a stray file, or the day was just removed
      }
      for (const name of names) {
        const p = parseHourFile(name);
        if (p?.kind !== 'tpj') continue;
        const h = dayMicros + p.hour * HOUR_MICROS;
        if (h < this.#fromHour || this.#files.has(h)) continue;
        this.#files.set(h, { hourStartMicros: h, path: join(this.dir, day, name), pos: 0, badSinceMs: 0, badPos: -1, gone: false });
      }
    }
    this.#order = [...this.#files.values()].filter((f) => !f.gone).sort((a, b) => a.hourStartMicros - b.hourStartMicros);
  }

  #grow(bytes: number): void {
    if (this.#buf.byteLength >= bytes) return;
    let cap = this.#buf.byteLength;
    while (cap < bytes) cap *= 2;
    this.#buf = new ArrayBuffer(cap);
    this.#u8 = new Uint8Array(this.#buf);
    this.#u32 = new Uint32Array(this.#buf);
    this.views = slotViewsOf(this.#buf);
  }

  /** One block of `f` from its position, or 0 (nothing whole yet, end of file, or the file is gone). */
  #readBlock(f: TailFile): number {
    let fd: number;
    try {
      fd = openSync(f.path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') { f.gone = true; return 0; }
      throw engineError('ENGINE_ERR_FILE_IO', `cannot open journal ${f.path}: ${(err as Error).message}`, { file: f.path }, err);
    }
    try {
      const size = fstatSync(fd).size;
      if (f.pos === 0) {
        if (size < FILE_HEADER_BYTES) return 0;
        preadFully(fd, this.#u8, 0, FILE_HEADER_BYTES, 0);
        const h = checkFileHeader(this.#u8, 0);
        if (!h.ok || h.hourStartMicros !== f.hourStartMicros) {
          // The owner writes the header together with the first block: a bad header with data behind it is corruption.
          if (findValidBlock(fd, FILE_HEADER_BYTES, size) >= 0) this.#corrupt(f, 0, `file header: ${h.ok ? 'names another hour' : h.reason}`, -1, size, fd);
          return 0;
        }
        f.pos = FILE_HEADER_BYTES;
      }
      for (;;) {
        if (size - f.pos < BLOCK_HEADER_BYTES) return 0;
        preadFully(fd, this.#u8, 0, BLOCK_HEADER_BYTES, f.pos);
        const magic = this.#u32[0]!;
        const count = this.#u32[BH_COUNT_BYTE >> 2]!;
        const crc = this.#u32[BH_CRC_BYTE >> 2]!;
        const okHeader = magic === BLOCK_MAGIC && count > 0 && count <= MAX_BLOCK_RECORDS;
        const need = BLOCK_HEADER_BYTES + count * JOURNAL_RECORD_BYTES;
        if (okHeader && size - f.pos < need) return 0; // still being written
        if (okHeader) {
          this.#grow(need);
          if (preadFully(fd, this.#u8, BLOCK_HEADER_BYTES, need - BLOCK_HEADER_BYTES, f.pos + BLOCK_HEADER_BYTES) === need - BLOCK_HEADER_BYTES
            && crc32Of(this.#u8, BLOCK_HEADER_BYTES, need - BLOCK_HEADER_BYTES) === crc) {
            f.pos += need;
            f.badSinceMs = 0;
            f.badPos = -1;
            this.byteOffset = BLOCK_HEADER_BYTES;
            this.count = count;
            this.hourStartMicros = f.hourStartMicros;
            this.records += count;
            this.blocks++;
            return count;
          }
        }
        // Bad here: a block in motion, or corruption if it stays bad with valid data after it.
        if (!this.#corrupt(f, f.pos, okHeader ? 'payload CRC mismatch' : 'bad block header', okHeader ? count : -1, size, fd)) return 0;
      }
    } finally {
      closeSync(fd);
    }
  }

  /** Returns true when the bad block was declared corrupt and skipped (`f.pos` moved to the next valid block). */
  #corrupt(f: TailFile, at: number, reason: string, count: number, size: number, fd: number): boolean {
    const now = performance.now();
    if (f.badPos !== at) {
      f.badPos = at;
      f.badSinceMs = now;
      return false;
    }
    if (now - f.badSinceMs < this.#corruptAfterMs) return false;
    const next = findValidBlock(fd, at + 16, size);
    if (next < 0) return false; // nothing valid after it: a tail in motion (or a torn tail the owner will cut)
    this.corruptBlocks++;
    if (count > 0) this.skippedRecords += count;
    this.#onCorrupt?.(engineError('ENGINE_ERR_JOURNAL', `journal ${f.path} is corrupt at byte ${at}: ${reason}; skipped to byte ${next}`, { file: f.path, byteOffset: at, reason }));
    f.pos = next;
    f.badPos = -1;
    f.badSinceMs = 0;
    return true;
  }
}
