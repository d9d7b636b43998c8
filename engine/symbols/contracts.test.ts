import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import {
  MONTH_CODES, contractSymbol, deriveFrontMonth, equityIndexExpiryMicros, isQuarterlyMonth, parseFuturesContract,
  rollMicrosForExpiry, thirdFridayDay,
} from './contracts.ts';

const utcMicros = (y: number, m: number, d: number, h = 0, min = 0, s = 0): number => Date.UTC(y, m - 1, d, h, min, s) * 1000;

/** Independent third-Friday computation: walk the days of the month. */
function thirdFridayBruteForce(year: number, month: number): number {
  let fridays = 0;
  for (let d = 1; d <= 31; d++) {
    const date = new Date(Date.UTC(year, month - 1, d));
    if (date.getUTCMonth() !== month - 1) break;
    if (date.getUTCDay() === 5 && ++fridays === 3) return d;
  }
  throw new Error('no third Friday');
}

describe('futures contract names', () => {
  test('MNQZ25 -> root MNQ, month code Z (December), year 2025', () => {
    const c = parseFuturesContract('MNQZ25');
    expect(c).toMatchObject({ symbol: 'MNQZ25', root: 'MNQ', monthCode: 'Z', month: 12, year: 2025 });
  });

  test('other roots and months', () => {
    expect(parseFuturesContract('ESH26')).toMatchObject({ root: 'ES', monthCode: 'H', month: 3, year: 2026 });
    expect(parseFuturesContract('NQM25')).toMatchObject({ root: 'NQ', month: 6, year: 2025 });
    expect(parseFuturesContract('MESU25')).toMatchObject({ root: 'MES', month: 9, year: 2025 });
    expect(parseFuturesContract('6EZ25')).toMatchObject({ root: '6E', month: 12 });
    expect(parseFuturesContract('CLF00')).toMatchObject({ root: 'CL', month: 1, year: 2000 });
    expect(parseFuturesContract('ZNZ99')).toMatchObject({ root: 'ZN', month: 12, year: 2099 });
  });

  test('names that are not contracts', () => {
    for (const s of ['SPY', 'QQQ', 'VIX', 'NQ_NDX', 'ESZ5', 'MNQ', 'Z25', 'MNQA25', 'MNQI25', 'mnqz25', 'MNQZ2X', 'MNQ_Z25', '', 'MNQZ250']) {
      expect(parseFuturesContract(s), s).toBeNull();
    }
  });

  test('contractSymbol is the inverse of parsing', () => {
    fc.assert(fc.property(
      fc.constantFrom('MNQ', 'NQ', 'MES', 'ES', '6E'), fc.integer({ min: 1, max: 12 }), fc.integer({ min: 2000, max: 2099 }),
      (root, month, year) => {
        const s = contractSymbol(root, month, year);
        expect(parseFuturesContract(s)).toMatchObject({ root, month, year, monthCode: MONTH_CODES[month - 1] });
      },
    ));
  });
});

