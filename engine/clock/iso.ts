/**
 * ISO 8601 formatting and parsing of times as Unix microseconds.
 *
 * Output form (DESIGN.md §6): UTC with exactly 6 fractional digits, `2023-02-21T20:37:01.000001Z`.
 *
 * Accepted inputs of {@link parseTimeToMicros}:
 *
 * - ISO 8601 / RFC 3339 date-times `YYYY-MM-DDTHH:MM[:SS[.f…]][offset]`: `T`, `t` or one space between
 *   date and time; a fraction of 1..9 digits after `.` or `,` (the µs are kept, digits beyond the 6th are
 *   truncated, never rounded, so a ns timestamp keeps its µs); offset `Z`/`z`, `±hh:mm`, `±hhmm` or `±hh`.
 *   Without an offset (a naive local time) the time is read in `opts.tz` when given, else in UTC; DST
 *   gaps and overlaps follow `opts.disambiguation` (default 'compatible', see `tz.ts`).
 * - Date only `YYYY-MM-DD`: midnight UTC, always (as `Date.parse` does; `opts.tz` does not apply).
 * - Epoch numbers, as a JS number or a decimal string (`-?digits[.digits]`). The unit is decided by
 *   the magnitude of the integer part |n|:
 *
 *   | |n|                 | unit          | covers (positive values)          |
 *   |---------------------|---------------|-----------------------------------|
 *   | < 1e11              | seconds       | 1970-01-01 .. 5138-11-16          |
 *   | 1e11 ≤ |n| < 1e14   | milliseconds  | 1973-03-03 .. 5138-11-16          |
 *   | 1e14 ≤ |n| < 1e17   | microseconds  | 1973-03-03 .. 5138-11-16          |
 *   | ≥ 1e17              | nanoseconds   | 1973-03-03 ..                     |
 *
 *   So a time before 1973-03-03 given in ms, µs or ns is misread as a coarser unit (pass an ISO string
 *   for those). Decimal strings are converted exactly (digits below 1 µs truncated toward the past).
 *   JS numbers: integer seconds and ms are exact; fractional seconds/ms are rounded to the nearest µs
 *   (a binary double cannot hold 0.026001 exactly); µs and ns are floored to the µs. A nanosecond
 *   count above 2^53 is not exact as a JS number: pass it as a string to keep every µs.
 *
 * Results must be safe integers (years 1684..2255), else ENGINE_ERR_TIME_RANGE. Unparseable input or a
 * wrong type is ENGINE_ERR_TIME_PARSE naming the input; an unknown `opts.tz` is ENGINE_ERR_TIME_ZONE.
 */
import { engineError, type EngineError } from '../errors.ts';
import {
  MAX_TIME_MICROS, MICROS_PER_DAY, MICROS_PER_HOUR, MICROS_PER_MINUTE, MICROS_PER_SECOND, MIN_TIME_MICROS,
  checkUnixMicros, civilPacked, daysFromCivil, daysInMonth, describeValue, floorDayOfMicros, pad2, pad3, pad4,
  packedDay, packedMonth, packedYear,
} from './civil.ts';
import { assertTimeZone, wallMicrosToUnixMicros, type Disambiguation } from './tz.ts';

/** Lower bounds of the epoch-number units (see the table above). */
export const EPOCH_MILLIS_MIN = 1e11;
export const EPOCH_MICROS_MIN = 1e14;
export const EPOCH_NANOS_MIN = 1e17;

export type EpochUnit = 'seconds' | 'milliseconds' | 'microseconds' | 'nanoseconds';

export interface ParseTimeOptions {
  /** IANA zone for naive date-times (no offset). Default: UTC. */
  tz?: string;
  /** DST gap/overlap policy for naive date-times in `tz`. Default 'compatible'. */
  disambiguation?: Disambiguation;
}

/**
 * Format Unix µs as `YYYY-MM-DDTHH:MM:SS.ffffffZ`. A fractional input is floored to its µs.
 * Throws ENGINE_ERR_INVALID_ARG for NaN or a non-number, ENGINE_ERR_TIME_RANGE outside ±(2^53 − 1).
 * Allocates only the result string.
 */
