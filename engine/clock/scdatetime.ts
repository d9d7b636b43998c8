/**
 * Sierra Chart `SCDateTime` <-> Unix microseconds, allocation-free and without BigInt.
 *
 * An SCDateTime is an int64 count of microseconds since 1899-12-30 00:00 UTC, stored little endian,
 * so Unix µs = raw − 2209161600·10^6. A file reader sees it as two 32-bit halves: `lo` (u32, bytes
 * 0..3) and `hi` (i32, bytes 4..7). JS numbers are exact up to 2^53, but the raw value passes 2^53 in
 * the year 2185, so the conversion never forms the raw value: it computes `(hi·2^32 − offset) + lo`.
 * `hi·2^32` and the offset are both multiples of 2^13, so their difference is exact (a multiple of
 * 2^13 is representable up to 2^66), and adding `lo` is exact whenever the result is a safe integer:
 * every Unix µs from 1684 to 2255 decodes exactly.
 *
 * Sierra writes a counter into the µs digits of trades that share a millisecond (…000, …001). Nothing
 * here rounds: the counter survives both directions bit for bit.
 *
 * Legacy files store the same 8 bytes as a float64 count of days since 1899-12-30 (fractional).
 * Read as int64 such a value is absurd (about 4.7·10^18 µs, the year 150 000), and a real int64 read
 * as a float64 is a denormal near 10^-308 days, so {@link isPlausibleScMicros} tells them apart:
 * {@link decodeScDateTimeParts} tries the int64 reading, then the float64 one.
 *
 * Typed-array helpers use the host byte order; tickpipe requires a little-endian host (see
 * `engine/ring/ring.ts`), which matches the file format. The DataView helpers read little endian
 * explicitly.
 */
import { MICROS_PER_DAY } from './civil.ts';

/** Microseconds from 1899-12-30 00:00 UTC (Sierra's epoch) to 1970-01-01 00:00 UTC. */
export const SC_EPOCH_OFFSET_MICROS = 2_209_161_600_000_000;
/** Days from 1899-12-30 to 1970-01-01. */
export const SC_EPOCH_OFFSET_DAYS = 25_569;

const TWO_POW_32 = 4_294_967_296;
/** The epoch offset split into 32-bit halves (offset = HI·2^32 + LO). */
const OFFSET_HI = Math.floor(SC_EPOCH_OFFSET_MICROS / TWO_POW_32); // 514360
const OFFSET_LO = SC_EPOCH_OFFSET_MICROS - OFFSET_HI * TWO_POW_32; // 2221629440

/** Plausibility window for decoded times (Unix µs): 1950-01-01 inclusive .. 2200-01-01 exclusive. */
export const PLAUSIBLE_MIN_MICROS = -631_152_000_000_000; // 1950-01-01T00:00:00Z
export const PLAUSIBLE_MAX_MICROS = 7_258_118_400_000_000; // 2200-01-01T00:00:00Z

/**
 * Unix µs of an SCDateTime given as its two halves as read from a file: `lo` the low word (read as
 * u32 or i32: only its 32 bits count), `hi` the high word (read as i32 or u32: reinterpreted as i32).
 * Exact whenever the result is a safe integer (|µs| < 2^53), so for every plausible time and beyond.
 */
export function scPartsToUnixMicros(lo: number, hi: number): number {
  return ((hi | 0) * TWO_POW_32 - SC_EPOCH_OFFSET_MICROS) + (lo >>> 0);
}

/** Unix µs of the SCDateTime stored (little endian) at `byteOffset` of `view`. */
export function readScDateTimeView(view: DataView, byteOffset: number): number {
  return scPartsToUnixMicros(view.getUint32(byteOffset, true), view.getInt32(byteOffset + 4, true));
}

/**
 * Unix µs of the SCDateTime whose low word is `words[wordIndex]` and high word `words[wordIndex + 1]`
 * (a Uint32Array or Int32Array over the file bytes; wordIndex = byteOffset / 4, so the field must be
 * 4-byte aligned in the buffer). Returns NaN if the index is out of bounds.
 */
export function readScDateTimeWords(words: Uint32Array | Int32Array, wordIndex: number): number {
  const lo = words[wordIndex];
  const hi = words[wordIndex + 1];
  if (lo === undefined || hi === undefined) return NaN;
  return scPartsToUnixMicros(lo, hi);
}

/**
 * Low u32 of the SCDateTime of a Unix µs integer. Non-integers are floored to the µs below; the input
 * must be a finite number in ±2^53 (not checked: hot path).
 */
