/**
 * Read-only access to one closed journal hour (`<data-dir>/journal/<YYYY-MM-DD>/<HH>.tpj`, format in
 * engine/journal/format.ts) for the compactor, from any thread or process: the live `Journal` instance
 * (owned by the validator thread) keeps writing other hours meanwhile, and may still append late records
 * to this one. Nothing here writes, truncates or locks the file.
 *
 * - Whole, CRC-checked blocks are returned. A bad or short block at the end is a **tail** (a torn write
 *   after a crash, or a late-record commit in flight right now): its bytes are reported in `tailBytes`
 *   and not read. The journal's own count protects the delete: `Journal.deleteHour(h, { expectedRecords })`
 *   refuses when the durable file holds a different number of records than the compactor read, and the
 *   hour is compacted again.
 * - A bad block with a valid block after it is corruption: ENGINE_ERR_JOURNAL naming the file and offset
 *   (the hour is not compacted, its journal is kept; the service retries and reports it).
 * - TRADE and QUOTE records become tick rows (`splitTicksBySymbol`); other kinds (DEPTH, BOOK_END, GAP,
 *   PAYLOAD_REF, BAR) are counted in `otherRecords` and not stored in tick files.
 */
import { closeSync, fstatSync, openSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { engineError } from '../../engine/errors.ts';
import {
  BH_COUNT_BYTE, BH_CRC_BYTE, BLOCK_HEADER_BYTES, BLOCK_MAGIC, checkFileHeader, crc32Of, FILE_HEADER_BYTES, JOURNAL_RECORD_BYTES,
  MAX_BLOCK_RECORDS, slotViewsOf,
} from '../../engine/journal/format.ts';
import { preadFully } from '../../engine/journal/recovery.ts';
import type { SlotViews } from '../../engine/ring/ring.ts';
import {
  RecordKind, SOURCE_ID_BYTE, SEQ_BYTE, SYMBOL_ID_BYTE, TRADE_ASK_BYTE, TRADE_BID_BYTE, TRADE_FLAGS_BYTE, TRADE_PRICE_BYTE,
  TRADE_SIZE_BYTE, TRADE_SRC_INDEX_BYTE, TS_MICROS_BYTE,
} from '../../schemas/records.ts';
import type { TickColumns } from './figures.ts';

export interface JournalHourRead {
  path: string;
  hourStartMicros: number;
  /** The file's bytes (aligned for the Float64Array alias). */
  views: SlotViews;
  /** Byte offset in `views` of the first record of each block, and the block's record count. */
  blockOffsets: number[];
  blockCounts: number[];
  /** Whole records read (every kind). */
  records: number;
  /** Bytes holding the header and whole valid blocks. */
  validBytes: number;
  fileBytes: number;
  /** Bytes after the last whole block (a torn or in-flight write), not read. */
  tailBytes: number;
}

function corrupt(path: string, byteOffset: number, reason: string): never {
  throw engineError('ENGINE_ERR_JOURNAL', `journal ${path} is corrupt at byte ${byteOffset}: ${reason}`, { file: path, byteOffset, reason });
}

/** Is there a whole block with a matching CRC at `pos`? */
function blockAt(u8: Uint8Array, u32: Uint32Array, pos: number, size: number): number {
  if (size - pos < BLOCK_HEADER_BYTES + JOURNAL_RECORD_BYTES) return 0;
  const h = pos >> 2;
  if (u32[h] !== BLOCK_MAGIC) return 0;
  const count = u32[h + (BH_COUNT_BYTE >> 2)] ?? 0;
  if (count === 0 || count > MAX_BLOCK_RECORDS) return 0;
  const payload = count * JOURNAL_RECORD_BYTES;
  if (pos + BLOCK_HEADER_BYTES + payload > size) return 0;
  if (crc32Of(u8, pos + BLOCK_HEADER_BYTES, payload) !== (u32[h + (BH_CRC_BYTE >> 2)] ?? 0)) return 0;
  return count;
}

/** Read the durable, whole blocks of one journal hour file (see the module comment). */
export function readJournalHour(path: string, hourStartMicros: number): JournalHourRead {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw engineError('ENGINE_ERR_FILE_IO', `compactor: cannot open journal ${path}: ${(err as Error).message}`, { file: path, errno: (err as NodeJS.ErrnoException).code ?? null }, err);
  }
  let buf: ArrayBuffer;
  let size: number;
  try {
    size = fstatSync(fd).size;
    buf = new ArrayBuffer(Math.max(16, (size + 15) & ~15));
    size = preadFully(fd, new Uint8Array(buf), 0, size, 0);
  } catch (err) {
    throw engineError('ENGINE_ERR_FILE_IO', `compactor: cannot read journal ${path}: ${(err as Error).message}`, { file: path, errno: (err as NodeJS.ErrnoException).code ?? null }, err);
  } finally {
    closeSync(fd);
  }
  const views = slotViewsOf(buf);
  const out: JournalHourRead = {
    path, hourStartMicros, views, blockOffsets: [], blockCounts: [], records: 0, validBytes: 0, fileBytes: size, tailBytes: size,
  };
  if (size < FILE_HEADER_BYTES) return out; // torn header: nothing durable yet
  const hc = checkFileHeader(views.u8, 0);
  if (!hc.ok) {
    // A torn header (crash before the first commit finished) has no valid block after it.
    for (let p = FILE_HEADER_BYTES; p < size; p += 16) if (blockAt(views.u8, views.u32, p, size) > 0) corrupt(path, 0, `file header: ${hc.reason}`);
    return out;
  }
  if (hc.hourStartMicros !== hourStartMicros) corrupt(path, 0, 'file header names another hour');
  let pos = FILE_HEADER_BYTES;
  for (;;) {
    const count = blockAt(views.u8, views.u32, pos, size);
    if (count === 0) break;
    out.blockOffsets.push(pos + BLOCK_HEADER_BYTES);
    out.blockCounts.push(count);
    out.records += count;
    pos += BLOCK_HEADER_BYTES + count * JOURNAL_RECORD_BYTES;
  }
  out.validBytes = pos;
  out.tailBytes = size - pos;
  if (pos < size) {
    for (let p = pos + 16; p < size; p += 16) {
      if (blockAt(views.u8, views.u32, p, size) > 0) corrupt(path, pos, `bad block followed by a valid block at byte ${p}`);
    }
  }
  return out;
}

