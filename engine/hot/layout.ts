/**
 * Hot window layout: constants and size math only (one offsets table, dbn style).
 *
 * One SharedArrayBuffer:
 *
 *   header line (128 B)                        immutable after HotWindow.create()
 *   one control line (128 B) per symbol id     written by the window's single writer only
 *   ts column      f64 × symbols × capacity    ┐
 *   price column   f64 × symbols × capacity    │
 *   bid column     f64 × symbols × capacity    │ written by the single writer only, plain stores,
 *   ask column     f64 × symbols × capacity    │ published by the symbol's HEAD (Atomics.store)
 *   size column    u32 × symbols × capacity    │
 *   flags column   u32 × symbols × capacity    │
 *   seq column     u32 × symbols × capacity    │
 *   source column  u8  × symbols × capacity    ┘
 *
 * Symbol id k (1..symbols; 0 means "none" in the registry) uses control line k − 1 and the column
 * elements `(k − 1) × capacity + (index & (capacity − 1))`, where `index` counts the symbol's appends
 * from 0 (entry n of a symbol lives in element n mod capacity of its stretch of every column). Every
 * region starts 128-aligned. Columns (rather than one record per entry) keep a query's copy a handful of
 * tight typed-array loops and the binary search on ts inside one dense Float64Array.
 *
 * Readers (any thread) never write anything in the buffer.
 */
export const LINE_BYTES = 128;
export const I32_PER_LINE = LINE_BYTES / 4; // 32
export const F64_PER_LINE = LINE_BYTES / 8; // 16

/** 'TPHW' little-endian. */
export const HOT_MAGIC = 0x57485054;
export const HOT_LAYOUT_VERSION = 1;

// ---- header line (written once by HotWindow.create(), magic last; immutable after) -----------------------
export const MAGIC_I32 = 0;
export const LAYOUT_VERSION_I32 = 1;
export const SYMBOLS_I32 = 2; // largest symbol id (ids 1..symbols)
export const CAPACITY_I32 = 3; // entries per symbol, a power of two
export const ENTRY_BYTES_I32 = 4; // ENTRY_BYTES: a format check on attach
export const RETAIN_MICROS_F64 = 3; // f64 at byte 24: logical window length in µs
export const HEADER_BYTES = LINE_BYTES;

// ---- per-symbol control line: written only by the writer (append*) ---------------------------------------
// Indices are relative to the line's first Int32 (i32) / Float64 (f64) element.
/** Wrapping int32 count of entries appended (low 32 bits). THE publish word: Atomics.store after the columns. */
export const HEAD_I32 = 0;
/** 2 × the high 32 bits of the appended count; odd while a carry is being written (see `readAppended`). */
export const HEAD_HI_I32 = 1;
/** Appends rejected because their ts was older than the symbol's newest (wrapping u32). */
export const REJECTED_OLDER_I32 = 2;
/** Appends rejected because their ts was NaN or infinite (wrapping u32). */
export const REJECTED_BAD_TS_I32 = 3;
/** Seqlock version of REJECT_TS (even = stable, odd = being written). */
export const REJECT_VERSION_I32 = 4;
// i32 5: padding (keeps REJECT_TS 8-aligned at byte 24 — f64 index 3)
/** f64 (at byte 24): largest ts ever rejected as out of order (−Infinity when none). Guarded by REJECT_VERSION. */
export const REJECT_TS_F64 = 3;

// ---- one entry across the columns ---------------------------------------------------------------------------
export const TS_BYTES = 8;
export const PRICE_BYTES = 8;
export const BID_BYTES = 8;
export const ASK_BYTES = 8;
export const SIZE_BYTES = 4;
export const FLAGS_BYTES = 4;
export const SEQ_BYTES = 4;
export const SOURCE_BYTES = 1;
export const ENTRY_BYTES = TS_BYTES + PRICE_BYTES + BID_BYTES + ASK_BYTES + SIZE_BYTES + FLAGS_BYTES + SEQ_BYTES + SOURCE_BYTES; // 45

// ---- limits and defaults ------------------------------------------------------------------------------------
export const MAX_SYMBOLS = 65535; // registry ids are u16
export const MIN_CAPACITY = 2;
/** Entry indices are compared as exact numbers, slots as `index & mask`: capacity must stay below 2^31. */
export const MAX_CAPACITY = 1 << 30;
/** ~1 M trades per hour per symbol (45 MiB of columns per symbol). */
export const DEFAULT_CAPACITY = 1 << 20;
/** One hour. */
export const DEFAULT_RETAIN_MICROS = 3_600_000_000;
/** Default bound on the whole buffer (virtual size; Linux commits pages only as symbols fill them). */
export const DEFAULT_MAX_BYTES = 1024 * 1024 * 1024;

/**
 * Entries at the old end of a full ring that readers do not use: the writer may be overwriting the oldest
 * slot while a reader copies, so at least one entry is never answered from; a wider guard lets a reader
 * finish a query near the old end before a fast writer laps it (fewer retries). 1 for tiny rings,
 * capacity/16 up to 4096 entries (0.4 % of the default capacity).
 */
export const guardEntries = (capacity: number): number => Math.max(1, Math.min(capacity >>> 4, 4096));

const align = (n: number): number => Math.ceil(n / LINE_BYTES) * LINE_BYTES;

/** Byte offsets of every region of a hot window buffer, and its total length. */
export interface HotRegions {
  readonly controlByte: number;
  readonly tsByte: number;
  readonly priceByte: number;
  readonly bidByte: number;
  readonly askByte: number;
  readonly sizeByte: number;
  readonly flagsByte: number;
  readonly seqByte: number;
  readonly sourceByte: number;
  readonly byteLength: number;
}

/** Region offsets for `symbols` ids of `capacity` entries each (plain arithmetic: exact below 2^53). */
export function hotRegions(symbols: number, capacity: number): HotRegions {
  const n = symbols * capacity;
  const controlByte = HEADER_BYTES;
  const tsByte = align(controlByte + symbols * LINE_BYTES);
  const priceByte = align(tsByte + n * TS_BYTES);
  const bidByte = align(priceByte + n * PRICE_BYTES);
  const askByte = align(bidByte + n * BID_BYTES);
  const sizeByte = align(askByte + n * ASK_BYTES);
  const flagsByte = align(sizeByte + n * SIZE_BYTES);
  const seqByte = align(flagsByte + n * FLAGS_BYTES);
  const sourceByte = align(seqByte + n * SEQ_BYTES);
  const byteLength = align(sourceByte + n * SOURCE_BYTES);
  return { controlByte, tsByte, priceByte, bidByte, askByte, sizeByte, flagsByte, seqByte, sourceByte, byteLength };
}

/** Total bytes of a hot window for `symbols` ids × `capacity` entries (what `maxBytes` is checked against). */
export const hotBytes = (symbols: number, capacity: number): number => hotRegions(symbols, capacity).byteLength;

/** First Int32 element of the control line of symbol `id` (1-based). */
export const controlI32 = (id: number): number => (HEADER_BYTES + (id - 1) * LINE_BYTES) >> 2;
/** First Float64 element of the control line of symbol `id` (1-based). */
export const controlF64 = (id: number): number => (HEADER_BYTES + (id - 1) * LINE_BYTES) >> 3;
