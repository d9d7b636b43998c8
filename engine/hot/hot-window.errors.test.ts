/**
 * Bad input gets coded errors: create options (ENGINE_ERR_INVALID_ARG), layouts above the memory bound
 * (ENGINE_ERR_MEMORY_LIMIT), buffers that are not a hot window (ENGINE_ERR_LAYOUT), symbol ids outside the
 * window (ENGINE_ERR_UNKNOWN_SYMBOL), bad query arguments (ENGINE_ERR_INVALID_ARG). Normal states
 * (rejected append, empty window) are return values, tested in hot-window.test.ts.
 */
import { describe, expect, test } from 'vitest';
import { isEngineError, type EngineError, type EngineErrorCode } from '../errors.ts';
import { createRing } from '../ring/ring.ts';
import { LatestTable } from '../latest/latest-table.ts';
import { Prng } from '../../workers/sim/prng.ts';
import { createHotColumns } from './hot-columns.ts';
import { HotWindow } from './hot-window.ts';
import {
  CAPACITY_I32, DEFAULT_MAX_BYTES, ENTRY_BYTES_I32, HEADER_BYTES, LAYOUT_VERSION_I32, MAGIC_I32, RETAIN_MICROS_F64,
  SYMBOLS_I32, hotBytes,
} from './layout.ts';

function thrown(fn: () => unknown): unknown {
  try { fn(); } catch (e) { return e; }
  return undefined;
}

function expectCode(fn: () => unknown, code: EngineErrorCode): EngineError {
  const e = thrown(fn);
  expect(e, `expected ${code}, nothing was thrown`).toBeDefined();
  expect(isEngineError(e), `expected an EngineError ${code}, got ${String(e)}`).toBe(true);
  expect((e as EngineError).code).toBe(code);
  return e as EngineError;
}

describe('create validates its options', () => {
  test('bad symbols, capacity, retention, bound: ENGINE_ERR_INVALID_ARG', () => {
    for (const symbols of [0, -1, 1.5, NaN, 65536, '3' as unknown as number]) {
      expectCode(() => HotWindow.create({ symbols, capacityPerSymbol: 16 }), 'ENGINE_ERR_INVALID_ARG');
    }
    for (const capacityPerSymbol of [0, 1, 3, 6, 1000, -16, 2 ** 31, NaN, 16.5]) {
      expectCode(() => HotWindow.create({ symbols: 1, capacityPerSymbol }), 'ENGINE_ERR_INVALID_ARG');
    }
    for (const retainMicros of [0, -1, NaN, '3600' as unknown as number]) {
      expectCode(() => HotWindow.create({ symbols: 1, capacityPerSymbol: 16, retainMicros }), 'ENGINE_ERR_INVALID_ARG');
    }
    for (const maxBytes of [0, -1, NaN]) {
      expectCode(() => HotWindow.create({ symbols: 1, capacityPerSymbol: 16, maxBytes }), 'ENGINE_ERR_INVALID_ARG');
    }
    expect(HotWindow.create({ symbols: 1, capacityPerSymbol: 2, retainMicros: Infinity }).retainMicros).toBe(Infinity);
  });

  test('a layout above the memory bound: ENGINE_ERR_MEMORY_LIMIT naming the bytes, before allocating anything', () => {
    // 100 symbols at the default 2^20 entries = 4.4 GiB: over the default 1 GiB bound
    const e = expectCode(() => HotWindow.create({ symbols: 100 }), 'ENGINE_ERR_MEMORY_LIMIT');
    expect(e.detail).toMatchObject({ bytes: hotBytes(100, 2 ** 20), maxBytes: DEFAULT_MAX_BYTES, symbols: 100, capacityPerSymbol: 2 ** 20, bytesPerSymbol: 45 * 2 ** 20 });
    expect(e.message).toMatch(/GiB.*above the configured bound of 1\.00 GiB/);
    // the bound is exact: the computed size fits, one byte less does not
    const bytes = hotBytes(4, 1024);
    expect(HotWindow.create({ symbols: 4, capacityPerSymbol: 1024, maxBytes: bytes }).byteLength).toBe(bytes);
    expectCode(() => HotWindow.create({ symbols: 4, capacityPerSymbol: 1024, maxBytes: bytes - 1 }), 'ENGINE_ERR_MEMORY_LIMIT');
    // the largest geometry is refused by the bound, not by a failed 48 TiB allocation
    expectCode(() => HotWindow.create({ symbols: 65535, capacityPerSymbol: 2 ** 30 }), 'ENGINE_ERR_MEMORY_LIMIT');
    // only the ids that can receive trades count against the bound (retired ids keep untouched pages)
    const some = HotWindow.create({ symbols: 40, activeSymbols: 4, capacityPerSymbol: 1024, maxBytes: bytes });
    expect(some.byteLength).toBe(hotBytes(40, 1024));
    expectCode(() => HotWindow.create({ symbols: 40, activeSymbols: 5, capacityPerSymbol: 1024, maxBytes: bytes }), 'ENGINE_ERR_MEMORY_LIMIT');
    expectCode(() => HotWindow.create({ symbols: 4, activeSymbols: 5 }), 'ENGINE_ERR_INVALID_ARG');
    expectCode(() => HotWindow.create({ symbols: 4, activeSymbols: 0 }), 'ENGINE_ERR_INVALID_ARG');
  });

  test('an allocation the host refuses is ENGINE_ERR_MEMORY_LIMIT too (with the cause)', () => {
    const e = expectCode(() => HotWindow.create({ symbols: 65535, capacityPerSymbol: 2 ** 30, maxBytes: Infinity }), 'ENGINE_ERR_MEMORY_LIMIT');
    expect(e.message).toMatch(/cannot allocate/);
    expect(e.cause).toBeInstanceOf(RangeError);
  });

  test('createHotColumns: bad row counts are ENGINE_ERR_INVALID_ARG', () => {
    for (const n of [0, -1, 1.5, NaN, 2 ** 27]) expectCode(() => createHotColumns(n), 'ENGINE_ERR_INVALID_ARG');
    expect(createHotColumns(1).capacity).toBe(1);
  });
});

