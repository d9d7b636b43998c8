import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { isEngineError, type EngineError } from '../errors.ts';
import { formatIsoMicros, parseTimeToMicros } from './iso.ts';
import {
  SessionCalendar, createSessionCalendar, isInSession, nextSessionOpen, sessionBounds, sessionCalendar, sessionOverlapMicros,
  tradingDate, tradingEpochDay, type CalendarInput,
} from './session.ts';
import { wallTimeToUnixMicros } from './tz.ts';

function thrown(fn: () => unknown): EngineError {
  try {
    fn();
  } catch (e) {
    if (isEngineError(e)) return e;
    throw new Error(`expected an EngineError, got ${String(e)}`);
  }
  throw new Error('expected a throw, got a value');
}

const HOUR = 3_600_000_000;
/** New York wall time -> Unix µs. */
const et = (y: number, mo: number, d: number, h: number, mi = 0, s = 0, us = 0): number =>
  wallTimeToUnixMicros('America/New_York', y, mo, d, h, mi, s, us);
const z = (us: number): string => formatIsoMicros(us);
const GLOBEX = 'cme-globex';
const RTH = 'us-equity-rth';

describe('cme-globex', () => {
  // 2025-01-05 is a Sunday (EST, no DST change nearby).
  test('Sunday 17:59:59.999999 ET is closed, 18:00 ET opens the Monday session', () => {
    expect(isInSession(et(2025, 1, 5, 17, 59, 59, 999_999), GLOBEX)).toBe(false);
    expect(isInSession(et(2025, 1, 5, 18), GLOBEX)).toBe(true);
    expect(tradingDate(et(2025, 1, 5, 18), GLOBEX)).toBe('2025-01-06');
    expect(sessionBounds(et(2025, 1, 5, 18), GLOBEX)).toEqual({
      startMicros: et(2025, 1, 5, 18), endMicros: et(2025, 1, 6, 17), tradingDate: '2025-01-06', inSession: true,
    });
    expect(z(et(2025, 1, 5, 18))).toBe('2025-01-05T23:00:00.000000Z');
    expect(nextSessionOpen(et(2025, 1, 5, 17, 59), GLOBEX)).toBe(et(2025, 1, 5, 18));
    expect(nextSessionOpen(et(2025, 1, 5, 18), GLOBEX)).toBe(et(2025, 1, 6, 18)); // strictly after
  });

  test('the daily maintenance break 17:00–18:00 ET, Monday to Thursday', () => {
    for (const d of [6, 7, 8, 9]) {
      expect(isInSession(et(2025, 1, d, 16, 59, 59, 999_999), GLOBEX)).toBe(true);
      expect(isInSession(et(2025, 1, d, 17), GLOBEX)).toBe(false);
      expect(isInSession(et(2025, 1, d, 17, 59, 59, 999_999), GLOBEX)).toBe(false);
      expect(isInSession(et(2025, 1, d, 18), GLOBEX)).toBe(true);
      expect(tradingDate(et(2025, 1, d, 16), GLOBEX)).toBe(`2025-01-0${String(d)}`);
      expect(tradingDate(et(2025, 1, d, 17, 30), GLOBEX)).toBe(`2025-01-${String(d + 1).padStart(2, '0')}`); // the next session's
      expect(tradingDate(et(2025, 1, d, 18), GLOBEX)).toBe(`2025-01-${String(d + 1).padStart(2, '0')}`);
    }
    expect(sessionBounds(et(2025, 1, 6, 17, 30), GLOBEX)).toEqual({
      startMicros: et(2025, 1, 6, 18), endMicros: et(2025, 1, 7, 17), tradingDate: '2025-01-07', inSession: false,
    });
    expect(nextSessionOpen(et(2025, 1, 6, 12), GLOBEX)).toBe(et(2025, 1, 6, 18));
  });

  test('Friday 17:00 ET closes the week; the weekend belongs to Monday', () => {
    expect(isInSession(et(2025, 1, 10, 16, 59, 59, 999_999), GLOBEX)).toBe(true);
    expect(isInSession(et(2025, 1, 10, 17), GLOBEX)).toBe(false);
    expect(isInSession(et(2025, 1, 10, 18), GLOBEX)).toBe(false); // no Friday evening session
    expect(isInSession(et(2025, 1, 11, 12), GLOBEX)).toBe(false);
    expect(isInSession(et(2025, 1, 12, 12), GLOBEX)).toBe(false);
    expect(tradingDate(et(2025, 1, 10, 16), GLOBEX)).toBe('2025-01-10');
    expect(tradingDate(et(2025, 1, 11, 12), GLOBEX)).toBe('2025-01-13');
    expect(nextSessionOpen(et(2025, 1, 10, 17), GLOBEX)).toBe(et(2025, 1, 12, 18));
    expect(sessionBounds(et(2025, 1, 11, 0), GLOBEX)).toEqual({
      startMicros: et(2025, 1, 12, 18), endMicros: et(2025, 1, 13, 17), tradingDate: '2025-01-13', inSession: false,
    });
  });

  test('DST weeks: sessions keep 18:00/17:00 ET while their UTC times move by an hour', () => {
    // Friday 2025-03-07 closes at 22:00Z (EST); Sunday 2025-03-09 opens at 22:00Z (EDT, after 02:00 that day).
    expect(z(sessionBounds(et(2025, 3, 7, 12), GLOBEX).endMicros)).toBe('2025-03-07T22:00:00.000000Z');
    const mon = sessionBounds(et(2025, 3, 9, 20), GLOBEX);
    expect(z(mon.startMicros)).toBe('2025-03-09T22:00:00.000000Z');
    expect(z(mon.endMicros)).toBe('2025-03-10T21:00:00.000000Z');
    expect(mon.tradingDate).toBe('2025-03-10');
    expect(mon.endMicros - mon.startMicros).toBe(23 * HOUR);
    expect(isInSession(parseTimeToMicros('2025-03-09T21:59:59.999999Z'), GLOBEX)).toBe(false);
    expect(isInSession(parseTimeToMicros('2025-03-09T22:00:00Z'), GLOBEX)).toBe(true);
    // Fall back: Friday 2025-10-31 closes 21:00Z (EDT), Sunday 2025-11-02 opens 23:00Z (EST).
    expect(z(sessionBounds(et(2025, 10, 31, 12), GLOBEX).endMicros)).toBe('2025-10-31T21:00:00.000000Z');
    expect(z(nextSessionOpen(et(2025, 10, 31, 17), GLOBEX))).toBe('2025-11-02T23:00:00.000000Z');
    expect(isInSession(parseTimeToMicros('2025-11-02T22:30:00Z'), GLOBEX)).toBe(false); // 17:30 EST
    // Friday 00:00Z to Friday 00:00Z: 22 + 4 × 23 + 1 = 115 open hours in a standard week, and one more
    // in the DST week, because the sessions after the change sit an hour earlier in UTC.
    expect(sessionOverlapMicros(parseTimeToMicros('2025-01-10T00:00:00Z'), parseTimeToMicros('2025-01-17T00:00:00Z'), GLOBEX)).toBe(115 * HOUR);
    expect(sessionOverlapMicros(parseTimeToMicros('2025-03-07T00:00:00Z'), parseTimeToMicros('2025-03-14T00:00:00Z'), GLOBEX)).toBe(116 * HOUR);
  });

  test('a full standard week is 5 × 23 hours', () => {
    expect(sessionOverlapMicros(et(2025, 1, 5, 12), et(2025, 1, 11, 12), GLOBEX)).toBe(5 * 23 * HOUR);
  });
});

