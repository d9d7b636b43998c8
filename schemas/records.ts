/**
 * Ring slot layouts: declared once, used by every reader and writer (dbn style).
 *
 * Every record is one fixed 64-byte slot (`RECORD_SLOT_BYTES`). All kinds share a 16-byte header;
 * the body layout depends on `kind`. Offsets are BYTE offsets inside the slot; read and write through
 * the typed-array aliases of the ring (`SlotViews`): `f64[(b + OFF) >> 3]`, `u32[(b + OFF) >> 2]`,
 * `u16[(b + OFF) >> 1]`, `u8[b + OFF]`, where `b` is the slot's absolute byte offset (always 8-aligned
 * because the ring's data region starts 128-aligned and slots are multiples of 8).
 *
 * Price representation (decided here and in the Parquet schema together): **f64 in real price units**
 * after the per-symbol multiplier is applied. Every CME/equity tick size we carry (0.25, 0.01, 0.05)
 * times a realistic price is exactly representable or round-trips exactly through decimal text, and f64
 * avoids a per-symbol scale lookup on every read. Sierra stores f32; widening f32 -> f64 is exact.
 * Timestamps are f64 Unix microseconds (exact below 2^53, i.e. until year 2255); no BigInt anywhere.
 *
 * Header (all kinds):
 *   0  u8   KIND        RecordKind
 *   1  u8   SOURCE_ID   index into the source table (0 = unknown)
 *   2  u16  SYMBOL_ID   engine/symbols id (0 = none)
 *   4  u32  SEQ         per-source, per-symbol sequence assigned at ingest (gap checks, WS replay)
 *   8  f64  TS_MICROS   event time, Unix µs (Sierra's same-millisecond counter kept in the µs digits)
 */
import type { SlotViews } from '../engine/ring/ring.ts';

export const RECORD_SLOT_BYTES = 64;
/** Ring tag for rings that carry these records (ring layout line 0, RECORD_KIND). */
export const RECORD_RING_KIND = 0x52454331; // 'REC1'

export const RecordKind = {
  TRADE: 1, // a trade, with the quote in force (bid/ask) and the aggressor side
  QUOTE: 2, // a top-of-book change without a trade
  DEPTH: 3, // one market-depth command (level add/modify/delete, clear book)
  BOOK_END: 4, // end of a depth batch: apply everything since the previous BOOK_END atomically
  GAP: 5, // a detected gap or a source status change
  PAYLOAD_REF: 6, // a reference to a larger payload stored elsewhere (GEX snapshot, webhook body)
  BAR: 7, // an OHLCV bar (Sierra bar files, not tick files)
} as const;
export type RecordKind = (typeof RecordKind)[keyof typeof RecordKind];

// ---- header --------------------------------------------------------------------------------------
export const KIND_BYTE = 0;
export const SOURCE_ID_BYTE = 1;
export const SYMBOL_ID_BYTE = 2;
export const SEQ_BYTE = 4;
export const TS_MICROS_BYTE = 8;
export const HEADER_BYTES = 16;

// ---- TRADE and QUOTE body ------------------------------------------------------------------------
export const TRADE_PRICE_BYTE = 16; // f64 trade price (NaN in a QUOTE)
export const TRADE_BID_BYTE = 24; // f64 bid in force (NaN when unknown)
export const TRADE_ASK_BYTE = 32; // f64 ask in force (NaN when unknown)
export const TRADE_SIZE_BYTE = 40; // u32 trade size (contracts/shares); 0 in a QUOTE
export const TRADE_FLAGS_BYTE = 44; // u32 TradeFlag bits
export const TRADE_BID_SIZE_BYTE = 48; // u32 (0 when unknown; Sierra tick files carry none)
export const TRADE_ASK_SIZE_BYTE = 52; // u32
export const TRADE_SRC_INDEX_BYTE = 56; // u32 record index in the source file (spot checks), or journal index
export const TRADE_NUM_TRADES_BYTE = 60; // u32 trades represented (1, or more when a bundle is merged)

