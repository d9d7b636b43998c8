import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { isEngineError, type EngineError } from '../errors.ts';
import { MAX_TIME_MICROS, MIN_TIME_MICROS } from './civil.ts';
import { EPOCH_MICROS_MIN, EPOCH_MILLIS_MIN, EPOCH_NANOS_MIN, epochUnitOf, formatIsoMicros, parseTimeToMicros } from './iso.ts';

/** The coded error thrown by `fn` (fails the test if it does not throw an EngineError). */
function thrown(fn: () => unknown): EngineError {
  try {
    fn();
  } catch (e) {
    if (isEngineError(e)) return e;
    throw new Error(`expected an EngineError, got ${String(e)}`);
  }
  throw new Error('expected a throw, got a value');
}

const T_2023 = 1_677_011_821_000_000; // 2023-02-21T20:37:01Z
const A_1973 = 100_000_000_000_000; // 1973-03-03T09:46:40Z = 1e11 ms = 1e14 µs = 1e17 ns

describe('formatIsoMicros', () => {
  test('exactly 6 fractional digits, UTC', () => {
    expect(formatIsoMicros(T_2023 + 1)).toBe('2023-02-21T20:37:01.000001Z');
    expect(formatIsoMicros(0)).toBe('1970-01-01T00:00:00.000000Z');
    expect(formatIsoMicros(1)).toBe('1970-01-01T00:00:00.000001Z');
    expect(formatIsoMicros(-1)).toBe('1969-12-31T23:59:59.999999Z');
    expect(formatIsoMicros(951_782_400_000_000)).toBe('2000-02-29T00:00:00.000000Z');
    expect(formatIsoMicros(A_1973)).toBe('1973-03-03T09:46:40.000000Z');
    expect(formatIsoMicros(MAX_TIME_MICROS)).toBe('2255-06-05T23:47:34.740991Z');
    expect(formatIsoMicros(MIN_TIME_MICROS)).toBe('1684-07-28T00:12:25.259009Z');
  });

  test('a fractional µs is floored', () => {
    expect(formatIsoMicros(T_2023 + 1.75)).toBe('2023-02-21T20:37:01.000001Z');
    expect(formatIsoMicros(-0.5)).toBe('1969-12-31T23:59:59.999999Z');
  });

  test('agrees with Date#toISOString on the ms and appends the µs (property)', () => {
    fc.assert(fc.property(fc.integer({ min: MIN_TIME_MICROS, max: MAX_TIME_MICROS }), (us) => {
      const ms = Math.floor(us / 1000);
      const sub = us - ms * 1000;
      const iso = new Date(ms).toISOString(); // 'YYYY-MM-DDTHH:MM:SS.mmmZ' for these years
      expect(formatIsoMicros(us)).toBe(`${iso.slice(0, 23)}${String(sub).padStart(3, '0')}Z`);
    }), { numRuns: 3000 });
  });

  test('bad values are coded errors', () => {
    expect(thrown(() => formatIsoMicros(Number.NaN)).code).toBe('ENGINE_ERR_INVALID_ARG');
    expect(thrown(() => formatIsoMicros('5' as unknown as number)).code).toBe('ENGINE_ERR_INVALID_ARG');
    expect(thrown(() => formatIsoMicros(Number.POSITIVE_INFINITY)).code).toBe('ENGINE_ERR_TIME_RANGE');
    expect(thrown(() => formatIsoMicros(2 ** 53)).code).toBe('ENGINE_ERR_TIME_RANGE');
  });
});