describe('us-equity-rth', () => {
  test('09:30 to 16:00 ET, Monday to Friday', () => {
    expect(isInSession(et(2025, 1, 6, 9, 29, 59, 999_999), RTH)).toBe(false);
    expect(isInSession(et(2025, 1, 6, 9, 30), RTH)).toBe(true);
    expect(isInSession(et(2025, 1, 6, 15, 59, 59, 999_999), RTH)).toBe(true);
    expect(isInSession(et(2025, 1, 6, 16), RTH)).toBe(false);
    expect(isInSession(et(2025, 1, 11, 12), RTH)).toBe(false); // Saturday
    expect(tradingDate(et(2025, 1, 6, 12), RTH)).toBe('2025-01-06');
    expect(tradingDate(et(2025, 1, 6, 20), RTH)).toBe('2025-01-07');
    expect(nextSessionOpen(et(2025, 1, 10, 16), RTH)).toBe(et(2025, 1, 13, 9, 30));
    expect(sessionOverlapMicros(et(2025, 1, 5, 0), et(2025, 1, 12, 0), RTH)).toBe(5 * 6.5 * HOUR);
  });

  test('DST: 14:30Z–21:00Z in winter, 13:30Z–20:00Z in summer', () => {
    const fri = sessionBounds(et(2025, 3, 7, 12), RTH);
    expect([z(fri.startMicros), z(fri.endMicros)]).toEqual(['2025-03-07T14:30:00.000000Z', '2025-03-07T21:00:00.000000Z']);
    const mon = sessionBounds(et(2025, 3, 10, 12), RTH);
    expect([z(mon.startMicros), z(mon.endMicros)]).toEqual(['2025-03-10T13:30:00.000000Z', '2025-03-10T20:00:00.000000Z']);
  });
});

