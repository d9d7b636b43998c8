import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { formatIsoMicros } from './iso.ts';
import {
  PLAUSIBLE_MAX_MICROS, PLAUSIBLE_MIN_MICROS, SC_EPOCH_OFFSET_MICROS, decodeScDateTimeParts, isLegacyScParts,
  isPlausibleScMicros, readScDateTimeView, readScDateTimeWords, scDaysToUnixMicros, scPartsAsDays, scPartsToUnixMicros,
  unixMicrosToScDays, unixMicrosToScHi, unixMicrosToScLo, writeScDateTimeView, writeScDateTimeWords,
} from './scdatetime.ts';

// The real Sierra Chart excerpt, copied into the repo (identical to shared/data/sierra; checked in scid-decoder.test.ts).
const FIXTURE = new URL('../../test/fixtures/sierra/ESM23-excerpt.scid', import.meta.url);
const OFFSET_BIG = 2_209_161_600_000_000n;

/** Independent reference: the int64 read with BigInt (tests only). */
function refDecode(lo: number, hi: number): number {
  const raw = BigInt.asIntN(64, (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0));
  return Number(raw - OFFSET_BIG);
}
function refEncode(us: number): { lo: number; hi: number } {
  const raw = BigInt.asUintN(64, BigInt(us) + OFFSET_BIG);
  return { lo: Number(raw & 0xffff_ffffn), hi: Number(BigInt.asIntN(32, raw >> 32n)) };
}

/** The fixture copied into a fresh (aligned) ArrayBuffer. */
function loadFixture(): ArrayBuffer {
  const b = readFileSync(FIXTURE);
  const ab = new ArrayBuffer(b.byteLength);
  new Uint8Array(ab).set(b);
  return ab;
}

describe('epoch', () => {
  test('raw 0 is 1899-12-30T00:00:00Z', () => {
    expect(scPartsToUnixMicros(0, 0)).toBe(-SC_EPOCH_OFFSET_MICROS);
    expect(formatIsoMicros(scPartsToUnixMicros(0, 0))).toBe('1899-12-30T00:00:00.000000Z');
    expect(SC_EPOCH_OFFSET_MICROS).toBe(-Date.UTC(1899, 11, 30) * 1000);
  });

  test('the Unix epoch is raw 2209161600·10^6 and encodes back to it', () => {
    const lo = SC_EPOCH_OFFSET_MICROS % 2 ** 32;
    const hi = Math.floor(SC_EPOCH_OFFSET_MICROS / 2 ** 32);
    expect(scPartsToUnixMicros(lo, hi)).toBe(0);
    expect(unixMicrosToScLo(0)).toBe(lo);
    expect(unixMicrosToScHi(0)).toBe(hi);
    expect(refEncode(0)).toEqual({ lo, hi });
  });

  test('1 µs before and after the Unix epoch', () => {
    for (const us of [-1, 1, -1_000_001, 999_999]) {
      const lo = unixMicrosToScLo(us);
      const hi = unixMicrosToScHi(us);
      expect({ lo, hi }).toEqual(refEncode(us));
      expect(scPartsToUnixMicros(lo, hi)).toBe(us);
    }
  });
});

