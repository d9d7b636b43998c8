/**
 * Trading-session calendars: when is a market open, and which trading date does a time belong to.
 *
 * A calendar is a list of sessions, one per trading date D, each a half-open interval [start, end):
 *
 * | name            | zone             | session of trading date D                      | trading dates |
 * |-----------------|------------------|------------------------------------------------|---------------|
 * | `cme-globex`    | America/New_York | D−1 18:00 ET → D 17:00 ET                       | Mon–Fri       |
 * | `us-equity-rth` | America/New_York | D 09:30 ET → D 16:00 ET                         | Mon–Fri       |
 * | `24x7`          | UTC              | D 00:00 UTC → D+1 00:00 UTC (contiguous)        | every day     |
 *
 * `cme-globex` is the CME equity-index futures schedule: Sunday 18:00 ET through Friday 17:00 ET with
 * a daily maintenance break 17:00–18:00 ET Monday–Thursday; a session opened at 18:00 ET belongs to the
 * next calendar day (the Monday session opens Sunday 18:00). Wall times are converted per date in the
 * calendar's zone, so sessions follow DST (a session spanning a DST change is 22 or 24 hours long).
 *
 * Holidays: `closedDates` lists trading dates ('YYYY-MM-DD') whose session does not happen at all
 * (for `cme-globex`, '2025-12-25' removes Wed 2025-12-24 18:00 ET → Thu 2025-12-25 17:00 ET). No holiday
 * table is built in (we cannot verify one here) and early closes (half days) are not modelled: a half
 * day looks like a full session.
 *
 * Lookups keep the last answer: for a time inside [previous session end, session end) the same
 * session is the "containing or next" one, so a stream of ticks in time order costs two comparisons
 * per call. Each `SessionCalendar` owns that cache: use one instance per thread (as everything here).
 */
import { engineError } from '../errors.ts';
import {
  MICROS_PER_DAY, MICROS_PER_MINUTE, checkUnixMicros, describeValue, floorDayOfMicros, formatEpochDay, isoWeekday,
  parseEpochDay,
} from './civil.ts';
import { assertTimeZone, unixMicrosToWallMicrosUnchecked, wallMicrosToUnixMicrosUnchecked } from './tz.ts';

export type CalendarName = 'cme-globex' | 'us-equity-rth' | '24x7';

export interface CalendarConfig {
  name: CalendarName;
  /** Trading dates 'YYYY-MM-DD' whose whole session is closed (holidays). */
  closedDates?: readonly string[];
}

/** A calendar by name (no holidays), a config, or a compiled calendar (fastest: keeps its cache). */
export type CalendarInput = CalendarName | CalendarConfig | SessionCalendar;

export interface SessionBounds {
  /** Session open, Unix µs (inclusive). */
  startMicros: number;
  /** Session close, Unix µs (exclusive). */
  endMicros: number;
  /** Trading date of the session, 'YYYY-MM-DD'. */
  tradingDate: string;
  /** Whether the queried time is inside this session (else the session is the next one after it). */
  inSession: boolean;
}

interface CalendarSpec {
  readonly tz: string;
  /** The session of trading date D opens on local day D + openDayOffset ... */
  readonly openDayOffset: number;
  /** ... at this minute of the day, and closes on local day D at closeMinute (1440 = next midnight). */
  readonly openMinute: number;
  readonly closeMinute: number;
  /** Bit (1 << isoWeekday) set for weekdays that are trading dates (1 = Monday .. 7 = Sunday). */
  readonly weekdayMask: number;
}

const MON_FRI = (1 << 1) | (1 << 2) | (1 << 3) | (1 << 4) | (1 << 5);
const ALL_DAYS = MON_FRI | (1 << 6) | (1 << 7);

const SPECS: Readonly<Record<CalendarName, CalendarSpec>> = {
  'cme-globex': { tz: 'America/New_York', openDayOffset: -1, openMinute: 18 * 60, closeMinute: 17 * 60, weekdayMask: MON_FRI },
  'us-equity-rth': { tz: 'America/New_York', openDayOffset: 0, openMinute: 9 * 60 + 30, closeMinute: 16 * 60, weekdayMask: MON_FRI },
  '24x7': { tz: 'UTC', openDayOffset: 0, openMinute: 0, closeMinute: 24 * 60, weekdayMask: ALL_DAYS },
};

/** How far a lookup searches for a trading date before deciding the calendar has none. */
const MAX_SEARCH_DAYS = 3660;

