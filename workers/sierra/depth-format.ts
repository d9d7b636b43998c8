/**
 * Sierra Chart market depth file (`.depth`, `Data/MarketDepthData/<SYMBOL>.<YYYY-MM-DD>.depth`): layout
 * constants, header validation and the coded errors shared by the decoder and the writer.
 *
 * Little endian throughout. Checked against DESIGN.md §5 and an independent public reader
 * (toobrien/market_replay `parsers.py`: header `4I48c`, record `qBBHfII`).
 *
 *   header (64 B)                          record (24 B)
 *   0  u32  magic "SCDD" (0x44444353 LE)   0  i64  DateTime: µs since 1899-12-30 00:00 UTC (real µs, not a counter)
 *   4  u32  HeaderSize (64)                8  u8   Command (DepthCommand, 0..7)
 *   8  u32  RecordSize (24)                9  u8   Flags (0x01 end of batch)
 *   12 u32  Version                        10 u16  NumOrders
 *   16 ..   reserved (48 B)                12 f32  Price
 *                                          16 u32  Quantity
 *                                          20 u32  reserved
 *
 * HeaderSize is read from the file (records start there); RecordSize must be 24. The DateTime is read
 * as two u32 halves (`hi * 2^32 + lo`, exact below 2^53): no BigInt.
 */
import { engineError, type EngineError } from '../../engine/errors.ts';

/** "SCDD" read as a little-endian u32. */
export const DEPTH_MAGIC_LE = 0x44444353;
/** "SCID" (an intraday file handed to the depth reader by mistake gets a clearer message). */
const SCID_MAGIC_LE = 0x44494353;
/** Header size Sierra writes; a file may declare more (records start at its HeaderSize), never less. */
export const DEPTH_HEADER_BYTES = 64;
export const DEPTH_RECORD_BYTES = 24;
/** Version our writer puts in new files (any version is accepted on read). */
export const DEPTH_FILE_VERSION = 1;
/**
 * Largest HeaderSize accepted when the file size is not known (streaming). Sierra writes 64; a value
 * beyond this is a lying header, not a future format, and would make a streaming reader skip forever.
 */
export const MAX_DEPTH_HEADER_BYTES = 65_536;
/** Header bytes that carry fields (magic, sizes, version); the rest is reserved. */
export const DEPTH_HEADER_FIELD_BYTES = 16;

// ---- header field offsets ------------------------------------------------------------------------
export const HDR_MAGIC_BYTE = 0;
export const HDR_HEADER_SIZE_BYTE = 4;
export const HDR_RECORD_SIZE_BYTE = 8;
export const HDR_VERSION_BYTE = 12;

// ---- record field offsets ------------------------------------------------------------------------
export const REC_DATETIME_LO_BYTE = 0; // u32 low half of the int64
export const REC_DATETIME_HI_BYTE = 4; // i32 high half of the int64
export const REC_COMMAND_BYTE = 8;
export const REC_FLAGS_BYTE = 9;
export const REC_NUM_ORDERS_BYTE = 10;
export const REC_PRICE_BYTE = 12;
export const REC_QUANTITY_BYTE = 16;
export const REC_RESERVED_BYTE = 20;

/** Sierra epoch (1899-12-30) to Unix epoch in µs: Unix µs = raw − this. */
export const SC_EPOCH_TO_UNIX_MICROS = 2_209_161_600_000_000;
export const MAX_DEPTH_COMMAND = 7;
const TWO_POW_32 = 4294967296;

/** Command names as `tickpipe inspect --json` prints them (index = Sierra command number). */
export const DEPTH_COMMAND_NAMES = [
  'none', 'clearBook', 'addBid', 'addAsk', 'modifyBid', 'modifyAsk', 'deleteBid', 'deleteAsk',
] as const;

export interface DepthHeader {
  /** Byte offset of the first record (HeaderSize). */
  headerBytes: number;
  /** Always DEPTH_RECORD_BYTES once validated. */
  recordBytes: number;
  version: number;
}