export function formatIsoMicros(unixMicros: number): string {
  if (typeof unixMicros !== 'number' || !(unixMicros >= MIN_TIME_MICROS && unixMicros <= MAX_TIME_MICROS)) checkUnixMicros(unixMicros);
  const t = Math.floor(unixMicros);
  const day = floorDayOfMicros(t);
  const rem = t - day * MICROS_PER_DAY;
  const sec = Math.floor(rem / MICROS_PER_SECOND);
  const micro = rem - sec * MICROS_PER_SECOND;
  const p = civilPacked(day);
  const ms = Math.floor(micro / 1000);
  return pad4(packedYear(p)) + '-' + pad2(packedMonth(p)) + '-' + pad2(packedDay(p)) + 'T'
    + pad2(Math.floor(sec / 3600)) + ':' + pad2(Math.floor(sec / 60) % 60) + ':' + pad2(sec % 60) + '.'
    + pad3(ms) + pad3(micro - ms * 1000) + 'Z';
}

/** The unit an epoch number of this magnitude is read in (see the table at the top of this file). */
export function epochUnitOf(n: number): EpochUnit {
  const a = Math.abs(n);
  if (a < EPOCH_MILLIS_MIN) return 'seconds';
  if (a < EPOCH_MICROS_MIN) return 'milliseconds';
  if (a < EPOCH_NANOS_MIN) return 'microseconds';
  return 'nanoseconds';
}

function parseError(input: unknown, reason: string): EngineError {
  const shown = describeValue(input);
  return engineError('ENGINE_ERR_TIME_PARSE', `cannot parse time ${shown}: ${reason}`, { input: shown });
}

function rangeError(input: unknown, us: number): EngineError {
  const shown = describeValue(input);
  return engineError('ENGINE_ERR_TIME_RANGE', `time ${shown} is outside the supported range (years 1684..2255, ±(2^53 − 1) µs)`, { input: shown, value: us });
}

function finish(input: unknown, us: number): number {
  if (!(us >= MIN_TIME_MICROS && us <= MAX_TIME_MICROS)) throw rangeError(input, us);
  return us === 0 ? 0 : us; // no -0
}

/** Unix µs of an epoch number (JS number), unit by magnitude. */
function epochNumberToMicros(input: number): number {
  if (!Number.isFinite(input)) throw parseError(input, 'not a finite number');
  switch (epochUnitOf(input)) {
    case 'seconds': return finish(input, Number.isInteger(input) ? input * 1e6 : Math.round(input * 1e6));
    case 'milliseconds': return finish(input, Number.isInteger(input) ? input * 1e3 : Math.round(input * 1e3));
    case 'microseconds': return finish(input, Math.floor(input));
    case 'nanoseconds': return finish(input, Math.floor(input / 1e3));
  }
}

const EPOCH_STRING_RE = /^([+-]?)(\d+)(?:\.(\d+))?$/;

/** Unix µs of a decimal epoch string, exactly (no float rounding). */
function epochStringToMicros(input: string, sign: string, intDigits: string, fracDigits: string): number {
  const int = intDigits.replace(/^0+(?=\d)/, '');
  // Unit by the number of integer digits: < 1e11 has at most 11 digits, and so on.
  const keepFrac = int.length <= 11 ? 6 : int.length <= 14 ? 3 : int.length <= 17 ? 0 : -3;
  let whole: string;
  let dropped: string;
  if (keepFrac >= 0) {
    whole = int + fracDigits.slice(0, keepFrac).padEnd(keepFrac, '0');
    dropped = fracDigits.slice(keepFrac);
  } else {
    whole = int.slice(0, int.length - 3);
    dropped = int.slice(int.length - 3) + fracDigits;
  }
  whole = whole.replace(/^0+(?=\d)/, '');
  if (whole.length > 16) throw rangeError(input, Number(sign + whole));
  const abs = Number(whole);
  const anyDropped = /[1-9]/.test(dropped);
  // Truncation toward the past: for negative values a dropped non-zero remainder moves one µs down.
  return finish(input, sign === '-' ? -(abs + (anyDropped ? 1 : 0)) : abs);
}