/** Flag bits of TRADE/QUOTE records. Low 16 bits: source facts; high 16 bits: validator verdicts. */
export const TradeFlag = {
  SIDE_BUY: 1 << 0, // aggressor bought at the ask (Sierra AskVolume > 0)
  SIDE_SELL: 1 << 1, // aggressor sold at the bid (Sierra BidVolume > 0)
  SUB_FIRST: 1 << 2, // first sub-trade of an unbundled trade (Sierra Open bits 0xFD709EF9)
  SUB_LAST: 1 << 3, // last sub-trade (Sierra Open bits 0xFD709F01)
  SUB_MIDDLE: 1 << 4, // a sub-trade between first and last
  MERGED_BUNDLE: 1 << 5, // several sub-trades merged into this one record
  LEGACY_TIME: 1 << 6, // timestamp decoded from a legacy float64 day count
  // validator verdicts (flagged, never dropped)
  V_OUTSIDE_QUOTE: 1 << 16, // trade price outside [bid, ask]
  V_CROSSED: 1 << 17, // bid > ask
  V_SPIKE: 1 << 18, // beyond the configured band
  V_OUT_OF_ORDER: 1 << 19, // timestamp older than the reorder window allows
  V_OFF_TICK: 1 << 20, // price not aligned to the tick size
  V_STALE: 1 << 21,
} as const;
export const SIDE_MASK = TradeFlag.SIDE_BUY | TradeFlag.SIDE_SELL;

// ---- DEPTH body ----------------------------------------------------------------------------------
export const DEPTH_PRICE_BYTE = 16; // f64
export const DEPTH_QUANTITY_BYTE = 24; // u32
export const DEPTH_COMMAND_BYTE = 28; // u8 DepthCommand (Sierra numbering)
export const DEPTH_FLAGS_BYTE = 29; // u8 Sierra flags (0x01 end of batch)
export const DEPTH_NUM_ORDERS_BYTE = 30; // u16
export const DEPTH_SRC_INDEX_BYTE = 32; // u32 record index in the source file

export const DepthCommand = {
  NONE: 0, CLEAR_BOOK: 1, ADD_BID_LEVEL: 2, ADD_ASK_LEVEL: 3, MODIFY_BID_LEVEL: 4, MODIFY_ASK_LEVEL: 5,
  DELETE_BID_LEVEL: 6, DELETE_ASK_LEVEL: 7,
} as const;
export type DepthCommand = (typeof DepthCommand)[keyof typeof DepthCommand];
export const DEPTH_FLAG_END_OF_BATCH = 0x01;

// ---- BOOK_END body -------------------------------------------------------------------------------
export const BOOK_END_RECORDS_BYTE = 16; // u32 depth records in the batch just ended
export const BOOK_END_SNAPSHOT_BYTE = 20; // u32 1 when the batch started with CLEAR_BOOK
export const BOOK_END_SRC_INDEX_BYTE = 24; // u32 index of the end-of-batch record in the source

// ---- GAP body ------------------------------------------------------------------------------------
export const GAP_END_TS_MICROS_BYTE = 16; // f64 end of the gap (TS_MICROS is its start)
export const GAP_EXPECTED_SEQ_BYTE = 24; // u32
export const GAP_GOT_SEQ_BYTE = 28; // u32
export const GAP_KIND_BYTE = 32; // u32 GapKind
export const GAP_STATUS_BYTE = 36; // u32 source status code for STATUS markers

export const GapKind = { SEQUENCE: 1, TIME: 2, SOURCE_STATUS: 3, FILE_RESET: 4 } as const;

