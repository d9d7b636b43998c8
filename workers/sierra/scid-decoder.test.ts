import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, describe, expect, test } from 'vitest';
import { EngineError, isEngineError } from '../../engine/errors.ts';
import { createRing, RingReader, RingWriter } from '../../engine/ring/ring.ts';
import { RECORD_SLOT_BYTES, RecordKind, slotToObject, TradeFlag } from '../../schemas/records.ts';
import {
  decodeScidColumns, detectPriceScale, readScidHeader, ScidDecoder, scidResumeOptions, type ScidDecoderOptions,
} from './scid-decoder.ts';
import { SCID_FIRST_SUB_TRADE_BITS, SCID_LAST_SUB_TRADE_BITS, ScidSide, ScidSubTrade } from './scid-format.ts';
import { buildScidBytes, encodeScidRecord, encodeScidTrade, ScidWriter } from './scid-writer.ts';

const FIXTURE = fileURLToPath(new URL('../../test/fixtures/sierra/ESM23-excerpt.scid', import.meta.url));
const SHARED_FIXTURE = new URL('../../../shared/data/sierra/ESM23-excerpt.scid', import.meta.url);
const fixtureBytes = (): Uint8Array => new Uint8Array(readFileSync(FIXTURE));

const dir = mkdtempSync(join(tmpdir(), 'tickpipe-scid-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let fileSeq = 0;
const tmpFile = (name = 'f'): string => join(dir, `${name}-${fileSeq++}.scid`);

/** slotToObject's result; the fields read by the tests are declared so they are plain numbers. */
type Slot = Record<string, number> & {
  kind: number; seq: number; tsMicros: number; price: number; bid: number; ask: number; size: number;
  flags: number; numTrades: number; srcIndex: number;
};

function makeRing(slotCount: number): { w: RingWriter; r: RingReader } {
  const sab = createRing({ slotCount, slotBytes: RECORD_SLOT_BYTES });
  return { w: RingWriter.attach(sab), r: RingReader.attach(sab) };
}

function drain(r: RingReader, out: Slot[]): number {
  const n = r.available();
  for (let i = 0; i < n; i++) out.push(slotToObject(r.views, r.slotByte(i)) as Slot);
  r.release(n);
  return n;
}

/** Push `chunks` one by one (as exact-size copies, so a read past a chunk's end throws), draining fully. */
function decodeChunks(chunks: Uint8Array[], opts: ScidDecoderOptions, ringSlots = 64): { slots: Slot[]; dec: ScidDecoder } {
  const dec = new ScidDecoder(opts);
  const { w, r } = makeRing(ringSlots);
  const slots: Slot[] = [];
  let pushed = 0;
  const pump = (): void => {
    for (let guard = 0; ; guard++) {
      if (guard > 1_000_000) throw new Error('decoder made no progress');
      dec.decodeInto(w);
      const got = drain(r, slots);
      expect(dec.bytesConsumed - dec.startOffset + dec.pendingBytes).toBe(pushed);
      if (dec.needsInput && got === 0) break;
    }
  };
  for (const c of chunks) {
    const copy = c.slice();
    dec.push(copy);
    pushed += c.length;
    expect(dec.bytesConsumed - dec.startOffset + dec.pendingBytes).toBe(pushed);
    pump();
    copy.fill(0xa5); // needsInput: the decoder must hold nothing of the chunk (a reader reuses its buffer)
  }
  dec.end();
  pump();
  return { slots, dec };
}

const decodeAll = (bytes: Uint8Array, opts: Partial<ScidDecoderOptions> = {}): Slot[] =>
  decodeChunks([bytes], { fileName: 'mem.scid', ...opts }).slots;

function splitAt(bytes: Uint8Array, points: number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of [...points].sort((a, b) => a - b)) { out.push(bytes.subarray(prev, p)); prev = p; }
  out.push(bytes.subarray(prev));
  return out;
}

function expectScidError(fn: () => unknown, byteOffset: number, file: string, text?: RegExp): EngineError {
  let caught: unknown;
  try { fn(); } catch (e) { caught = e; }
  expect(isEngineError(caught, 'ENGINE_ERR_SCID_FORMAT')).toBe(true);
  const e = caught as EngineError;
  expect(e.detail.file).toBe(file);
  expect(e.detail.byteOffset).toBe(byteOffset);
  expect(e.message).toContain(file);
  expect(e.message).toContain(`byte offset ${byteOffset}`);
  if (text) expect(e.message).toMatch(text);
  return e;
}

/** Independent time formula: BigInt µs since 1899-12-30 minus that epoch from Date.UTC. */
function independentUnixMicros(bytes: Uint8Array, at: number): number {
  const raw = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).readBigInt64LE(at);
  return Number(raw + BigInt(Date.UTC(1899, 11, 30)) * 1000n); // Date.UTC(1899, …) is negative
}

const T0 = Date.UTC(2024, 2, 15, 14, 30) * 1000; // µs

// A small tick file with every marker kind, a same-ms pair and a 5-record bundle.
function sampleTicks(): Uint8Array {
  const rows: [number, number, number, number, number, number, number][] = [
    // dt µs, price, bid, ask, size, side, sub
    [0, 5000.25, 5000, 5000.25, 2, ScidSide.BUY, ScidSubTrade.NONE],
    [1000, 5000, 5000, 5000.25, 1, ScidSide.SELL, ScidSubTrade.NONE],
    [1001, 5000, 5000, 5000.25, 3, ScidSide.SELL, ScidSubTrade.NONE],
    [5000, 5000.25, 5000, 5000.25, 4, ScidSide.BUY, ScidSubTrade.FIRST],
    [5001, 5000.5, 5000, 5000.5, 5, ScidSide.BUY, ScidSubTrade.MIDDLE],
    [5002, 5000.75, 5000, 5000.75, 6, ScidSide.BUY, ScidSubTrade.MIDDLE],
    [5003, 5001, 5000.25, 5001, 7, ScidSide.BUY, ScidSubTrade.MIDDLE],
    [5004, 5001.25, 5000.5, 5001.25, 8, ScidSide.BUY, ScidSubTrade.LAST],
    [9000, 5001, 5001, 5001.25, 1, ScidSide.SELL, ScidSubTrade.NONE],
    [9001, 4999, 5001, 5001.25, 9, ScidSide.NONE, ScidSubTrade.NONE],
  ];
  return buildScidBytes(rows.length, (dv, off, i) => {
    const r = rows[i]!;
    encodeScidTrade(dv, off, T0 + r[0], r[1], r[2], r[3], r[4], r[5], r[6]);
  });
}