describe('real Sierra Chart bytes (ESM23-excerpt.scid)', () => {
  const ab = loadFixture();
  const view = new DataView(ab);
  const headerSize = view.getUint32(4, true);
  const recordSize = view.getUint32(8, true);
  const records = (ab.byteLength - headerSize) / recordSize;

  test('header is as documented', () => {
    expect(String.fromCharCode(...new Uint8Array(ab, 0, 4))).toBe('SCID');
    expect(headerSize).toBe(56);
    expect(recordSize).toBe(40);
    expect(records).toBe(10);
  });

  test('the first record decodes to 2023-02-21T20:37:19.026000Z', () => {
    const us = readScDateTimeView(view, headerSize);
    expect(us).toBe(1_677_011_839_026_000);
    expect(formatIsoMicros(us)).toBe('2023-02-21T20:37:19.026000Z');
    expect(formatIsoMicros(us)).toMatch(/^2023-02-21T20:37:\d\d\.\d{6}Z$/);
    expect(isPlausibleScMicros(us)).toBe(true);
  });

  test('every record decodes the same through DataView, u32 words, i32 words and the BigInt reference', () => {
    const u32 = new Uint32Array(ab);
    const i32 = new Int32Array(ab);
    for (let r = 0; r < records; r++) {
      const byte = headerSize + r * recordSize;
      const ref = refDecode(view.getUint32(byte, true), view.getInt32(byte + 4, true));
      expect(readScDateTimeView(view, byte)).toBe(ref);
      expect(readScDateTimeWords(u32, byte >> 2)).toBe(ref);
      expect(readScDateTimeWords(i32, byte >> 2)).toBe(ref);
      expect(decodeScDateTimeParts(u32[byte >> 2]!, u32[(byte >> 2) + 1]!)).toBe(ref);
      expect(isLegacyScParts(u32[byte >> 2]!, u32[(byte >> 2) + 1]!)).toBe(false);
    }
  });

  test('the same-millisecond counter is kept: …105000 / …105001 and …682000 / …682001', () => {
    const ts: string[] = [];
    for (let r = 0; r < records; r++) ts.push(formatIsoMicros(readScDateTimeView(view, headerSize + r * recordSize)));
    expect(ts[3]).toBe('2023-02-21T20:38:02.105000Z');
    expect(ts[4]).toBe('2023-02-21T20:38:02.105001Z');
    expect(ts[8]).toBe('2023-02-21T20:40:52.682000Z');
    expect(ts[9]).toBe('2023-02-21T20:40:52.682001Z');
    expect([...ts].sort()).toEqual(ts); // file order is time order
  });

  test('re-encoding every decoded time rewrites the original bytes exactly', () => {
    const original = new Uint8Array(ab);
    const copyView = new DataView(ab.slice(0));
    const copyWords = new Int32Array(ab.slice(0));
    for (let r = 0; r < records; r++) {
      const byte = headerSize + r * recordSize;
      copyView.setFloat64(byte, 0);
      copyWords[byte >> 2] = 0;
      copyWords[(byte >> 2) + 1] = 0;
      const us = readScDateTimeView(view, byte);
      writeScDateTimeView(us, copyView, byte);
      writeScDateTimeWords(us, copyWords, byte >> 2);
    }
    expect(new Uint8Array(copyView.buffer)).toEqual(original);
    expect(new Uint8Array(copyWords.buffer)).toEqual(original);
  });
});

describe('round trips (property)', () => {
  test('plausible range 1950..2200, any µs: encode matches BigInt, decode inverts encode', () => {
    const words = new Uint32Array(4);
    const view = new DataView(new ArrayBuffer(16));
    fc.assert(fc.property(fc.integer({ min: PLAUSIBLE_MIN_MICROS, max: PLAUSIBLE_MAX_MICROS - 1 }), fc.nat(3), (us, at) => {
      const lo = unixMicrosToScLo(us);
      const hi = unixMicrosToScHi(us);
      expect({ lo, hi }).toEqual(refEncode(us));
      expect(scPartsToUnixMicros(lo, hi)).toBe(us);
      writeScDateTimeWords(us, words, at % 3);
      expect(readScDateTimeWords(words, at % 3)).toBe(us);
      writeScDateTimeView(us, view, at * 2);
      expect(readScDateTimeView(view, at * 2)).toBe(us);
      expect(refDecode(view.getUint32(at * 2, true), view.getInt32(at * 2 + 4, true))).toBe(us);
      expect(decodeScDateTimeParts(lo, hi)).toBe(us);
    }), { numRuns: 2000 });
  });

  test('the µs counter inside a millisecond survives (ms × 1000 + counter 0..999)', () => {
    fc.assert(fc.property(
      fc.integer({ min: PLAUSIBLE_MIN_MICROS / 1000, max: PLAUSIBLE_MAX_MICROS / 1000 - 1 }), fc.integer({ min: 0, max: 999 }),
      (ms, counter) => {
        const us = ms * 1000 + counter;
        const back = scPartsToUnixMicros(unixMicrosToScLo(us), unixMicrosToScHi(us));
        expect(back % 1000 === counter || back % 1000 === counter - 1000).toBe(true);
        expect(back).toBe(us);
      },
    ), { numRuns: 1000 });
  });

  test('the whole safe-integer range decodes exactly (past the year 2185, where raw > 2^53)', () => {
    fc.assert(fc.property(fc.maxSafeInteger(), (us) => {
      const { lo, hi } = refEncode(us);
      expect(scPartsToUnixMicros(lo, hi)).toBe(us);
      expect(scPartsToUnixMicros(lo | 0, hi >>> 0)).toBe(us); // signedness of the word reads does not matter
      expect(unixMicrosToScLo(us)).toBe(lo);
      expect(unixMicrosToScHi(us)).toBe(hi);
    }), { numRuns: 2000 });
    for (const us of [Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 7_258_118_400_000_000, 6_000_000_000_000_000]) {
      const { lo, hi } = refEncode(us);
      expect(scPartsToUnixMicros(lo, hi)).toBe(us);
    }
  });

  test('out-of-bounds word index reads NaN', () => {
    expect(readScDateTimeWords(new Uint32Array(2), 1)).toBeNaN();
  });
});

