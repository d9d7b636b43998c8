import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import * as flatbuffers from 'flatbuffers';
import { describe, expect, test } from 'vitest';
import { isEngineError } from '../engine/errors.ts';
import { Bar, BookLevel, BookUpdate, Error as ErrorTable, Frame, GexSnapshot, GexStrike, Metric, Status, Tick, TickBatch } from './generated/wire.ts';
import {
  Payload, Side, TICK_STRUCT_BYTES, WIRE_FILE_IDENTIFIER, WIRE_TABLE_SPECS, WireDecoder, WireEncoder, createTickColumns,
  barFrameJson, frameToJson, hasFrameIdentifier, verifyFrame, type ServiceStateName, type SideName, type TickColumns, type WireBar, type WireBookUpdate,
  type WireErrorMessage, type WireFrame, type WireGexSnapshot, type WireStatus, type WireTick, type WireTickBatch,
} from './wire.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const GENERATED = join(ROOT, 'schemas', 'generated');
const SCRIPT = join(ROOT, 'scripts', 'gen-schemas.sh');

// ---- arbitraries ---------------------------------------------------------------------------------

const SIDES: SideName[] = ['unknown', 'buy', 'sell'];
const STATES: ServiceStateName[] = ['unknown', 'starting', 'running', 'degraded', 'reconnecting', 'down', 'disabled'];
const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const u16 = fc.integer({ min: 0, max: 0xffff });
/** µs timestamps: today's magnitude, the 2^53 edge, pre-1970, and anything a double holds exactly. */
const tsMicros = fc.oneof(
  fc.integer({ min: 1_600_000_000_000_000, max: 2_000_000_000_000_000 }),
  fc.constantFrom(0, 1, -1, 2 ** 53 - 1, -(2 ** 53 - 1), 2 ** 53, 1_731_283_200_000_001, 253_402_300_800_000_000 /* year 10000, above 2^53 but exact */),
  fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
);
/** Any double, including NaN, ±Infinity, -0, subnormals. */
const anyDouble = fc.double();
const price = fc.oneof(fc.double({ min: 0, max: 1e7, noNaN: true }), anyDouble);
const text = fc.string({ unit: 'grapheme', maxLength: 24 });

const tickArb: fc.Arbitrary<WireTick> = fc.record({
  symbolId: u16, seq: u32, tsMicros, price, bid: price, ask: price, size: u32, bidSize: u32, askSize: u32,
  side: fc.constantFrom(...SIDES), flags: u32,
});
const tickBatchArb: fc.Arbitrary<WireTickBatch> = fc.record({ symbol: text, source: text, firstSeq: u32, ticks: fc.array(tickArb, { maxLength: 80 }) });
const levelArb = fc.record({ price: anyDouble, size: u32, orders: u16 });
const bookArb: fc.Arbitrary<WireBookUpdate> = fc.record({
  symbol: text, tsMicros, seq: u32, bids: fc.array(levelArb, { maxLength: 12 }), asks: fc.array(levelArb, { maxLength: 12 }), isSnapshot: fc.boolean(),
});
const level = fc.option(anyDouble, { nil: null });
const gexArb: fc.Arbitrary<WireGexSnapshot> = fc.record({
  ticker: text, tsMicros, spot: level, zeroGamma: level, callWall: level, putWall: level,
  strikes: fc.array(fc.record({ strike: anyDouble, callGamma: anyDouble, putGamma: anyDouble, netGamma: anyDouble }), { maxLength: 20 }),
  rawJson: fc.option(fc.json(), { nil: null }),
});
const statusArb: fc.Arbitrary<WireStatus> = fc.record({
  service: text, state: fc.constantFrom(...STATES), tsMicros, message: fc.option(text, { nil: null }),
  metrics: fc.array(fc.record({ name: text, value: anyDouble }), { maxLength: 10 }),
});
const errorArb: fc.Arbitrary<WireErrorMessage> = fc.record({ code: text, message: text, requestId: fc.option(text, { nil: null }) });
/** Volumes: integer sums (also above 2^32) and any double; trades a u32. */
const volume = fc.oneof(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), anyDouble);
const barArb: fc.Arbitrary<WireBar> = fc.record({
  symbol: text, interval: fc.oneof(fc.constantFrom('1m', 'source'), text), startMicros: tsMicros, open: price, high: price, low: price, close: price,
  volume, trades: u32, buyVolume: volume, sellVolume: volume,
});

