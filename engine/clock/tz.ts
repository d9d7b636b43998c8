/**
 * IANA time zones: naive local wall times <-> Unix µs, correct across DST transitions.
 *
 * Zone data comes from the ICU that ships with Node, through `Intl.DateTimeFormat` (no dependency).
 * One formatter is created per zone and cached; the zone's UTC offset at an instant is the difference
 * between the wall time the formatter prints and the instant.
 *
 * Offset cache. Asking ICU costs about a microsecond, too much per tick, so each zone keeps a
 * direct-mapped cache of UTC hours (1024 slots): on a miss the offset is read at the first and the last
 * second of the hour; when both agree, the whole hour has that offset, otherwise the hour is marked
 * mixed and every lookup in it asks ICU. This assumes no zone changes its offset and back within one
 * hour, which no rule in the tz database does (a property test checks the cache against ICU directly).
 *
 * Wall time -> instant. A wall time is expressed as "wall µs": the local date and time counted as if
 * it were UTC. The offsets one day before and one day after bound the candidates (at most one
 * transition in that window): zero valid candidates means the wall time is in a gap (spring forward),
 * two mean it is ambiguous (fall back). Policy, as Temporal's `disambiguation` option:
 *
 * | option                  | gap (nonexistent, e.g. NY 2025-03-09 02:30)      | overlap (ambiguous, e.g. NY 2025-11-02 01:30) |
 * |-------------------------|--------------------------------------------------|-----------------------------------------------|
 * | `'compatible'` (default)| shift forward by the gap: 03:30 EDT (07:30Z)     | the earlier instant: 01:30 EDT (05:30Z)       |
 * | `'earlier'`             | shift back by the gap: 01:30 EST (06:30Z)        | the earlier instant: 01:30 EDT (05:30Z)       |
 * | `'later'`               | shift forward by the gap: 03:30 EDT (07:30Z)     | the later instant: 01:30 EST (06:30Z)         |
 * | `'reject'`              | throws ENGINE_ERR_TIME_AMBIGUOUS                 | throws ENGINE_ERR_TIME_AMBIGUOUS              |
 *
 * Supported instants: safe-integer µs (years 1684..2255, see `civil.ts`). Offsets are whole seconds
 * (pre-1900 local mean time offsets such as −4:56:02 are kept exactly).
 */
import { engineError } from '../errors.ts';
import {
  MICROS_PER_DAY, MICROS_PER_HOUR, MICROS_PER_MINUTE, MICROS_PER_SECOND,
  checkUnixMicros, civilPacked, daysFromCivil, daysInMonth, describeValue, floorDayOfMicros, isoWeekday, packedDay,
  packedMonth, packedYear,
} from './civil.ts';

export type Disambiguation = 'compatible' | 'earlier' | 'later' | 'reject';

/** Local calendar fields of an instant in a zone. */
export interface ZonedParts {
  year: number;
  /** 1..12 */
  month: number;
  /** 1..31 */
  day: number;
  /** 0..23 */
  hour: number;
  minute: number;
  second: number;
  /** 0..999999, the µs within the second (Sierra's counter digits survive). */
  micros: number;
  /** ISO weekday of the local date: 1 = Monday .. 7 = Sunday. */
  weekday: number;
  /** UTC offset in minutes (local − UTC), e.g. −300 for EST; fractional only for pre-1900 mean time. */
  offsetMinutes: number;
}

interface Zone {
  /** Canonical IANA name as ICU reports it (e.g. 'US/Eastern' -> 'America/New_York'). */
  readonly name: string;
  /** null for UTC (offset always 0, no ICU call). */
  readonly fmt: Intl.DateTimeFormat | null;
  /** Cache: UTC hour index held by each slot (NaN = empty). */
  readonly hourKeys: Float64Array;
  /** Cache: offset in seconds for that hour, NaN when the offset changes inside the hour. */
  readonly hourOffsets: Float64Array;
}

const CACHE_SLOTS = 1024;
const CACHE_MASK = CACHE_SLOTS - 1;
const MS_PER_HOUR = 3_600_000;

const zonesByKey = new Map<string, Zone>();
const zonesByName = new Map<string, Zone>();
let lastKey = '';
let lastZone: Zone | null = null;