export const CALENDAR_NAMES: readonly CalendarName[] = Object.keys(SPECS) as CalendarName[];

export class SessionCalendar {
  readonly name: CalendarName;
  readonly tz: string;
  /** Closed trading dates, sorted, as 'YYYY-MM-DD'. */
  readonly closedDates: readonly string[];
  readonly #spec: CalendarSpec;
  readonly #closedDays: Set<number>;
  // Last lookup: for prevEnd <= t < end the containing-or-next session is (start, end, day).
  #prevEnd = 0;
  #start = 0;
  #end = -Infinity; // empty cache: no t satisfies t < -Infinity
  #day = 0;

  constructor(name: CalendarName, closedDates: readonly string[] = []) {
    const spec = Object.hasOwn(SPECS, name) ? SPECS[name] : undefined;
    if (spec === undefined) {
      throw engineError('ENGINE_ERR_CONFIG', `unknown session calendar ${describeValue(name)}; expected one of ${CALENDAR_NAMES.join(', ')}`, { calendar: describeValue(name) });
    }
    if (!Array.isArray(closedDates)) {
      throw engineError('ENGINE_ERR_CONFIG', `closedDates of calendar ${name} must be an array of 'YYYY-MM-DD' strings`, { calendar: name });
    }
    const days = new Set<number>();
    for (const d of closedDates as unknown[]) {
      const day = typeof d === 'string' ? parseEpochDay(d) : NaN;
      if (Number.isNaN(day)) {
        throw engineError('ENGINE_ERR_CONFIG', `closed date ${describeValue(d)} of calendar ${name} is not a valid 'YYYY-MM-DD' date`, { calendar: name, date: describeValue(d) });
      }
      days.add(day);
    }
    this.name = name;
    this.#spec = spec;
    this.tz = assertTimeZone(spec.tz);
    this.#closedDays = days;
    this.closedDates = [...days].sort((a, b) => a - b).map(formatEpochDay);
  }