export function unixMicrosToScLo(unixMicros: number): number {
  const us = Math.floor(unixMicros);
  const uh = Math.floor(us / TWO_POW_32); // exact: division by a power of two
  const lo = us - uh * TWO_POW_32 + OFFSET_LO; // 0 .. 2^33 − 2, exact
  return lo >= TWO_POW_32 ? lo - TWO_POW_32 : lo;
}

/** High word (as i32) of the SCDateTime of a Unix µs integer; same input rules as {@link unixMicrosToScLo}. */
export function unixMicrosToScHi(unixMicros: number): number {
  const us = Math.floor(unixMicros);
  const uh = Math.floor(us / TWO_POW_32);
  const carry = us - uh * TWO_POW_32 + OFFSET_LO >= TWO_POW_32 ? 1 : 0;
  return (uh + OFFSET_HI + carry) | 0;
}

/**
 * Write the SCDateTime of `unixMicros` as two words at `words[wordIndex]` (low) and
 * `words[wordIndex + 1]` (high). Works for Uint32Array and Int32Array alike (stores wrap modulo 2^32).
 */
export function writeScDateTimeWords(unixMicros: number, words: Uint32Array | Int32Array, wordIndex: number): void {
  words[wordIndex] = unixMicrosToScLo(unixMicros);
  words[wordIndex + 1] = unixMicrosToScHi(unixMicros);
}

/** Write the SCDateTime of `unixMicros` little endian at `byteOffset` of `view`. */
export function writeScDateTimeView(unixMicros: number, view: DataView, byteOffset: number): void {
  view.setUint32(byteOffset, unixMicrosToScLo(unixMicros), true);
  view.setInt32(byteOffset + 4, unixMicrosToScHi(unixMicros), true);
}

/** True when a decoded Unix µs lies in 1950-01-01 .. 2200-01-01 (exclusive end); false for NaN. */
export function isPlausibleScMicros(unixMicros: number): boolean {
  return unixMicros >= PLAUSIBLE_MIN_MICROS && unixMicros < PLAUSIBLE_MAX_MICROS;
}

/**
 * Unix µs of a legacy float64 SCDateTime (days since 1899-12-30, fractional), rounded to the nearest
 * microsecond. A float64 day count in [32 768, 65 536) days (1989-09-17 .. 2079-06-05) resolves 2^-37
 * day ≈ 0.63 µs, finer before, so every whole µs written by {@link unixMicrosToScDays} comes back
 * exactly; from 2079-06-05 on it resolves ≈ 1.26 µs and a time may come back 1 µs off. Legacy files
 * are old files, so this never matters in practice. The whole days and the fraction are scaled
 * separately so that the product adds no rounding of its own. NaN/±Infinity give NaN.
 */
export function scDaysToUnixMicros(days: number): number {
  const whole = Math.floor(days);
  const frac = days - whole; // exact (same binade or finer)
  return (whole - SC_EPOCH_OFFSET_DAYS) * MICROS_PER_DAY + Math.round(frac * MICROS_PER_DAY);
}

/** Legacy float64 day count of a Unix µs (for writing old-format fixtures and for tests). */
export function unixMicrosToScDays(unixMicros: number): number {
  const d = Math.floor(unixMicros / MICROS_PER_DAY);
  const rem = unixMicros - d * MICROS_PER_DAY;
  return d + SC_EPOCH_OFFSET_DAYS + rem / MICROS_PER_DAY;
}

// One scratch word pair to reinterpret 8 bytes as a float64 without allocating per call.
const SCRATCH_F64 = new Float64Array(1);
const SCRATCH_U32 = new Uint32Array(SCRATCH_F64.buffer);

/** Reinterpret the two halves of the 8-byte field as a little-endian float64 (legacy day count). */
export function scPartsAsDays(lo: number, hi: number): number {
  SCRATCH_U32[0] = lo;
  SCRATCH_U32[1] = hi;
  return SCRATCH_F64[0] ?? NaN;
}

/**
 * Decode the 8-byte DateTime field in either form: the int64 µs reading when it is plausible, else
 * the legacy float64 day reading when that is plausible, else NaN (the caller raises its coded error
 * naming the file and offset). Use {@link isLegacyScParts} to learn which form a file uses.
 */
export function decodeScDateTimeParts(lo: number, hi: number): number {
  const us = scPartsToUnixMicros(lo, hi);
  if (isPlausibleScMicros(us)) return us;
  const legacy = scDaysToUnixMicros(scPartsAsDays(lo, hi));
  return isPlausibleScMicros(legacy) ? legacy : NaN;
}

/** True when the int64 reading is implausible but the float64 day reading is plausible. */
export function isLegacyScParts(lo: number, hi: number): boolean {
  return !isPlausibleScMicros(scPartsToUnixMicros(lo, hi)) && isPlausibleScMicros(scDaysToUnixMicros(scPartsAsDays(lo, hi)));
}
