import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { bearerOf } from './request.ts';

describe('bearerOf', () => {
  test('takes the token of a Bearer header and returns anything else whole', () => {
    expect(bearerOf('Bearer tpk_abc')).toBe('tpk_abc');
    expect(bearerOf('bearer \t tpk_abc \t')).toBe('tpk_abc');
    expect(bearerOf('BEARER x')).toBe('x');
    expect(bearerOf('Bearer')).toBe('Bearer');
    expect(bearerOf('Bearer ')).toBe('Bearer ');
    expect(bearerOf('Bearer a b')).toBe('a b'); // not a key either way (the regex would return the header)
    expect(bearerOf('Basic dXNlcjpwYXNz')).toBe('Basic dXNlcjpwYXNz');
    expect(bearerOf('Bearer\u00a0x')).toBe('Bearer\u00a0x');
    expect(bearerOf('tpk_raw')).toBe('tpk_raw');
  });

  test('agrees with the regex /^Bearer[ \\t]+(\\S+)[ \\t]*$/i wherever it matches; elsewhere gives no text a key could be', () => {
    const blank = fc.constantFrom(' ', '\t', '\n', '\r', '\u000b', '\u00a0', '\u2000', '\u3000', '\ufeff', '\u0085', '\u007f');
    const word = fc.constantFrom('Bearer', 'bearer', 'BeArEr', 'Bearex', 'Beare', 'Bearerx');
    const piece = fc.oneof(blank, word, fc.string({ maxLength: 6 }), fc.string({ unit: 'binary', maxLength: 4 }));
    const header = fc.array(piece, { maxLength: 6 }).map((p) => p.join(''));
    fc.assert(fc.property(header, (h) => {
      const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(h);
      const got = bearerOf(h);
      if (m !== null) return got === m[1];
      return got === h || /\s/.test(got); // the header whole, or a text with a space inside: never a key (keys have none)
    }), { numRuns: 20_000 });
  });
});
