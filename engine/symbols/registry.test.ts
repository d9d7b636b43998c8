import { describe, expect, test } from 'vitest';
import { threadId } from 'node:worker_threads';
import { isEngineError } from '../errors.ts';
import { LatestTable } from '../latest/latest-table.ts';
import { createRing } from '../ring/ring.ts';
import * as RL from './layout.ts';
import { LAYOUT_VERSION_I32, LOCK_I32, SLOT_BYTES, registryBytes } from './layout.ts';
import fc from 'fast-check';
import { normalizeQuery, SymbolRegistry, type SymbolInput } from './registry.ts';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return isEngineError(e) ? e.code : `not an EngineError: ${String(e)}`;
  }
  return 'no error';
}

const utcMicros = (y: number, m: number, d: number, h = 0): number => Date.UTC(y, m - 1, d, h) * 1000;

describe('registry layout', () => {
  test('slot fields fit, do not overlap, f64s are 8-aligned; header words of different roles on different lines', () => {
    const fields: [string, number, number][] = [ // name, byte, width
      ['symbol', RL.SYMBOL_LEN_BYTE, 1 + RL.SYMBOL_MAX_CHARS], ['root', RL.ROOT_LEN_BYTE, 1 + RL.ROOT_MAX_CHARS],
      ['exchange', RL.EXCHANGE_LEN_BYTE, 1 + RL.EXCHANGE_MAX_CHARS], ['session', RL.SESSION_LEN_BYTE, 1 + RL.SESSION_MAX_CHARS],
      ['tick', RL.TICK_SIZE_BYTE, 8], ['mult', RL.PRICE_MULTIPLIER_BYTE, 8], ['expiry', RL.EXPIRY_MICROS_BYTE, 8],
      ['roll', RL.ROLL_MICROS_BYTE, 8], ['kind', RL.KIND_BYTE, 1], ['month', RL.CONTRACT_MONTH_BYTE, 1],
      ['year', RL.CONTRACT_YEAR_BYTE, 2], ['id', RL.SLOT_ID_BYTE, 2],
    ];
    const used = new Uint8Array(RL.SLOT_BYTES);
    for (const [name, at, width] of fields) {
      expect(at + width, name).toBeLessThanOrEqual(RL.SLOT_BYTES);
      expect(at % Math.min(width, 8), name).toBe(0); // naturally aligned numbers (strings have width > 8 → 8-aligned)
      for (let i = at; i < at + width; i++) { expect(used[i], `${name} overlaps at byte ${i}`).toBe(0); used[i] = 1; }
    }
    expect([RL.SYMBOL_CHARS_BYTE, RL.ROOT_CHARS_BYTE, RL.EXCHANGE_CHARS_BYTE, RL.SESSION_CHARS_BYTE])
      .toEqual([RL.SYMBOL_LEN_BYTE + 1, RL.ROOT_LEN_BYTE + 1, RL.EXCHANGE_LEN_BYTE + 1, RL.SESSION_LEN_BYTE + 1]);
    expect(RL.SLOT_BYTES % 64).toBe(0);
    expect(RL.HEADER_BYTES % 128).toBe(0);
    expect(Math.floor(RL.MAGIC_I32 / RL.I32_PER_LINE)).not.toBe(Math.floor(RL.LOCK_I32 / RL.I32_PER_LINE));
    expect(RL.COUNT_I32 * 4).toBeLessThan(RL.HEADER_BYTES);
    expect(RL.slotByteOf(1)).toBe(RL.HEADER_BYTES);
    expect(RL.registryBytes(RL.MAX_CAPACITY)).toBe(RL.HEADER_BYTES + 65535 * 128);
  });
});

