/**
 * Journal file format (`.tpj`, "tickpipe journal"): declared once, used by the writer, recovery and replay.
 *
 * One file per UTC hour of event time: `<data-dir>/journal/<YYYY-MM-DD>/<HH>.tpj`. All integers little endian.
 *
 * File header (32 bytes, written together with the first block):
 *   0  u32  MAGIC          'TPJ1'
 *   4  u32  VERSION        1
 *   8  u32  RECORD_BYTES   64 (= RECORD_SLOT_BYTES; anything else is refused)
 *  12  u32  HEADER_BYTES   32
 *  16  f64  HOUR_START     Unix µs of the hour this file holds (must match the file's path)
 *  24  u32  HEADER_CRC     CRC-32 of bytes 0..24
 *  28  u32  reserved (0)
 *
 * Then blocks, back to back; every block is one group commit (or one hour's share of it):
 *   0  u32  BLOCK_MAGIC    'TPJB'
 *   4  u32  COUNT          records in the block, 1 .. MAX_BLOCK_RECORDS
 *   8  u32  CRC            CRC-32 of the payload (COUNT × 64 bytes)
 *  12  u32  reserved (0)
 *  16  COUNT × 64-byte records, exactly as they were in the ring slot (schemas/records.ts)
 *
 * Every block starts at a multiple of 16 bytes (32 + k·16 + n·64), so record payloads read into a buffer at
 * a 16-aligned offset are 8-aligned for the Float64Array alias.
 *
 * Hours are UTC and computed from the record's `tsMicros` (event time), never from the wall clock.
 */
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { RECORD_SLOT_BYTES } from '../../schemas/records.ts';
import type { SlotViews } from '../ring/ring.ts';

export const JOURNAL_MAGIC = 0x314a5054; // 'TPJ1' read as a little-endian u32
export const JOURNAL_VERSION = 1;
export const FILE_HEADER_BYTES = 32;
export const FH_MAGIC_BYTE = 0;
export const FH_VERSION_BYTE = 4;
export const FH_RECORD_BYTES_BYTE = 8;
export const FH_HEADER_BYTES_BYTE = 12;
export const FH_HOUR_START_BYTE = 16;
export const FH_CRC_BYTE = 24;

export const BLOCK_MAGIC = 0x424a5054; // 'TPJB' read as a little-endian u32
export const BLOCK_HEADER_BYTES = 16;
export const BH_MAGIC_BYTE = 0;
export const BH_COUNT_BYTE = 4;
export const BH_CRC_BYTE = 8;
/** Upper bound on records per block accepted when reading (64 MiB of payload); the writer stays far below. */
export const MAX_BLOCK_RECORDS = 1 << 20;

export const JOURNAL_RECORD_BYTES = RECORD_SLOT_BYTES;
export const HOUR_MICROS = 3_600_000_000;
/** Latest event time the journal accepts: 2^53 - 1 µs (2255-06-05), the last exact f64 µs (schemas/records.ts). */
export const MAX_TS_MICROS = Number.MAX_SAFE_INTEGER;

export const JOURNAL_DIR_NAME = 'journal';
export const JOURNAL_FILE_SUFFIX = '.tpj';
export const COMPACTED_MARKER_SUFFIX = '.compacted';

const DAY_DIR_RE = /^(\d{4})-(\d{2})-(\d{2})$/;
const HOUR_FILE_RE = /^(\d{2})\.(tpj|compacted)$/;

/** Start (Unix µs) of the UTC hour holding `tsMicros`; the caller guarantees 0 <= tsMicros <= MAX_TS_MICROS. */
export function hourStartOf(tsMicros: number): number {
  return tsMicros - (tsMicros % HOUR_MICROS);
}

export function isHourStart(x: number): boolean {
  return Number.isInteger(x) && x >= 0 && x <= MAX_TS_MICROS && x % HOUR_MICROS === 0;
}

/** `YYYY-MM-DD` and `HH` of an hour start. Cold path (once per hour file). */
export function hourParts(hourStartMicros: number): { day: string; hh: string } {
  const iso = new Date(hourStartMicros / 1000).toISOString(); // 2025-11-11T14:00:00.000Z
  return { day: iso.slice(0, 10), hh: iso.slice(11, 13) };
}

export function dayDirOf(journalDir: string, hourStartMicros: number): string {
  return join(journalDir, hourParts(hourStartMicros).day);
}

export function hourFilePath(journalDir: string, hourStartMicros: number): string {
  const { day, hh } = hourParts(hourStartMicros);
  return join(journalDir, day, hh + JOURNAL_FILE_SUFFIX);
}

export function compactedMarkerPath(journalDir: string, hourStartMicros: number): string {
  const { day, hh } = hourParts(hourStartMicros);
  return join(journalDir, day, hh + COMPACTED_MARKER_SUFFIX);
}