/** Largest tail examined for a valid block after a bad one (a torn commit is smaller than one block). */
const MAX_TAIL_SCAN_BYTES = MAX_BLOCK_RECORDS * JOURNAL_RECORD_BYTES + 2 * BLOCK_HEADER_BYTES;

/**
 * Async, chunked variant of {@link readJournalHour} for the main thread (spot checks): never a sync read,
 * never the whole file in memory. `visit` gets every whole CRC-checked block (records at `byteOffset + k·64`
 * of `views`, valid during the call). Same tail and corruption rules. Returns the records visited.
 */
export async function forEachJournalBlock(
  path: string, hourStartMicros: number, visit: (views: SlotViews, byteOffset: number, count: number) => void, chunkBytes = 8 << 20,
): Promise<{ records: number; tailBytes: number }> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    throw engineError('ENGINE_ERR_FILE_IO', `cannot open journal ${path}: ${(err as Error).message}`, { file: path, errno: (err as NodeJS.ErrnoException).code ?? null }, err);
  }
  try {
    const size = (await fh.stat()).size;
    let buf = new ArrayBuffer(Math.max(4096, chunkBytes));
    let views = slotViewsOf(buf);
    let bufStart = 0; // file offset of buf[0] (always a block start, so payloads stay 8-aligned)
    let bufLen = 0;
    const fill = async (from: number, need: number): Promise<boolean> => {
      // make [from, from + need) of the file available in buf
      if (from + need > size) return false;
      if (from < bufStart || from + need > bufStart + bufLen) {
        if (need > buf.byteLength) {
          buf = new ArrayBuffer(need + (need >> 1));
          views = slotViewsOf(buf);
        }
        const want = Math.min(buf.byteLength, size - from);
        let got = 0;
        while (got < want) {
          const { bytesRead } = await fh.read(views.u8, got, want - got, from + got);
          if (bytesRead === 0) break;
          got += bytesRead;
        }
        bufStart = from;
        bufLen = got;
        if (got < need) return false;
      }
      return true;
    };
    if (!(await fill(0, FILE_HEADER_BYTES))) return { records: 0, tailBytes: size };
    const hc = checkFileHeader(views.u8, 0);
    if (!hc.ok) {
      if (size - FILE_HEADER_BYTES <= MAX_TAIL_SCAN_BYTES && (await fill(0, size))) {
        for (let p = FILE_HEADER_BYTES; p < size; p += 16) if (blockAt(views.u8, views.u32, p, size) > 0) corrupt(path, 0, `file header: ${hc.reason}`);
      }
      return { records: 0, tailBytes: size };
    }
    if (hc.hourStartMicros !== hourStartMicros) corrupt(path, 0, 'file header names another hour');
    let pos = FILE_HEADER_BYTES;
    let records = 0;
    for (;;) {
      if (!(await fill(pos, BLOCK_HEADER_BYTES + JOURNAL_RECORD_BYTES))) break;
      const h = (pos - bufStart) >> 2;
      const count = views.u32[h + (BH_COUNT_BYTE >> 2)] ?? 0;
      if (views.u32[h] !== BLOCK_MAGIC || count === 0 || count > MAX_BLOCK_RECORDS) break;
      const need = BLOCK_HEADER_BYTES + count * JOURNAL_RECORD_BYTES;
      if (!(await fill(pos, need))) break;
      const at = pos - bufStart;
      if (crc32Of(views.u8, at + BLOCK_HEADER_BYTES, need - BLOCK_HEADER_BYTES) !== (views.u32[(at >> 2) + (BH_CRC_BYTE >> 2)] ?? 0)) break;
      visit(views, at + BLOCK_HEADER_BYTES, count);
      records += count;
      pos += need;
    }
    if (pos < size) {
      if (size - pos > MAX_TAIL_SCAN_BYTES) corrupt(path, pos, `bad block with ${size - pos} bytes after it (more than any torn commit)`);
      await fill(pos, size - pos);
      const base = pos - bufStart;
      for (let p = 16; p < size - pos; p += 16) {
        if (blockAt(views.u8.subarray(base), new Uint32Array(buf, base, (buf.byteLength - base) >> 2), p, size - pos) > 0) corrupt(path, pos, `bad block followed by a valid block at byte ${pos + p}`);
      }
    }
    return { records, tailBytes: size - pos };
  } finally {
    await fh.close();
  }
}

