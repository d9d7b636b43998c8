/**
 * Latest table layout: constants and size math only (one offsets table, dbn style).
 *
 * One SharedArrayBuffer: a 128-byte header, then one 128-byte slot per symbol id. The slot of id k
 * starts at `HEADER_BYTES + k * SLOT_BYTES`; slot 0 is never written (id 0 means "none"), which keeps
 * the index math a single multiply-add. Slots are 128 bytes (two 64-byte cache lines) and 128-aligned,
 * so two symbols written by different threads never share a line.
 *
 * Inside a slot: one i32 seqlock VERSION word, then 14 f64 data fields, contiguous from byte 8, so a
 * reader copies `f64[base + i]` for i in 0..FIELD_COUNT. Byte offsets below are slot-relative; the
 * `F_*` constants are the same fields as Float64Array indices from the first field (what `readRaw`
 * copies into a caller's Float64Array).
 *
 * Writers: exactly ONE thread writes a given slot (the validator for its symbols); it is the only one
 * that touches VERSION and every data field of that slot. Readers (any thread) never write.
 */
export const LINE_BYTES = 128;

/** 'TPLT' little-endian. */
export const LATEST_MAGIC = 0x544c5054;
export const LATEST_LAYOUT_VERSION = 1;

// ---- header (written once by LatestTable.create(), magic last; immutable after) ------------------------
export const MAGIC_I32 = 0;
export const LAYOUT_VERSION_I32 = 1;
export const CAPACITY_I32 = 2; // largest id
export const SLOT_BYTES_I32 = 3;
export const FIELD_COUNT_I32 = 4;
export const HEADER_BYTES = LINE_BYTES;

// ---- slot ----------------------------------------------------------------------------------------------
export const SLOT_BYTES = 128;
/** i32 seqlock version: even = stable, odd = a write is in progress. Slot writer, Atomics.store only. */
export const VERSION_BYTE = 0;
// 4..8: padding (zero), keeps the f64 fields 8-aligned
export const FIELDS_BYTE = 8;
// trade fields — writer: writeTrade / writeTick
export const TRADE_TS_MICROS_BYTE = 8; // f64 event time of the last trade, Unix µs (NaN: no trade yet)
export const TRADE_PRICE_BYTE = 16; // f64 last trade price (NaN: no trade yet)
export const TRADE_SIZE_BYTE = 24; // f64 last trade size
export const TRADE_SIDE_BYTE = 32; // f64 aggressor side of the last trade: Side (0 unknown, 1 buy, 2 sell)
export const TRADE_SEQ_BYTE = 40; // f64 per-symbol sequence of the last trade (u32 from the record header)
// quote fields — writer: writeQuote / writeTick
export const QUOTE_TS_MICROS_BYTE = 48; // f64 event time of the quote in force (NaN: no quote yet)
export const BID_BYTE = 56; // f64 best bid (NaN: unknown)
export const BID_SIZE_BYTE = 64; // f64
export const ASK_BYTE = 72; // f64 best ask (NaN: unknown)
export const ASK_SIZE_BYTE = 80; // f64
// counters — writer: every write* of the slot
export const TRADE_COUNT_BYTE = 88; // f64 trades written
export const QUOTE_COUNT_BYTE = 96; // f64 quote changes written (writeQuote always; writeTick when bid/ask/sizes changed)
export const UPDATE_COUNT_BYTE = 104; // f64 write* calls (0: the slot was never written)
export const LAST_TS_MICROS_BYTE = 112; // f64 event time of the most recent write* (Unix µs)
// 120..128: spare (zero)

export const FIELD_COUNT = (LAST_TS_MICROS_BYTE - FIELDS_BYTE) / 8 + 1; // 14

// Float64Array indices of the fields, relative to the first field (readRaw's output layout).
export const F_TRADE_TS_MICROS = (TRADE_TS_MICROS_BYTE - FIELDS_BYTE) >> 3;
export const F_TRADE_PRICE = (TRADE_PRICE_BYTE - FIELDS_BYTE) >> 3;
export const F_TRADE_SIZE = (TRADE_SIZE_BYTE - FIELDS_BYTE) >> 3;
export const F_TRADE_SIDE = (TRADE_SIDE_BYTE - FIELDS_BYTE) >> 3;
export const F_TRADE_SEQ = (TRADE_SEQ_BYTE - FIELDS_BYTE) >> 3;
export const F_QUOTE_TS_MICROS = (QUOTE_TS_MICROS_BYTE - FIELDS_BYTE) >> 3;
export const F_BID = (BID_BYTE - FIELDS_BYTE) >> 3;
export const F_BID_SIZE = (BID_SIZE_BYTE - FIELDS_BYTE) >> 3;
export const F_ASK = (ASK_BYTE - FIELDS_BYTE) >> 3;
export const F_ASK_SIZE = (ASK_SIZE_BYTE - FIELDS_BYTE) >> 3;
export const F_TRADE_COUNT = (TRADE_COUNT_BYTE - FIELDS_BYTE) >> 3;
export const F_QUOTE_COUNT = (QUOTE_COUNT_BYTE - FIELDS_BYTE) >> 3;
export const F_UPDATE_COUNT = (UPDATE_COUNT_BYTE - FIELDS_BYTE) >> 3;
export const F_LAST_TS_MICROS = (LAST_TS_MICROS_BYTE - FIELDS_BYTE) >> 3;

/** Fields that hold NaN ("none yet") in a fresh slot; the rest start at 0. */
export const NAN_INIT_FIELDS: readonly number[] = [F_TRADE_TS_MICROS, F_TRADE_PRICE, F_QUOTE_TS_MICROS, F_BID, F_ASK, F_LAST_TS_MICROS];

/** Aggressor side codes (same meaning as the ring's TradeFlag.SIDE_BUY / SIDE_SELL bits). */
export const Side = { UNKNOWN: 0, BUY: 1, SELL: 2 } as const;
export type Side = (typeof Side)[keyof typeof Side];

export const MAX_CAPACITY = 65535; // ids are u16
export const HEADER_I32 = HEADER_BYTES / 4;
export const HEADER_F64 = HEADER_BYTES / 8;
export const SLOT_I32 = SLOT_BYTES / 4;
export const SLOT_F64 = SLOT_BYTES / 8;
export const FIELDS_F64 = FIELDS_BYTE / 8;

/** Byte length of a latest table for ids 1..capacity (slot 0 included, unused). */
export const latestBytes = (capacity: number): number => HEADER_BYTES + (capacity + 1) * SLOT_BYTES;
/** Absolute byte offset of the slot of `id`. */
export const latestSlotByte = (id: number): number => HEADER_BYTES + id * SLOT_BYTES;