const frameArb: fc.Arbitrary<WireFrame> = fc.record({
  channel: text,
  tsMicros,
  payload: fc.oneof(
    tickBatchArb.map((p) => ({ type: 'tickBatch' as const, ...p })),
    bookArb.map((p) => ({ type: 'bookUpdate' as const, ...p })),
    gexArb.map((p) => ({ type: 'gexSnapshot' as const, ...p })),
    statusArb.map((p) => ({ type: 'status' as const, ...p })),
    errorArb.map((p) => ({ type: 'error' as const, ...p })),
    barArb.map((p) => ({ type: 'bar' as const, ...p })),
  ),
});

function toColumns(ticks: readonly WireTick[], offset = 0): TickColumns {
  const c = createTickColumns(offset + ticks.length);
  ticks.forEach((t, j) => {
    const i = offset + j;
    c.symbolId[i] = t.symbolId; c.seq[i] = t.seq; c.tsMicros[i] = t.tsMicros; c.price[i] = t.price; c.bid[i] = t.bid;
    c.ask[i] = t.ask; c.size[i] = t.size; c.bidSize[i] = t.bidSize; c.askSize[i] = t.askSize;
    c.side[i] = t.side === 'buy' ? Side.Buy : t.side === 'sell' ? Side.Sell : Side.Unknown; c.flags[i] = t.flags;
  });
  return c;
}

/** Throws unless `fn` throws an ENGINE_ERR_SCHEMA EngineError (or returns normally, when `mayPass`). */
function expectOnlySchemaError(fn: () => unknown, mayPass: boolean): void {
  try {
    fn();
  } catch (e) {
    if (!isEngineError(e, 'ENGINE_ERR_SCHEMA')) throw new Error(`expected ENGINE_ERR_SCHEMA, got ${String(e)}`, { cause: e });
    return;
  }
  if (!mayPass) throw new Error('expected ENGINE_ERR_SCHEMA, decoding succeeded');
}

function schemaReason(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(isEngineError(e, 'ENGINE_ERR_SCHEMA')).toBe(true);
    return String((e as { detail: { reason: unknown } }).detail.reason);
  }
  throw new Error('expected ENGINE_ERR_SCHEMA, decoding succeeded');
}

const enc = new WireEncoder(256); // small on purpose: frames must grow the builder
const dec = new WireDecoder();

const SAMPLE: WireFrame = {
  channel: 'ticks/MNQZ25',
  tsMicros: 1_731_283_200_123_456,
  payload: {
    type: 'tickBatch', symbol: 'MNQZ25', source: 'sierra-scid', firstSeq: 41,
    ticks: [
      { symbolId: 7, seq: 41, tsMicros: 1_731_283_200_000_000, price: 21_000.25, bid: 21_000, ask: 21_000.25, size: 3, bidSize: 0, askSize: 0, side: 'buy', flags: 1 },
      { symbolId: 7, seq: 42, tsMicros: 1_731_283_200_000_001, price: NaN, bid: 21_000, ask: 21_000.5, size: 0, bidSize: 12, askSize: 9, side: 'unknown', flags: 1 << 16 },
    ],
  },
};
const sampleBytes = (): Uint8Array => enc.encode(SAMPLE).slice();

// ---- tests ---------------------------------------------------------------------------------------