describe('attach rejects what is not a hot window: ENGINE_ERR_LAYOUT', () => {
  test('not a SharedArrayBuffer', () => {
    const good = HotWindow.create({ symbols: 2, capacityPerSymbol: 16 });
    for (const x of [new ArrayBuffer(good.byteLength), new Uint8Array(good.buffer), null, undefined, 42, 'hot', { byteLength: good.byteLength }]) {
      expectCode(() => HotWindow.attach(x as SharedArrayBuffer), 'ENGINE_ERR_LAYOUT');
    }
  });

  test('short buffers, and a valid header over a buffer of the wrong size', () => {
    for (const n of [0, 4, HEADER_BYTES - 1]) expectCode(() => HotWindow.attach(new SharedArrayBuffer(n)), 'ENGINE_ERR_LAYOUT');
    const good = HotWindow.create({ symbols: 2, capacityPerSymbol: 16 });
    for (const n of [HEADER_BYTES, good.byteLength - 128, good.byteLength - 1, good.byteLength + 1, good.byteLength + 128]) {
      const sab = new SharedArrayBuffer(n);
      new Uint8Array(sab).set(new Uint8Array(good.buffer, 0, Math.min(n, good.byteLength)));
      expectCode(() => HotWindow.attach(sab), 'ENGINE_ERR_LAYOUT');
    }
  });

  test('foreign buffers: zeroes, random bytes (seeded), a ring, a latest table', () => {
    const prng = new Prng(0x407);
    for (const n of [HEADER_BYTES, hotBytes(1, 16), hotBytes(3, 64), 4096 + 8]) {
      expectCode(() => HotWindow.attach(new SharedArrayBuffer(n)), 'ENGINE_ERR_LAYOUT');
      for (let k = 0; k < 20; k++) {
        const sab = new SharedArrayBuffer(n);
        const u8 = new Uint8Array(sab);
        for (let i = 0; i < n; i++) u8[i] = prng.int(0, 255);
        expectCode(() => HotWindow.attach(sab), 'ENGINE_ERR_LAYOUT');
      }
    }
    expectCode(() => HotWindow.attach(createRing({ slotCount: 64, slotBytes: 64 })), 'ENGINE_ERR_LAYOUT');
    expectCode(() => HotWindow.attach(LatestTable.create(16).buffer), 'ENGINE_ERR_LAYOUT');
  });

  test('a header that lies about its geometry, version or retention', () => {
    const lies: [string, (h: Int32Array, f: Float64Array) => void][] = [
      ['magic off by one', (h) => { h[MAGIC_I32] = (h[MAGIC_I32]! + 1) | 0; }],
      ['layout version 2', (h) => { h[LAYOUT_VERSION_I32] = 2; }],
      ['symbols doubled', (h) => { h[SYMBOLS_I32] = 4; }],
      ['symbols 0', (h) => { h[SYMBOLS_I32] = 0; }],
      ['symbols negative', (h) => { h[SYMBOLS_I32] = -2; }],
      ['capacity halved', (h) => { h[CAPACITY_I32] = 8; }],
      ['capacity not a power of two', (h) => { h[CAPACITY_I32] = 15; }],
      ['capacity 1', (h) => { h[CAPACITY_I32] = 1; }],
      ['symbols and capacity swapped for the same product', (h) => { h[SYMBOLS_I32] = 16; h[CAPACITY_I32] = 2; }],
      ['entry bytes 44', (h) => { h[ENTRY_BYTES_I32] = 44; }],
      ['retention 0', (_, f) => { f[RETAIN_MICROS_F64] = 0; }],
      ['retention NaN', (_, f) => { f[RETAIN_MICROS_F64] = NaN; }],
      ['retention negative', (_, f) => { f[RETAIN_MICROS_F64] = -1; }],
    ];
    for (const [what, lie] of lies) {
      const sab = HotWindow.create({ symbols: 2, capacityPerSymbol: 16 }).buffer;
      lie(new Int32Array(sab, 0, HEADER_BYTES >> 2), new Float64Array(sab, 0, HEADER_BYTES >> 3));
      const e = thrown(() => HotWindow.attach(sab));
      expect(isEngineError(e, 'ENGINE_ERR_LAYOUT'), `${what}: ${String(e)}`).toBe(true);
    }
  });

  test('a good buffer attaches, with the creator geometry, from a structured clone too', () => {
    const w = HotWindow.create({ symbols: 5, capacityPerSymbol: 32, retainMicros: 1234 });
    const a = HotWindow.attach(structuredClone(w.buffer));
    expect([a.symbols, a.capacityPerSymbol, a.retainMicros, a.byteLength]).toEqual([5, 32, 1234, w.byteLength]);
    w.append(5, 1, 2, 3, 4, 5, 6, 7, 8);
    expect(a.appended(5)).toBe(1); // same memory
  });
});

