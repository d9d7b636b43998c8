/**
 * Sierra Chart `.scid` intraday file format: constants only (offsets, sizes, markers, time math).
 *
 * Checked against DESIGN.md §5, Sierra's IntradayDataFileFormat page (s_IntradayHeader, 56 bytes:
 * "SCID", HeaderSize u32, RecordSize u32, Version u16 "currently 1", Unused u16, UTCStartIndex u32
 * "should be 0", reserved) and the real recording in /work/shared/data/sierra/ESM23-excerpt.scid.
 * All fields are little endian.
 *
 * Record (40 bytes, s_IntradayRecord):
 *   0  int64  DateTime     µs since 1899-12-30 00:00 UTC (SCDateTimeMS); the µs part inside one
 *                          millisecond is a counter that orders same-millisecond trades (…000, …001)
 *   8  f32    Open         tick files: a marker (0, or the sub-trade bit patterns below); bars: a price
 *  12  f32    High         tick files: the ask
 *  16  f32    Low          tick files: the bid
 *  20  f32    Close        tick files: the trade price
 *  24  u32    NumTrades
 *  28  u32    TotalVolume
 *  32  u32    BidVolume    > 0: the trade hit the bid (aggressor sold)
 *  36  u32    AskVolume    > 0: the trade lifted the ask (aggressor bought)
 *
 * Old files may hold DateTime as a float64 day count since 1899-12-30 in the same 8 bytes.
 */

/** 'SCID' read as a little-endian u32. */
export const SCID_MAGIC_LE = 0x44494353;
export const SCID_MAGIC_TEXT = 'SCID';

// ---- header -------------------------------------------------------------------------------------
export const SCID_HEADER_BYTES = 56; // the size Sierra writes; HeaderSize in the file is authoritative
export const SCID_RECORD_BYTES = 40; // the only record size we decode
/** A HeaderSize above this is treated as corrupt (Sierra writes 56; nothing legitimate is near this). */
export const SCID_MAX_HEADER_BYTES = 65_536;
/** Header versions accepted: Sierra writes 1; 0 is accepted for third-party writers that leave it zero. */
export const SCID_MAX_VERSION = 1;

export const HDR_MAGIC_BYTE = 0; // 4 chars "SCID"
export const HDR_HEADER_SIZE_BYTE = 4; // u32
export const HDR_RECORD_SIZE_BYTE = 8; // u32
export const HDR_VERSION_BYTE = 12; // u16
export const HDR_UNUSED_BYTE = 14; // u16
export const HDR_UTC_START_INDEX_BYTE = 16; // u32, "should be 0"
export const HDR_RESERVED_BYTE = 20; // 36 reserved bytes up to 56

// ---- record -------------------------------------------------------------------------------------
export const REC_DATETIME_LO_BYTE = 0; // u32 low half of the int64
export const REC_DATETIME_HI_BYTE = 4; // i32 high half of the int64
export const REC_OPEN_BYTE = 8; // f32 (u32 marker bits in tick files)
export const REC_HIGH_BYTE = 12; // f32 ask in tick files
export const REC_LOW_BYTE = 16; // f32 bid in tick files
export const REC_CLOSE_BYTE = 20; // f32 trade price in tick files
export const REC_NUM_TRADES_BYTE = 24; // u32
export const REC_TOTAL_VOLUME_BYTE = 28; // u32
export const REC_BID_VOLUME_BYTE = 32; // u32
export const REC_ASK_VOLUME_BYTE = 36; // u32

// ---- Open markers of tick files (compare raw u32 bits, never floats) ----------------------------
/** First sub-trade of an unbundled trade (float ≈ −1.99900095e37). */
export const SCID_FIRST_SUB_TRADE_BITS = 0xfd709ef9;
/** Last sub-trade of an unbundled trade (float ≈ −1.99900197e37). */
export const SCID_LAST_SUB_TRADE_BITS = 0xfd709f01;

/** Sub-trade position as the writer takes it; same numbers as the simulator's `SubTrade`. */
export const ScidSubTrade = { NONE: 0, FIRST: 1, MIDDLE: 2, LAST: 3 } as const;
export type ScidSubTrade = (typeof ScidSubTrade)[keyof typeof ScidSubTrade];

/** Aggressor side as the writer takes it (the simulator's convention): 1 bought at the ask, 2 sold at the bid. */
export const ScidSide = { NONE: 0, BUY: 1, SELL: 2 } as const;
export type ScidSide = (typeof ScidSide)[keyof typeof ScidSide];

// ---- time ---------------------------------------------------------------------------------------
export const MICROS_PER_DAY = 86_400_000_000;
/** Days from 1899-12-30 (Sierra/OLE epoch) to 1970-01-01. */
export const SC_EPOCH_OFFSET_DAYS = 25_569;
/** µs from 1899-12-30 to 1970-01-01: Unix µs = raw − this (2209161600·10⁶, exact in f64). */
export const SC_EPOCH_OFFSET_MICROS = SC_EPOCH_OFFSET_DAYS * MICROS_PER_DAY;
export const TWO_POW_32 = 4_294_967_296;

/**
 * Plausible timestamps, Unix µs: [1950-01-01, 2200-01-01). A reading outside this window is not a
 * Sierra timestamp (garbage, a zeroed record, or the other DateTime encoding).
 */
export const SCID_MIN_PLAUSIBLE_MICROS = Date.UTC(1950, 0, 1) * 1000;
export const SCID_MAX_PLAUSIBLE_MICROS = Date.UTC(2200, 0, 1) * 1000;

/** Largest sub-trade bundle merged into one record; a longer one passes through unmerged. */
export const SCID_MAX_BUNDLE_RECORDS = 4096;