// ---- PAYLOAD_REF body ----------------------------------------------------------------------------
export const PAYLOAD_OFFSET_BYTE = 16; // f64 byte offset in the payload store
export const PAYLOAD_BYTES_BYTE = 24; // u32 length
export const PAYLOAD_ID_BYTE = 28; // u32 id in the payload store
export const PAYLOAD_TYPE_BYTE = 32; // u32 PayloadType
export const PAYLOAD_CHECKSUM_BYTE = 36; // u32 CRC-32 of the payload bytes

export const PayloadType = { GEX_SNAPSHOT: 1, UW_WEBHOOK: 2, ML_TRADE: 3 } as const;

// ---- BAR body ------------------------------------------------------------------------------------
export const BAR_OPEN_BYTE = 16; // f64
export const BAR_HIGH_BYTE = 24; // f64
export const BAR_LOW_BYTE = 32; // f64
export const BAR_CLOSE_BYTE = 40; // f64
export const BAR_VOLUME_BYTE = 48; // u32
export const BAR_NUM_TRADES_BYTE = 52; // u32
export const BAR_BID_VOLUME_BYTE = 56; // u32
export const BAR_ASK_VOLUME_BYTE = 60; // u32

/**
 * The same offsets as a same-file `const enum`: esbuild (tsx) inlines its members as literals, so the
 * accessors below compile to `v.f64[(b + 16) >> 3]`. Reading the exported module constants instead costs
 * a module-variable load with a TDZ hole check per field (measured 2.5-6x slower for writeTrade). The
 * exported names are the public contract; `Off` must match them (records.layout test checks every field).
 */
/* eslint-disable @typescript-eslint/no-duplicate-enum-values -- byte offsets of different record kinds coincide */
const enum Off {
  KIND_BYTE = 0,
  SOURCE_ID_BYTE = 1,
  SYMBOL_ID_BYTE = 2,
  SEQ_BYTE = 4,
  TS_MICROS_BYTE = 8,
  HEADER_BYTES = 16,
  TRADE_PRICE_BYTE = 16,
  TRADE_BID_BYTE = 24,
  TRADE_ASK_BYTE = 32,
  TRADE_SIZE_BYTE = 40,
  TRADE_FLAGS_BYTE = 44,
  TRADE_BID_SIZE_BYTE = 48,
  TRADE_ASK_SIZE_BYTE = 52,
  TRADE_SRC_INDEX_BYTE = 56,
  TRADE_NUM_TRADES_BYTE = 60,
  DEPTH_PRICE_BYTE = 16,
  DEPTH_QUANTITY_BYTE = 24,
  DEPTH_COMMAND_BYTE = 28,
  DEPTH_FLAGS_BYTE = 29,
  DEPTH_NUM_ORDERS_BYTE = 30,
  DEPTH_SRC_INDEX_BYTE = 32,
  BOOK_END_RECORDS_BYTE = 16,
  BOOK_END_SNAPSHOT_BYTE = 20,
  BOOK_END_SRC_INDEX_BYTE = 24,
  GAP_END_TS_MICROS_BYTE = 16,
  GAP_EXPECTED_SEQ_BYTE = 24,
  GAP_GOT_SEQ_BYTE = 28,
  GAP_KIND_BYTE = 32,
  GAP_STATUS_BYTE = 36,
  PAYLOAD_OFFSET_BYTE = 16,
  PAYLOAD_BYTES_BYTE = 24,
  PAYLOAD_ID_BYTE = 28,
  PAYLOAD_TYPE_BYTE = 32,
  PAYLOAD_CHECKSUM_BYTE = 36,
  BAR_OPEN_BYTE = 16,
  BAR_HIGH_BYTE = 24,
  BAR_LOW_BYTE = 32,
  BAR_CLOSE_BYTE = 40,
  BAR_VOLUME_BYTE = 48,
  BAR_NUM_TRADES_BYTE = 52,
  BAR_BID_VOLUME_BYTE = 56,
  BAR_ASK_VOLUME_BYTE = 60,
}
/* eslint-enable @typescript-eslint/no-duplicate-enum-values */

// ---- accessors: module-level functions with fixed argument lists (no closures, no objects) -------

