import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { isEngineError, type EngineError } from '../errors.ts';
import { formatIsoMicros, parseTimeToMicros } from './iso.ts';
import {
  assertTimeZone, isValidTimeZone, offsetSecondsAt, offsetSecondsAtUncached, unixMicrosToWallMicros, wallMicrosToUnixMicros,
  wallTimeToUnixMicros, zonedParts, zonedPartsInto, type Disambiguation, type ZonedParts,
} from './tz.ts';

function thrown(fn: () => unknown): EngineError {
  try {
    fn();
  } catch (e) {
    if (isEngineError(e)) return e;
    throw new Error(`expected an EngineError, got ${String(e)}`);
  }
  throw new Error('expected a throw, got a value');
}

const NY = 'America/New_York';
const CHI = 'America/Chicago';
const LON = 'Europe/London';
const iso = (s: string): number => parseTimeToMicros(s);
const wall = (tz: string, y: number, mo: number, d: number, h: number, mi: number, d9n: Disambiguation = 'compatible'): string =>
  formatIsoMicros(wallTimeToUnixMicros(tz, y, mo, d, h, mi, 0, 0, d9n));

/** Independent oracle: ICU's own parts and long offset name, read through formatToParts. */
const oracleFormats = new Map<string, Intl.DateTimeFormat>();
function oracle(us: number, tz: string): Omit<ZonedParts, 'weekday'> & { weekday: string } {
  let f = oracleFormats.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: tz, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric',
      minute: 'numeric', second: 'numeric', weekday: 'short', timeZoneName: 'longOffset',
    });
    oracleFormats.set(tz, f);
  }
  const ms = Math.floor(us / 1000);
  const p: Record<string, string> = {};
  for (const part of f.formatToParts(ms)) p[part.type] = part.value;
  const off = /^GMT(?:([+-])(\d\d):(\d\d)(?::(\d\d))?)?$/.exec(p.timeZoneName ?? '');
  if (!off) throw new Error(`unexpected offset name ${String(p.timeZoneName)}`);
  const offSec = off[1] === undefined ? 0 : (off[1] === '-' ? -1 : 1) * (Number(off[2]) * 3600 + Number(off[3]) * 60 + Number(off[4] ?? 0));
  return {
    year: Number(p.year), month: Number(p.month), day: Number(p.day), hour: Number(p.hour), minute: Number(p.minute),
    second: Number(p.second), micros: us - ms * 1000 + (ms - Math.floor(ms / 1000) * 1000) * 1000,
    weekday: p.weekday ?? '', offsetMinutes: offSec / 60,
  };
}
const WEEKDAYS = ['', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

describe('New York DST 2025', () => {
  test('2025-03-09 02:30 does not exist: compatible/later shift forward, earlier back, reject throws', () => {
    expect(wall(NY, 2025, 3, 9, 2, 30)).toBe('2025-03-09T07:30:00.000000Z'); // 03:30 EDT
    expect(wall(NY, 2025, 3, 9, 2, 30, 'later')).toBe('2025-03-09T07:30:00.000000Z');
    expect(wall(NY, 2025, 3, 9, 2, 30, 'earlier')).toBe('2025-03-09T06:30:00.000000Z'); // 01:30 EST
    const e = thrown(() => wallTimeToUnixMicros(NY, 2025, 3, 9, 2, 30, 0, 0, 'reject'));
    expect(e.code).toBe('ENGINE_ERR_TIME_AMBIGUOUS');
    expect(e.message).toContain('2025-03-09T02:30:00.000000');
    expect(e.message).toContain('nonexistent');
    expect(zonedParts(iso('2025-03-09T07:30:00Z'), NY)).toMatchObject({ hour: 3, minute: 30, offsetMinutes: -240 });
  });

  test('2025-11-02 01:30 is ambiguous: compatible/earlier take EDT, later EST, reject throws', () => {
    expect(wall(NY, 2025, 11, 2, 1, 30)).toBe('2025-11-02T05:30:00.000000Z'); // 01:30 EDT
    expect(wall(NY, 2025, 11, 2, 1, 30, 'earlier')).toBe('2025-11-02T05:30:00.000000Z');
    expect(wall(NY, 2025, 11, 2, 1, 30, 'later')).toBe('2025-11-02T06:30:00.000000Z'); // 01:30 EST
    const e = thrown(() => wallTimeToUnixMicros(NY, 2025, 11, 2, 1, 30, 0, 0, 'reject'));
    expect(e.code).toBe('ENGINE_ERR_TIME_AMBIGUOUS');
    expect(e.message).toContain('ambiguous');
    expect(zonedParts(iso('2025-11-02T05:30:00Z'), NY)).toMatchObject({ hour: 1, minute: 30, offsetMinutes: -240 });
    expect(zonedParts(iso('2025-11-02T06:30:00Z'), NY)).toMatchObject({ hour: 1, minute: 30, offsetMinutes: -300 });
  });

  test('the µs around each transition', () => {
    const before = iso('2025-03-09T06:59:59.999999Z');
    expect(zonedParts(before, NY)).toEqual({ year: 2025, month: 3, day: 9, hour: 1, minute: 59, second: 59, micros: 999_999, weekday: 7, offsetMinutes: -300 });
    expect(zonedParts(before + 1, NY)).toEqual({ year: 2025, month: 3, day: 9, hour: 3, minute: 0, second: 0, micros: 0, weekday: 7, offsetMinutes: -240 });
    expect(wallTimeToUnixMicros(NY, 2025, 3, 9, 1, 59, 59, 999_999)).toBe(before);
    expect(wallTimeToUnixMicros(NY, 2025, 3, 9, 3, 0, 0, 0)).toBe(before + 1);
    expect(wallTimeToUnixMicros(NY, 2025, 3, 9, 2, 0, 0, 0)).toBe(before + 1); // gap start shifts to 03:00
    const fb = iso('2025-11-02T05:59:59.999999Z'); // 01:59:59.999999 EDT
    expect(zonedParts(fb + 1, NY)).toMatchObject({ hour: 1, minute: 0, second: 0, micros: 0, offsetMinutes: -300 });
    expect(wallTimeToUnixMicros(NY, 2025, 11, 2, 0, 59, 59, 999_999)).toBe(iso('2025-11-02T04:59:59.999999Z'));
    expect(wallTimeToUnixMicros(NY, 2025, 11, 2, 2, 0, 0, 0)).toBe(iso('2025-11-02T07:00:00Z')); // unambiguous EST
    expect(wallTimeToUnixMicros(NY, 2025, 11, 2, 1, 59, 59, 999_999, 'later')).toBe(iso('2025-11-02T06:59:59.999999Z'));
  });
});

describe('Chicago and London', () => {
  test('Chicago 2025: gap at 02:00 CST, overlap at 01:00 CDT', () => {
    expect(wall(CHI, 2025, 3, 9, 2, 30)).toBe('2025-03-09T08:30:00.000000Z'); // 03:30 CDT
    expect(wall(CHI, 2025, 3, 9, 2, 30, 'earlier')).toBe('2025-03-09T07:30:00.000000Z');
    expect(wall(CHI, 2025, 11, 2, 1, 30)).toBe('2025-11-02T06:30:00.000000Z');
    expect(wall(CHI, 2025, 11, 2, 1, 30, 'later')).toBe('2025-11-02T07:30:00.000000Z');
    expect(zonedParts(iso('2025-07-01T17:00:00Z'), CHI)).toMatchObject({ hour: 12, offsetMinutes: -300 });
  });

  test('London 2025: 01:30 on 30 March does not exist, 01:30 on 26 October occurs twice', () => {
    expect(wall(LON, 2025, 3, 30, 1, 30)).toBe('2025-03-30T01:30:00.000000Z'); // 02:30 BST
    expect(wall(LON, 2025, 3, 30, 1, 30, 'earlier')).toBe('2025-03-30T00:30:00.000000Z'); // 00:30 GMT
    expect(thrown(() => wallTimeToUnixMicros(LON, 2025, 3, 30, 1, 30, 0, 0, 'reject')).code).toBe('ENGINE_ERR_TIME_AMBIGUOUS');
    expect(wall(LON, 2025, 10, 26, 1, 30)).toBe('2025-10-26T00:30:00.000000Z'); // 01:30 BST
    expect(wall(LON, 2025, 10, 26, 1, 30, 'later')).toBe('2025-10-26T01:30:00.000000Z'); // 01:30 GMT
    expect(thrown(() => wallTimeToUnixMicros(LON, 2025, 10, 26, 1, 30, 0, 0, 'reject')).code).toBe('ENGINE_ERR_TIME_AMBIGUOUS');
    expect(zonedParts(iso('2025-03-30T00:59:59.999999Z'), LON)).toMatchObject({ hour: 0, minute: 59, micros: 999_999, offsetMinutes: 0 });
    expect(zonedParts(iso('2025-03-30T01:00:00Z'), LON)).toMatchObject({ hour: 2, minute: 0, offsetMinutes: 60 });
    expect(wallTimeToUnixMicros(LON, 2025, 1, 15, 12, 0, 0, 0)).toBe(iso('2025-01-15T12:00:00Z'));
  });
});

describe('against ICU directly (independent oracle)', () => {
  const zones = [NY, CHI, LON, 'Europe/Berlin', 'Asia/Tokyo', 'Australia/Sydney', 'Asia/Kolkata', 'America/St_Johns', 'UTC'];

  test('zonedParts equals ICU formatToParts for random instants 1950..2100 (property)', () => {
    fc.assert(fc.property(fc.integer({ min: -631_152_000_000_000, max: 4_102_444_800_000_000 }), fc.constantFrom(...zones), (us, tz) => {
      const got = zonedParts(us, tz);
      const want = oracle(us, tz);
      expect({ ...got, weekday: WEEKDAYS[got.weekday] }).toEqual(want);
    }), { numRuns: 1500 });
  });

  test('cached offsets equal uncached ICU offsets minute by minute around every 2024–2025 transition', () => {
    // St John's (−3:30) and Lord Howe (+10:30/+11) change offset in the middle of a UTC hour: those
    // hours are "mixed" in the cache and must still answer exactly on both sides of the change.
    let midHourTransitions = 0;
    let checked = 0;
    for (const tz of [NY, CHI, LON, 'America/St_Johns', 'Australia/Lord_Howe']) {
      const from = iso('2024-01-01');
      const transitions: number[] = [];
      for (let h = from; h < from + 731 * 24 * 3_600_000_000; h += 3_600_000_000) {
        if (offsetSecondsAtUncached(h, tz) !== offsetSecondsAtUncached(h + 3_600_000_000, tz)) transitions.push(h);
      }
      expect(transitions.length).toBe(4); // two a year
      const instants: number[] = [];
      for (const h of transitions) {
        if (offsetSecondsAtUncached(h + 1_800_000_000, tz) !== offsetSecondsAtUncached(h, tz)) midHourTransitions++;
        for (let m = -120; m < 180; m++) instants.push(h + m * 60_000_000 + ((m * 7919) & 63) * 937_000);
      }
      for (let i = instants.length - 1; i > 0; i--) { // shuffle: fill the hour cache in any order
        const j = (i * 2_654_435_761) % (i + 1);
        const t = instants[i]!;
        instants[i] = instants[j]!;
        instants[j] = t;
      }
      for (const us of instants) {
        expect([tz, formatIsoMicros(us), offsetSecondsAt(us, tz)]).toEqual([tz, formatIsoMicros(us), offsetSecondsAtUncached(us, tz)]);
        checked++;
      }
    }
    expect(midHourTransitions).toBeGreaterThanOrEqual(4);
    expect(checked).toBe(5 * 4 * 300);
  });

  test('pre-1900 local mean time keeps its seconds (New York 1880: −4:56:02)', () => {
    const us = iso('1880-06-01T12:00:00Z');
    expect(offsetSecondsAt(us, NY)).toBe(-(4 * 3600 + 56 * 60 + 2));
    expect(zonedParts(us, NY)).toEqual({ ...oracle(us, NY), weekday: 2 });
    expect(WEEKDAYS[2]).toBe(oracle(us, NY).weekday);
  });
});

describe('wall <-> instant (property)', () => {
  test('every instant is one of the readings of its own wall time', () => {
    fc.assert(fc.property(fc.integer({ min: -631_152_000_000_000, max: 4_102_444_800_000_000 }), fc.constantFrom(NY, CHI, LON, 'Australia/Lord_Howe'), (us, tz) => {
      const w = unixMicrosToWallMicros(us, tz);
      const earlier = wallMicrosToUnixMicros(w, tz, 'earlier');
      const later = wallMicrosToUnixMicros(w, tz, 'later');
      expect(us === earlier || us === later).toBe(true);
      expect(wallMicrosToUnixMicros(w, tz, 'compatible')).toBe(earlier);
      if (earlier === later) expect(wallMicrosToUnixMicros(w, tz, 'reject')).toBe(us);
    }), { numRuns: 1500 });
  });

  test('zonedPartsInto fills the given object and matches zonedParts', () => {
    const out: ZonedParts = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0, micros: 0, weekday: 0, offsetMinutes: 0 };
    const us = iso('2023-02-21T20:37:01.000001Z');
    expect(zonedPartsInto(us, NY, out)).toBe(out);
    expect(out).toEqual(zonedParts(us, NY));
    expect(out).toEqual({ year: 2023, month: 2, day: 21, hour: 15, minute: 37, second: 1, micros: 1, weekday: 2, offsetMinutes: -300 });
  });
});