describe('create and attach', () => {
  test('a registry attached elsewhere sees the same symbols and ids', () => {
    const a = SymbolRegistry.create({ capacity: 16 });
    expect(a.buffer.byteLength).toBe(registryBytes(16));
    expect(a.capacity).toBe(16);
    expect(a.size).toBe(0);
    const id = a.register('MNQZ25');
    expect(id).toBe(1);
    const b = SymbolRegistry.attach(a.buffer);
    expect(b.capacity).toBe(16);
    expect(b.idOf('MNQZ25')).toBe(1);
    expect(b.metaOf(1)).toEqual(a.metaOf(1));
    // registered through b, seen by a (its cache refreshes on the miss)
    expect(b.register('SPY')).toBe(2);
    expect(a.idOf('SPY')).toBe(2);
    expect(a.size).toBe(2);
  });

  test('capacity limits', () => {
    expect(SymbolRegistry.create().capacity).toBe(4096);
    expect(SymbolRegistry.create({ capacity: 65535 }).capacity).toBe(65535);
    for (const capacity of [0, 65536, 1.5, -1, NaN]) {
      expect(codeOf(() => SymbolRegistry.create({ capacity }))).toBe('ENGINE_ERR_INVALID_ARG');
    }
  });

  test('wrong, short or foreign buffers are ENGINE_ERR_LAYOUT', () => {
    const good = SymbolRegistry.create({ capacity: 8 }).buffer;
    expect(codeOf(() => SymbolRegistry.attach(new ArrayBuffer(registryBytes(8)) as unknown as SharedArrayBuffer))).toBe('ENGINE_ERR_LAYOUT');
    expect(codeOf(() => SymbolRegistry.attach(undefined as unknown as SharedArrayBuffer))).toBe('ENGINE_ERR_LAYOUT');
    expect(codeOf(() => SymbolRegistry.attach(new SharedArrayBuffer(8)))).toBe('ENGINE_ERR_LAYOUT'); // short
    expect(codeOf(() => SymbolRegistry.attach(new SharedArrayBuffer(registryBytes(8))))).toBe('ENGINE_ERR_LAYOUT'); // zeros
    expect(codeOf(() => SymbolRegistry.attach(createRing({ slotCount: 16, slotBytes: 64 })))).toBe('ENGINE_ERR_LAYOUT'); // a ring
    expect(codeOf(() => SymbolRegistry.attach(LatestTable.create(8).buffer))).toBe('ENGINE_ERR_LAYOUT'); // a latest table
    const truncated = new SharedArrayBuffer(good.byteLength - SLOT_BYTES);
    new Uint8Array(truncated).set(new Uint8Array(good, 0, truncated.byteLength));
    expect(codeOf(() => SymbolRegistry.attach(truncated))).toBe('ENGINE_ERR_LAYOUT');
    const otherVersion = new SharedArrayBuffer(good.byteLength);
    new Uint8Array(otherVersion).set(new Uint8Array(good));
    new Int32Array(otherVersion)[LAYOUT_VERSION_I32] = 7;
    expect(codeOf(() => SymbolRegistry.attach(otherVersion))).toBe('ENGINE_ERR_LAYOUT');
  });
});

