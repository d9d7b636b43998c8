/**
 * Proleptic Gregorian calendar arithmetic on epoch days (days since 1970-01-01), allocation-free.
 *
 * Internal to `engine/clock/`: the public API re-exports only what callers need. The algorithms are
 * Howard Hinnant's `days_from_civil` / `civil_from_days` (public domain), exact for every year a
 * safe-integer microsecond count can reach.
 */
import { engineError } from '../errors.ts';

export const MICROS_PER_SECOND = 1_000_000;
export const MICROS_PER_MINUTE = 60_000_000;
export const MICROS_PER_HOUR = 3_600_000_000;
export const MICROS_PER_DAY = 86_400_000_000;
export const MS_PER_DAY = 86_400_000;

/**
 * Supported time range of the clock module, in Unix µs: every safe integer (|µs| ≤ 2^53 − 1), that is
 * 1684-07-28T00:12:25.260993Z .. 2255-06-05T23:47:34.740991Z. Inside it every µs is exact as a JS number.
 */
export const MIN_TIME_MICROS = -Number.MAX_SAFE_INTEGER;
export const MAX_TIME_MICROS = Number.MAX_SAFE_INTEGER;

/** Epoch day of a civil date (month 1..12, day 1..31; not validated here). */
export function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/**
 * Civil date of an epoch day, packed as `year * 10000 + month * 100 + day` (years ≥ 0), so that no
 * object is allocated. Unpack with {@link packedYear}, {@link packedMonth}, {@link packedDay}.
 */
export function civilPacked(epochDay: number): number {
  const z = epochDay + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  return year * 10000 + month * 100 + day;
}

export const packedYear = (p: number): number => Math.floor(p / 10000);
export const packedMonth = (p: number): number => Math.floor(p / 100) % 100;
export const packedDay = (p: number): number => p % 100;

export function isLeapYear(year: number): boolean {
  return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
}

export function daysInMonth(year: number, month: number): number {
  if (month === 2) return isLeapYear(year) ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

/** ISO weekday of an epoch day: 1 = Monday .. 7 = Sunday (1970-01-01 was a Thursday). */
export function isoWeekday(epochDay: number): number {
  const w = (epochDay + 3) % 7; // 0 = Monday
  return (w < 0 ? w + 7 : w) + 1;
}

/** Floor division of a µs count into whole days, exact for safe integers (corrects division rounding). */
export function floorDayOfMicros(us: number): number {
  let d = Math.floor(us / MICROS_PER_DAY);
  const rem = us - d * MICROS_PER_DAY;
  if (rem < 0) d -= 1;
  else if (rem >= MICROS_PER_DAY) d += 1;
  return d;
}

const PAD2: string[] = [];
for (let i = 0; i < 100; i++) PAD2.push(i < 10 ? `0${String(i)}` : String(i));
const PAD3: string[] = [];
for (let i = 0; i < 1000; i++) PAD3.push(i < 10 ? `00${String(i)}` : i < 100 ? `0${String(i)}` : String(i));

/** Two-digit zero-padded string of 0..99 (table lookup). */
export const pad2 = (n: number): string => PAD2[n] ?? String(n);
/** Three-digit zero-padded string of 0..999 (table lookup). */
export const pad3 = (n: number): string => PAD3[n] ?? String(n);
/** Four-digit zero-padded year 0..9999. */
export const pad4 = (n: number): string => pad2(Math.floor(n / 100)) + pad2(n % 100);

/** 'YYYY-MM-DD' of an epoch day. Allocates the string. */
export function formatEpochDay(epochDay: number): string {
  const p = civilPacked(epochDay);
  return `${pad4(packedYear(p))}-${pad2(packedMonth(p))}-${pad2(packedDay(p))}`;
}

/** Epoch day of a strict 'YYYY-MM-DD' string, or NaN when it is not a valid date. */
export function parseEpochDay(s: string): number {
  if (s.length !== 10 || s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45) return NaN;
  const y = digits(s, 0, 4);
  const m = digits(s, 5, 2);
  const d = digits(s, 8, 2);
  if (y < 0 || m < 1 || m > 12 || d < 1 || d > daysInMonth(y, m)) return NaN;
  return daysFromCivil(y, m, d);
}

/** Value of `len` ASCII digits at `at`, or -1 if any is not a digit. */
export function digits(s: string, at: number, len: number): number {
  let v = 0;
  for (let i = at; i < at + len; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v;
}

/** Short printable form of any value for error messages (strings quoted and cut at 100 chars). */
export function describeValue(x: unknown): string {
  if (typeof x === 'string') return JSON.stringify(x.length > 100 ? `${x.slice(0, 100)}…` : x);
  if (typeof x === 'number' || typeof x === 'boolean' || typeof x === 'bigint' || x === null || x === undefined) return String(x);
  return Array.isArray(x) ? 'an array' : `a ${typeof x}`;
}

/**
 * Throw unless `us` is a number inside the supported range: ENGINE_ERR_INVALID_ARG for a non-number or
 * NaN, ENGINE_ERR_TIME_RANGE for ±Infinity or beyond ±(2^53 − 1) µs.
 */
export function checkUnixMicros(us: unknown): asserts us is number {
  if (typeof us !== 'number' || Number.isNaN(us)) {
    throw engineError('ENGINE_ERR_INVALID_ARG', `a time must be a number of Unix µs, got ${describeValue(us)}`, { value: describeValue(us) });
  }
  if (!(us >= MIN_TIME_MICROS && us <= MAX_TIME_MICROS)) {
    throw engineError('ENGINE_ERR_TIME_RANGE', `time ${String(us)} µs is outside the supported range (±(2^53 − 1) µs, years 1684..2255)`, { value: us });
  }
}