export function writeHeader(v: SlotViews, b: number, kind: number, sourceId: number, symbolId: number, seq: number, tsMicros: number): void {
  v.u8[b] = kind;
  v.u8[b + Off.SOURCE_ID_BYTE] = sourceId;
  v.u16[(b + Off.SYMBOL_ID_BYTE) >> 1] = symbolId;
  v.u32[(b + Off.SEQ_BYTE) >> 2] = seq;
  v.f64[(b + Off.TS_MICROS_BYTE) >> 3] = tsMicros;
}

/** Write a TRADE (or QUOTE, with kind = QUOTE, price NaN and size 0) into the slot at byte `b`. */
export function writeTrade(
  v: SlotViews, b: number, kind: number, sourceId: number, symbolId: number, seq: number, tsMicros: number,
  price: number, bid: number, ask: number, size: number, flags: number, bidSize: number, askSize: number,
  srcIndex: number, numTrades: number,
): void {
  v.u8[b] = kind;
  v.u8[b + Off.SOURCE_ID_BYTE] = sourceId;
  v.u16[(b + Off.SYMBOL_ID_BYTE) >> 1] = symbolId;
  v.u32[(b + Off.SEQ_BYTE) >> 2] = seq;
  v.f64[(b + Off.TS_MICROS_BYTE) >> 3] = tsMicros;
  v.f64[(b + Off.TRADE_PRICE_BYTE) >> 3] = price;
  v.f64[(b + Off.TRADE_BID_BYTE) >> 3] = bid;
  v.f64[(b + Off.TRADE_ASK_BYTE) >> 3] = ask;
  v.u32[(b + Off.TRADE_SIZE_BYTE) >> 2] = size;
  v.u32[(b + Off.TRADE_FLAGS_BYTE) >> 2] = flags;
  v.u32[(b + Off.TRADE_BID_SIZE_BYTE) >> 2] = bidSize;
  v.u32[(b + Off.TRADE_ASK_SIZE_BYTE) >> 2] = askSize;
  v.u32[(b + Off.TRADE_SRC_INDEX_BYTE) >> 2] = srcIndex;
  v.u32[(b + Off.TRADE_NUM_TRADES_BYTE) >> 2] = numTrades;
}

export function writeDepth(
  v: SlotViews, b: number, sourceId: number, symbolId: number, seq: number, tsMicros: number,
  command: number, flags: number, numOrders: number, price: number, quantity: number, srcIndex: number,
): void {
  writeHeader(v, b, RecordKind.DEPTH, sourceId, symbolId, seq, tsMicros);
  v.f64[(b + Off.DEPTH_PRICE_BYTE) >> 3] = price;
  v.u32[(b + Off.DEPTH_QUANTITY_BYTE) >> 2] = quantity;
  v.u8[b + Off.DEPTH_COMMAND_BYTE] = command;
  v.u8[b + Off.DEPTH_FLAGS_BYTE] = flags;
  v.u16[(b + Off.DEPTH_NUM_ORDERS_BYTE) >> 1] = numOrders;
  v.u32[(b + Off.DEPTH_SRC_INDEX_BYTE) >> 2] = srcIndex;
}

export function writeBookEnd(v: SlotViews, b: number, sourceId: number, symbolId: number, seq: number, tsMicros: number, records: number, snapshot: number, srcIndex: number): void {
  writeHeader(v, b, RecordKind.BOOK_END, sourceId, symbolId, seq, tsMicros);
  v.u32[(b + Off.BOOK_END_RECORDS_BYTE) >> 2] = records;
  v.u32[(b + Off.BOOK_END_SNAPSHOT_BYTE) >> 2] = snapshot;
  v.u32[(b + Off.BOOK_END_SRC_INDEX_BYTE) >> 2] = srcIndex;
}