describe('layout: the verifier specs match the generated code', () => {
  test('struct sizes: Tick 56, BookLevel 16, GexStrike 32', () => {
    expect(Tick.sizeOf()).toBe(TICK_STRUCT_BYTES);
    expect(BookLevel.sizeOf()).toBe(16);
    expect(GexStrike.sizeOf()).toBe(32);
    const specs = WIRE_TABLE_SPECS;
    expect(specs.TickBatch!.fields.find((f) => f.name === 'ticks')!.elemBytes).toBe(Tick.sizeOf());
    expect(specs.BookUpdate!.fields.find((f) => f.name === 'bids')!.elemBytes).toBe(BookLevel.sizeOf());
    expect(specs.BookUpdate!.fields.find((f) => f.name === 'asks')!.elemBytes).toBe(BookLevel.sizeOf());
    expect(specs.GexSnapshot!.fields.find((f) => f.name === 'strikes')!.elemBytes).toBe(GexStrike.sizeOf());
  });

  test('every table spec has as many fields as the generated startX() declares', () => {
    class CountingBuilder extends flatbuffers.Builder {
      fields = -1;
      override startObject(numFields: number): void {
        this.fields = numFields;
        super.startObject(numFields);
      }
    }
    const starts: Record<string, (b: flatbuffers.Builder) => void> = {
      Frame: (b) => Frame.startFrame(b), TickBatch: (b) => TickBatch.startTickBatch(b), BookUpdate: (b) => BookUpdate.startBookUpdate(b),
      GexSnapshot: (b) => GexSnapshot.startGexSnapshot(b), Status: (b) => Status.startStatus(b), Metric: (b) => Metric.startMetric(b),
      Error: (b) => ErrorTable.startError(b), Bar: (b) => Bar.startBar(b),
    };
    expect(Object.keys(WIRE_TABLE_SPECS).sort()).toEqual(Object.keys(starts).sort());
    for (const [name, start] of Object.entries(starts)) {
      const b = new CountingBuilder(64);
      start(b);
      expect(WIRE_TABLE_SPECS[name]!.fields.length, name).toBe(b.fields);
    }
  });

  test('union members are in Payload enum order', () => {
    const union = WIRE_TABLE_SPECS.Frame!.fields.find((f) => f.name === 'payload')!.union!;
    expect(union.map((t) => t?.name ?? null)).toEqual([null, 'TickBatch', 'BookUpdate', 'GexSnapshot', 'Status', 'Error', 'Bar']);
    // deployed clients decode by these indices: members are only ever appended (Bar came last, as 6)
    expect([Payload.NONE, Payload.TickBatch, Payload.BookUpdate, Payload.GexSnapshot, Payload.Status, Payload.Error, Payload.Bar]).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(Object.keys(Payload).filter((k) => Number.isNaN(Number(k)))).toEqual(['NONE', 'TickBatch', 'BookUpdate', 'GexSnapshot', 'Status', 'Error', 'Bar']);
  });
});