describe('parseTimeToMicros: ISO 8601', () => {
  test('format -> parse round trip (property)', () => {
    fc.assert(fc.property(fc.integer({ min: MIN_TIME_MICROS, max: MAX_TIME_MICROS }), (us) => {
      expect(parseTimeToMicros(formatIsoMicros(us))).toBe(us);
    }), { numRuns: 3000 });
  });

  test('parse agrees with Date.parse on ms-precision strings with offsets (property)', () => {
    const offsets = fc.constantFrom('Z', '+00:00', '-05:00', '+05:30', '+14:00', '-12:00', '+01:00');
    fc.assert(fc.property(fc.integer({ min: -9_000_000_000_000, max: 9_000_000_000_000 }), offsets, (ms, off) => {
      const iso = new Date(ms).toISOString().slice(0, 23) + off;
      expect(parseTimeToMicros(iso)).toBe(Date.parse(iso) * 1000);
    }), { numRuns: 2000 });
  });

  test('fractions of 0..9 digits; the µs kept, extra digits truncated (not rounded)', () => {
    expect(parseTimeToMicros('2023-02-21T20:37:01Z')).toBe(T_2023);
    expect(parseTimeToMicros('2023-02-21T20:37:01.1Z')).toBe(T_2023 + 100_000);
    expect(parseTimeToMicros('2023-02-21T20:37:01.12Z')).toBe(T_2023 + 120_000);
    expect(parseTimeToMicros('2023-02-21T20:37:01.123Z')).toBe(T_2023 + 123_000);
    expect(parseTimeToMicros('2023-02-21T20:37:01.000001Z')).toBe(T_2023 + 1);
    expect(parseTimeToMicros('2023-02-21T20:37:01.1234567Z')).toBe(T_2023 + 123_456);
    expect(parseTimeToMicros('2023-02-21T20:37:01.999999999Z')).toBe(T_2023 + 999_999);
    expect(parseTimeToMicros('2023-02-21T20:37:01,5Z')).toBe(T_2023 + 500_000);
  });

  test('offsets Z, ±hh:mm, ±hhmm, ±hh; T, t or space; HH:MM without seconds', () => {
    expect(parseTimeToMicros('2023-02-21T21:37:01+01:00')).toBe(T_2023);
    expect(parseTimeToMicros('2023-02-21T15:37:01-05:00')).toBe(T_2023);
    expect(parseTimeToMicros('2023-02-22T02:07:01+05:30')).toBe(T_2023);
    expect(parseTimeToMicros('2023-02-22T02:07:01+0530')).toBe(T_2023);
    expect(parseTimeToMicros('2023-02-21T21:37:01+01')).toBe(T_2023);
    expect(parseTimeToMicros('2023-02-21t20:37:01z')).toBe(T_2023);
    expect(parseTimeToMicros('2023-02-21 20:37:01Z')).toBe(T_2023);
    expect(parseTimeToMicros('  2023-02-21T20:37:01Z\n')).toBe(T_2023);
    expect(parseTimeToMicros('2023-02-21T20:37Z')).toBe(T_2023 - 1_000_000);
    expect(parseTimeToMicros('2023-02-21T20:37:01-00:00')).toBe(T_2023);
  });

  test('date only is UTC midnight (also when a zone is given)', () => {
    expect(parseTimeToMicros('2025-03-10')).toBe(Date.UTC(2025, 2, 10) * 1000);
    expect(parseTimeToMicros('2024-02-29')).toBe(Date.UTC(2024, 1, 29) * 1000);
    expect(parseTimeToMicros('2025-03-10', { tz: 'America/New_York' })).toBe(Date.UTC(2025, 2, 10) * 1000);
  });

  test('a naive date-time is UTC by default and local time in opts.tz', () => {
    expect(parseTimeToMicros('2023-02-21T20:37:01')).toBe(T_2023);
    expect(parseTimeToMicros('2023-02-21T15:37:01', { tz: 'America/New_York' })).toBe(T_2023);
    expect(parseTimeToMicros('2023-02-21T14:37:01.000001', { tz: 'America/Chicago' })).toBe(T_2023 + 1);
    expect(parseTimeToMicros('2023-07-01T12:00:00', { tz: 'Europe/London' })).toBe(Date.UTC(2023, 6, 1, 11) * 1000);
    // an explicit offset wins over opts.tz
    expect(parseTimeToMicros('2023-02-21T20:37:01Z', { tz: 'America/New_York' })).toBe(T_2023);
  });

  test('naive times in DST gaps and overlaps follow the disambiguation policy', () => {
    const ny = { tz: 'America/New_York' };
    expect(formatIsoMicros(parseTimeToMicros('2025-03-09T02:30:00', ny))).toBe('2025-03-09T07:30:00.000000Z');
    expect(formatIsoMicros(parseTimeToMicros('2025-03-09T02:30:00', { ...ny, disambiguation: 'earlier' }))).toBe('2025-03-09T06:30:00.000000Z');
    expect(formatIsoMicros(parseTimeToMicros('2025-11-02T01:30:00', ny))).toBe('2025-11-02T05:30:00.000000Z');
    expect(formatIsoMicros(parseTimeToMicros('2025-11-02T01:30:00', { ...ny, disambiguation: 'later' }))).toBe('2025-11-02T06:30:00.000000Z');
    expect(thrown(() => parseTimeToMicros('2025-03-09T02:30:00', { ...ny, disambiguation: 'reject' })).code).toBe('ENGINE_ERR_TIME_AMBIGUOUS');
  });
});