describe('legacy float64 day count', () => {
  test('known day values', () => {
    expect(scDaysToUnixMicros(0)).toBe(-SC_EPOCH_OFFSET_MICROS);
    expect(scDaysToUnixMicros(25_569)).toBe(0);
    expect(formatIsoMicros(scDaysToUnixMicros(25_569.5))).toBe('1970-01-01T12:00:00.000000Z');
    expect(formatIsoMicros(scDaysToUnixMicros(-0.25))).toBe('1899-12-29T18:00:00.000000Z');
    // 2023-02-21T20:37:19.026Z as Excel/Sierra days
    const days = 25_569 + 1_677_011_839.026 / 86_400;
    expect(formatIsoMicros(scDaysToUnixMicros(days))).toBe('2023-02-21T20:37:19.026000Z');
    expect(scDaysToUnixMicros(Number.NaN)).toBeNaN();
  });

  test('whole µs round-trip exactly through a day count before 2079-06-05 (65536 days)', () => {
    const end = scDaysToUnixMicros(65_536);
    expect(formatIsoMicros(end)).toBe('2079-06-05T00:00:00.000000Z');
    fc.assert(fc.property(fc.integer({ min: PLAUSIBLE_MIN_MICROS, max: end - 1 }), (us) => {
      expect(scDaysToUnixMicros(unixMicrosToScDays(us))).toBe(us);
    }), { numRuns: 3000 });
  });

  test('from 2079-06-05 to 2200 a round trip is within 1 µs (the float64 resolves ≈ 1.26 µs there)', () => {
    fc.assert(fc.property(fc.integer({ min: scDaysToUnixMicros(65_536), max: PLAUSIBLE_MAX_MICROS - 1 }), (us) => {
      expect(Math.abs(scDaysToUnixMicros(unixMicrosToScDays(us)) - us)).toBeLessThanOrEqual(1);
    }), { numRuns: 2000 });
  });

  test('the 8-byte field holding a float64 is detected as legacy and decoded', () => {
    const view = new DataView(new ArrayBuffer(8));
    fc.assert(fc.property(fc.integer({ min: PLAUSIBLE_MIN_MICROS / 1000, max: scDaysToUnixMicros(65_536) / 1000 - 1 }), (ms) => {
      view.setFloat64(0, unixMicrosToScDays(ms * 1000), true);
      const lo = view.getUint32(0, true);
      const hi = view.getInt32(4, true);
      expect(isPlausibleScMicros(scPartsToUnixMicros(lo, hi))).toBe(false);
      expect(isLegacyScParts(lo, hi)).toBe(true);
      expect(scPartsAsDays(lo, hi)).toBe(view.getFloat64(0, true));
      expect(decodeScDateTimeParts(lo, hi)).toBe(ms * 1000);
    }), { numRuns: 1000 });
  });

  test('a field plausible in neither reading decodes to NaN', () => {
    expect(decodeScDateTimeParts(0xffff_ffff, 0x7fff_ffff)).toBeNaN(); // int64 max; as f64 a NaN
    expect(decodeScDateTimeParts(0, 0)).toBeNaN(); // 1899-12-30 as int64; 0.0 days as f64
    expect(isLegacyScParts(0, 0)).toBe(false);
  });
});

describe('plausibility window', () => {
  test('bounds are 1950-01-01 inclusive and 2200-01-01 exclusive', () => {
    expect(PLAUSIBLE_MIN_MICROS).toBe(Date.UTC(1950, 0, 1) * 1000);
    expect(PLAUSIBLE_MAX_MICROS).toBe(Date.UTC(2200, 0, 1) * 1000);
    expect(isPlausibleScMicros(PLAUSIBLE_MIN_MICROS)).toBe(true);
    expect(isPlausibleScMicros(PLAUSIBLE_MIN_MICROS - 1)).toBe(false);
    expect(isPlausibleScMicros(PLAUSIBLE_MAX_MICROS - 1)).toBe(true);
    expect(isPlausibleScMicros(PLAUSIBLE_MAX_MICROS)).toBe(false);
    expect(isPlausibleScMicros(0)).toBe(true);
    expect(isPlausibleScMicros(Number.NaN)).toBe(false);
  });
});