describe('24x7', () => {
  test('always open; trading date is the UTC date; sessions are UTC days', () => {
    const t = parseTimeToMicros('2025-03-09T02:30:00Z');
    expect(isInSession(t, '24x7')).toBe(true);
    expect(tradingDate(parseTimeToMicros('2025-03-09T23:59:59.999999Z'), '24x7')).toBe('2025-03-09');
    expect(sessionBounds(t, '24x7')).toEqual({
      startMicros: parseTimeToMicros('2025-03-09'), endMicros: parseTimeToMicros('2025-03-10'), tradingDate: '2025-03-09', inSession: true,
    });
    expect(nextSessionOpen(t, '24x7')).toBe(parseTimeToMicros('2025-03-10'));
    const a = parseTimeToMicros('2025-01-01T13:00:00Z');
    expect(sessionOverlapMicros(a, a + 400 * 24 * HOUR + 17, '24x7')).toBe(400 * 24 * HOUR + 17);
  });
});

describe('closed dates (holidays)', () => {
  const xmas = createSessionCalendar(GLOBEX, { closedDates: ['2025-12-25'] });

  test('closing trading date 2025-12-25 removes Wed 18:00 ET → Thu 17:00 ET only', () => {
    expect(isInSession(et(2025, 12, 24, 16), xmas)).toBe(true);
    expect(tradingDate(et(2025, 12, 24, 16), xmas)).toBe('2025-12-24');
    expect(isInSession(et(2025, 12, 24, 20), xmas)).toBe(false);
    expect(isInSession(et(2025, 12, 25, 12), xmas)).toBe(false);
    expect(isInSession(et(2025, 12, 25, 18), xmas)).toBe(true);
    expect(tradingDate(et(2025, 12, 25, 12), xmas)).toBe('2025-12-26');
    expect(nextSessionOpen(et(2025, 12, 24, 17), xmas)).toBe(et(2025, 12, 25, 18));
    expect(nextSessionOpen(et(2025, 12, 24, 17), GLOBEX)).toBe(et(2025, 12, 24, 18));
    expect(sessionOverlapMicros(et(2025, 12, 24, 12), et(2025, 12, 26, 12), xmas)).toBe((5 + 18) * HOUR);
    expect(xmas.closedDates).toEqual(['2025-12-25']);
  });

  test('RTH closed on 2025-07-04 (a Friday): Thursday close → Monday open', () => {
    const cal = { name: RTH, closedDates: ['2025-07-04'] } as const;
    expect(nextSessionOpen(et(2025, 7, 3, 16), cal)).toBe(et(2025, 7, 7, 9, 30));
    expect(isInSession(et(2025, 7, 4, 12), cal)).toBe(false);
    expect(sessionCalendar(cal)).toBe(sessionCalendar(cal)); // a config object compiles once
  });

  test('bad calendar configuration is ENGINE_ERR_CONFIG', () => {
    expect(thrown(() => createSessionCalendar(GLOBEX, { closedDates: ['2025-02-30'] })).code).toBe('ENGINE_ERR_CONFIG');
    expect(thrown(() => createSessionCalendar(GLOBEX, { closedDates: ['25-12-2025'] })).message).toContain('25-12-2025');
    expect(thrown(() => createSessionCalendar(GLOBEX, { closedDates: [20251225 as unknown as string] })).code).toBe('ENGINE_ERR_CONFIG');
    expect(thrown(() => createSessionCalendar(GLOBEX, { closedDates: '2025-12-25' as unknown as string[] })).code).toBe('ENGINE_ERR_CONFIG');
    expect(thrown(() => isInSession(0, 'nyse' as CalendarInput)).code).toBe('ENGINE_ERR_CONFIG');
    expect(thrown(() => isInSession(0, { name: 'toString' } as unknown as CalendarInput)).code).toBe('ENGINE_ERR_CONFIG');
    expect(thrown(() => isInSession(0, 42 as unknown as CalendarInput)).code).toBe('ENGINE_ERR_CONFIG');
  });

  test('a calendar closed for longer than the search window is a coded error, not a hang', () => {
    const closed: string[] = [];
    for (let d = 0; d < 3700; d++) closed.push(formatIsoMicros(parseTimeToMicros('2030-01-01') + d * 24 * HOUR).slice(0, 10));
    const cal = createSessionCalendar('24x7', { closedDates: closed });
    expect(thrown(() => isInSession(parseTimeToMicros('2030-01-02'), cal)).code).toBe('ENGINE_ERR_CONFIG');
    expect(isInSession(parseTimeToMicros('2029-12-31T12:00:00Z'), cal)).toBe(true);
  });
});