  /** True when `epochDay` (days since 1970-01-01) is a trading date of this calendar. */
  isTradingDay(epochDay: number): boolean {
    return (this.#spec.weekdayMask & (1 << isoWeekday(epochDay))) !== 0 && !this.#closedDays.has(epochDay);
  }

  /** Session open (Unix µs) of trading date `epochDay`, whether or not it is a trading date. */
  openOf(epochDay: number): number {
    const s = this.#spec;
    return wallMicrosToUnixMicrosUnchecked((epochDay + s.openDayOffset) * MICROS_PER_DAY + s.openMinute * MICROS_PER_MINUTE, s.tz, 'compatible');
  }

  /** Session close (Unix µs, exclusive) of trading date `epochDay`. */
  closeOf(epochDay: number): number {
    const s = this.#spec;
    return wallMicrosToUnixMicrosUnchecked(epochDay * MICROS_PER_DAY + s.closeMinute * MICROS_PER_MINUTE, s.tz, 'compatible');
  }

  /**
   * Find the session containing `t`, or the next one after it, and keep it as the current lookup
   * (read with {@link startMicros}, {@link endMicros}, {@link tradingEpochDay}). `t` must be a safe
   * integer (the exported functions check it). Allocation-free.
   */
  locate(t: number): void {
    if (t >= this.#prevEnd && t < this.#end) return;
    const localDay = floorDayOfMicros(unixMicrosToWallMicrosUnchecked(t, this.tz));
    // A session of trading date D ends on local day D (at the latest at the midnight that starts D+1),
    // so no session before D = localDay can contain t; starting one day earlier is a safety margin.
    // Sessions are ordered and disjoint, so the first trading date whose session ends after t is the
    // answer (containing t when its open is at or before t, else the next one).
    for (let d = localDay - 1; d < localDay + MAX_SEARCH_DAYS; d++) {
      if (!this.isTradingDay(d)) continue;
      const end = this.closeOf(d);
      if (end <= t) continue;
      const start = this.openOf(d);
      let prevEnd = start; // fallback: [start, end) is always a valid cache range
      for (let p = d - 1; p >= d - MAX_SEARCH_DAYS; p--) {
        if (this.isTradingDay(p)) { prevEnd = this.closeOf(p); break; }
      }
      this.#prevEnd = prevEnd;
      this.#start = start;
      this.#end = end;
      this.#day = d;
      return;
    }
    throw engineError('ENGINE_ERR_CONFIG', `calendar ${this.name} has no session within ${String(MAX_SEARCH_DAYS)} days after ${formatEpochDay(localDay)} (too many closed dates?)`, { calendar: this.name });
  }

  /** Open of the session found by the last {@link locate}. */
  get startMicros(): number { return this.#start; }
  /** Close (exclusive) of the session found by the last {@link locate}. */
  get endMicros(): number { return this.#end; }
  /** Trading date (epoch day) of the session found by the last {@link locate}. */
  get tradingEpochDay(): number { return this.#day; }
}

const byName = new Map<CalendarName, SessionCalendar>();
const byConfig = new WeakMap<object, SessionCalendar>();

/** Compile a calendar once and pass it to the functions below (it keeps the lookup cache). */
export function createSessionCalendar(name: CalendarName, opts: { closedDates?: readonly string[] } = {}): SessionCalendar {
  return new SessionCalendar(name, opts.closedDates ?? []);
}

/** Resolve a name, config or calendar to a compiled calendar (names and config objects are cached). */
export function sessionCalendar(input: CalendarInput): SessionCalendar {
  if (input instanceof SessionCalendar) return input;
  if (typeof input === 'string') {
    let cal = byName.get(input);
    if (cal === undefined) {
      cal = new SessionCalendar(input);
      byName.set(input, cal);
    }
    return cal;
  }
  if (typeof input === 'object' && input !== null) {
    let cal = byConfig.get(input);
    if (cal === undefined) {
      cal = new SessionCalendar(input.name, input.closedDates ?? []);
      byConfig.set(input, cal);
    }
    return cal;
  }
  throw engineError('ENGINE_ERR_CONFIG', `a session calendar must be a name (${CALENDAR_NAMES.join(', ')}) or a config object, got ${describeValue(input)}`);
}

/** True when `unixMicros` is inside a session of `calendar` (open inclusive, close exclusive). */
export function isInSession(unixMicros: number, calendar: CalendarInput): boolean {
  checkUnixMicros(unixMicros);
  const cal = sessionCalendar(calendar);
  cal.locate(unixMicros);
  return unixMicros >= cal.startMicros;
}

/** The session containing `unixMicros`, or the next one after it. Allocates the result. */
export function sessionBounds(unixMicros: number, calendar: CalendarInput): SessionBounds {
  checkUnixMicros(unixMicros);
  const cal = sessionCalendar(calendar);
  cal.locate(unixMicros);
  return {
    startMicros: cal.startMicros,
    endMicros: cal.endMicros,
    tradingDate: formatEpochDay(cal.tradingEpochDay),
    inSession: unixMicros >= cal.startMicros,
  };
}

/**
 * Trading date (days since 1970-01-01) of the session containing `unixMicros`; outside sessions
 * (daily break, weekend, overnight for RTH) the trading date of the next session. Allocation-free.
 */
export function tradingEpochDay(unixMicros: number, calendar: CalendarInput): number {
  checkUnixMicros(unixMicros);
  const cal = sessionCalendar(calendar);
  cal.locate(unixMicros);
  return cal.tradingEpochDay;
}

/** {@link tradingEpochDay} as 'YYYY-MM-DD'. */
export function tradingDate(unixMicros: number, calendar: CalendarInput): string {
  return formatEpochDay(tradingEpochDay(unixMicros, calendar));
}

/**
 * The first session open strictly after `unixMicros` (inside a session: the open of the following
 * session; exactly at an open: the next one, so a scheduler never gets the same time twice).
 */
export function nextSessionOpen(unixMicros: number, calendar: CalendarInput): number {
  checkUnixMicros(unixMicros);
  const cal = sessionCalendar(calendar);
  cal.locate(unixMicros);
  if (cal.startMicros > unixMicros) return cal.startMicros;
  cal.locate(cal.endMicros);
  return cal.startMicros;
}

/**
 * How many µs of [startMicros, endMicros) fall inside sessions (0 when end ≤ start). For gap detection:
 * a silence between two ticks only counts for the part of it the market was open.
 */
export function sessionOverlapMicros(startMicros: number, endMicros: number, calendar: CalendarInput): number {
  checkUnixMicros(startMicros);
  checkUnixMicros(endMicros);
  const cal = sessionCalendar(calendar);
  if (endMicros <= startMicros) return 0;
  let total = 0;
  let t = startMicros;
  while (t < endMicros) {
    cal.locate(t);
    const s = cal.startMicros;
    const e = cal.endMicros;
    if (s >= endMicros) break;
    total += Math.min(e, endMicros) - Math.max(s, t);
    t = e;
  }
  return total;
}