describe('symbol ids outside 1..symbols: ENGINE_ERR_UNKNOWN_SYMBOL', () => {
  test('every method, every kind of bad id', () => {
    const w = HotWindow.create({ symbols: 3, capacityPerSymbol: 16 });
    const out = createHotColumns(4);
    for (const id of [0, 4, -1, 1.5, NaN, Infinity, 65535, 2 ** 32 + 1, '1' as unknown as number]) {
      expectCode(() => w.append(id, 1, 1, 1, 1, 1, 1, 1, 1), 'ENGINE_ERR_UNKNOWN_SYMBOL');
      expectCode(() => w.newest(id, 1, out), 'ENGINE_ERR_UNKNOWN_SYMBOL');
      expectCode(() => w.since(id, 0, 1, out), 'ENGINE_ERR_UNKNOWN_SYMBOL');
      expectCode(() => w.count(id), 'ENGINE_ERR_UNKNOWN_SYMBOL');
      expectCode(() => w.heldFromMicros(id), 'ENGINE_ERR_UNKNOWN_SYMBOL');
      expectCode(() => w.appended(id), 'ENGINE_ERR_UNKNOWN_SYMBOL');
    }
    expect(w.stats().appended).toBe(0); // nothing was written by the refused calls
  });

  test('appendFromSlot with symbol id 0 or beyond the window', () => {
    const w = HotWindow.create({ symbols: 3, capacityPerSymbol: 16 });
    const sab = createRing({ slotCount: 2, slotBytes: 64 });
    const v = { f64: new Float64Array(sab), f32: new Float32Array(sab), i32: new Int32Array(sab), u32: new Uint32Array(sab), u16: new Uint16Array(sab), u8: new Uint8Array(sab) };
    const b = 512;
    v.u8[b] = 1; // TRADE
    for (const id of [0, 4]) {
      v.u16[(b + 2) >> 1] = id;
      expectCode(() => w.appendFromSlot(v, b), 'ENGINE_ERR_UNKNOWN_SYMBOL');
    }
  });
});

describe('query arguments', () => {
  test('bad n, limit and sinceMicros: ENGINE_ERR_INVALID_ARG', () => {
    const w = HotWindow.create({ symbols: 1, capacityPerSymbol: 16 });
    const out = createHotColumns(4);
    for (const n of [-1, 1.5, NaN, 2 ** 32, Infinity]) {
      expectCode(() => w.newest(1, n, out), 'ENGINE_ERR_INVALID_ARG');
      expectCode(() => w.since(1, 0, n, out), 'ENGINE_ERR_INVALID_ARG');
    }
    expectCode(() => w.since(1, NaN, 1, out), 'ENGINE_ERR_INVALID_ARG');
    expectCode(() => w.since(1, '5' as unknown as number, 1, out), 'ENGINE_ERR_INVALID_ARG');
    expect(w.since(1, -Infinity, 1, out)).toBe(0);
    expect(out.heldFromMicros).toBe(Infinity);
    expect(Number.isNaN(out.newestTsMicros)).toBe(true);
  });
});