describe('parseTimeToMicros: epoch numbers by magnitude', () => {
  test('unit boundaries', () => {
    expect(epochUnitOf(0)).toBe('seconds');
    expect(epochUnitOf(EPOCH_MILLIS_MIN - 1)).toBe('seconds');
    expect(epochUnitOf(EPOCH_MILLIS_MIN)).toBe('milliseconds');
    expect(epochUnitOf(EPOCH_MICROS_MIN - 1)).toBe('milliseconds');
    expect(epochUnitOf(EPOCH_MICROS_MIN)).toBe('microseconds');
    expect(epochUnitOf(EPOCH_NANOS_MIN - 16)).toBe('microseconds'); // 1e17 − 1 is not a double
    expect(epochUnitOf(EPOCH_NANOS_MIN)).toBe('nanoseconds');
    expect(epochUnitOf(-EPOCH_MILLIS_MIN)).toBe('milliseconds');
  });

  test('the same instant in each unit, as a number and as a string', () => {
    const cases: [string | number, number][] = [
      [1_677_011_821, T_2023], ['1677011821', T_2023],
      [1_677_011_821_000, T_2023], ['1677011821000', T_2023],
      [1_677_011_821_000_001, T_2023 + 1], ['1677011821000001', T_2023 + 1],
      ['1677011821000001999', T_2023 + 1], // ns string: exact, sub-µs truncated
      // each lower bound: 1e11 ms = 1e14 µs = 1e17 ns = 1973-03-03T09:46:40Z
      [1e11, A_1973], ['100000000000', A_1973], [1e14, A_1973], ['100000000000000', A_1973], [1e17, A_1973], ['100000000000000000', A_1973],
      [0, 0], ['0', 0], ['000', 0], ['-0', 0], [-1, -1_000_000], ['+1', 1_000_000],
    ];
    for (const [input, us] of cases) expect([input, parseTimeToMicros(input)]).toEqual([input, us]);
    expect(Object.is(parseTimeToMicros(-0), 0)).toBe(true);
  });

  test('fractions: decimal strings exact (truncated toward the past), numbers rounded to the µs for s/ms', () => {
    expect(parseTimeToMicros('1677011821.000001')).toBe(T_2023 + 1);
    expect(parseTimeToMicros('1677011821.0000019')).toBe(T_2023 + 1);
    expect(parseTimeToMicros('1677011821000.0019')).toBe(T_2023 + 1);
    expect(parseTimeToMicros('1677011821000001.9')).toBe(T_2023 + 1);
    expect(parseTimeToMicros('-1.5')).toBe(-1_500_000);
    expect(parseTimeToMicros('-0.0000001')).toBe(-1);
    expect(parseTimeToMicros('-100000000000000001')).toBe(-A_1973 - 1); // ns, floored
    expect(parseTimeToMicros(1_677_011_821.000001)).toBe(T_2023 + 1);
    expect(parseTimeToMicros(1_677_011_821_000.5)).toBe(T_2023 + 500);
    expect(parseTimeToMicros(-1.5)).toBe(-1_500_000);
    expect(parseTimeToMicros(1_677_011_821_000_001.5)).toBe(T_2023 + 1);
  });

  test('a nanosecond JS number above 2^53 lands within 1 µs (pass a string to be exact)', () => {
    const ns = 1_677_011_821_000_001_000; // not exactly representable as a double
    expect(Math.abs(parseTimeToMicros(ns) - (T_2023 + 1))).toBeLessThanOrEqual(1);
    expect(parseTimeToMicros('1677011821000001000')).toBe(T_2023 + 1);
  });

  test('numbers and strings agree on integers of every magnitude (property)', () => {
    const outcome = (x: string | number): number | string => {
      try {
        return parseTimeToMicros(x);
      } catch (e) {
        return isEngineError(e) ? e.code : 'not an EngineError';
      }
    };
    const ints = fc.oneof(
      fc.integer({ min: -1e10, max: 1e10 }), fc.integer({ min: -1e13, max: 1e13 }),
      fc.integer({ min: -1e16, max: 1e16 }), fc.maxSafeInteger(),
    );
    fc.assert(fc.property(ints, (n) => {
      expect(outcome(String(n))).toBe(outcome(n));
    }), { numRuns: 3000 });
  });

  test('just below a unit bound the coarser unit applies (and lands past 2255)', () => {
    expect(thrown(() => parseTimeToMicros(EPOCH_MILLIS_MIN - 1)).code).toBe('ENGINE_ERR_TIME_RANGE'); // seconds
    expect(thrown(() => parseTimeToMicros(EPOCH_MICROS_MIN - 1)).code).toBe('ENGINE_ERR_TIME_RANGE'); // ms
    expect(thrown(() => parseTimeToMicros('99999999999999999')).code).toBe('ENGINE_ERR_TIME_RANGE'); // µs
    expect(parseTimeToMicros(9_007_199_254)).toBe(9_007_199_254_000_000); // the last whole second in range
  });

  test('results beyond the safe range are ENGINE_ERR_TIME_RANGE', () => {
    expect(thrown(() => parseTimeToMicros(99_999_999_999)).code).toBe('ENGINE_ERR_TIME_RANGE'); // seconds in 5138
    expect(thrown(() => parseTimeToMicros('99999999999999999')).code).toBe('ENGINE_ERR_TIME_RANGE'); // µs
    expect(thrown(() => parseTimeToMicros('99999999999999999999999')).code).toBe('ENGINE_ERR_TIME_RANGE'); // ns
    expect(thrown(() => parseTimeToMicros('1500-01-01')).code).toBe('ENGINE_ERR_TIME_RANGE');
    expect(thrown(() => parseTimeToMicros('9999-12-31T23:59:59Z')).code).toBe('ENGINE_ERR_TIME_RANGE');
  });
});