describe('round trip', () => {
  test('every message type: decode(encode(frame)) equals frame (fast-check, NaN/±Inf/-0, µs up to 2^53)', () => {
    fc.assert(
      fc.property(frameArb, (frame) => {
        const bytes = enc.encode(frame);
        expect(hasFrameIdentifier(bytes)).toBe(true);
        expect(dec.decodeFrame(bytes)).toEqual(frame);
      }),
      { numRuns: 400 },
    );
  });

  test('tick columns -> encodeTickBatch -> decodeFrame gives the same ticks; firstSeq is seq[start]', () => {
    fc.assert(
      fc.property(fc.array(tickArb, { minLength: 1, maxLength: 100 }), fc.nat(5), text, (ticks, pad, channel) => {
        const cols = toColumns(ticks, pad);
        const bytes = enc.encodeTickBatch(channel, 99, 'ESZ25', 'dxlink', cols, pad, ticks.length).slice();
        const f = dec.decodeFrame(bytes);
        expect(f).toEqual({ channel, tsMicros: 99, payload: { type: 'tickBatch', symbol: 'ESZ25', source: 'dxlink', firstSeq: ticks[0]!.seq, ticks } });
        // the object path writes the very same bytes
        expect(Buffer.from(enc.encode(f)).equals(Buffer.from(bytes))).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  test('readTickBatchInto (struct vector through reused flyweights) gives the column values bit for bit', () => {
    const out = createTickColumns(128);
    fc.assert(
      fc.property(fc.array(tickArb, { maxLength: 100 }), (ticks) => {
        const cols = toColumns(ticks);
        const bytes = enc.encodeTickBatch('c', 1, 'NQZ25', 'sim', cols, 0, ticks.length);
        const h = dec.readTickBatchInto(bytes, out);
        expect(h).toEqual({ channel: 'c', frameTsMicros: 1, symbol: 'NQZ25', source: 'sim', firstSeq: ticks[0]?.seq ?? 0, count: ticks.length });
        for (const k of Object.keys(cols) as (keyof TickColumns)[]) {
          const a = cols[k], b = out[k];
          for (let i = 0; i < ticks.length; i++) {
            if (!Object.is(a[i], b[i])) throw new Error(`${k}[${i}]: ${a[i]} != ${b[i]}`);
          }
        }
        // the struct bytes in the frame are the exact IEEE bits we wrote (timestamps included)
        const ts = new Float64Array(1);
        const raw = new Uint8Array(ts.buffer);
        for (let i = 0; i < ticks.length; i++) {
          ts[0] = cols.tsMicros[i]!;
          const at = indexOfBytes(bytes, raw);
          expect(at, `tsMicros ${ts[0]} present`).toBeGreaterThanOrEqual(0);
        }
      }),
      { numRuns: 150 },
    );
  });

  test('an empty batch, a 10 000-tick batch (builder growth) and frames after it decode correctly', () => {
    const big = Array.from({ length: 10_000 }, (_, i): WireTick => ({
      symbolId: 1, seq: i, tsMicros: 1_731_283_200_000_000 + i, price: 5000 + i / 4, bid: 5000, ask: 5001, size: i, bidSize: 0, askSize: 0,
      side: SIDES[i % 3]!, flags: i,
    }));
    const e = new WireEncoder(64);
    const bigBytes = e.encodeTickBatch('b', 2, 'MES', 'sim', toColumns(big), 0, big.length).slice();
    expect(bigBytes.length).toBeGreaterThan(10_000 * TICK_STRUCT_BYTES);
    const empty = e.encodeTickBatch('b', 3, 'MES', 'sim', createTickColumns(0), 0, 0).slice();
    const small = e.encode(SAMPLE).slice();
    expect(dec.decodeFrame(bigBytes).payload).toEqual({ type: 'tickBatch', symbol: 'MES', source: 'sim', firstSeq: 0, ticks: big });
    expect(dec.decodeFrame(empty).payload).toEqual({ type: 'tickBatch', symbol: 'MES', source: 'sim', firstSeq: 0, ticks: [] });
    expect(dec.decodeFrame(small)).toEqual(SAMPLE);
  });

  test('the returned array is a view into the builder: it is overwritten by the next encode (copy first)', () => {
    const e = new WireEncoder(4096);
    const first = e.encode(SAMPLE);
    const kept = first.slice();
    e.encodeError('x', 1, { code: 'E', message: 'boom', requestId: null });
    expect(first.buffer).toBe(e.encodeError('x', 1, { code: 'E', message: 'boom', requestId: null }).buffer);
    expect(Buffer.from(first).equals(Buffer.from(kept))).toBe(false);
    expect(dec.decodeFrame(kept)).toEqual(SAMPLE);
  });

  test('decodes from an ArrayBuffer and from a Uint8Array at a non-zero byteOffset', () => {
    const bytes = sampleBytes();
    expect(dec.decodeFrame(bytes.slice().buffer)).toEqual(SAMPLE);
    const shifted = new Uint8Array(bytes.length + 3);
    shifted.set(bytes, 3);
    expect(dec.decodeFrame(shifted.subarray(3))).toEqual(SAMPLE);
    expect(dec.payloadType(shifted.subarray(3))).toBe('tickBatch');
  });

  test('GEX levels: null stays null, 0 and -0 are kept (flatc 2.0.8 optional-scalar default bug)', () => {
    const g: WireGexSnapshot = { ticker: 'SPX', tsMicros: 5, spot: 0, zeroGamma: -0, callWall: null, putWall: 5900, strikes: [], rawJson: '{"a":1}' };
    const back = dec.decodeFrame(enc.encodeGexSnapshot('gex/SPX', 6, g)).payload;
    expect(back).toEqual({ type: 'gexSnapshot', ...g });
    expect(Object.is((back as WireGexSnapshot).zeroGamma, -0)).toBe(true);
  });

  test('Bar: every field bit for bit (NaN, -0, a volume above 2^32, u32 max trades); payloadType is "bar"', () => {
    const bar: WireBar = {
      symbol: 'MNQZ25', interval: '1m', startMicros: 1_731_283_200_000_000, open: 21_000.25, high: NaN, low: -0, close: Infinity,
      volume: 2 ** 40 + 3, trades: 0xffff_ffff, buyVolume: 0.5, sellVolume: -Infinity,
    };
    const bytes = enc.encodeBar('bars/MNQZ25', 7, bar).slice();
    expect(dec.payloadType(bytes)).toBe('bar');
    const f = dec.decodeFrame(bytes);
    expect(f).toEqual({ channel: 'bars/MNQZ25', tsMicros: 7, payload: { type: 'bar', ...bar } });
    expect(Object.is((f.payload as WireBar).low, -0)).toBe(true);
    // key order of the decoded payload is the JSON form's order
    expect(Object.keys(f.payload)).toEqual(['type', 'symbol', 'interval', 'startMicros', 'open', 'high', 'low', 'close', 'volume', 'trades', 'buyVolume', 'sellVolume']);
    // encode(frame) and encodeBar write the same bytes
    expect(Buffer.from(enc.encode(f)).equals(Buffer.from(bytes))).toBe(true);
  });
});

describe('identifier and corrupt input -> ENGINE_ERR_SCHEMA only', () => {
  test('a wrong file identifier is rejected before anything is read', () => {
    const bytes = sampleBytes();
    expect(WIRE_FILE_IDENTIFIER).toBe('TPW1');
    expect(String.fromCharCode(...bytes.subarray(4, 8))).toBe('TPW1');
    bytes[7] = 0x32; // "TPW2"
    expect(hasFrameIdentifier(bytes)).toBe(false);
    expect(schemaReason(() => dec.decodeFrame(bytes))).toMatch(/identifier/);
    expect(schemaReason(() => verifyFrame(bytes))).toMatch(/identifier/);
  });

  test('every truncation of every kind of frame is rejected, unless it only dropped trailing padding', () => {
    fc.assert(
      fc.property(frameArb, (frame) => {
        const bytes = enc.encode(frame).slice();
        let accepted = 0;
        for (let n = 0; n < bytes.length; n++) {
          expectOnlySchemaError(() => {
            expect(dec.decodeFrame(bytes.subarray(0, n))).toEqual(frame); // only alignment padding was cut
            accepted++;
          }, true);
        }
        expect(accepted).toBeLessThan(8); // the builder pads to 8 bytes at most; anything more would be a hole in the verifier
      }),
      { numRuns: 60 },
    );
  });

  test('random bytes, with and without a valid identifier and root offset, never throw anything else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.boolean(), fc.nat(64), (bytes, withHeader, root) => {
        if (withHeader && bytes.length >= 8) {
          bytes.set([root & 0xff, 0, 0, 0, 0x54, 0x50, 0x57, 0x31], 0);
        }
        expectOnlySchemaError(() => dec.decodeFrame(bytes), true);
        expectOnlySchemaError(() => dec.readTickBatchInto(bytes, createTickColumns(600)), true);
      }),
      { numRuns: 3000 },
    );
  });

  test('bit flips and byte overwrites anywhere in valid frames never throw anything else', () => {
    fc.assert(
      fc.property(
        frameArb,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 }), fc.boolean(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        (frame, edits) => {
          const bytes = enc.encode(frame).slice();
          for (const [at, bit, overwrite, value] of edits) {
            const i = at % bytes.length;
            bytes[i] = overwrite ? value : bytes[i]! ^ (1 << bit);
          }
          expectOnlySchemaError(() => {
            const f = dec.decodeFrame(bytes);
            // whatever survived verification re-encodes and decodes as the same message
            expect(dec.decodeFrame(enc.encode(f))).toEqual(f);
          }, true);
        },
      ),
      { numRuns: 1500 },
    );
  });

  test('a huge vector length is rejected at once (no loop over garbage, no hang)', () => {
    const bytes = sampleBytes();
    // the ticks vector length sits right before the first tick's tsMicros bytes
    const ts = new Uint8Array(new Float64Array([1_731_283_200_000_000]).buffer);
    const first = indexOfBytes(bytes, ts);
    expect(first).toBeGreaterThan(4);
    expect(new DataView(bytes.buffer).getInt32(first - 4, true)).toBe(2);
    new DataView(bytes.buffer).setInt32(first - 4, 0x7fff_ffff, true);
    const t0 = performance.now();
    expect(schemaReason(() => dec.decodeFrame(bytes))).toMatch(/TickBatch\.ticks: vector of 2147483647 past the end/);
    expect(performance.now() - t0).toBeLessThan(50);
  });

  test('a vtable entry pointing outside its table, a negative offset or a vtable outside the buffer is rejected', () => {
    const fresh = (): { bytes: Uint8Array; view: DataView; root: number; vt: number } => {
      const bytes = sampleBytes();
      const view = new DataView(bytes.buffer);
      const root = view.getInt32(0, true);
      return { bytes, view, root, vt: root - view.getInt32(root, true) };
    };
    // Frame field 2 (ts_micros, a scalar): a read there would not be checked by anything else
    let f = fresh();
    f.view.setUint16(f.vt + 4 + 2 * 2, 0x7ff0, true);
    expect(schemaReason(() => dec.decodeFrame(f.bytes))).toBe('Frame.ts_micros: field outside its table');
    // Frame field 3 (channel, a string): its uoffset made negative
    f = fresh();
    const chAt = f.root + f.view.getUint16(f.vt + 4 + 2 * 3, true);
    f.view.setInt32(chAt, -8, true);
    expect(schemaReason(() => dec.decodeFrame(f.bytes))).toBe('Frame.channel: bad offset -8');
    // the root table's vtable offset sent far outside the buffer
    f = fresh();
    f.view.setInt32(f.root, -100_000, true);
    expect(schemaReason(() => dec.decodeFrame(f.bytes))).toBe('Frame: vtable out of bounds');
  });

  test('missing required fields and an unknown payload type are rejected', () => {
    // a frame built by hand without the channel
    const b = new flatbuffers.Builder(64);
    const code = b.createString('E');
    const msg = b.createString('m');
    ErrorTable.startError(b);
    ErrorTable.addCode(b, code);
    ErrorTable.addMessage(b, msg);
    const err = ErrorTable.endError(b);
    Frame.startFrame(b);
    Frame.addPayloadType(b, Payload.Error);
    Frame.addPayload(b, err);
    b.finish(b.endObject(), 'TPW1'); // endObject, not endFrame: endFrame would refuse the missing field
    expect(schemaReason(() => dec.decodeFrame(b.asUint8Array()))).toBe('Frame.channel: required field missing');

    // payload type 9 (a newer schema's member): rejected, not read as something else
    const b2 = new flatbuffers.Builder(64);
    const ch = b2.createString('c');
    const c2 = b2.createString('E');
    const m2 = b2.createString('m');
    ErrorTable.startError(b2);
    ErrorTable.addCode(b2, c2);
    ErrorTable.addMessage(b2, m2);
    const err2 = ErrorTable.endError(b2);
    Frame.startFrame(b2);
    Frame.addPayloadType(b2, 9 as Payload);
    Frame.addPayload(b2, err2);
    Frame.addChannel(b2, ch);
    b2.finish(Frame.endFrame(b2), 'TPW1');
    expect(schemaReason(() => dec.decodeFrame(b2.asUint8Array()))).toBe('Frame.payload: unknown union type 9');
  });

  test('readTickBatchInto: another payload type is a schema error; columns too small is an invalid argument', () => {
    const status = enc.encodeStatus('status', 1, { service: 'redis', state: 'down', tsMicros: 1, message: 'ECONNREFUSED', metrics: [] }).slice();
    expect(schemaReason(() => dec.readTickBatchInto(status, createTickColumns(4)))).toMatch(/expected a TickBatch/);
    expect(() => dec.readTickBatchInto(sampleBytes(), createTickColumns(1))).toThrow(expect.objectContaining({ code: 'ENGINE_ERR_INVALID_ARG' }));
    expect(() => dec.decodeFrame('TPW1' as unknown as Uint8Array)).toThrow(expect.objectContaining({ code: 'ENGINE_ERR_INVALID_ARG' }));
  });
});