function createZone(tz: string): Zone {
  let fmt: Intl.DateTimeFormat;
  try {
    fmt = new Intl.DateTimeFormat('en-US', {
      timeZone: tz, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric',
      hour: 'numeric', minute: 'numeric', second: 'numeric',
    });
  } catch (err) {
    throw engineError('ENGINE_ERR_TIME_ZONE', `unknown time zone ${JSON.stringify(tz)} (expected an IANA name such as America/New_York)`, { tz }, err);
  }
  const name = fmt.resolvedOptions().timeZone;
  const shared = zonesByName.get(name);
  if (shared) return shared;
  const zone: Zone = {
    name,
    fmt: name === 'UTC' ? null : fmt,
    hourKeys: new Float64Array(CACHE_SLOTS).fill(NaN),
    hourOffsets: new Float64Array(CACHE_SLOTS),
  };
  zonesByName.set(name, zone);
  return zone;
}

/** The cached zone for an IANA name; throws ENGINE_ERR_TIME_ZONE for an unknown name or a non-string. */
function zoneOf(tz: string): Zone {
  if (tz === lastKey && lastZone !== null) return lastZone;
  if (typeof tz !== 'string' || tz.length === 0) {
    throw engineError('ENGINE_ERR_TIME_ZONE', `unknown time zone ${describeValue(tz)} (expected an IANA name such as America/New_York)`, { tz: describeValue(tz) });
  }
  let zone = zonesByKey.get(tz);
  if (zone === undefined) {
    zone = createZone(tz);
    zonesByKey.set(tz, zone);
  }
  lastKey = tz;
  lastZone = zone;
  return zone;
}

/** Canonical IANA name of `tz` (e.g. 'US/Eastern' -> 'America/New_York'), or ENGINE_ERR_TIME_ZONE. */
export function assertTimeZone(tz: unknown): string {
  return zoneOf(tz as string).name;
}

/** True when `tz` names a zone ICU knows. */
export function isValidTimeZone(tz: unknown): boolean {
  try {
    zoneOf(tz as string);
    return true;
  } catch {
    return false;
  }
}

// Scratch for the six numbers of a formatted date (month, day, year, hour, minute, second).
const FIELDS = new Int32Array(6);

/** Offset in seconds at the instant `ms` (integer ms), asking ICU. */
function icuOffsetSeconds(fmt: Intl.DateTimeFormat, ms: number): number {
  const s = fmt.format(ms); // e.g. "3/9/2025, 03:00:00"
  let n = 0;
  let v = -1;
  for (let i = 0; i < s.length && n < 6; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c >= 0 && c <= 9) v = v < 0 ? c : v * 10 + c;
    else if (v >= 0) { FIELDS[n++] = v; v = -1; }
  }
  if (v >= 0 && n < 6) FIELDS[n++] = v;
  if (n !== 6) throw engineError('ENGINE_ERR_INTERNAL', `unexpected Intl.DateTimeFormat output ${JSON.stringify(s)}`, { text: s });
  const hour = FIELDS[3]! === 24 ? 0 : FIELDS[3]!; // old ICU printed 24 for midnight with hour12:false
  const wallSec = daysFromCivil(FIELDS[2]!, FIELDS[0]!, FIELDS[1]!) * 86_400 + hour * 3600 + FIELDS[4]! * 60 + FIELDS[5]!;
  return wallSec - Math.floor(ms / 1000);
}

/** Offset in seconds (local − UTC) of `zone` at the instant `ms` (ms since the Unix epoch). */
function offsetSecondsAtMs(zone: Zone, ms: number): number {
  const fmt = zone.fmt;
  if (fmt === null) return 0;
  const hour = Math.floor(ms / MS_PER_HOUR);
  const slot = hour & CACHE_MASK;
  if (zone.hourKeys[slot] === hour) {
    const off = zone.hourOffsets[slot]!;
    return off === off ? off : icuOffsetSeconds(fmt, Math.floor(ms));
  }
  const first = icuOffsetSeconds(fmt, hour * MS_PER_HOUR);
  const last = icuOffsetSeconds(fmt, hour * MS_PER_HOUR + MS_PER_HOUR - 1000);
  zone.hourKeys[slot] = hour;
  zone.hourOffsets[slot] = first === last ? first : NaN;
  return first === last ? first : icuOffsetSeconds(fmt, Math.floor(ms));
}