/**
 * Synchronous, chunked block walk of one journal hour for pool threads (bounded memory: one chunk buffer,
 * grown only for a block larger than it). Same tail and corruption rules as {@link readJournalHour};
 * `limitBytes` stops at a length already validated (a second pass need not re-check CRCs: the bytes
 * before it never change in an append-only file). Returns records visited and where the whole blocks end.
 */
export function walkJournalBlocksSync(
  path: string, hourStartMicros: number, visit: (views: SlotViews, byteOffset: number, count: number) => void,
  opts: { chunkBytes?: number; limitBytes?: number } = {},
): { records: number; validBytes: number; tailBytes: number; fileBytes: number } {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw engineError('ENGINE_ERR_FILE_IO', `compactor: cannot open journal ${path}: ${(err as Error).message}`, { file: path, errno: (err as NodeJS.ErrnoException).code ?? null }, err);
  }
  try {
    const fileBytes = fstatSync(fd).size;
    const size = opts.limitBytes === undefined ? fileBytes : Math.min(fileBytes, opts.limitBytes);
    const trusted = opts.limitBytes !== undefined;
    let buf = new ArrayBuffer(Math.max(4096, opts.chunkBytes ?? 16 << 20));
    let views = slotViewsOf(buf);
    let bufStart = 0;
    let bufLen = 0;
    const fill = (from: number, need: number): boolean => {
      if (from + need > size) return false;
      if (from < bufStart || from + need > bufStart + bufLen) {
        if (need > buf.byteLength) {
          buf = new ArrayBuffer(need + (need >> 1));
          views = slotViewsOf(buf);
        }
        const want = Math.min(buf.byteLength, size - from);
        let got: number;
        try {
          got = preadFully(fd, views.u8, 0, want, from);
        } catch (err) {
          throw engineError('ENGINE_ERR_FILE_IO', `compactor: cannot read journal ${path}: ${(err as Error).message}`, { file: path, errno: (err as NodeJS.ErrnoException).code ?? null }, err);
        }
        bufStart = from;
        bufLen = got;
        if (got < need) return false;
      }
      return true;
    };
    const none = { records: 0, validBytes: 0, tailBytes: fileBytes, fileBytes };
    if (!fill(0, FILE_HEADER_BYTES)) return none;
    const hc = checkFileHeader(views.u8, 0);
    if (!hc.ok) {
      if (size - FILE_HEADER_BYTES <= MAX_TAIL_SCAN_BYTES && fill(0, size)) {
        for (let p = FILE_HEADER_BYTES; p < size; p += 16) if (blockAt(views.u8, views.u32, p, size) > 0) corrupt(path, 0, `file header: ${hc.reason}`);
      }
      return none;
    }
    if (hc.hourStartMicros !== hourStartMicros) corrupt(path, 0, 'file header names another hour');
    let pos = FILE_HEADER_BYTES;
    let records = 0;
    for (;;) {
      if (!fill(pos, BLOCK_HEADER_BYTES + JOURNAL_RECORD_BYTES)) break;
      const h = (pos - bufStart) >> 2;
      const count = views.u32[h + (BH_COUNT_BYTE >> 2)] ?? 0;
      if (views.u32[h] !== BLOCK_MAGIC || count === 0 || count > MAX_BLOCK_RECORDS) break;
      const need = BLOCK_HEADER_BYTES + count * JOURNAL_RECORD_BYTES;
      if (!fill(pos, need)) break;
      const at = pos - bufStart;
      if (!trusted && crc32Of(views.u8, at + BLOCK_HEADER_BYTES, need - BLOCK_HEADER_BYTES) !== (views.u32[(at >> 2) + (BH_CRC_BYTE >> 2)] ?? 0)) break;
      visit(views, at + BLOCK_HEADER_BYTES, count);
      records += count;
      pos += need;
    }
    if (pos < size && !trusted) {
      if (size - pos > MAX_TAIL_SCAN_BYTES) corrupt(path, pos, `bad block with ${size - pos} bytes after it (more than any torn commit)`);
      fill(pos, size - pos);
      const base = pos - bufStart;
      for (let p = 16; p < size - pos; p += 16) {
        if (blockAt(views.u8.subarray(base), new Uint32Array(buf, base, (buf.byteLength - base) >> 2), p, size - pos) > 0) corrupt(path, pos, `bad block followed by a valid block at byte ${pos + p}`);
      }
    }
    return { records, validBytes: pos, tailBytes: fileBytes - pos, fileBytes };
  } finally {
    closeSync(fd);
  }
}