describe('encoder arguments', () => {
  test('a tick range outside the columns, an unknown side or state, a non-string symbol: ENGINE_ERR_INVALID_ARG', () => {
    const cols = createTickColumns(4);
    const invalid = expect.objectContaining({ code: 'ENGINE_ERR_INVALID_ARG' });
    expect(() => enc.encodeTickBatch('c', 0, 'S', 'src', cols, 2, 3)).toThrow(invalid);
    expect(() => enc.encodeTickBatch('c', 0, 'S', 'src', cols, -1, 1)).toThrow(invalid);
    expect(() => enc.encodeTickBatch('c', 0, undefined as unknown as string, 'src', cols, 0, 1)).toThrow(invalid);
    const t = (SAMPLE.payload as WireTickBatch).ticks[0]!;
    expect(() => enc.encodeTickBatchObjects('c', 0, { symbol: 'S', source: 's', firstSeq: 0, ticks: [{ ...t, side: 'long' as SideName }] })).toThrow(invalid);
    expect(() => enc.encodeStatus('c', 0, { service: 's', state: 'fine' as ServiceStateName, tsMicros: 0, message: null, metrics: [] })).toThrow(invalid);
    const bar: WireBar = { symbol: 'S', interval: '1m', startMicros: 0, open: 1, high: 1, low: 1, close: 1, volume: 1, trades: 1, buyVolume: 0, sellVolume: 0 };
    for (const trades of [-1, 2 ** 32, 1.5, NaN, '3' as unknown as number]) expect(() => enc.encodeBar('c', 0, { ...bar, trades })).toThrow(invalid);
    expect(() => enc.encodeBar('c', 0, { ...bar, interval: 60 as unknown as string })).toThrow(invalid);
    expect(() => enc.encodeBar('c', 0, { ...bar, symbol: null as unknown as string })).toThrow(invalid);
    // the encoder is still usable afterwards
    expect(dec.decodeFrame(enc.encode(SAMPLE))).toEqual(SAMPLE);
  });
});