describe('parseTimeToMicros: bad input', () => {
  const badStrings = [
    '2025-13-01', 'yesterday', '', '   ', '2025-02-30', '2025-02-29', '2025-00-10', '2025-01-32', '2025-1-01',
    '2025-02-21T24:00', '2025-02-21T20:60', '2025-02-21T20:37:60', '2025-02-21T20:37:01.1234567890Z',
    '2025-02-21T20:37:01.Z', '2025-02-21T20:37:01+25:00', '2025-02-21T20:37:01+01:60', '2025-02-21T', '2025-02-21Z',
    '1e9', '0x10', '1_000', '12:30', 'NaN', 'Infinity', '2023-02-21T20:37:01ZZ', '--1',
  ];
  test.each(badStrings)('%j is ENGINE_ERR_TIME_PARSE naming the input', (s) => {
    const e = thrown(() => parseTimeToMicros(s));
    expect(e.code).toBe('ENGINE_ERR_TIME_PARSE');
    expect(e.message).toContain(JSON.stringify(s));
    expect(e.detail.input).toBe(JSON.stringify(s));
  });

  test('non-finite numbers and wrong types are ENGINE_ERR_TIME_PARSE', () => {
    for (const v of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, null, undefined, {}, [], true, 10n, Symbol('t')]) {
      const e = thrown(() => parseTimeToMicros(v as unknown as string));
      expect(e.code).toBe('ENGINE_ERR_TIME_PARSE');
      expect(e.message).toMatch(/^cannot parse time /);
    }
    expect(thrown(() => parseTimeToMicros(Number.NaN)).message).toContain('NaN');
  });

  test('an unknown or malformed zone is ENGINE_ERR_TIME_ZONE, even for inputs with an offset', () => {
    for (const tz of ['Mars/Olympus', '', 'America/New York', 42, null]) {
      const e = thrown(() => parseTimeToMicros('2023-02-21T20:37:01', { tz: tz as string }));
      expect(e.code).toBe('ENGINE_ERR_TIME_ZONE');
    }
    expect(thrown(() => parseTimeToMicros('2023-02-21T20:37:01Z', { tz: 'Mars/Olympus' })).message).toContain('Mars/Olympus');
  });

  test('options of the wrong type are ENGINE_ERR_INVALID_ARG', () => {
    expect(thrown(() => parseTimeToMicros('2023-02-21', 'UTC' as unknown as { tz: string })).code).toBe('ENGINE_ERR_INVALID_ARG');
    expect(thrown(() => parseTimeToMicros('2023-02-21T00:00', { tz: 'UTC', disambiguation: 'nope' as 'later' })).code).toBe('ENGINE_ERR_INVALID_ARG');
  });
});