describe('register and metadata', () => {
  test('a futures contract gets its root defaults, contract month/year, expiry and roll', () => {
    const r = SymbolRegistry.create({ capacity: 16 });
    const id = r.register({ symbol: 'MNQZ25' });
    expect(r.metaOf(id)).toEqual({
      id, symbol: 'MNQZ25', root: 'MNQ', exchange: 'CME', kind: 'future', tickSize: 0.25, priceMultiplier: 1,
      sessionCalendar: 'cme-globex',
      contract: { monthCode: 'Z', month: 12, year: 2025, expiryMicros: utcMicros(2025, 12, 19, 14) + 30 * 60e6, rollMicros: utcMicros(2025, 12, 11) },
    });
    expect(Object.isFrozen(r.metaOf(id))).toBe(true);
    expect(r.metaOf(id)).toBe(r.metaOf(id)); // cached, no allocation per call
  });

  test('built-in equity, ETF and index defaults', () => {
    const r = SymbolRegistry.create({ capacity: 16 });
    expect(r.metaOf(r.register('SPY'))).toMatchObject({ root: 'SPY', kind: 'etf', exchange: 'ARCA', tickSize: 0.01, sessionCalendar: 'us-equity-rth', contract: null });
    expect(r.metaOf(r.register('QQQ'))).toMatchObject({ kind: 'etf', tickSize: 0.01, sessionCalendar: 'us-equity-rth' });
    expect(r.metaOf(r.register('VIX'))).toMatchObject({ kind: 'index', exchange: 'CBOE', tickSize: 0.01 });
    for (const s of ['NQH26', 'MESM26', 'ESU26']) expect(r.metaOf(r.register(s))).toMatchObject({ kind: 'future', exchange: 'CME', tickSize: 0.25 });
  });

  test('explicit metadata round-trips through the binary slot (multiplier, custom symbol, explicit contract)', () => {
    const r = SymbolRegistry.create({ capacity: 16 });
    const inputs: SymbolInput[] = [
      { symbol: 'NQ_NDX', kind: 'index', exchange: 'NASDAQ', tickSize: 0.01, sessionCalendar: 'us-equity-rth' },
      { symbol: 'MNQZ25_X100', root: 'MNQ', kind: 'future', contractMonth: 12, contractYear: 2025, priceMultiplier: 0.01 },
      { symbol: 'BTCUSD', kind: 'equity', exchange: 'COINBASE', tickSize: 0.01, sessionCalendar: '24x7', root: 'BTC' },
      { symbol: 'SPY', priceMultiplier: 0.01 },
      { symbol: 'ABCDEFGHIJKLMNOPQRSTUVWXYZ01234', root: 'ABCDEFGHIJKLMNO', kind: 'option', exchange: 'ABCDEFGHIJKLMNO', tickSize: 0.05, sessionCalendar: 'abcdefghijklmnopqrstuvw' },
    ];
    const ids = inputs.map((i) => r.register(i));
    const view = SymbolRegistry.attach(r.buffer); // decode from the SAB, not from the registrant's cache
    expect(view.metaOf(ids[0] as number)).toMatchObject({ symbol: 'NQ_NDX', root: 'NQ_NDX', kind: 'index', exchange: 'NASDAQ', contract: null });
    expect(view.metaOf(ids[1] as number)).toMatchObject({ root: 'MNQ', priceMultiplier: 0.01, contract: { month: 12, year: 2025, monthCode: 'Z' } });
    expect(view.metaOf(ids[2] as number)).toMatchObject({ root: 'BTC', sessionCalendar: '24x7' });
    expect(view.metaOf(ids[3] as number)).toMatchObject({ kind: 'etf', priceMultiplier: 0.01 });
    expect(view.metaOf(ids[4] as number)).toMatchObject({ symbol: 'ABCDEFGHIJKLMNOPQRSTUVWXYZ01234', root: 'ABCDEFGHIJKLMNO', sessionCalendar: 'abcdefghijklmnopqrstuvw' });
    expect(view.list().map((m) => m.id)).toEqual([1, 2, 3, 4, 5]);
  });

  test('registering again is idempotent; different metadata is ENGINE_ERR_BAD_SYMBOL', () => {
    const r = SymbolRegistry.create({ capacity: 16 });
    const id = r.register('MNQZ25');
    expect(r.register({ symbol: 'MNQZ25', tickSize: 0.25, exchange: 'CME' })).toBe(id);
    expect(SymbolRegistry.attach(r.buffer).register('MNQZ25')).toBe(id);
    expect(codeOf(() => r.register({ symbol: 'MNQZ25', tickSize: 0.5 }))).toBe('ENGINE_ERR_BAD_SYMBOL');
    expect(codeOf(() => r.register({ symbol: 'MNQZ25', priceMultiplier: 0.01 }))).toBe('ENGINE_ERR_BAD_SYMBOL');
    expect(r.size).toBe(1);
  });

  test('malformed names are ENGINE_ERR_BAD_SYMBOL', () => {
    const r = SymbolRegistry.create({ capacity: 16 });
    const bad: unknown[] = [
      '', 'mnqz25', 'MNQ Z25', ' MNQZ25', 'A'.repeat(32), 'MNQZ25é', 'MNQ\u0000', '_MNQ', 'MNQ,ES', 'MNQ"',
      42, null, undefined, {}, { symbol: 5 }, { symbol: ['MNQZ25'] },
    ];
    for (const b of bad) expect(codeOf(() => r.register(b as SymbolInput)), JSON.stringify(b)).toBe('ENGINE_ERR_BAD_SYMBOL');
    expect(r.size).toBe(0);
  });

  test('malformed or missing metadata is ENGINE_ERR_BAD_SYMBOL', () => {
    const r = SymbolRegistry.create({ capacity: 16 });
    const bad: SymbolInput[] = [
      { symbol: 'NQ_NDX' }, // unknown root, nothing given
      { symbol: 'XYZH25' }, // contract-shaped but unknown root: not guessed as a future
      { symbol: 'ACME', kind: 'equity', exchange: 'NYSE', sessionCalendar: 'us-equity-rth' }, // no tick size
      { symbol: 'SPY', tickSize: 0 },
      { symbol: 'SPY', tickSize: -0.01 },
      { symbol: 'SPY', tickSize: NaN },
      { symbol: 'SPY', tickSize: Infinity },
      { symbol: 'SPY', tickSize: '0.01' as unknown as number },
      { symbol: 'SPY', priceMultiplier: 0 },
      { symbol: 'SPY', kind: 'crypto' as never },
      { symbol: 'SPY', exchange: 'arca' },
      { symbol: 'SPY', exchange: '' },
      { symbol: 'SPY', sessionCalendar: 'US Equity RTH' },
      { symbol: 'SPY', sessionCalendar: 'a'.repeat(24) },
      { symbol: 'SPY', contractMonth: 12, contractYear: 2025 }, // contract fields on a non-future
      { symbol: 'MNQZ25', root: 'NQ' }, // root contradicts the name
      { symbol: 'MNQZ25', contractMonth: 3 }, // month contradicts the name
      { symbol: 'MNQ_CUSTOM', root: 'MNQ', kind: 'future' }, // future without month/year
      { symbol: 'MNQ_CUSTOM', root: 'MNQ', kind: 'future', contractMonth: 13, contractYear: 2025 },
      { symbol: 'MNQ_CUSTOM', root: 'MNQ', kind: 'future', contractMonth: 12, contractYear: 2025.5 },
      { symbol: 'A'.repeat(16) }, // non-future without root: root would be longer than 15
    ];
    for (const b of bad) expect(codeOf(() => r.register(b)), JSON.stringify(b)).toBe('ENGINE_ERR_BAD_SYMBOL');
    expect(r.size).toBe(0);
  });

  test('a full table is ENGINE_ERR_SYMBOL_TABLE_FULL; symbols already in it still register', () => {
    const r = SymbolRegistry.create({ capacity: 3 });
    expect(['SPY', 'QQQ', 'VIX'].map((s) => r.register(s))).toEqual([1, 2, 3]);
    expect(codeOf(() => r.register('MNQZ25'))).toBe('ENGINE_ERR_SYMBOL_TABLE_FULL');
    expect(r.register('QQQ')).toBe(2);
    expect(r.size).toBe(3);
  });
});