describe('JSON form', () => {
  test('frameToJson is the same object, with non-finite numbers as null', () => {
    fc.assert(
      fc.property(frameArb, (frame) => {
        const json = frameToJson(frame);
        const expected = JSON.parse(JSON.stringify(frame, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v)));
        expect(JSON.parse(json)).toEqual(expected);
        expect(json).not.toMatch(/NaN|Infinity(?!")/); // only possible inside strings
      }),
      { numRuns: 100 },
    );
    expect(JSON.parse(frameToJson(SAMPLE))).toMatchObject({ payload: { type: 'tickBatch', ticks: [{ side: 'buy' }, { price: null, side: 'unknown' }] } });
  });

  // The text JSON clients received for bars before Bar had a wire table (api/ws/frames.ts barJson was
  // JSON.stringify({ channel, tsMicros, payload: { type: 'bar', ...bar } })), captured from that code.
  // It must not change: JSON clients parse it today.
  const PINNED_BARS: [string, number, WireBar, string][] = [
    [
      'bars/MNQZ25', 1_731_283_260_000_123,
      { symbol: 'MNQZ25', interval: '1m', startMicros: 1_731_283_200_000_000, open: 21000.25, high: 21003.5, low: 20999.75, close: 21001, volume: 1234, trades: 87, buyVolume: 700, sellVolume: 500 },
      '{"channel":"bars/MNQZ25","tsMicros":1731283260000123,"payload":{"type":"bar","symbol":"MNQZ25","interval":"1m","startMicros":1731283200000000,"open":21000.25,"high":21003.5,"low":20999.75,"close":21001,"volume":1234,"trades":87,"buyVolume":700,"sellVolume":500}}',
    ],
    [
      'bars/NQZ25', 1.5,
      { symbol: 'NQZ25', interval: 'source', startMicros: -0, open: NaN, high: Infinity, low: -Infinity, close: 0.1, volume: 0, trades: 0, buyVolume: 4294967295, sellVolume: 0 },
      '{"channel":"bars/NQZ25","tsMicros":1.5,"payload":{"type":"bar","symbol":"NQZ25","interval":"source","startMicros":0,"open":null,"high":null,"low":null,"close":0.1,"volume":0,"trades":0,"buyVolume":4294967295,"sellVolume":0}}',
    ],
  ];

  test('bar JSON is byte-identical to what JSON clients got before (pinned), from the object and from a decoded binary frame', () => {
    for (const [channel, ts, bar, text] of PINNED_BARS) {
      expect(barFrameJson(channel, ts, bar)).toBe(text);
      // the payload keys are written in the fixed order, whatever the order of the input object's keys
      const shuffled = Object.fromEntries(Object.entries(bar).reverse()) as unknown as WireBar;
      expect(barFrameJson(channel, ts, shuffled)).toBe(text);
      // a binary client converting the frame it got with frameToJson sees the same text
      expect(frameToJson(dec.decodeFrame(enc.encodeBar(channel, ts, bar)))).toBe(text);
    }
  });
});

// ---- generated code ------------------------------------------------------------------------------

function listFiles(dir: string, base = dir, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) listFiles(p, base, out);
    else out.push(relative(base, p));
  }
  return out.sort();
}