/**
 * {@link splitTicksBySymbol} of a journal hour file read in two chunked passes (count, then fill) instead
 * of whole: memory is the columns plus one chunk, not the file (2.3 GB for a 36M-tick hour).
 */
export function splitJournalHourFile(path: string, hourStartMicros: number, chunkBytes?: number): SplitResult & { records: number; tailBytes: number } {
  const counts = new Uint32Array(65_536);
  let other = 0;
  const pass1 = walkJournalBlocksSync(path, hourStartMicros, (v, off, count) => {
    const u8 = v.u8;
    const u16 = v.u16;
    const end = off + count * JOURNAL_RECORD_BYTES;
    for (let b = off; b < end; b += JOURNAL_RECORD_BYTES) {
      const kind = u8[b];
      if (kind !== RecordKind.TRADE && kind !== RecordKind.QUOTE) { other++; continue; }
      const sym = u16[(b + SYMBOL_ID_BYTE) >> 1] as number;
      counts[sym] = (counts[sym] as number) + 1;
    }
  }, { chunkBytes });
  const f = new SplitFiller(counts);
  walkJournalBlocksSync(path, hourStartMicros, (v, off, count) => f.fill(v, off, count), { chunkBytes, limitBytes: pass1.validBytes });
  const out = f.result(other);
  return { ...out, records: pass1.records, tailBytes: pass1.tailBytes };
}