describe('lookups', () => {
  test('idOf / requireId / metaOf / list', () => {
    const r = SymbolRegistry.create({ capacity: 16 });
    r.register('MNQZ25');
    r.register('SPY');
    expect(r.idOf('SPY')).toBe(2);
    expect(r.idOf('NOPE')).toBe(0);
    expect(r.idOf('spy')).toBe(0); // exact; `resolve` normalises user input
    expect(r.requireId('MNQZ25')).toBe(1);
    expect(codeOf(() => r.requireId('NOPE'))).toBe('ENGINE_ERR_UNKNOWN_SYMBOL');
    expect(codeOf(() => r.requireId(undefined as unknown as string))).toBe('ENGINE_ERR_UNKNOWN_SYMBOL');
    for (const id of [0, 3, -1, 1.5, NaN, 65535]) expect(codeOf(() => r.metaOf(id))).toBe('ENGINE_ERR_UNKNOWN_SYMBOL');
    expect(r.list().map((m) => [m.id, m.symbol])).toEqual([[1, 'MNQZ25'], [2, 'SPY']]);
  });

  test('front month: nearest registered quarterly contract not yet rolled', () => {
    const r = SymbolRegistry.create({ capacity: 16 });
    const z25 = r.register('MNQZ25');
    const f26 = r.register('MNQF26'); // January: not quarterly, never the front month by this rule
    const m26 = r.register('MNQM26');
    const h26 = r.register('MNQH26'); // registered after M26: order does not matter
    r.register('SPY');
    expect(r.resolveFrontMonth('MNQ', utcMicros(2025, 11, 1))).toBe('MNQZ25');
    expect(r.resolveFrontMonth('MNQ', utcMicros(2025, 12, 10, 23))).toBe('MNQZ25');
    expect(r.resolveFrontMonth('MNQ', utcMicros(2025, 12, 11))).toBe('MNQH26');
    expect(r.resolveFrontMonth('MNQ', utcMicros(2026, 3, 12))).toBe('MNQM26');
    // every registered one rolled: derive by the rule (not registered)
    expect(r.resolveFrontMonth('MNQ', utcMicros(2026, 6, 12))).toBe('MNQU26');
    // a built-in futures root with nothing registered: derived
    expect(r.resolveFrontMonth('ES', utcMicros(2025, 11, 1))).toBe('ESZ25');
    expect(codeOf(() => r.resolveFrontMonth('SPY', utcMicros(2025, 11, 1)))).toBe('ENGINE_ERR_UNKNOWN_SYMBOL');
    expect(codeOf(() => r.resolveFrontMonth('NOPE', utcMicros(2025, 11, 1)))).toBe('ENGINE_ERR_UNKNOWN_SYMBOL');

    // resolve: exact name first, then normalised, then root -> front month
    const now = utcMicros(2025, 11, 20);
    expect(r.resolve('MNQ', now)).toBe(z25);
    expect(r.resolve(' mnq ', now)).toBe(z25);
    expect(r.resolve('MNQ', utcMicros(2025, 12, 11))).toBe(h26);
    expect(r.resolve('MNQF26', now)).toBe(f26); // the full contract name always works
    expect(r.resolve('MNQM26', now)).toBe(m26);
    expect(r.resolve('mnqz25', now)).toBe(z25);
    expect(r.resolve('SPY', now)).toBe(5);
    expect(r.resolve('ES', now)).toBe(0); // front month ESZ25 is not registered
    expect(r.resolve('NOPE', now)).toBe(0);
    expect(codeOf(() => r.requireResolve('ES', now))).toBe('ENGINE_ERR_UNKNOWN_SYMBOL');
    expect(r.requireResolve('MNQ', now)).toBe(z25);
    // another thread's view (fresh cache) resolves the same way
    expect(SymbolRegistry.attach(r.buffer).resolve('MNQ', now)).toBe(z25);
  });
});

