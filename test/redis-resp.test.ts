/**
 * The Redis sink's RESP writers (workers/redis-sink/resp.ts): numbers written straight into the batch
 * buffer must be byte for byte what `String(x)` gives (the stream fields and the PUBLISH JSON are a
 * contract), integers up to 2^53, the length fix-up of a bulk string written before its length was known,
 * and the encoder's buffer reuse. The per-trade encoder on top of them: test/redis-trade-writer.test.ts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  RespEncoder, digits, digits32, fill32, fixLenHeader, putDigits, putDigits32, putIntArg, putNumArg, putNumArgAt, putU32Arg,
} from '../workers/redis-sink/resp.ts';

const scratch = Buffer.alloc(256);
const f64 = new Float64Array(1);
const bulk = (s: string): string => `$${s.length}\r\n${s}\r\n`;
const text = (end: number): string => scratch.toString('latin1', 0, end);
const numArg = (x: number): string => text(putNumArg(scratch, 0, x));
function numArgAt(x: number): string {
  f64[0] = x;
  return text(putNumArgAt(scratch, 0, f64, 0));
}

describe('RESP writers', () => {
  it('putNumArg / putNumArgAt write exactly String(x) (NaN: the empty string) for any double', () => {
    const cases = [0, -0, 1, -1, 0.1, 0.25, 21000.25, 21000.5, 4.1, 1.0001, 0.0001, 0.00001, 1e-7, 123456789.1234, 99999999999.9999, 1e11, 1e21, 1.5e300,
      -21000.75, 0.1 + 0.2, 2 ** 31, 2 ** 31 - 0.0001, 1999999999.9999, 2e9, 2 ** 53, 2 ** 53 + 2, Number.MAX_VALUE, Number.MIN_VALUE, Infinity, -Infinity,
      5e-324, 1 / 3, 6543.21, 100.1, 1e15 / 1e4];
    for (const x of cases) {
      expect(numArg(x), String(x)).toBe(bulk(String(x)));
      expect(numArgAt(x), String(x)).toBe(bulk(String(x)));
    }
    expect(numArg(NaN)).toBe(bulk(''));
    expect(numArgAt(NaN)).toBe(bulk(''));
    fc.assert(fc.property(fc.double({ noNaN: true }), (x) => numArg(x) === bulk(String(x)) && numArgAt(x) === bulk(String(x))), { numRuns: 20_000 });
    // price-like: multiples of 10^-k of every size the fast paths take, and around their limits
    fc.assert(fc.property(fc.integer({ min: -1e15 + 1, max: 1e15 - 1 }), fc.integer({ min: 0, max: 6 }), (k, e) => {
      const x = k / 10 ** e;
      return numArg(x) === bulk(String(x)) && numArgAt(x) === bulk(String(x));
    }), { numRuns: 50_000 });
    fc.assert(fc.property(fc.integer({ min: 0, max: 400_000 }), fc.constantFrom(0.25, 0.01, 0.1, 0.05, 0.005, 1 / 32, 0.0001), (k, tick) => {
      const x = 15_000 + k * tick;
      return numArg(x) === bulk(String(x)) && numArgAt(-x) === bulk(String(-x));
    }), { numRuns: 50_000 });
  });

  it('putIntArg, putU32Arg, putDigits, putDigits32 and fill32 write the decimal digits of integers', () => {
    const ints = [0, 1, 9, 10, 99, 100, 999_999_999, 1_000_000_000, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 99_999_999_999, 1e15, 2 ** 53 - 1];
    for (const x of ints) {
      expect(text(putIntArg(scratch, 0, x))).toBe(bulk(String(x)));
      expect(text(putDigits(scratch, 0, x))).toBe(String(x));
      expect(digits(x)).toBe(String(x).length);
      if (x < 2 ** 32) expect(text(putU32Arg(scratch, 0, x))).toBe(bulk(String(x)));
      if (x < 2 ** 31) {
        expect(text(putDigits32(scratch, 0, x))).toBe(String(x));
        expect(digits32(x)).toBe(String(x).length);
      }
    }
    fc.assert(fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), fc.integer({ min: 0, max: 2 ** 32 - 1 }), (n, u) =>
      text(putIntArg(scratch, 0, n)) === bulk(String(n)) && text(putDigits(scratch, 0, n)) === String(n)
      && text(putU32Arg(scratch, 0, u)) === bulk(String(u))), { numRuns: 20_000 });
    fill32(scratch, 0, 6, 42);
    expect(text(6)).toBe('000042');
    fill32(scratch, 0, 3, 0);
    expect(text(3)).toBe('000');
  });

  it('fixLenHeader writes the header of a body written after a 6-byte slot, moving the body when its length has more or fewer than 3 digits', () => {
    const big = Buffer.alloc(20_000);
    for (const len of [0, 1, 9, 10, 99, 100, 150, 999, 1000, 1234, 9999, 10_000]) {
      const body = 'x'.repeat(Math.max(0, len - 1)) + (len > 0 ? '}' : '');
      big.fill(0);
      big.write('AB', 0, 'latin1');
      big.write(body, 8, 'latin1');
      const end = fixLenHeader(big, 2, 8, 8 + len);
      expect(big.toString('latin1', 0, end)).toBe(`AB${bulk(body)}`);
    }
  });

  it('RespEncoder.take hands the bytes over and reuses a recycled buffer for a later batch', () => {
    const enc = new RespEncoder(1 << 17); // at least the 64 KiB a fresh batch buffer gets
    enc.begin(2); enc.str('SELECT'); enc.num(9);
    expect(enc.commands).toBe(1);
    const first = enc.buf;
    const out = enc.take();
    expect(out.toString('latin1')).toBe('*2\r\n$6\r\nSELECT\r\n$1\r\n9\r\n');
    expect(enc.len).toBe(0);
    expect(enc.commands).toBe(0);
    expect(enc.buf).not.toBe(first);
    enc.recycle(first);
    enc.begin(1); enc.num(21000.25);
    enc.take();
    expect(enc.buf).toBe(first); // the spare came back
    enc.begin(1); enc.num(NaN);
    expect(enc.buf.toString('latin1', 0, enc.len)).toBe('*1\r\n$0\r\n\r\n');
  });
});