/** The coded error of this format: `{ file, byteOffset }` in the detail and both in the message. */
export function depthFormatError(file: string, byteOffset: number, what: string, extra: Record<string, number> = {}): EngineError {
  return engineError('ENGINE_ERR_DEPTH_FORMAT', `${file}: ${what} at byte ${byteOffset}`, { file, byteOffset, ...extra });
}

/**
 * Validate the header fields in `u8` (at least the first 16 bytes of the file). `fileBytes`, when known,
 * is the file's size: a HeaderSize beyond it is rejected. Cold path: allocates a DataView.
 */
export function parseDepthHeader(u8: Uint8Array, file: string, fileBytes?: number): DepthHeader {
  if (u8.length < DEPTH_HEADER_FIELD_BYTES) {
    throw depthFormatError(file, u8.length, u8.length === 0 ? 'empty file, no SCDD header' : `file of ${u8.length} bytes is shorter than a .depth header`);
  }
  const dv = new DataView(u8.buffer, u8.byteOffset, DEPTH_HEADER_FIELD_BYTES);
  const magic = dv.getUint32(HDR_MAGIC_BYTE, true);
  if (magic !== DEPTH_MAGIC_LE) {
    const why = magic === SCID_MAGIC_LE ? 'an intraday .scid file, not a market depth file' : 'not an SCDD market depth file';
    throw depthFormatError(file, HDR_MAGIC_BYTE, `bad magic 0x${magic.toString(16).padStart(8, '0')} (${why})`, { magic });
  }
  const headerBytes = dv.getUint32(HDR_HEADER_SIZE_BYTE, true);
  const recordBytes = dv.getUint32(HDR_RECORD_SIZE_BYTE, true);
  const version = dv.getUint32(HDR_VERSION_BYTE, true);
  if (headerBytes < DEPTH_HEADER_BYTES) {
    throw depthFormatError(file, HDR_HEADER_SIZE_BYTE, `header size ${headerBytes} is below ${DEPTH_HEADER_BYTES}`, { headerBytes });
  }
  if (fileBytes !== undefined && headerBytes > fileBytes) {
    throw depthFormatError(file, HDR_HEADER_SIZE_BYTE, `header size ${headerBytes} is beyond the end of the file (${fileBytes} bytes)`, { headerBytes, fileBytes });
  }
  if (headerBytes > MAX_DEPTH_HEADER_BYTES) {
    throw depthFormatError(file, HDR_HEADER_SIZE_BYTE, `header size ${headerBytes} is implausible (over ${MAX_DEPTH_HEADER_BYTES})`, { headerBytes });
  }
  if (recordBytes !== DEPTH_RECORD_BYTES) {
    throw depthFormatError(file, HDR_RECORD_SIZE_BYTE, `record size ${recordBytes} is not ${DEPTH_RECORD_BYTES}`, { recordBytes });
  }
  return { headerBytes, recordBytes, version };
}

/** Unix µs from the two halves of a Sierra DateTime (exact while |raw| < 2^53). */
export function scHalvesToUnixMicros(lo: number, hi: number): number {
  return hi * TWO_POW_32 + lo - SC_EPOCH_TO_UNIX_MICROS;
}

/** Write a Unix-µs time as a Sierra int64 DateTime at `byte` (throws when it is not a safe integer). */
export function writeScDateTime(dv: DataView, byte: number, tsMicros: number): void {
  const raw = tsMicros + SC_EPOCH_TO_UNIX_MICROS;
  if (!Number.isSafeInteger(tsMicros) || !Number.isSafeInteger(raw)) {
    throw engineError('ENGINE_ERR_INVALID_ARG', `timestamp ${tsMicros} µs is not an integer in the exact range`, { tsMicros });
  }
  const hi = Math.floor(raw / TWO_POW_32);
  dv.setUint32(byte + REC_DATETIME_LO_BYTE, raw - hi * TWO_POW_32, true);
  dv.setInt32(byte + REC_DATETIME_HI_BYTE, hi, true);
}