describe('sessionOverlapMicros', () => {
  test('inside one session, across the daily break, across the weekend, empty or reversed', () => {
    expect(sessionOverlapMicros(et(2025, 1, 6, 10), et(2025, 1, 6, 11, 30), GLOBEX)).toBe(1.5 * HOUR);
    expect(sessionOverlapMicros(et(2025, 1, 6, 16), et(2025, 1, 6, 19), GLOBEX)).toBe(2 * HOUR);
    expect(sessionOverlapMicros(et(2025, 1, 6, 17), et(2025, 1, 6, 18), GLOBEX)).toBe(0);
    expect(sessionOverlapMicros(et(2025, 1, 10, 16), et(2025, 1, 12, 19), GLOBEX)).toBe(2 * HOUR);
    expect(sessionOverlapMicros(et(2025, 1, 6, 11), et(2025, 1, 6, 10), GLOBEX)).toBe(0);
    expect(sessionOverlapMicros(et(2025, 1, 6, 11), et(2025, 1, 6, 11), GLOBEX)).toBe(0);
  });

  test('bad times are coded errors', () => {
    expect(thrown(() => sessionOverlapMicros(Number.NaN, 0, GLOBEX)).code).toBe('ENGINE_ERR_INVALID_ARG');
    expect(thrown(() => sessionOverlapMicros(0, Number.POSITIVE_INFINITY, GLOBEX)).code).toBe('ENGINE_ERR_TIME_RANGE');
    expect(thrown(() => isInSession('2025-01-06' as unknown as number, GLOBEX)).code).toBe('ENGINE_ERR_INVALID_ARG');
  });

  const span = fc.integer({ min: parseTimeToMicros('2024-01-01'), max: parseTimeToMicros('2026-12-31') });
  const calendars = fc.constantFrom<CalendarInput>(GLOBEX, RTH, '24x7', { name: GLOBEX, closedDates: ['2025-12-25', '2025-01-01'] });

  test('additive, bounded by the interval, and 1 µs overlap ⇔ isInSession (property)', () => {
    fc.assert(fc.property(span, fc.integer({ min: 0, max: 20 * 24 * HOUR }), fc.integer({ min: 0, max: 20 * 24 * HOUR }), calendars, (a, d1, d2, cal) => {
      const b = a + d1;
      const c = b + d2;
      const ab = sessionOverlapMicros(a, b, cal);
      const bc = sessionOverlapMicros(b, c, cal);
      expect(sessionOverlapMicros(a, c, cal)).toBe(ab + bc);
      expect(ab).toBeGreaterThanOrEqual(0);
      expect(ab).toBeLessThanOrEqual(b - a);
      expect(sessionOverlapMicros(a, a + 1, cal)).toBe(isInSession(a, cal) ? 1 : 0);
    }), { numRuns: 300 });
  });

  test('session answers agree with a brute-force walk hour by hour over 2025', () => {
    // Independent of the session code: wall-clock rules evaluated on zonedParts.
    const fmt = new Intl.DateTimeFormat('en-US', { timeZone: 'America/New_York', weekday: 'short', hour: 'numeric', minute: 'numeric', hourCycle: 'h23' });
    const start = parseTimeToMicros('2025-01-01T00:30:00Z');
    const mismatches: string[] = [];
    let inGlobex = 0;
    let inRth = 0;
    for (let t = start; t < start + 365 * 24 * HOUR; t += HOUR) {
      const parts: Record<string, string> = {};
      for (const p of fmt.formatToParts(t / 1000)) parts[p.type] = p.value;
      const wd = parts.weekday ?? '';
      const mins = Number(parts.hour) * 60 + Number(parts.minute);
      const weekday = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri'].includes(wd);
      const g = (wd === 'Sun' && mins >= 18 * 60) || (weekday && wd !== 'Fri' && (mins < 17 * 60 || mins >= 18 * 60)) || (wd === 'Fri' && mins < 17 * 60);
      const r = weekday && mins >= 9 * 60 + 30 && mins < 16 * 60;
      if (isInSession(t, GLOBEX) !== g) mismatches.push(`${formatIsoMicros(t)} globex should be ${String(g)}`);
      if (isInSession(t, RTH) !== r) mismatches.push(`${formatIsoMicros(t)} rth should be ${String(r)}`);
      if (g) inGlobex++;
      if (r) inRth++;
    }
    expect(mismatches).toEqual([]);
    expect(inGlobex).toBeGreaterThan(5000);
    expect(inRth).toBeGreaterThan(1500);
  });
});

describe('lookup cache', () => {
  test('a reused calendar answers like a fresh one for times in any order (property)', () => {
    const shared = createSessionCalendar(GLOBEX, { closedDates: ['2025-12-25'] });
    const times = fc.array(fc.integer({ min: parseTimeToMicros('2025-01-01'), max: parseTimeToMicros('2026-01-31') }), { minLength: 1, maxLength: 40 });
    fc.assert(fc.property(times, fc.boolean(), (ts, sorted) => {
      if (sorted) ts.sort((x, y) => x - y);
      for (const t of ts) {
        const fresh = new SessionCalendar(GLOBEX, ['2025-12-25']);
        expect(sessionBounds(t, shared)).toEqual(sessionBounds(t, fresh));
        expect(tradingEpochDay(t, shared)).toBe(tradingEpochDay(t, fresh));
        expect(nextSessionOpen(t, shared)).toBe(nextSessionOpen(t, new SessionCalendar(GLOBEX, ['2025-12-25'])));
      }
    }), { numRuns: 100 });
  });
});