describe('readScidHeader', () => {
  test('reads the real header', () => {
    expect(readScidHeader(fixtureBytes(), 'ESM23.scid')).toEqual({ headerBytes: 56, recordBytes: 40, version: 1, utcStartIndex: 0 });
  });

  test('bad magic, sizes, version, short and empty files are coded errors naming file and offset', () => {
    const good = fixtureBytes();
    const bad = (patch: (dv: DataView) => void): Uint8Array => {
      const b = good.slice();
      patch(new DataView(b.buffer));
      return b;
    };
    expectScidError(() => readScidHeader(bad((dv) => dv.setUint8(0, 0x58)), 'a.scid'), 0, 'a.scid', /magic is "XCID"/);
    expectScidError(() => readScidHeader(bad((dv) => dv.setUint32(4, 48, true)), 'a.scid'), 4, 'a.scid', /HeaderSize 48/);
    expectScidError(() => readScidHeader(bad((dv) => dv.setUint32(4, 0x7fffffff, true)), 'a.scid'), 4, 'a.scid', /HeaderSize 2147483647/);
    expectScidError(() => readScidHeader(bad((dv) => dv.setUint32(8, 32, true)), 'a.scid'), 8, 'a.scid', /RecordSize 32/);
    expectScidError(() => readScidHeader(bad((dv) => dv.setUint16(12, 2, true)), 'a.scid'), 12, 'a.scid', /Version 2/);
    // Header bigger than the file.
    expectScidError(() => readScidHeader(bad((dv) => dv.setUint32(4, 1000, true)), 'a.scid'), 456, 'a.scid', /shorter than its 1000-byte header/);
    expectScidError(() => readScidHeader(new Uint8Array(0), 'e.scid'), 0, 'e.scid', /empty file/);
    expectScidError(() => readScidHeader(good.subarray(0, 20), 's.scid'), 20, 's.scid', /20 bytes is shorter than its 56-byte header/);
    // fileBytes says the file is bigger than what was read: the header itself is fine.
    expect(readScidHeader(good.subarray(0, 56), 'p.scid', 456).headerBytes).toBe(56);
  });
});

describe('real Sierra Chart file (ESM23 excerpt)', () => {
  test('the repo fixture is the shared recording', () => {
    if (existsSync(SHARED_FIXTURE)) expect(Buffer.compare(readFileSync(SHARED_FIXTURE), readFileSync(FIXTURE))).toBe(0);
    expect(readFileSync(FIXTURE).length).toBe(456);
  });

  test('decodes exactly', () => {
    const bytes = fixtureBytes();
    const slots = decodeAll(bytes, { fileName: 'ESM23.scid', sourceId: 3, symbolId: 77 });
    expect(slots).toHaveLength(10);

    // Timestamps: an independent formula on the raw bytes (BigInt + Date.UTC epoch).
    for (let i = 0; i < 10; i++) expect(slots[i]!.tsMicros).toBe(independentUnixMicros(bytes, 56 + 40 * i));
    const first = slots[0]!.tsMicros;
    expect(new Date(Math.floor(first / 1000)).toISOString()).toBe('2023-02-21T20:37:19.026Z');
    expect(first).toBe(Date.parse('2023-02-21T20:37:19.026Z') * 1000);

    expect(slots.map((s) => s.price)).toEqual([4048, 4048, 4047.5, 4047.75, 4047.75, 4048, 4047, 4048, 4048.5, 4048.25]);
    expect(slots.map((s) => s.bid)).toEqual([4048, 4048, 4047.5, 4047.75, 4047.75, 4048, 4046.5, 4047.5, 4048.5, 4048.5]);
    expect(slots.map((s) => s.ask)).toEqual([4048.75, 4048.25, 4048.25, 4048.25, 4048.25, 4048.5, 4047, 4048, 4049, 4049]);
    for (let i = 0; i < 10; i++) {
      const s = slots[i]!;
      expect(s.kind).toBe(RecordKind.TRADE);
      expect(s.sourceId).toBe(3);
      expect(s.symbolId).toBe(77);
      expect(s.seq).toBe(i);
      expect(s.srcIndex).toBe(i);
      expect(s.size).toBe(1);
      expect(s.numTrades).toBe(1);
      expect(s.bidSize).toBe(0);
      expect(s.askSize).toBe(0);
      const side = i === 6 || i === 7 ? TradeFlag.SIDE_BUY : TradeFlag.SIDE_SELL;
      const sub = i === 3 ? TradeFlag.SUB_FIRST : i === 4 ? TradeFlag.SUB_LAST : 0;
      expect(s.flags).toBe(side | sub);
    }
    // The unbundled trade: first/last sub-trade markers 1 µs apart.
    expect(slots[4]!.tsMicros - slots[3]!.tsMicros).toBe(1);
    // Two independent trades in the same millisecond: µs …000 and …001.
    expect(Math.floor(slots[8]!.tsMicros / 1000)).toBe(Math.floor(slots[9]!.tsMicros / 1000));
    expect(slots[8]!.tsMicros % 1000).toBe(0);
    expect(slots[9]!.tsMicros % 1000).toBe(1);
    // A trade printed below the bid is passed through, not "fixed".
    expect(slots[9]!.price).toBeLessThan(slots[9]!.bid!);
  });

  test('mergeBundles folds the 2-record bundle into one trade', () => {
    const bytes = fixtureBytes();
    const plain = decodeAll(bytes, { fileName: 'ESM23.scid' });
    const merged = decodeAll(bytes, { fileName: 'ESM23.scid', mergeBundles: true });
    expect(merged).toHaveLength(9);
    const m = merged[3]!;
    expect(m.flags).toBe(TradeFlag.MERGED_BUNDLE | TradeFlag.SIDE_SELL);
    expect(m.size).toBe(2);
    expect(m.numTrades).toBe(2);
    expect(m.tsMicros).toBe(plain[3]!.tsMicros);
    expect(m.price).toBe(plain[4]!.price);
    expect(m.seq).toBe(3);
    expect(m.srcIndex).toBe(3);
    expect(merged.slice(0, 3)).toEqual(plain.slice(0, 3));
    expect(merged.slice(4)).toEqual(plain.slice(5));
  });

  test('columns agree with the ring decode', () => {
    const bytes = fixtureBytes();
    const slots = decodeAll(bytes, { fileName: 'ESM23.scid' });
    const c = decodeScidColumns(bytes, { fileName: 'ESM23.scid' });
    expect(c.count).toBe(10);
    expect(c.recordMode).toBe('tick');
    expect(c.timeEncoding).toBe('int64');
    expect(c.trailingBytes).toBe(0);
    for (let i = 0; i < 10; i++) {
      const s = slots[i]!;
      expect([c.tsMicros[i], c.close[i], c.low[i], c.high[i], c.totalVolume[i], c.flags[i], c.numTrades[i], c.open[i]])
        .toEqual([s.tsMicros, s.price, s.bid, s.ask, s.size, s.flags, s.numTrades, 0]);
    }
    const part = decodeScidColumns(bytes, { fileName: 'ESM23.scid', startRecord: 8, maxRecords: 5 });
    expect(part.count).toBe(2);
    expect(part.tsMicros[1]).toBe(slots[9]!.tsMicros);
  });
});