export function writeGap(v: SlotViews, b: number, sourceId: number, symbolId: number, seq: number, startMicros: number, endMicros: number, gapKind: number, expectedSeq: number, gotSeq: number, status: number): void {
  writeHeader(v, b, RecordKind.GAP, sourceId, symbolId, seq, startMicros);
  v.f64[(b + Off.GAP_END_TS_MICROS_BYTE) >> 3] = endMicros;
  v.u32[(b + Off.GAP_EXPECTED_SEQ_BYTE) >> 2] = expectedSeq;
  v.u32[(b + Off.GAP_GOT_SEQ_BYTE) >> 2] = gotSeq;
  v.u32[(b + Off.GAP_KIND_BYTE) >> 2] = gapKind;
  v.u32[(b + Off.GAP_STATUS_BYTE) >> 2] = status;
}

export function writePayloadRef(v: SlotViews, b: number, sourceId: number, symbolId: number, seq: number, tsMicros: number, payloadType: number, payloadId: number, offset: number, bytes: number, checksum: number): void {
  writeHeader(v, b, RecordKind.PAYLOAD_REF, sourceId, symbolId, seq, tsMicros);
  v.f64[(b + Off.PAYLOAD_OFFSET_BYTE) >> 3] = offset;
  v.u32[(b + Off.PAYLOAD_BYTES_BYTE) >> 2] = bytes;
  v.u32[(b + Off.PAYLOAD_ID_BYTE) >> 2] = payloadId;
  v.u32[(b + Off.PAYLOAD_TYPE_BYTE) >> 2] = payloadType;
  v.u32[(b + Off.PAYLOAD_CHECKSUM_BYTE) >> 2] = checksum;
}

export function writeBar(v: SlotViews, b: number, sourceId: number, symbolId: number, seq: number, tsMicros: number, open: number, high: number, low: number, close: number, volume: number, numTrades: number, bidVolume: number, askVolume: number): void {
  writeHeader(v, b, RecordKind.BAR, sourceId, symbolId, seq, tsMicros);
  v.f64[(b + Off.BAR_OPEN_BYTE) >> 3] = open;
  v.f64[(b + Off.BAR_HIGH_BYTE) >> 3] = high;
  v.f64[(b + Off.BAR_LOW_BYTE) >> 3] = low;
  v.f64[(b + Off.BAR_CLOSE_BYTE) >> 3] = close;
  v.u32[(b + Off.BAR_VOLUME_BYTE) >> 2] = volume;
  v.u32[(b + Off.BAR_NUM_TRADES_BYTE) >> 2] = numTrades;
  v.u32[(b + Off.BAR_BID_VOLUME_BYTE) >> 2] = bidVolume;
  v.u32[(b + Off.BAR_ASK_VOLUME_BYTE) >> 2] = askVolume;
}

export const readKind = (v: SlotViews, b: number): number => v.u8[b] ?? 0;
export const readSourceId = (v: SlotViews, b: number): number => v.u8[b + Off.SOURCE_ID_BYTE] ?? 0;
export const readSymbolId = (v: SlotViews, b: number): number => v.u16[(b + Off.SYMBOL_ID_BYTE) >> 1] ?? 0;
export const readSeq = (v: SlotViews, b: number): number => v.u32[(b + Off.SEQ_BYTE) >> 2] ?? 0;
export const readTsMicros = (v: SlotViews, b: number): number => v.f64[(b + Off.TS_MICROS_BYTE) >> 3] ?? 0;
export const readF64 = (v: SlotViews, b: number, off: number): number => v.f64[(b + off) >> 3] ?? 0;
export const readU32 = (v: SlotViews, b: number, off: number): number => v.u32[(b + off) >> 2] ?? 0;
export const readU16 = (v: SlotViews, b: number, off: number): number => v.u16[(b + off) >> 1] ?? 0;
export const readU8 = (v: SlotViews, b: number, off: number): number => v.u8[b + off] ?? 0;

