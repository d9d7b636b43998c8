import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { isEngineError } from '../../engine/errors.ts';
import { CHECKSUM_PRICE_LIMIT, PRICE_SCALE, scanTickColumns, sumFigures } from './figures.ts';
import { allocColumns, makeTape } from './test-ticks.ts';

const H0 = Date.UTC(2025, 10, 11, 14) * 1000;

/** Reference with BigInt per row (what the limb arithmetic must equal). */
function refChecksum(price: Float64Array, size: Uint32Array, n: number): string {
  let sum = 0n;
  for (let i = 0; i < n; i++) {
    const px = price[i] as number;
    if (!(Math.abs(px) < CHECKSUM_PRICE_LIMIT)) continue;
    sum += BigInt(Math.floor(px * PRICE_SCALE + 0.5)) * BigInt(size[i] as number);
  }
  return sum.toString();
}

function refVolume(size: Uint32Array, n: number, onlyPriced?: Float64Array): string {
  let v = 0n;
  for (let i = 0; i < n; i++) if (onlyPriced === undefined || !Number.isNaN(onlyPriced[i])) v += BigInt(size[i] as number);
  return v.toString();
}

const priceArb = fc.oneof(
  fc.double({ min: -CHECKSUM_PRICE_LIMIT * 1.5, max: CHECKSUM_PRICE_LIMIT * 1.5 }),
  fc.integer({ min: -4_000_000, max: 4_000_000 }).map((t) => t * 0.25),
  fc.integer({ min: 0, max: 2_000_000_000 }).map((t) => t * 0.000005),
  fc.constantFrom(Number.NaN, Infinity, -Infinity, 0, -0, CHECKSUM_PRICE_LIMIT, -CHECKSUM_PRICE_LIMIT, 999_999_999.999_999),
);

describe('scanTickColumns', () => {
  test('checksum and volumes are exact (equal a BigInt reference) for any prices and u32 sizes', () => {
    fc.assert(fc.property(
      fc.array(fc.tuple(priceArb, fc.oneof(fc.nat({ max: 0xffffffff }), fc.constant(0xffffffff), fc.nat(10))), { minLength: 0, maxLength: 5000 }),
      (rows) => {
        const n = rows.length;
        const c = allocColumns(n);
        for (let i = 0; i < n; i++) {
          const [p, s] = rows[i] as [number, number];
          c.tsMicros[i] = H0 + i;
          c.price[i] = p;
          c.size[i] = s;
          c.seq[i] = i;
        }
        const f = scanTickColumns(c, n, H0, 1);
        expect(f.checksum).toBe(refChecksum(c.price, c.size, n));
        expect(f.volume).toBe(refVolume(c.size, n));
        expect(f.tradeVolume).toBe(refVolume(c.size, n, c.price));
        expect(f.trades).toBe(rows.filter(([p]) => !Number.isNaN(p)).length);
        expect(f.rows).toBe(n);
      },
    ), { numRuns: 60 });
  });

  test('volume carries past 2^53 exactly when every size is 0xffffffff', () => {
    // 2^21 + 5 rows x (2^32 - 1) > 2^53: a plain f64 sum would round.
    const n = 2 ** 21 + 5;
    const c = allocColumns(n);
    for (let i = 0; i < n; i++) { c.tsMicros[i] = H0 + i; c.size[i] = 0xffffffff; c.price[i] = 21_000.25; }
    const f = scanTickColumns(c, n, H0, 1);
    expect(f.volume).toBe((BigInt(n) * 0xffffffffn).toString());
    expect(f.checksum).toBe((BigInt(n) * 0xffffffffn * 21_000_250_000n).toString());
  });

  test('min/max ts, sortedness and trade minutes', () => {
    const c = makeTape(10_000, H0, 7);
    const f = scanTickColumns(c, 10_000, H0, 1);
    expect(f.sorted).toBe(true);
    expect(f.minTsMicros).toBe(c.tsMicros[0]);
    expect(f.maxTsMicros).toBe(c.tsMicros[9_999]);
    const minutes = new Set<number>();
    for (let i = 0; i < 10_000; i++) if (!Number.isNaN(c.price[i])) minutes.add(Math.floor(((c.tsMicros[i] as number) - H0) / 60e6));
    expect(f.tradeMinutes).toBe(minutes.size);
    // same ts, seq going backwards: not sorted
    c.tsMicros[5] = c.tsMicros[4] as number;
    c.seq[5] = (c.seq[4] as number) - 1;
    expect(scanTickColumns(c, 10_000, H0, 1).sorted).toBe(false);
    const empty = scanTickColumns(allocColumns(0), 0, H0, 1);
    expect(empty).toMatchObject({ rows: 0, minTsMicros: null, maxTsMicros: null, checksum: '0', volume: '0', sorted: true });
  });

  test('rejects bad input with ENGINE_ERR_INVALID_ARG', () => {
    const c = makeTape(100, H0, 1);
    const bad = (f: () => unknown): void => {
      let caught: unknown;
      try { f(); } catch (e) { caught = e; }
      expect(isEngineError(caught, 'ENGINE_ERR_INVALID_ARG')).toBe(true);
    };
    bad(() => scanTickColumns(c, 101, H0, 1)); // columns shorter than count
    bad(() => scanTickColumns(c, -1, H0, 1));
    bad(() => scanTickColumns({ ...c, size: new Float64Array(100) as unknown as Uint32Array }, 100, H0, 1));
    const outside = makeTape(100, H0, 1);
    outside.tsMicros[50] = H0 + 3_600_000_000; // first µs of the next hour
    bad(() => scanTickColumns(outside, 100, H0, 1));
    const frac = makeTape(100, H0, 1);
    frac.tsMicros[3] = (frac.tsMicros[3] as number) + 0.5;
    bad(() => scanTickColumns(frac, 100, H0, 1));
    const nan = makeTape(100, H0, 1);
    nan.tsMicros[9] = Number.NaN;
    bad(() => scanTickColumns(nan, 100, H0, 1));
    const src = { ...makeTape(100, H0, 1), sourceId: new Uint8Array(100) };
    src.sourceId[7] = 2;
    bad(() => scanTickColumns(src, 100, H0, 2));
    expect(scanTickColumns(src, 100, H0, 3).rows).toBe(100);
  });

  test('sumFigures adds exactly and keeps the extremes', () => {
    const s = sumFigures([
      { rows: 2, minTsMicros: 10, maxTsMicros: 20, checksum: '9007199254740993', volume: '5' },
      { rows: 0, minTsMicros: null, maxTsMicros: null, checksum: '0', volume: '0' },
      { rows: 3, minTsMicros: 5, maxTsMicros: 15, checksum: '-2', volume: '7' },
    ]);
    expect(s).toEqual({ rows: 5, minTsMicros: 5, maxTsMicros: 20, checksum: '9007199254740991', volume: '12' });
  });
});