/** Parse a day directory name; null when it is not `YYYY-MM-DD` or not a real date. */
export function parseDayDir(name: string): number | null {
  const m = DAY_DIR_RE.exec(name);
  if (!m) return null;
  const y = Number(m[1]), mo = Number(m[2]), d = Number(m[3]);
  const ms = Date.UTC(y, mo - 1, d);
  const check = new Date(ms);
  if (check.getUTCFullYear() !== y || check.getUTCMonth() !== mo - 1 || check.getUTCDate() !== d) return null;
  return ms * 1000;
}

/** Parse `HH.tpj` / `HH.compacted` inside a day directory; null for anything else. */
export function parseHourFile(name: string): { hour: number; kind: 'tpj' | 'compacted' } | null {
  const m = HOUR_FILE_RE.exec(name);
  if (!m) return null;
  const hour = Number(m[1]);
  if (hour > 23) return null;
  return { hour, kind: m[2] === 'tpj' ? 'tpj' : 'compacted' };
}

/** CRC-32 (IEEE, zlib's) of `len` bytes of `u8` from `off`. Node >= 20.15 has `zlib.crc32`. */
export function crc32Of(u8: Uint8Array, off: number, len: number): number {
  return crc32(u8.subarray(off, off + len)) >>> 0;
}

/** Write the 32-byte file header at byte `at` of `u8` (which must be 4-aligned there). */
export function writeFileHeader(u8: Uint8Array, at: number, hourStartMicros: number): void {
  const dv = new DataView(u8.buffer, u8.byteOffset + at, FILE_HEADER_BYTES);
  dv.setUint32(FH_MAGIC_BYTE, JOURNAL_MAGIC, true);
  dv.setUint32(FH_VERSION_BYTE, JOURNAL_VERSION, true);
  dv.setUint32(FH_RECORD_BYTES_BYTE, JOURNAL_RECORD_BYTES, true);
  dv.setUint32(FH_HEADER_BYTES_BYTE, FILE_HEADER_BYTES, true);
  dv.setFloat64(FH_HOUR_START_BYTE, hourStartMicros, true);
  dv.setUint32(FH_CRC_BYTE, crc32Of(u8, at, FH_CRC_BYTE), true);
  dv.setUint32(FH_CRC_BYTE + 4, 0, true);
}

export type FileHeaderCheck =
  | { ok: true; hourStartMicros: number }
  | { ok: false; reason: string };

/** Validate a file header; `ok: false` names what is wrong (the caller decides torn vs corrupt). */
export function checkFileHeader(u8: Uint8Array, at: number): FileHeaderCheck {
  const dv = new DataView(u8.buffer, u8.byteOffset + at, FILE_HEADER_BYTES);
  if (dv.getUint32(FH_MAGIC_BYTE, true) !== JOURNAL_MAGIC) return { ok: false, reason: 'bad magic (not a TPJ1 journal)' };
  if (dv.getUint32(FH_CRC_BYTE, true) !== crc32Of(u8, at, FH_CRC_BYTE)) return { ok: false, reason: 'header CRC mismatch' };
  const version = dv.getUint32(FH_VERSION_BYTE, true);
  if (version !== JOURNAL_VERSION) return { ok: false, reason: `unsupported version ${version}` };
  const recordBytes = dv.getUint32(FH_RECORD_BYTES_BYTE, true);
  if (recordBytes !== JOURNAL_RECORD_BYTES) return { ok: false, reason: `record size ${recordBytes}, expected ${JOURNAL_RECORD_BYTES}` };
  const headerBytes = dv.getUint32(FH_HEADER_BYTES_BYTE, true);
  if (headerBytes !== FILE_HEADER_BYTES) return { ok: false, reason: `header size ${headerBytes}, expected ${FILE_HEADER_BYTES}` };
  return { ok: true, hourStartMicros: dv.getFloat64(FH_HOUR_START_BYTE, true) };
}

/** Write a block header at byte `at` of `u32`'s buffer (4-aligned) for `count` records whose payload CRC is `crc`. */
export function writeBlockHeader(u32: Uint32Array, at: number, count: number, crc: number): void {
  const i = at >> 2;
  u32[i] = BLOCK_MAGIC;
  u32[i + 1] = count;
  u32[i + 2] = crc;
  u32[i + 3] = 0;
}

/** Typed-array aliases over a whole buffer, addressed by absolute byte offset like a ring's `views`. */
export function slotViewsOf(buffer: ArrayBuffer | SharedArrayBuffer): SlotViews {
  return {
    f64: new Float64Array(buffer, 0, buffer.byteLength >> 3),
    f32: new Float32Array(buffer, 0, buffer.byteLength >> 2),
    i32: new Int32Array(buffer, 0, buffer.byteLength >> 2),
    u32: new Uint32Array(buffer, 0, buffer.byteLength >> 2),
    u16: new Uint16Array(buffer, 0, buffer.byteLength >> 1),
    u8: new Uint8Array(buffer),
  };
}