/** UTC offset in seconds (local − UTC) of zone `tz` at `unixMicros`. */
export function offsetSecondsAt(unixMicros: number, tz: string): number {
  const zone = zoneOf(tz);
  checkUnixMicros(unixMicros);
  return offsetSecondsAtMs(zone, Math.floor(unixMicros / 1000));
}

/** UTC offset in seconds, asking ICU directly (no cache). For tests and benchmarks of the cache. */
export function offsetSecondsAtUncached(unixMicros: number, tz: string): number {
  const zone = zoneOf(tz);
  checkUnixMicros(unixMicros);
  return zone.fmt === null ? 0 : icuOffsetSeconds(zone.fmt, Math.floor(unixMicros / 1000));
}

/** Wall µs (local date-time counted as if UTC) of an instant in `tz`. Allocation-free. */
export function unixMicrosToWallMicros(unixMicros: number, tz: string): number {
  const zone = zoneOf(tz);
  checkUnixMicros(unixMicros);
  return unixMicros + offsetSecondsAtMs(zone, Math.floor(unixMicros / 1000)) * MICROS_PER_SECOND;
}

function checkDisambiguation(d: unknown): void {
  if (d !== 'compatible' && d !== 'earlier' && d !== 'later' && d !== 'reject') {
    throw engineError('ENGINE_ERR_INVALID_ARG', `disambiguation must be 'compatible', 'earlier', 'later' or 'reject', got ${describeValue(d)}`, { value: describeValue(d) });
  }
}

/** Core of wall -> instant on a resolved zone; see the table at the top of this file. */
function wallToUnix(zone: Zone, wallMicros: number, disambiguation: Disambiguation, tzLabel: string): number {
  if (zone.fmt === null) return wallMicros;
  const wallMs = Math.floor(wallMicros / 1000);
  const offBefore = offsetSecondsAtMs(zone, wallMs - 86_400_000);
  const offAfter = offsetSecondsAtMs(zone, wallMs + 86_400_000);
  const candBefore = wallMicros - offBefore * MICROS_PER_SECOND;
  const okBefore = offsetSecondsAtMs(zone, Math.floor(candBefore / 1000)) === offBefore;
  if (offBefore === offAfter && okBefore) return candBefore; // the common case: no transition nearby
  const candAfter = wallMicros - offAfter * MICROS_PER_SECOND;
  const okAfter = offsetSecondsAtMs(zone, Math.floor(candAfter / 1000)) === offAfter;
  if (okBefore && okAfter && candBefore !== candAfter) {
    // Overlap (fall back): the wall time occurs twice.
    if (disambiguation === 'reject') throw timeAmbiguous('ambiguous (it occurs twice, DST fall-back)', wallMicros, tzLabel);
    return disambiguation === 'later' ? Math.max(candBefore, candAfter) : Math.min(candBefore, candAfter);
  }
  if (okBefore) return candBefore;
  if (okAfter) return candAfter;
  // Gap (spring forward): the wall time does not exist. Shifting forward by the gap is reading it
  // with the offset in force before the transition; shifting back, with the offset after it.
  if (disambiguation === 'reject') throw timeAmbiguous('nonexistent (DST gap)', wallMicros, tzLabel);
  return disambiguation === 'earlier' ? candAfter : candBefore;
}

function timeAmbiguous(what: string, wallMicros: number, tz: string): Error {
  const wall = formatWall(wallMicros);
  return engineError('ENGINE_ERR_TIME_AMBIGUOUS', `local time ${wall} in ${tz} is ${what}`, { wall, tz });
}

function formatWall(wallMicros: number): string {
  const day = floorDayOfMicros(wallMicros);
  const p = civilPacked(day);
  const rem = wallMicros - day * MICROS_PER_DAY;
  const sec = Math.floor(rem / MICROS_PER_SECOND);
  const pad = (n: number, w: number): string => String(n).padStart(w, '0');
  return `${pad(packedYear(p), 4)}-${pad(packedMonth(p), 2)}-${pad(packedDay(p), 2)}T${pad(Math.floor(sec / 3600), 2)}:${pad(Math.floor(sec / 60) % 60, 2)}:${pad(sec % 60, 2)}.${pad(rem - sec * MICROS_PER_SECOND, 6)}`;
}