const ISO_RE = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?)?$/;

function isoToMicros(input: string, s: string, opts: ParseTimeOptions | undefined): number {
  const m = ISO_RE.exec(s);
  if (m === null) throw parseError(input, 'expected ISO 8601 (2023-02-21T20:37:01.000001Z), a date YYYY-MM-DD or an epoch number');
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  if (month < 1 || month > 12) throw parseError(input, `month ${String(month)} is out of range 01..12`);
  if (day < 1 || day > daysInMonth(year, month)) throw parseError(input, `day ${String(day)} does not exist in ${String(year)}-${pad2(month)}`);
  const epochDay = daysFromCivil(year, month, day);
  if (m[4] === undefined) return finish(input, epochDay * MICROS_PER_DAY); // date only: UTC midnight
  const hour = Number(m[4]);
  const minute = Number(m[5]);
  const second = m[6] === undefined ? 0 : Number(m[6]);
  if (hour > 23) throw parseError(input, `hour ${String(hour)} is out of range 00..23`);
  if (minute > 59) throw parseError(input, `minute ${String(minute)} is out of range 00..59`);
  if (second > 59) throw parseError(input, `second ${String(second)} is out of range 00..59 (leap seconds are not representable)`);
  const frac = m[7] ?? '';
  if (frac.length > 9) throw parseError(input, `at most 9 fractional digits are accepted, got ${String(frac.length)}`);
  const micros = frac.length === 0 ? 0 : Number(frac.slice(0, 6).padEnd(6, '0'));
  const wall = epochDay * MICROS_PER_DAY + hour * MICROS_PER_HOUR + minute * MICROS_PER_MINUTE + second * MICROS_PER_SECOND + micros;
  if (m[8] !== undefined) return finish(input, wall); // Z
  if (m[9] !== undefined) {
    const oh = Number(m[10]);
    const om = m[11] === undefined ? 0 : Number(m[11]);
    if (oh > 23 || om > 59) throw parseError(input, `offset ${m[9]}${m[10] ?? ''}:${m[11] ?? '00'} is out of range`);
    const offset = (oh * 60 + om) * MICROS_PER_MINUTE;
    return finish(input, m[9] === '-' ? wall + offset : wall - offset);
  }
  // Naive local time.
  if (opts?.tz === undefined) return finish(input, wall);
  if (!(wall >= MIN_TIME_MICROS && wall <= MAX_TIME_MICROS)) throw rangeError(input, wall);
  return finish(input, wallMicrosToUnixMicros(wall, opts.tz, opts.disambiguation ?? 'compatible'));
}

/**
 * Parse a time to Unix µs: ISO 8601 (with or without fraction and offset), a date `YYYY-MM-DD`, or an
 * epoch number in s/ms/µs/ns chosen by magnitude (rules at the top of this file). Not for hot paths
 * (regular expressions, string slices).
 */
export function parseTimeToMicros(input: string | number, opts?: ParseTimeOptions): number {
  if (opts !== undefined && (typeof opts !== 'object' || opts === null)) {
    throw engineError('ENGINE_ERR_INVALID_ARG', `parseTimeToMicros options must be an object, got ${describeValue(opts)}`);
  }
  if (opts?.tz !== undefined) assertTimeZone(opts.tz); // a bad zone is reported even if the input has an offset
  if (typeof input === 'number') return epochNumberToMicros(input);
  if (typeof input !== 'string') throw parseError(input, `expected an ISO 8601 string or an epoch number, got ${input === null ? 'null' : typeof input}`);
  const s = input.trim();
  if (s.length === 0) throw parseError(input, 'empty string');
  const e = EPOCH_STRING_RE.exec(s);
  if (e !== null) return epochStringToMicros(input, e[1] ?? '', e[2] ?? '0', e[3] ?? '');
  return isoToMicros(input, s, opts);
}