function indexOfBytes(hay: Uint8Array, needle: Uint8Array): number {
  return Buffer.from(hay.buffer, hay.byteOffset, hay.length).indexOf(Buffer.from(needle.buffer, needle.byteOffset, needle.length));
}

// Same lookup as the script: FLATC=/path/to/flatc overrides.
const FLATC = process.env.FLATC ?? 'flatc';
const flatcOnPath = spawnSync(FLATC, ['--version'], { encoding: 'utf8' }).status === 0;

describe('generated code (schemas/generated/)', () => {
  test(
    flatcOnPath
      ? 'is up to date: scripts/gen-schemas.sh output (flatc on PATH) equals the committed files'
      : 'flatc NOT on PATH, so no regeneration: checks instead that the files exist, carry the do-not-edit notice and the sha256 of the current wire.fbs',
    () => {
      const committed = listFiles(GENERATED);
      expect(committed).toContain('wire.ts');
      expect(committed).toContain('tickpipe/wire/frame.ts');
      const fbsHash = createHash('sha256').update(readFileSync(join(ROOT, 'schemas', 'wire.fbs'))).digest('hex').slice(0, 16);
      for (const f of committed.filter((x) => x.endsWith('.ts'))) {
        const first = readFileSync(join(GENERATED, f), 'utf8').split('\n', 1)[0]!;
        expect(first, f).toMatch(/^\/\/ GENERATED by scripts\/gen-schemas\.sh .* — do not edit; run `npm run schemas`\.$/);
        expect(first, `${f}: generated from an older wire.fbs; run npm run schemas`).toContain(`schemas/wire.fbs (sha256 ${fbsHash})`);
      }
      if (!flatcOnPath) return;
      const tmp = mkdtempSync(join(tmpdir(), 'tickpipe-gen-'));
      try {
        execFileSync('bash', [SCRIPT, tmp], { stdio: 'pipe' });
        const fresh = listFiles(tmp);
        expect(fresh).toEqual(committed);
        for (const f of fresh) {
          expect(readFileSync(join(GENERATED, f), 'utf8'), `${f} differs from flatc's output: run npm run schemas`).toBe(readFileSync(join(tmp, f), 'utf8'));
        }
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    },
  );

  test('gen-schemas.sh fails with an install hint when flatc is missing', () => {
    const r = spawnSync('bash', [SCRIPT, join(tmpdir(), 'tickpipe-gen-never-written')], {
      encoding: 'utf8', env: { ...process.env, FLATC: 'flatc-does-not-exist-tickpipe' },
    });
    expect(r.status).toBe(127);
    expect(r.stderr).toMatch(/not found on PATH/);
    expect(r.stderr).toMatch(/apt-get install flatbuffers-compiler/);
  });
});