describe('expiry and roll (equity index rule)', () => {
  test('third Fridays', () => {
    expect(thirdFridayDay(2025, 12)).toBe(19);
    expect(thirdFridayDay(2026, 3)).toBe(20);
    expect(thirdFridayDay(2026, 6)).toBe(19);
    expect(thirdFridayDay(2026, 9)).toBe(18);
    expect(thirdFridayDay(2025, 11)).toBe(21);
    expect(thirdFridayDay(2026, 5)).toBe(15);
    fc.assert(fc.property(fc.integer({ min: 1990, max: 2150 }), fc.integer({ min: 1, max: 12 }), (y, m) => {
      expect(thirdFridayDay(y, m)).toBe(thirdFridayBruteForce(y, m));
    }));
  });

  test('expiry is 09:30 New York on the third Friday (13:30 UTC in daylight time, 14:30 UTC otherwise)', () => {
    expect(equityIndexExpiryMicros(2025, 12)).toBe(utcMicros(2025, 12, 19, 14, 30)); // EST
    expect(equityIndexExpiryMicros(2026, 3)).toBe(utcMicros(2026, 3, 20, 13, 30)); // EDT (DST began Mar 8)
    expect(equityIndexExpiryMicros(2026, 6)).toBe(utcMicros(2026, 6, 19, 13, 30));
    expect(equityIndexExpiryMicros(2026, 9)).toBe(utcMicros(2026, 9, 18, 13, 30));
    // cross-check the UTC offset with the platform's time-zone database
    const fmt = new Intl.DateTimeFormat('en-US', { timeZone: 'America/New_York', hour: '2-digit', minute: '2-digit', hourCycle: 'h23', weekday: 'short' });
    fc.assert(fc.property(fc.integer({ min: 2008, max: 2060 }), fc.integer({ min: 1, max: 12 }), (y, m) => {
      expect(fmt.format(new Date(equityIndexExpiryMicros(y, m) / 1000))).toBe('Fri 09:30');
    }));
  });

  test('roll is 00:00 UTC eight days before expiry: the Thursday of the week before', () => {
    expect(rollMicrosForExpiry(equityIndexExpiryMicros(2025, 12))).toBe(utcMicros(2025, 12, 11));
    expect(rollMicrosForExpiry(equityIndexExpiryMicros(2026, 3))).toBe(utcMicros(2026, 3, 12));
    fc.assert(fc.property(fc.integer({ min: 2000, max: 2099 }), fc.constantFrom(3, 6, 9, 12), (y, m) => {
      const roll = new Date(rollMicrosForExpiry(equityIndexExpiryMicros(y, m)) / 1000);
      expect(roll.getUTCDay()).toBe(4);
      expect(roll.getUTCDate()).toBe(thirdFridayBruteForce(y, m) - 8);
    }));
  });
});

describe('deriveFrontMonth (no registry)', () => {
  test('around the December 2025 roll', () => {
    expect(deriveFrontMonth('MNQ', utcMicros(2025, 11, 20)).symbol).toBe('MNQZ25');
    expect(deriveFrontMonth('MNQ', utcMicros(2025, 9, 30)).symbol).toBe('MNQZ25'); // Sep contract rolled on Sep 11
    expect(deriveFrontMonth('MNQ', utcMicros(2025, 12, 10, 23, 59, 59)).symbol).toBe('MNQZ25');
    expect(deriveFrontMonth('MNQ', utcMicros(2025, 12, 11)).symbol).toBe('MNQH26');
    expect(deriveFrontMonth('MNQ', utcMicros(2025, 12, 31, 23)).symbol).toBe('MNQH26');
    expect(deriveFrontMonth('ES', utcMicros(2026, 1, 5)).symbol).toBe('ESH26');
    expect(deriveFrontMonth('ES', utcMicros(2026, 3, 12)).symbol).toBe('ESM26');
  });

  test('property: the derived contract has not rolled yet and the quarter before it has', () => {
    const lo = utcMicros(2000, 1, 1), hi = utcMicros(2090, 1, 1);
    fc.assert(fc.property(fc.integer({ min: lo / 1e6, max: hi / 1e6 }), (sec) => {
      const now = sec * 1e6;
      const c = deriveFrontMonth('MES', now);
      expect(isQuarterlyMonth(c.month)).toBe(true);
      expect(c.rollMicros).toBeGreaterThan(now);
      const prevMonth = c.month === 3 ? 12 : c.month - 3;
      const prevYear = c.month === 3 ? c.year - 1 : c.year;
      expect(rollMicrosForExpiry(equityIndexExpiryMicros(prevYear, prevMonth))).toBeLessThanOrEqual(now);
    }));
  });

  test('bad arguments', () => {
    expect(() => deriveFrontMonth('mnq', 0)).toThrow(RangeError);
    expect(() => deriveFrontMonth('MNQ', NaN)).toThrow(RangeError);
  });
});