describe('streaming', () => {
  test('every split point of a small file (one and two cuts) gives identical output', () => {
    for (const bytes of [fixtureBytes(), sampleTicks()]) {
      for (const merge of [false, true]) {
        const ref = decodeAll(bytes, { mergeBundles: merge });
        expect(ref.length).toBeGreaterThan(0);
        for (let s = 0; s <= bytes.length; s++) {
          expect(decodeChunks(splitAt(bytes, [s]), { fileName: 'm', mergeBundles: merge }).slots).toEqual(ref);
        }
        for (let s = 1; s < bytes.length; s += 17) {
          for (let t = s; t < bytes.length; t += 23) {
            expect(decodeChunks(splitAt(bytes, [s, t]), { fileName: 'm', mergeBundles: merge }).slots).toEqual(ref);
          }
        }
      }
    }
  });

  test('random chunkings and tiny rings (property)', () => {
    const bytes = sampleTicks();
    const refs = [decodeAll(bytes), decodeAll(bytes, { mergeBundles: true })];
    fc.assert(fc.property(
      fc.uniqueArray(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 12 }),
      fc.constantFrom(2, 4, 8, 64),
      fc.boolean(),
      (cuts, ringSlots, merge) => {
        const got = decodeChunks(splitAt(bytes, cuts), { fileName: 'm', mergeBundles: merge }, ringSlots).slots;
        expect(got).toEqual(refs[merge ? 1 : 0]);
      },
    ));
  });

  test('one-byte chunks', () => {
    const bytes = sampleTicks();
    const chunks = Array.from({ length: bytes.length }, (_, i) => bytes.subarray(i, i + 1));
    expect(decodeChunks(chunks, { fileName: 'm', mergeBundles: true }).slots).toEqual(decodeAll(bytes, { mergeBundles: true }));
    expect(decodeChunks(chunks, { fileName: 'm' }).slots).toEqual(decodeAll(bytes));
  });

  test('a partial trailing record stays pending and is completed by the next chunk', () => {
    const bytes = sampleTicks();
    const dec = new ScidDecoder({ fileName: 'live.scid' });
    const { w, r } = makeRing(64);
    const cut = 56 + 3 * 40 + 17;
    dec.push(bytes.slice(0, cut));
    expect(dec.decodeInto(w)).toBe(3);
    expect(dec.needsInput).toBe(true);
    expect(dec.pendingBytes).toBe(17);
    expect(dec.bytesConsumed).toBe(56 + 3 * 40);
    expect(dec.nextRecordIndex).toBe(3);
    expect(dec.decodeInto(w)).toBe(0);
    dec.push(bytes.slice(cut));
    expect(dec.decodeInto(w)).toBe(7);
    const out: Slot[] = [];
    drain(r, out);
    expect(out).toEqual(decodeAll(bytes));
  });

  test('ring back-pressure: partial counts, 0 when full, nothing lost or duplicated', () => {
    const bytes = sampleTicks();
    const dec = new ScidDecoder({ fileName: 'bp.scid' });
    const { w, r } = makeRing(4);
    dec.push(bytes.slice());
    expect(dec.decodeInto(w)).toBe(4);
    expect(dec.decodeInto(w)).toBe(0); // full: keeps its place
    expect(dec.needsInput).toBe(false);
    expect(dec.nextRecordIndex).toBe(4);
    expect(dec.pendingBytes).toBe(6 * 40);
    const out: Slot[] = [];
    expect(drain(r, out)).toBe(4);
    expect(dec.decodeInto(w)).toBe(4);
    drain(r, out);
    expect(dec.decodeInto(w)).toBe(2);
    drain(r, out);
    expect(dec.decodeInto(w)).toBe(0);
    expect(dec.needsInput).toBe(true);
    expect(out).toEqual(decodeAll(bytes));
    expect(out.map((s) => s.seq)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  test('back-pressure with a partially drained ring', () => {
    const bytes = sampleTicks();
    const dec = new ScidDecoder({ fileName: 'bp.scid', mergeBundles: true });
    const { w, r } = makeRing(2);
    dec.push(bytes.slice());
    const out: Slot[] = [];
    let calls = 0;
    while (!(dec.needsInput && r.available() === 0)) {
      const n = dec.decodeInto(w);
      expect(n).toBeLessThanOrEqual(2);
      // consume at most one slot per round
      const avail = r.available();
      if (avail > 0) { out.push(slotToObject(r.views, r.slotByte(0)) as Slot); r.release(1); }
      if (++calls > 100) throw new Error('no progress');
    }
    expect(out).toEqual(decodeAll(bytes, { mergeBundles: true }));
  });
});

describe('mergeBundles', () => {
  test('a bundle straddling chunk boundaries: pending until its LAST, checkpoint at its FIRST', () => {
    const bytes = sampleTicks();
    const ref = decodeAll(bytes, { mergeBundles: true });
    expect(ref).toHaveLength(6);
    const m = ref[3]!;
    expect(m.flags).toBe(TradeFlag.MERGED_BUNDLE | TradeFlag.SIDE_BUY);
    expect(m.size).toBe(4 + 5 + 6 + 7 + 8);
    expect(m.numTrades).toBe(5);
    expect(m.tsMicros).toBe(T0 + 5000);
    expect([m.price, m.bid, m.ask]).toEqual([5001.25, 5000.5, 5001.25]);
    expect(m.seq).toBe(3);
    expect(ref[4]!.seq).toBe(8);

    // Cut inside the bundle (after the 2nd sub-trade plus 9 bytes).
    const cut = 56 + 5 * 40 + 9;
    const dec = new ScidDecoder({ fileName: 'b.scid', mergeBundles: true });
    const { w, r } = makeRing(64);
    dec.push(bytes.slice(0, cut));
    expect(dec.decodeInto(w)).toBe(3);
    expect(dec.needsInput).toBe(true);
    expect(dec.nextRecordIndex).toBe(3);
    expect(dec.bytesConsumed).toBe(56 + 3 * 40);
    expect(dec.pendingBytes).toBe(2 * 40 + 9);
    dec.push(bytes.slice(cut));
    expect(dec.decodeInto(w)).toBe(3);
    const out: Slot[] = [];
    drain(r, out);
    expect(out).toEqual(ref);
  });

  test('without merging: FIRST, MIDDLE…, LAST flags', () => {
    const plain = decodeAll(sampleTicks());
    expect(plain.map((s) => s.flags & (TradeFlag.SUB_FIRST | TradeFlag.SUB_MIDDLE | TradeFlag.SUB_LAST))).toEqual([
      0, 0, 0, TradeFlag.SUB_FIRST, TradeFlag.SUB_MIDDLE, TradeFlag.SUB_MIDDLE, TradeFlag.SUB_MIDDLE, TradeFlag.SUB_LAST, 0, 0,
    ]);
    expect(plain[9]!.flags & (TradeFlag.SIDE_BUY | TradeFlag.SIDE_SELL)).toBe(0);
  });

  test('incomplete bundles pass through unmerged', () => {
    const subs = [ScidSubTrade.FIRST, ScidSubTrade.MIDDLE, ScidSubTrade.FIRST, ScidSubTrade.LAST, ScidSubTrade.LAST, ScidSubTrade.FIRST, ScidSubTrade.MIDDLE];
    const bytes = buildScidBytes(subs.length, (dv, off, i) => encodeScidTrade(dv, off, T0 + i, 100 + i, 99, 101 + i, 1, ScidSide.BUY, subs[i]!));
    const out = decodeAll(bytes, { mergeBundles: true });
    // FIRST(0) then MIDDLE(1) unmerged (another FIRST came first), bundle 2..3 merged, a stray LAST(4),
    // and a FIRST(5)+MIDDLE(6) left open at end of input: released unmerged after end().
    expect(out.map((s) => [s.seq, s.numTrades, s.flags & ~TradeFlag.SIDE_BUY])).toEqual([
      [0, 1, TradeFlag.SUB_FIRST], [1, 1, TradeFlag.SUB_MIDDLE], [2, 2, TradeFlag.MERGED_BUNDLE],
      [4, 1, TradeFlag.SUB_LAST], [5, 1, TradeFlag.SUB_FIRST], [6, 1, TradeFlag.SUB_MIDDLE],
    ]);
    // Before end(), the open bundle at the end is held back (a live file may still complete it).
    const dec = new ScidDecoder({ fileName: 'live.scid', mergeBundles: true });
    const { w } = makeRing(16);
    dec.push(bytes.slice());
    expect(dec.decodeInto(w)).toBe(4);
    expect(dec.needsInput).toBe(true);
    expect(dec.nextRecordIndex).toBe(5);
    dec.end();
    expect(dec.needsInput).toBe(false);
    expect(dec.decodeInto(w)).toBe(2);
  });
});

describe('file kinds', () => {
  test('bar files are detected from the first record and decoded as BAR', () => {
    const bars = buildScidBytes(3, (dv, off, i) => encodeScidRecord(dv, off, T0 + i * 60_000_000, 100 + i, 102 + i, 99 + i, 101 + i, 40 + i, 500 + i, 200 + i, 300 + i));
    const out = decodeAll(bars);
    expect(out).toHaveLength(3);
    expect(out[1]).toEqual({
      kind: RecordKind.BAR, sourceId: 0, symbolId: 0, seq: 1, tsMicros: T0 + 60_000_000,
      open: 101, high: 103, low: 100, close: 102, volume: 501, numTrades: 41, bidVolume: 201, askVolume: 301,
    });
    const c = decodeScidColumns(bars, { fileName: 'bars.scid', priceMultiplier: 0.5 });
    expect(c.recordMode).toBe('bar');
    expect([c.open[2], c.high[2], c.low[2], c.close[2]]).toEqual([51, 52, 50.5, 51.5]);
    // The rule on the first record: a tick file (Open 0) is never a bar file; forcing works both ways.
    expect(decodeAll(sampleTicks()).every((s) => s.kind === RecordKind.TRADE)).toBe(true);
    expect(decodeAll(bars, { recordMode: 'tick' }).every((s) => s.kind === RecordKind.TRADE)).toBe(true);
    expect(decodeAll(sampleTicks(), { recordMode: 'bar' }).every((s) => s.kind === RecordKind.BAR)).toBe(true);
    // An Open outside [Low, High] is not a bar: decided tick.
    const odd = buildScidBytes(1, (dv, off) => encodeScidRecord(dv, off, T0, 500, 102, 99, 101, 1, 1, 0, 1));
    const dec = new ScidDecoder({ fileName: 'odd.scid' });
    dec.push(odd);
    dec.decodeInto(makeRing(4).w);
    expect(dec.recordMode).toBe('tick');
  });

  test('legacy float64 DateTime: detected, flagged, exact to the µs', () => {
    const path = tmpFile('legacy');
    const w = ScidWriter.open(path, { legacyTime: true });
    const ts = [Date.UTC(2003, 4, 6, 9, 30) * 1000 + 123_456, Date.UTC(2003, 4, 6, 9, 30) * 1000 + 123_457, Date.UTC(2031, 0, 1) * 1000 + 999_999];
    for (const t of ts) w.trade(t, 1000.5, 1000.25, 1000.5, 2, ScidSide.BUY, ScidSubTrade.NONE);
    w.closeSync();
    const bytes = new Uint8Array(readFileSync(path));
    const out = decodeAll(bytes);
    expect(out.map((s) => s.tsMicros)).toEqual(ts);
    expect(out.every((s) => (s.flags & TradeFlag.LEGACY_TIME) !== 0)).toBe(true);
    const dec = new ScidDecoder({ fileName: path });
    dec.push(bytes);
    dec.decodeInto(makeRing(8).w);
    expect(dec.timeEncoding).toBe('float64');
    expect(decodeScidColumns(bytes, { fileName: path }).flags[0]! & TradeFlag.LEGACY_TIME).toBe(TradeFlag.LEGACY_TIME);
    // An int64 file is never read as legacy.
    expect(decodeAll(fixtureBytes()).some((s) => (s.flags & TradeFlag.LEGACY_TIME) !== 0)).toBe(false);
  });

  test('price multiplier: prices stored ×100 come back exact with 0.01', () => {
    const bytes = buildScidBytes(2, (dv, off, i) => encodeScidTrade(dv, off, T0 + i, 405025 + i * 25, 405000, 405050, 1, ScidSide.BUY, ScidSubTrade.NONE));
    const out = decodeAll(bytes, { priceMultiplier: 0.01 });
    expect(out.map((s) => [s.price, s.bid, s.ask])).toEqual([[4050.25, 4050, 4050.5], [4050.5, 4050, 4050.5]]);
    const x2 = decodeAll(fixtureBytes(), { priceMultiplier: 2 });
    expect(x2[0]!.price).toBe(8096);
    expect(() => new ScidDecoder({ fileName: 'x', priceMultiplier: 0 })).toThrow(/priceMultiplier/);
  });

  test('detectPriceScale', () => {
    const c = decodeScidColumns(fixtureBytes(), { fileName: 'ESM23.scid' });
    const real = [...c.close, ...c.low, ...c.high];
    const g1 = detectPriceScale(real, 0.25);
    expect(g1.multiplier).toBe(1);
    expect(g1.alignedFraction.x0_01).toBe(0);
    expect(g1.distinctPrices).toBe(9);
    expect(g1.confidence).toBeLessThan(0.9); // 9 distinct prices: unsure, says so
    expect(g1.warning).toMatch(/unsure/);

    // A realistic sample: 200 prices on the 0.25 grid.
    const prices: number[] = [];
    for (let i = 0; i < 200; i++) prices.push(4000 + ((i * 37) % 400) * 0.25);
    const sure = detectPriceScale(prices, 0.25);
    expect(sure.multiplier).toBe(1);
    expect(sure.confidence).toBeGreaterThan(0.9);
    expect(sure.warning).toBeNull();
    const stored100 = detectPriceScale(prices.map((p) => Math.fround(p * 100)), 0.25);
    expect(stored100.multiplier).toBe(0.01);
    expect(stored100.confidence).toBeGreaterThan(0.9);
    expect(stored100.warning).toMatch(/configured price multiplier ×1 disagrees with the detected ×0.01/);
    expect(detectPriceScale(prices.map((p) => Math.fround(p * 100)), 0.25, 0.01).warning).toBeNull();
    const div100 = detectPriceScale(prices.map((p) => Math.fround(p / 100)), 0.25, 100);
    expect(div100.multiplier).toBe(100);
    expect(div100.warning).toBeNull();
    // Equities: tick 0.01, f32 rounding of cents must not break alignment.
    const cents = Array.from({ length: 100 }, (_, i) => Math.fround(5000 + i * 0.37));
    expect(detectPriceScale(cents, 0.01).multiplier).toBe(1);
    // Not aligned at any scale: keep the configured one, say why.
    const junk = detectPriceScale([1.1234, 2.3456, 3.7891], 0.25, 1);
    expect(junk.confidence).toBe(0);
    expect(junk.multiplier).toBe(1);
    expect(junk.warning).toMatch(/not aligned/);
    expect(detectPriceScale([], 0.25).warning).toMatch(/no non-zero prices/);
  });
});

describe('bad files', () => {
  function writeRaw(fill: (w: ScidWriter) => void, rawHeader?: Parameters<typeof ScidWriter.open>[1]): { path: string; bytes: Uint8Array } {
    const path = tmpFile('bad');
    const w = ScidWriter.open(path, { raw: true, ...rawHeader });
    fill(w);
    w.closeSync();
    return { path, bytes: new Uint8Array(readFileSync(path)) };
  }
  const trade = (w: ScidWriter, i: number): void => w.trade(T0 + i, 100, 99.75, 100, 1, ScidSide.BUY, ScidSubTrade.NONE);
  const streamErr = (path: string, bytes: Uint8Array, chunk: number): unknown => {
    try {
      const dec = new ScidDecoder({ fileName: path });
      const { w } = makeRing(8);
      for (let i = 0; i < bytes.length; i += chunk) { dec.push(bytes.slice(i, i + chunk)); dec.decodeInto(w); }
      dec.end();
      dec.decodeInto(w);
      return null;
    } catch (e) {
      return e;
    }
  };

  test('wrong magic', () => {
    const { path, bytes } = writeRaw((w) => trade(w, 0), { rawHeader: { magic: 'SCDD' } });
    expectScidError(() => readScidHeader(bytes, path), 0, path, /magic is "SCDD"/);
    for (const chunk of [1, 3, 1000]) {
      const e = streamErr(path, bytes, chunk) as EngineError;
      expect(isEngineError(e, 'ENGINE_ERR_SCID_FORMAT')).toBe(true);
      expect(e.detail.byteOffset).toBe(0);
    }
  });

  test('header sizes that disagree with the file', () => {
    // HeaderSize says 96 but 56 bytes of header were written: records are misread, and the streaming
    // decoder takes 96 bytes of header; a file shorter than 96 bytes is a coded error at end().
    const short = writeRaw(() => undefined, { rawHeader: { headerBytes: 96, writtenBytes: 56 } });
    expectScidError(() => readScidHeader(short.bytes, short.path), 56, short.path, /shorter than its 96-byte header/);
    const e = streamErr(short.path, short.bytes, 7) as EngineError;
    expect(isEngineError(e, 'ENGINE_ERR_SCID_FORMAT')).toBe(true);
    expect(e.message).toMatch(/shorter than its 96-byte header/);
    // HeaderSize below 56, absurdly large, and a record size other than 40.
    for (const [raw, offset, text] of [
      [{ headerBytes: 40, writtenBytes: 56 }, 4, /HeaderSize 40/],
      [{ headerBytes: 10_000_000, writtenBytes: 56 }, 4, /HeaderSize 10000000/],
      [{ recordBytes: 32 }, 8, /RecordSize 32/],
      [{ version: 7 }, 12, /Version 7/],
    ] as const) {
      const f = writeRaw((w) => trade(w, 0), { rawHeader: raw });
      expectScidError(() => readScidHeader(f.bytes, f.path), offset, f.path, text);
      const se = streamErr(f.path, f.bytes, 5) as EngineError;
      expect(isEngineError(se, 'ENGINE_ERR_SCID_FORMAT')).toBe(true);
      expect(se.detail.byteOffset).toBe(offset);
    }
    // A bigger (valid) HeaderSize is honoured: records start after it.
    const big = writeRaw((w) => { trade(w, 0); trade(w, 1); }, { rawHeader: { headerBytes: 64 } });
    expect(readScidHeader(big.bytes, big.path).headerBytes).toBe(64);
    expect(decodeAll(big.bytes).map((s) => s.tsMicros)).toEqual([T0, T0 + 1]);
  });

  test('empty file and a file shorter than the header', () => {
    const empty = writeRaw(() => undefined, { rawHeader: { writtenBytes: 0 } });
    expect(empty.bytes.length).toBe(0);
    expectScidError(() => readScidHeader(empty.bytes, empty.path), 0, empty.path, /empty file/);
    const dec = new ScidDecoder({ fileName: empty.path });
    expectScidError(() => dec.end(), 0, empty.path, /empty file/);
    const stub = writeRaw(() => undefined, { rawHeader: { writtenBytes: 30 } });
    expectScidError(() => readScidHeader(stub.bytes, stub.path), 30, stub.path, /30 bytes is shorter than its 56-byte header/);
    const dec2 = new ScidDecoder({ fileName: stub.path });
    dec2.push(stub.bytes);
    expect(dec2.decodeInto(makeRing(4).w)).toBe(0);
    expect(dec2.pendingBytes).toBe(30);
    expectScidError(() => dec2.end(), 30, stub.path);
  });

  test('header-only file: valid, no records', () => {
    const { path, bytes } = writeRaw(() => undefined);
    expect(bytes.length).toBe(56);
    expect(decodeChunks([bytes], { fileName: path }).slots).toEqual([]);
    expect(decodeScidColumns(bytes, { fileName: path }).count).toBe(0);
  });

  test('truncated last record: pending, not emitted, not an error', () => {
    const full = new Uint8Array(40);
    encodeScidTrade(new DataView(full.buffer), 0, T0 + 5, 101, 100.75, 101, 3, ScidSide.SELL, ScidSubTrade.NONE);
    const { path, bytes } = writeRaw((w) => { trade(w, 0); trade(w, 1); w.rawBytes(full.subarray(0, 23)); });
    const { slots, dec } = decodeChunks([bytes], { fileName: path });
    expect(slots).toHaveLength(2);
    expect(dec.pendingBytes).toBe(23);
    expect(dec.bytesConsumed).toBe(56 + 80);
    expect(decodeScidColumns(bytes, { fileName: path }).trailingBytes).toBe(23);
  });

  test('a corrupt record: coded error at its offset, earlier records published, skipRecord() continues', () => {
    const zero = new Uint8Array(40);
    const { path, bytes } = writeRaw((w) => { trade(w, 0); trade(w, 1); w.rawBytes(zero); trade(w, 3); });
    const dec = new ScidDecoder({ fileName: path });
    const { w, r } = makeRing(16);
    dec.push(bytes.slice());
    const e = expectScidError(() => dec.decodeInto(w), 56 + 2 * 40, path, /record 2: DateTime is not a plausible time/);
    expect(e.detail.recordIndex).toBe(2);
    const out: Slot[] = [];
    expect(drain(r, out)).toBe(2);
    expect(dec.nextRecordIndex).toBe(2);
    expect(dec.bytesConsumed).toBe(56 + 80);
    expect(() => dec.decodeInto(w)).toThrow(e); // stays failed until the caller decides
    dec.skipRecord();
    expect(dec.decodeInto(w)).toBe(1);
    drain(r, out);
    expect(out.map((s) => s.seq)).toEqual([0, 1, 3]);
    expectScidError(() => decodeScidColumns(bytes, { fileName: path }), 56 + 80, path);
    // A first record implausible in both readings.
    const bad = writeRaw((w) => { w.rawBytes(zero); trade(w, 1); });
    expectScidError(() => decodeAll(bad.bytes, { fileName: bad.path }), 56, bad.path, /either encoding/);
    // An int64 record in a legacy-time file.
    const mixed = writeRaw((w) => w.rawBytes(new Uint8Array(0)));
    const legacyRec = new Uint8Array(80);
    encodeScidTrade(new DataView(legacyRec.buffer), 0, T0, 1, 1, 1, 1, 1, 0, 1, true);
    encodeScidTrade(new DataView(legacyRec.buffer), 40, T0, 1, 1, 1, 1, 1, 0, 1, false);
    const mixedBytes = new Uint8Array([...mixed.bytes, ...legacyRec]);
    expectScidError(() => decodeAll(mixedBytes, { fileName: 'mixed.scid' }), 96, 'mixed.scid', /legacy float64 day-count encoding/);
  });
});

describe('resumption from a checkpoint', () => {
  test('resuming at bytesConsumed neither loses nor repeats records', () => {
    const bytes = sampleTicks();
    for (const merge of [false, true]) {
      const ref = decodeAll(bytes, { mergeBundles: merge });
      for (let stopAfter = 0; stopAfter < bytes.length; stopAfter += 11) {
        // A live decoder that has seen the first `stopAfter` bytes (never ended: a restart happens mid-file).
        const live = new ScidDecoder({ fileName: 'r', mergeBundles: merge });
        const { w, r } = makeRing(64);
        const got: Slot[] = [];
        if (stopAfter > 0) {
          live.push(bytes.slice(0, stopAfter));
          while (live.decodeInto(w) > 0) drain(r, got);
          drain(r, got);
        }
        const cp = live.checkpoint;
        let rest: Slot[];
        if (cp) {
          expect(cp.byteOffset).toBe(live.bytesConsumed);
          expect(cp.byteOffset).toBe(cp.header.headerBytes + live.nextRecordIndex * 40);
          rest = decodeChunks([bytes.subarray(cp.byteOffset)], scidResumeOptions(cp, { fileName: 'r', mergeBundles: merge })).slots;
          // Same answer when the whole file is pushed again and the decoder skips to the index.
          expect(decodeChunks([bytes], { fileName: 'r', mergeBundles: merge, startRecordIndex: live.nextRecordIndex }).slots).toEqual(rest);
        } else {
          rest = decodeAll(bytes, { mergeBundles: merge });
        }
        expect([...got, ...rest]).toEqual(ref);
      }
    }
  });
});

describe('writer → decoder round trip (property)', () => {
  const f32 = (x: number): number => Math.fround(x);
  const tickArb = fc.record({
    dtMicros: fc.integer({ min: 0, max: 5_000_000 }),
    price: fc.integer({ min: 1, max: 400_000 }).map((t) => t * 0.25),
    bid: fc.integer({ min: 1, max: 400_000 }).map((t) => t * 0.25),
    ask: fc.integer({ min: 1, max: 400_000 }).map((t) => t * 0.25),
    size: fc.integer({ min: 0, max: 0xffffffff }),
    side: fc.constantFrom(ScidSide.NONE, ScidSide.BUY, ScidSide.SELL),
    sub: fc.constantFrom(ScidSubTrade.NONE, ScidSubTrade.NONE, ScidSubTrade.FIRST, ScidSubTrade.MIDDLE, ScidSubTrade.LAST),
    numTrades: fc.integer({ min: 0, max: 0xffffffff }),
  });

  test('every field of every tick survives ScidWriter → file → ScidDecoder and the columns', () => {
    fc.assert(fc.property(
      fc.integer({ min: Date.UTC(1990, 0, 1) * 1000, max: Date.UTC(2150, 0, 1) * 1000 }),
      fc.array(tickArb, { maxLength: 40 }),
      fc.boolean(),
      (start, ticks, legacy) => {
        const base = legacy ? Math.min(start, Date.UTC(2070, 0, 1) * 1000) : start;
        const path = tmpFile('rt');
        const w = ScidWriter.open(path, { legacyTime: legacy, bufferRecords: 7 });
        let ts = base;
        const want: Slot[] = [];
        let inBundle = false;
        ticks.forEach((t, i) => {
          ts += t.dtMicros;
          w.trade(ts, t.price, t.bid, t.ask, t.size, t.side, t.sub, t.numTrades);
          let flags = legacy ? TradeFlag.LEGACY_TIME : 0;
          if (t.side === ScidSide.BUY) flags |= t.size > 0 ? TradeFlag.SIDE_BUY : 0;
          if (t.side === ScidSide.SELL) flags |= t.size > 0 ? TradeFlag.SIDE_SELL : 0;
          if (t.sub === ScidSubTrade.FIRST) { flags |= TradeFlag.SUB_FIRST; inBundle = true; }
          else if (t.sub === ScidSubTrade.LAST) { flags |= TradeFlag.SUB_LAST; inBundle = false; }
          else if (inBundle) flags |= TradeFlag.SUB_MIDDLE;
          want.push({
            kind: RecordKind.TRADE, sourceId: 9, symbolId: 1234, seq: i, tsMicros: ts,
            price: f32(t.price), bid: f32(t.bid), ask: f32(t.ask), size: t.size, flags, bidSize: 0, askSize: 0,
            srcIndex: i, numTrades: t.numTrades,
          });
        });
        w.closeSync();
        const bytes = new Uint8Array(readFileSync(path));
        rmSync(path);
        expect(bytes.length).toBe(56 + 40 * ticks.length);
        const got = decodeChunks([bytes], { fileName: path, sourceId: 9, symbolId: 1234 }).slots;
        expect(got).toEqual(want);
        const c = decodeScidColumns(bytes, { fileName: path });
        for (let i = 0; i < ticks.length; i++) {
          const t = ticks[i]!;
          expect(c.tsMicros[i]).toBe(want[i]!.tsMicros);
          expect(c.bidVolume[i]).toBe(t.side === ScidSide.SELL ? t.size : 0);
          expect(c.askVolume[i]).toBe(t.side === ScidSide.BUY ? t.size : 0);
          expect(c.flags[i]).toBe(want[i]!.flags);
        }
      },
    ), { numRuns: 60 });
  });

  test('bars round trip', () => {
    fc.assert(fc.property(
      fc.array(fc.record({
        low: fc.integer({ min: 1, max: 100_000 }), a: fc.nat(400), b: fc.nat(400), c: fc.nat(400),
        vol: fc.nat(), n: fc.nat(), bv: fc.nat(), av: fc.nat(),
      }), { minLength: 1, maxLength: 20 }),
      (bars) => {
        const path = tmpFile('bars');
        const w = ScidWriter.open(path);
        const want: Record<string, number>[] = [];
        bars.forEach((x, i) => {
          const low = x.low * 0.25;
          const high = low + Math.max(x.a, x.b, x.c) * 0.25 + 0.25;
          const open = low + x.a * 0.25;
          const close = low + x.c * 0.25;
          const ts = T0 + i * 60_000_000;
          w.bar(ts, open, high, low, close, x.vol, x.n, x.bv, x.av);
          want.push({ kind: RecordKind.BAR, sourceId: 0, symbolId: 0, seq: i, tsMicros: ts, open: f32(open), high: f32(high), low: f32(low), close: f32(close), volume: x.vol, numTrades: x.n, bidVolume: x.bv, askVolume: x.av });
        });
        w.closeSync();
        const bytes = new Uint8Array(readFileSync(path));
        rmSync(path);
        expect(decodeAll(bytes)).toEqual(want);
      },
    ), { numRuns: 30 });
  });
});

describe('fuzz: only coded errors, never a crash, hang or over-read', () => {
  function feed(bytes: Uint8Array, cuts: number[], merge: boolean, ringSlots: number): void {
    const dec = new ScidDecoder({ fileName: 'fuzz.scid', mergeBundles: merge });
    const { w, r } = makeRing(ringSlots);
    let pushed = 0;
    const check = (): void => expect(dec.bytesConsumed - dec.startOffset + dec.pendingBytes).toBe(pushed);
    try {
      for (const chunk of splitAt(bytes, cuts)) {
        pushed += chunk.length; // counted before push: a header error leaves the chunk's rest pending
        const copy = chunk.slice(); // exact-size copy: reading past its end throws a RangeError
        dec.push(copy);
        check();
        for (let guard = 0; ; guard++) {
          if (guard > 10_000) throw new Error('hang');
          const n = dec.decodeInto(w);
          check();
          const got = r.available();
          r.release(got);
          if (n === 0 && dec.needsInput) break;
        }
        copy.fill(0x5a); // the caller reuses its buffer once needsInput is true
      }
      dec.end();
      for (let guard = 0; dec.decodeInto(w) > 0 || r.available() > 0; guard++) {
        if (guard > 10_000) throw new Error('hang');
        r.release(r.available());
        check();
      }
      check();
      expect(dec.pendingBytes).toBeLessThan(dec.header ? 40 : Math.max(pushed, 1));
    } catch (e) {
      if (!isEngineError(e, 'ENGINE_ERR_SCID_FORMAT')) throw e;
      check();
      expect(typeof e.detail.byteOffset).toBe('number');
      expect(e.detail.file).toBe('fuzz.scid');
    }
  }

  const goodFile = (n: number): Uint8Array => buildScidBytes(n, (dv, off, i) =>
    encodeScidTrade(dv, off, T0 + i * 7, 100 + (i % 5) * 0.25, 99.75, 100.5, 1 + (i % 3), 1 + (i % 2), [0, 0, 1, 2, 3][i % 5]!));
  const cutsArb = (len: number): fc.Arbitrary<number[]> => fc.uniqueArray(fc.integer({ min: 0, max: Math.max(0, len) }), { maxLength: 6 });

  test('random bytes', () => {
    fc.assert(fc.property(
      fc.uint8Array({ maxLength: 600 }).chain((b) => fc.tuple(fc.constant(b), cutsArb(b.length), fc.boolean(), fc.constantFrom(2, 8, 64))),
      ([b, cuts, merge, slots]) => feed(b, cuts, merge, slots),
    ), { numRuns: 300 });
  });

  test('random bytes behind a valid header ("SCID" prefix + random)', () => {
    fc.assert(fc.property(
      fc.uint8Array({ minLength: 0, maxLength: 800 }).chain((rest) => {
        const b = new Uint8Array(56 + rest.length);
        b.set(goodFile(0));
        b.set(rest, 56);
        return fc.tuple(fc.constant(b), cutsArb(b.length), fc.boolean(), fc.constantFrom(2, 8, 64));
      }),
      ([b, cuts, merge, slots]) => feed(b, cuts, merge, slots),
    ), { numRuns: 200 });
  });

  test('valid files with flipped bits and bytes (headers that lie included)', () => {
    const base = goodFile(24);
    fc.assert(fc.property(
      fc.array(fc.tuple(fc.integer({ min: 0, max: base.length - 1 }), fc.integer({ min: 0, max: 7 })), { minLength: 1, maxLength: 8 }),
      fc.array(fc.tuple(fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
      fc.integer({ min: 0, max: base.length }),
      fc.boolean(),
      fc.constantFrom(2, 8, 64),
      (flips, headerBytes, truncate, merge, slots) => {
        const b = base.slice(0, truncate);
        for (const [at, bit] of flips) if (at < b.length) b[at]! ^= 1 << bit;
        for (const [at, v] of headerBytes) if (at < b.length) b[at] = v;
        feed(b, [Math.floor(b.length / 3), Math.floor(b.length / 2)], merge, slots);
      },
    ), { numRuns: 300 });
  });

  test('markers in odd places (bundles that never close, LAST first, FIRST FIRST)', () => {
    fc.assert(fc.property(
      fc.array(fc.constantFrom(0, SCID_FIRST_SUB_TRADE_BITS, SCID_LAST_SUB_TRADE_BITS), { maxLength: 30 }),
      fc.array(fc.nat(2000), { maxLength: 5 }),
      fc.constantFrom(2, 4, 64),
      (opens, cuts, slots) => {
        const b = buildScidBytes(opens.length, (dv, off, i) => {
          encodeScidTrade(dv, off, T0 + i, 100, 99, 101, 1, 1, 0);
          dv.setUint32(off + 8, opens[i]!, true);
        });
        const ref = decodeAll(b);
        expect(ref).toHaveLength(opens.length);
        const merged = decodeChunks(splitAt(b, cuts.map((c) => Math.min(c, b.length))), { fileName: 'm', mergeBundles: true }, slots).slots;
        // Merging loses nothing: the merged records account for every source record exactly once.
        expect(merged.reduce((a, s) => a + ((s.flags & TradeFlag.MERGED_BUNDLE) !== 0 ? s.numTrades : 1), 0)).toBe(opens.length);
        const seqs = merged.map((s) => s.seq);
        expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
        expect(new Set(seqs).size).toBe(seqs.length);
      },
    ), { numRuns: 200 });
  });
});