describe('lock', () => {
  test('a lock left by a dead thread times out with a coded error and can be recovered', () => {
    const r = SymbolRegistry.create({ capacity: 8 });
    const deadThreadId = threadId + 1000;
    new Int32Array(r.buffer)[LOCK_I32] = deadThreadId + 1; // what a thread terminated inside register() leaves
    const impatient = SymbolRegistry.attach(r.buffer, { lockTimeoutMs: 30 });
    const started = performance.now();
    let err: unknown;
    try { impatient.register('SPY'); } catch (e) { err = e; }
    expect(isEngineError(err, 'ENGINE_ERR_TIMEOUT')).toBe(true);
    expect((err as { detail: { holderThreadId: number } }).detail.holderThreadId).toBe(deadThreadId);
    expect(performance.now() - started).toBeLessThan(2000);
    expect(impatient.lockContentions).toBeGreaterThan(0);
    // lookups never take the lock
    expect(impatient.idOf('SPY')).toBe(0);
    expect(r.recoverLock(deadThreadId + 1)).toBe(false); // wrong thread: untouched
    expect(r.recoverLock(deadThreadId)).toBe(true);
    expect(impatient.register('SPY')).toBe(1);
    expect(new Int32Array(r.buffer)[LOCK_I32]).toBe(0);
  });

  test('a failed registration releases the lock', () => {
    const r = SymbolRegistry.create({ capacity: 1 });
    r.register('SPY');
    expect(codeOf(() => r.register('QQQ'))).toBe('ENGINE_ERR_SYMBOL_TABLE_FULL');
    expect(codeOf(() => r.register({ symbol: 'SPY', tickSize: 1 }))).toBe('ENGINE_ERR_BAD_SYMBOL');
    expect(new Int32Array(r.buffer)[LOCK_I32]).toBe(0);
  });
});

describe('normalizeQuery', () => {
  test('is query.trim().toUpperCase() for any text (the fast path only skips texts it cannot change)', () => {
    const odd = fc.constantFrom(' ', '\t', '\n', '\u00a0', '\ufeff', '\u2028', 'ß', 'µ', 'ÿ', 'ǅ', 'ﬀ', 'a', 'z', 'A', 'Z', '_', '`', '{', '~', '\u007f');
    const text = fc.array(fc.oneof(odd, fc.string({ maxLength: 4 }), fc.string({ unit: 'binary', maxLength: 3 })), { maxLength: 6 }).map((p) => p.join(''));
    fc.assert(fc.property(text, (q) => normalizeQuery(q) === q.trim().toUpperCase()), { numRuns: 20_000 });
    expect(normalizeQuery('MNQ')).toBe('MNQ');
    expect(normalizeQuery(' mnq ')).toBe('MNQ');
  });
});