/** Plain-object view of a slot for tests, debugging and cold paths (allocates; not for the hot path). */
export function slotToObject(v: SlotViews, b: number): Record<string, number> {
  const kind = readKind(v, b);
  const o: Record<string, number> = {
    kind, sourceId: readSourceId(v, b), symbolId: readSymbolId(v, b), seq: readSeq(v, b), tsMicros: readTsMicros(v, b),
  };
  switch (kind) {
    case RecordKind.TRADE:
    case RecordKind.QUOTE:
      o.price = readF64(v, b, Off.TRADE_PRICE_BYTE); o.bid = readF64(v, b, Off.TRADE_BID_BYTE); o.ask = readF64(v, b, Off.TRADE_ASK_BYTE);
      o.size = readU32(v, b, Off.TRADE_SIZE_BYTE); o.flags = readU32(v, b, Off.TRADE_FLAGS_BYTE);
      o.bidSize = readU32(v, b, Off.TRADE_BID_SIZE_BYTE); o.askSize = readU32(v, b, Off.TRADE_ASK_SIZE_BYTE);
      o.srcIndex = readU32(v, b, Off.TRADE_SRC_INDEX_BYTE); o.numTrades = readU32(v, b, Off.TRADE_NUM_TRADES_BYTE);
      break;
    case RecordKind.DEPTH:
      o.price = readF64(v, b, Off.DEPTH_PRICE_BYTE); o.quantity = readU32(v, b, Off.DEPTH_QUANTITY_BYTE);
      o.command = readU8(v, b, Off.DEPTH_COMMAND_BYTE); o.depthFlags = readU8(v, b, Off.DEPTH_FLAGS_BYTE);
      o.numOrders = readU16(v, b, Off.DEPTH_NUM_ORDERS_BYTE); o.srcIndex = readU32(v, b, Off.DEPTH_SRC_INDEX_BYTE);
      break;
    case RecordKind.BOOK_END:
      o.records = readU32(v, b, Off.BOOK_END_RECORDS_BYTE); o.snapshot = readU32(v, b, Off.BOOK_END_SNAPSHOT_BYTE);
      o.srcIndex = readU32(v, b, Off.BOOK_END_SRC_INDEX_BYTE);
      break;
    case RecordKind.GAP:
      o.endTsMicros = readF64(v, b, Off.GAP_END_TS_MICROS_BYTE); o.expectedSeq = readU32(v, b, Off.GAP_EXPECTED_SEQ_BYTE);
      o.gotSeq = readU32(v, b, Off.GAP_GOT_SEQ_BYTE); o.gapKind = readU32(v, b, Off.GAP_KIND_BYTE); o.status = readU32(v, b, Off.GAP_STATUS_BYTE);
      break;
    case RecordKind.PAYLOAD_REF:
      o.offset = readF64(v, b, Off.PAYLOAD_OFFSET_BYTE); o.bytes = readU32(v, b, Off.PAYLOAD_BYTES_BYTE); o.payloadId = readU32(v, b, Off.PAYLOAD_ID_BYTE);
      o.payloadType = readU32(v, b, Off.PAYLOAD_TYPE_BYTE); o.checksum = readU32(v, b, Off.PAYLOAD_CHECKSUM_BYTE);
      break;
    case RecordKind.BAR:
      o.open = readF64(v, b, Off.BAR_OPEN_BYTE); o.high = readF64(v, b, Off.BAR_HIGH_BYTE); o.low = readF64(v, b, Off.BAR_LOW_BYTE);
      o.close = readF64(v, b, Off.BAR_CLOSE_BYTE); o.volume = readU32(v, b, Off.BAR_VOLUME_BYTE); o.numTrades = readU32(v, b, Off.BAR_NUM_TRADES_BYTE);
      o.bidVolume = readU32(v, b, Off.BAR_BID_VOLUME_BYTE); o.askVolume = readU32(v, b, Off.BAR_ASK_VOLUME_BYTE);
      break;
    default:
      break;
  }
  return o;
}