/**
 * Instant (Unix µs) of a wall time given as wall µs (local date-time counted as if UTC) in zone `tz`.
 * Allocation-free on the common path. Gaps and overlaps follow `disambiguation` (default 'compatible').
 */
export function wallMicrosToUnixMicros(wallMicros: number, tz: string, disambiguation: Disambiguation = 'compatible'): number {
  const zone = zoneOf(tz);
  checkDisambiguation(disambiguation);
  checkUnixMicros(wallMicros);
  const us = wallToUnix(zone, wallMicros, disambiguation, zone.name);
  checkUnixMicros(us);
  return us;
}

function checkField(name: string, v: number, min: number, max: number): void {
  if (!Number.isInteger(v) || v < min || v > max) {
    throw engineError('ENGINE_ERR_INVALID_ARG', `${name} must be an integer in ${String(min)}..${String(max)}, got ${describeValue(v)}`, { field: name, value: describeValue(v) });
  }
}

/**
 * Instant (Unix µs) of the local wall time `year-month-day hour:minute:second.micros` in zone `tz`.
 * Fields are validated (month 1..12, a real day of that month, hour 0..23, minute and second 0..59,
 * micros 0..999999: ENGINE_ERR_INVALID_ARG otherwise). DST gaps and overlaps follow `disambiguation`.
 */
export function wallTimeToUnixMicros(
  tz: string, year: number, month: number, day: number, hour: number, minute: number, second: number, micros: number,
  disambiguation: Disambiguation = 'compatible',
): number {
  const zone = zoneOf(tz);
  checkDisambiguation(disambiguation);
  checkField('year', year, 1, 9999);
  checkField('month', month, 1, 12);
  checkField('day', day, 1, daysInMonth(year, month));
  checkField('hour', hour, 0, 23);
  checkField('minute', minute, 0, 59);
  checkField('second', second, 0, 59);
  checkField('micros', micros, 0, 999_999);
  const wall = daysFromCivil(year, month, day) * MICROS_PER_DAY + hour * MICROS_PER_HOUR + minute * MICROS_PER_MINUTE + second * MICROS_PER_SECOND + micros;
  checkUnixMicros(wall);
  const us = wallToUnix(zone, wall, disambiguation, zone.name);
  checkUnixMicros(us);
  return us;
}

/**
 * Internal (session calendars): wall µs -> Unix µs on a zone already resolved by name, without
 * argument checks. `wallMicros` must be a safe integer.
 */
export function wallMicrosToUnixMicrosUnchecked(wallMicros: number, tz: string, disambiguation: Disambiguation): number {
  return wallToUnix(zoneOf(tz), wallMicros, disambiguation, tz);
}

/** Internal: wall µs of an instant without argument checks (the instant must be a safe integer). */
export function unixMicrosToWallMicrosUnchecked(unixMicros: number, tz: string): number {
  return unixMicros + offsetSecondsAtMs(zoneOf(tz), Math.floor(unixMicros / 1000)) * MICROS_PER_SECOND;
}

/** Fill `out` with the local fields of `unixMicros` in `tz`; allocation-free. Returns `out`. */
export function zonedPartsInto(unixMicros: number, tz: string, out: ZonedParts): ZonedParts {
  const zone = zoneOf(tz);
  checkUnixMicros(unixMicros);
  const off = offsetSecondsAtMs(zone, Math.floor(unixMicros / 1000));
  const wall = unixMicros + off * MICROS_PER_SECOND;
  const day = floorDayOfMicros(wall);
  const p = civilPacked(day);
  const rem = wall - day * MICROS_PER_DAY;
  const sec = Math.floor(rem / MICROS_PER_SECOND);
  out.year = packedYear(p);
  out.month = packedMonth(p);
  out.day = packedDay(p);
  out.hour = Math.floor(sec / 3600);
  out.minute = Math.floor(sec / 60) % 60;
  out.second = sec % 60;
  out.micros = rem - sec * MICROS_PER_SECOND;
  out.weekday = isoWeekday(day);
  out.offsetMinutes = off / 60;
  return out;
}

/** Local fields of `unixMicros` in `tz` (allocates the result; see {@link zonedPartsInto}). */
export function zonedParts(unixMicros: number, tz: string): ZonedParts {
  return zonedPartsInto(unixMicros, tz, { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0, micros: 0, weekday: 0, offsetMinutes: 0 });
}