describe('zones and arguments', () => {
  test('names resolve case-insensitively and through aliases', () => {
    expect(assertTimeZone('America/New_York')).toBe('America/New_York');
    expect(assertTimeZone('america/new_york')).toBe('America/New_York');
    expect(assertTimeZone('US/Eastern')).toBe('America/New_York');
    expect(assertTimeZone('Etc/UTC')).toBe('UTC');
    expect(isValidTimeZone('Europe/London')).toBe(true);
    expect(isValidTimeZone('Mars/Olympus')).toBe(false);
  });

  test('unknown zones and non-strings are ENGINE_ERR_TIME_ZONE', () => {
    for (const tz of ['Mars/Olympus', '', 'America/New York', 42, null, undefined, {}]) {
      const e = thrown(() => zonedParts(0, tz as string));
      expect(e.code).toBe('ENGINE_ERR_TIME_ZONE');
    }
    expect(thrown(() => wallTimeToUnixMicros('Mars/Olympus', 2025, 1, 1, 0, 0, 0, 0)).message).toContain('"Mars/Olympus"');
  });

  test('invalid wall fields, disambiguation and instants are coded errors', () => {
    const bad: [number, number, number, number, number, number, number][] = [
      [2025, 13, 1, 0, 0, 0, 0], [2025, 4, 31, 0, 0, 0, 0], [2025, 2, 29, 0, 0, 0, 0], [2025, 1, 1, 24, 0, 0, 0],
      [2025, 1, 1, 0, 60, 0, 0], [2025, 1, 1, 0, 0, 60, 0], [2025, 1, 1, 0, 0, 0, 1_000_000], [2025, 1, 1.5, 0, 0, 0, 0],
      [2025, 1, 1, 0, 0, 0, Number.NaN],
    ];
    for (const f of bad) expect(thrown(() => wallTimeToUnixMicros(NY, ...f)).code).toBe('ENGINE_ERR_INVALID_ARG');
    expect(thrown(() => wallTimeToUnixMicros(NY, 2025, 1, 1, 0, 0, 0, 0, 'first' as Disambiguation)).code).toBe('ENGINE_ERR_INVALID_ARG');
    expect(thrown(() => wallTimeToUnixMicros(NY, 1500, 1, 1, 0, 0, 0, 0)).code).toBe('ENGINE_ERR_TIME_RANGE');
    expect(thrown(() => zonedParts(Number.NaN, NY)).code).toBe('ENGINE_ERR_INVALID_ARG');
    expect(thrown(() => zonedParts(2 ** 53, NY)).code).toBe('ENGINE_ERR_TIME_RANGE');
    expect(thrown(() => offsetSecondsAt(Number.POSITIVE_INFINITY, NY)).code).toBe('ENGINE_ERR_TIME_RANGE');
  });

  test('UTC is the identity', () => {
    const us = iso('2023-02-21T20:37:01.000001Z');
    expect(unixMicrosToWallMicros(us, 'UTC')).toBe(us);
    expect(wallMicrosToUnixMicros(us, 'UTC', 'reject')).toBe(us);
    expect(offsetSecondsAt(us, 'UTC')).toBe(0);
  });
});