/** Columns per symbol, filled block by block (shared by both split paths). */
class SplitFiller {
  readonly #counts: Uint32Array;
  readonly #dense = new Int32Array(65_536).fill(-1);
  readonly #ids: number[] = [];
  readonly #ts: Float64Array[] = [];
  readonly #price: Float64Array[] = [];
  readonly #bid: Float64Array[] = [];
  readonly #ask: Float64Array[] = [];
  readonly #size: Uint32Array[] = [];
  readonly #flags: Uint32Array[] = [];
  readonly #seq: Uint32Array[] = [];
  readonly #srcIdx: Uint32Array[] = [];
  readonly #srcId: Uint8Array[] = [];
  readonly #fill: Uint32Array;
  readonly #srcLocal: Uint16Array;
  readonly #sourceIds: number[][];
  ticks = 0;

  constructor(counts: Uint32Array) {
    this.#counts = counts;
    for (let id = 0; id < 65_536; id++) {
      if (counts[id] !== 0) {
        this.#dense[id] = this.#ids.length;
        this.#ids.push(id);
      }
    }
    const m = this.#ids.length;
    for (let d = 0; d < m; d++) {
      const n = counts[this.#ids[d] as number] as number;
      this.#ts.push(new Float64Array(n)); this.#price.push(new Float64Array(n)); this.#bid.push(new Float64Array(n)); this.#ask.push(new Float64Array(n));
      this.#size.push(new Uint32Array(n)); this.#flags.push(new Uint32Array(n)); this.#seq.push(new Uint32Array(n)); this.#srcIdx.push(new Uint32Array(n));
      this.#srcId.push(new Uint8Array(n));
    }
    this.#fill = new Uint32Array(m);
    this.#srcLocal = new Uint16Array(m * 256);
    this.#sourceIds = Array.from({ length: m }, () => []);
  }

  fill(v: SlotViews, off: number, count: number): void {
    const u8 = v.u8;
    const u16 = v.u16;
    const u32 = v.u32;
    const f64 = v.f64;
    const dense = this.#dense;
    const fillAt = this.#fill;
    const end = off + count * JOURNAL_RECORD_BYTES;
    for (let b = off; b < end; b += JOURNAL_RECORD_BYTES) {
      const kind = u8[b];
      if (kind !== RecordKind.TRADE && kind !== RecordKind.QUOTE) continue;
      const d = dense[u16[(b + SYMBOL_ID_BYTE) >> 1] as number] as number;
      if (d < 0) continue; // not counted (cannot happen in an append-only file below the validated length)
      const j = fillAt[d] as number;
      if (j >= (this.#counts[this.#ids[d] as number] as number)) continue;
      fillAt[d] = j + 1;
      const src = u8[b + SOURCE_ID_BYTE] as number;
      let local = this.#srcLocal[d * 256 + src] as number;
      if (local === 0) {
        const list = this.#sourceIds[d] as number[];
        list.push(src);
        local = list.length;
        this.#srcLocal[d * 256 + src] = local;
      }
      const q = b >> 3;
      const w = b >> 2;
      (this.#ts[d] as Float64Array)[j] = f64[q + (TS_MICROS_BYTE >> 3)] as number;
      (this.#price[d] as Float64Array)[j] = f64[q + (TRADE_PRICE_BYTE >> 3)] as number;
      (this.#bid[d] as Float64Array)[j] = f64[q + (TRADE_BID_BYTE >> 3)] as number;
      (this.#ask[d] as Float64Array)[j] = f64[q + (TRADE_ASK_BYTE >> 3)] as number;
      (this.#size[d] as Uint32Array)[j] = u32[w + (TRADE_SIZE_BYTE >> 2)] as number;
      (this.#flags[d] as Uint32Array)[j] = u32[w + (TRADE_FLAGS_BYTE >> 2)] as number;
      (this.#seq[d] as Uint32Array)[j] = u32[w + (SEQ_BYTE >> 2)] as number;
      (this.#srcIdx[d] as Uint32Array)[j] = u32[w + (TRADE_SRC_INDEX_BYTE >> 2)] as number;
      (this.#srcId[d] as Uint8Array)[j] = local - 1;
      this.ticks++;
    }
  }

  result(otherRecords: number): SplitResult {
    const bySymbol: SymbolTicks[] = [];
    for (let d = 0; d < this.#ids.length; d++) {
      const id = this.#ids[d] as number;
      bySymbol.push({
        symbolId: id, count: this.#counts[id] as number, sourceIds: this.#sourceIds[d] as number[],
        columns: {
          tsMicros: this.#ts[d] as Float64Array, price: this.#price[d] as Float64Array, bid: this.#bid[d] as Float64Array, ask: this.#ask[d] as Float64Array,
          size: this.#size[d] as Uint32Array, flags: this.#flags[d] as Uint32Array, seq: this.#seq[d] as Uint32Array, sourceId: this.#srcId[d] as Uint8Array,
          srcIndex: this.#srcIdx[d] as Uint32Array,
        },
      });
    }
    return { bySymbol, tickRecords: this.ticks, otherRecords };
  }
}

/** Tick rows of one symbol in one journal hour. */
export interface SymbolTicks {
  symbolId: number;
  count: number;
  columns: TickColumns;
  /** Distinct source ids, in `columns.sourceId` order (row value k means sourceIds[k]). */
  sourceIds: number[];
}

export interface SplitResult {
  bySymbol: SymbolTicks[];
  /** TRADE/QUOTE records. */
  tickRecords: number;
  /** Records of other kinds (not stored in tick files). */
  otherRecords: number;
}

/** Split the TRADE/QUOTE records of a journal hour read whole ({@link readJournalHour}) by symbol into columns. */
export function splitTicksBySymbol(r: JournalHourRead): SplitResult {
  const v = r.views;
  const counts = new Uint32Array(65_536);
  let other = 0;
  for (let k = 0; k < r.blockOffsets.length; k++) {
    const off = r.blockOffsets[k] as number;
    const end = off + (r.blockCounts[k] as number) * JOURNAL_RECORD_BYTES;
    for (let b = off; b < end; b += JOURNAL_RECORD_BYTES) {
      const kind = v.u8[b];
      if (kind !== RecordKind.TRADE && kind !== RecordKind.QUOTE) { other++; continue; }
      const sym = v.u16[(b + SYMBOL_ID_BYTE) >> 1] as number;
      counts[sym] = (counts[sym] as number) + 1;
    }
  }
  const f = new SplitFiller(counts);
  for (let k = 0; k < r.blockOffsets.length; k++) f.fill(v, r.blockOffsets[k] as number, r.blockCounts[k] as number);
  return f.result(other);
}
