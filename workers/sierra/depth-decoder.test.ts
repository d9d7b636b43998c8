import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, test } from 'vitest';
import { isEngineError, type EngineError } from '../../engine/errors.ts';
import { RingReader, RingWriter, createRing } from '../../engine/ring/ring.ts';
import { DEPTH_FLAG_END_OF_BATCH, DepthCommand, RECORD_SLOT_BYTES, RecordKind, slotToObject } from '../../schemas/records.ts';
import { DepthDecoder, type DepthDecoderOptions } from './depth-decoder.ts';
import { DEPTH_HEADER_BYTES, DEPTH_RECORD_BYTES, SC_EPOCH_TO_UNIX_MICROS } from './depth-format.ts';
import { DepthWriter } from './depth-writer.ts';

const REC = DEPTH_RECORD_BYTES;
const EOB = DEPTH_FLAG_END_OF_BATCH;
const T0 = Date.UTC(2025, 10, 11, 14, 30) * 1000; // 2025-11-11 14:30 UTC in µs
const FILE = 'MNQZ25_FUT_CME.2025-11-11.depth';

const dir = mkdtempSync(join(tmpdir(), 'tickpipe-depth-dec-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Slot = Record<string, number>;

interface RecSpec { ts: number; cmd: number; flags: number; orders: number; price: number; qty: number }

/** Decode `bytes` pushed as the given chunks (each copied into its own padded buffer), draining a ring. */
function decodeChunks(chunks: Uint8Array[], opts: Partial<DepthDecoderOptions> = {}, slotCount = 1024): { slots: Slot[]; dec: DepthDecoder } {
  const sab = createRing({ slotCount, slotBytes: RECORD_SLOT_BYTES });
  const w = RingWriter.attach(sab);
  const r = RingReader.attach(sab);
  const dec = new DepthDecoder({ fileName: FILE, ...opts });
  const slots: Slot[] = [];
  for (const c of chunks) {
    dec.push(c);
    for (let guard = 0; ; guard++) {
      if (guard > 1e6) throw new Error('decoder does not progress');
      dec.decodeInto(w);
      const n = r.available();
      for (let i = 0; i < n; i++) slots.push(slotToObject(r.views, r.slotByte(i)));
      r.release(n);
      if (dec.pendingRecords === 0) break;
    }
  }
  return { slots, dec };
}

function decodeAll(bytes: Uint8Array, opts: Partial<DepthDecoderOptions> = {}): { slots: Slot[]; dec: DepthDecoder } {
  return decodeChunks([bytes], opts);
}

function writeMem(recs: readonly RecSpec[], raw = false): Uint8Array {
  const w = DepthWriter.toMemory({ raw });
  if (raw) w.header();
  for (const r of recs) w.record(r.ts, r.cmd, r.flags, r.orders, r.price, r.qty);
  return w.contents();
}

/** What the decoder must emit for `recs`, computed independently. */
function expectedSlots(recs: readonly RecSpec[], sourceId = 0, symbolId = 0, start = 0): Slot[] {
  const out: Slot[] = [];
  let inBatch = 0;
  let snap = 0;
  recs.forEach((r, k) => {
    const i = k + start;
    out.push({
      kind: RecordKind.DEPTH, sourceId, symbolId, seq: i, tsMicros: r.ts, price: Math.fround(r.price), quantity: r.qty,
      command: r.cmd, depthFlags: r.flags, numOrders: r.orders, srcIndex: i,
    });
    if (inBatch === 0) snap = r.cmd === DepthCommand.CLEAR_BOOK ? 1 : 0;
    inBatch++;
    if ((r.flags & EOB) !== 0) {
      out.push({ kind: RecordKind.BOOK_END, sourceId, symbolId, seq: i, tsMicros: r.ts, records: inBatch, snapshot: snap, srcIndex: i });
      inBatch = 0;
    }
  });
  return out;
}

const recArb: fc.Arbitrary<RecSpec> = fc.record({
  ts: fc.integer({ min: -SC_EPOCH_TO_UNIX_MICROS, max: Number.MAX_SAFE_INTEGER - SC_EPOCH_TO_UNIX_MICROS }),
  cmd: fc.integer({ min: 0, max: 7 }),
  flags: fc.integer({ min: 0, max: 255 }),
  orders: fc.integer({ min: 0, max: 0xffff }),
  price: fc.float({ noNaN: true, noDefaultInfinity: true }),
  qty: fc.integer({ min: 0, max: 0xffffffff }),
});

/** A small realistic file: snapshot, updates, a second snapshot, all at T0 + k ms. */
function sampleRecs(): RecSpec[] {
  const recs: RecSpec[] = [];
  const add = (ts: number, cmd: number, flags: number, price: number, qty: number): void => { recs.push({ ts, cmd, flags, orders: qty > 0 ? 1 + (qty >> 3) : 0, price, qty }); };
  add(T0, DepthCommand.CLEAR_BOOK, 0, 0, 0);
  for (let i = 0; i < 5; i++) add(T0, DepthCommand.ADD_BID_LEVEL, 0, 21000 - i * 0.25, 10 + i);
  for (let i = 0; i < 5; i++) add(T0, DepthCommand.ADD_ASK_LEVEL, i === 4 ? EOB : 0, 21000.25 + i * 0.25, 20 + i);
  add(T0 + 1000, DepthCommand.MODIFY_BID_LEVEL, 0, 21000, 3);
  add(T0 + 1000, DepthCommand.DELETE_ASK_LEVEL, EOB, 21000.25, 0);
  add(T0 + 1000, DepthCommand.ADD_ASK_LEVEL, EOB, 21000.25, 7); // same timestamp, next batch
  add(T0 + 2001, DepthCommand.CLEAR_BOOK, 0, 0, 0);
  add(T0 + 2001, DepthCommand.ADD_BID_LEVEL, 0, 20999.75, 4);
  add(T0 + 2001, DepthCommand.ADD_ASK_LEVEL, EOB, 21000.5, 6);
  add(T0 + 3000, DepthCommand.MODIFY_ASK_LEVEL, 0, 21000.5, 0); // open batch at the end
  return recs;
}

function expectDepthError(fn: () => unknown, byteOffset: number): EngineError {
  let caught: unknown;
  try { fn(); } catch (e) { caught = e; }
  expect(isEngineError(caught, 'ENGINE_ERR_DEPTH_FORMAT'), String(caught)).toBe(true);
  const err = caught as EngineError;
  expect(err.detail.byteOffset).toBe(byteOffset);
  expect(err.detail.file).toBe(FILE);
  expect(err.message).toContain(FILE);
  expect(err.message).toContain(`byte ${byteOffset}`);
  return err;
}

describe('DepthDecoder: round trip with DepthWriter', () => {
  test('a realistic file decodes to the expected DEPTH and BOOK_END slots', () => {
    const recs = sampleRecs();
    const { slots, dec } = decodeAll(writeMem(recs), { sourceId: 3, symbolId: 77 });
    expect(slots).toEqual(expectedSlots(recs, 3, 77));
    expect(dec.nextRecordIndex).toBe(recs.length);
    expect(dec.bytesConsumed).toBe(DEPTH_HEADER_BYTES + recs.length * REC);
    expect(dec.pendingBytes).toBe(0);
    expect(dec.committedRecordIndex).toBe(recs.length - 1); // the last record opens a batch that never ends
    expect(dec.openBatchRecords).toBe(1);
    expect(dec.lastSnapshotRecordIndex).toBe(14); // second CLEAR_BOOK
    expect(dec.header).toEqual({ headerBytes: 64, recordBytes: 24, version: 1 });
    expect(slots.filter((s) => s.kind === RecordKind.BOOK_END).map((s) => [s.records, s.snapshot])).toEqual([[11, 1], [2, 0], [1, 0], [3, 1]]);
    dec.endOfInput(); // complete file: no error
  });

  test('every field survives writer -> decoder for arbitrary values (fast-check)', () => {
    fc.assert(fc.property(fc.array(recArb, { maxLength: 60 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 0xffff }), (recs, src, sym) => {
      const { slots, dec } = decodeAll(writeMem(recs), { sourceId: src, symbolId: sym });
      expect(slots).toEqual(expectedSlots(recs, src, sym));
      expect(dec.pendingBytes).toBe(0);
    }), { numRuns: 200 });
  });

  test('non-finite f32 prices pass through unchanged (raw writer)', () => {
    const recs: RecSpec[] = [
      { ts: T0, cmd: 2, flags: 0, orders: 1, price: Number.NaN, qty: 1 },
      { ts: T0, cmd: 3, flags: 0, orders: 1, price: Number.POSITIVE_INFINITY, qty: 1 },
      { ts: T0, cmd: 3, flags: 1, orders: 1, price: -0, qty: 1 },
    ];
    const { slots } = decodeAll(writeMem(recs, true));
    expect(Number.isNaN(slots[0]!.price)).toBe(true);
    expect(slots[1]!.price).toBe(Number.POSITIVE_INFINITY);
    expect(Object.is(slots[2]!.price, -0)).toBe(true);
  });

  test('price multiplier scales every price', () => {
    const w = DepthWriter.toMemory({ priceMultiplier: 0.01 });
    w.record(T0, DepthCommand.ADD_BID_LEVEL, EOB, 1, 21000.25, 5);
    const bytes = w.contents();
    expect(new DataView(bytes.buffer).getFloat32(64 + 12, true)).toBe(2100025);
    const { slots } = decodeAll(bytes, { priceMultiplier: 0.01 });
    expect(slots[0]!.price).toBeCloseTo(21000.25, 9);
  });

  test('the DateTime int64 is read exactly, including the high half and the µs digits', () => {
    const raw = 0x0007_d81e_3f2a_b123; // ≈ 2.2e15 µs after 1899-12-30
    const bytes = writeMem([{ ts: raw - SC_EPOCH_TO_UNIX_MICROS, cmd: 0, flags: 1, orders: 0, price: 0, qty: 0 }]);
    const dv = new DataView(bytes.buffer);
    expect(dv.getUint32(64, true) + dv.getInt32(68, true) * 2 ** 32).toBe(raw);
    expect(decodeAll(bytes).slots[0]!.tsMicros).toBe(raw - SC_EPOCH_TO_UNIX_MICROS);
  });

  test('records past the date in the file name decode like any other (the name is not interpreted)', () => {
    const nextDay = Date.UTC(2025, 10, 12, 0, 0, 1) * 1000 + 123;
    const recs: RecSpec[] = [
      { ts: Date.UTC(2025, 10, 11, 23, 59, 59) * 1000, cmd: 2, flags: EOB, orders: 1, price: 21000, qty: 1 },
      { ts: nextDay, cmd: 3, flags: EOB, orders: 1, price: 21001, qty: 2 },
    ];
    const { slots } = decodeAll(writeMem(recs), { fileName: 'MNQZ25_FUT_CME.2025-11-11.depth' });
    expect(slots.filter((s) => s.kind === RecordKind.DEPTH).map((s) => s.tsMicros)).toEqual([recs[0]!.ts, nextDay]);
  });

  test('reads a real file written by DepthWriter.toFile', () => {
    const path = join(dir, FILE);
    const w = DepthWriter.toFile(path);
    const recs = sampleRecs();
    for (const r of recs) w.record(r.ts, r.cmd, r.flags, r.orders, r.price, r.qty);
    w.close();
    const bytes = new Uint8Array(readFileSync(path));
    expect(decodeAll(bytes, { fileBytes: bytes.length }).slots).toEqual(expectedSlots(recs));
  });
});

describe('DepthDecoder: chunking', () => {
  const recs = sampleRecs();
  const bytes = writeMem(recs);
  const reference = expectedSlots(recs);

  /** Copy into a fresh buffer padded with junk on both sides: reading outside the chunk changes the output. */
  function padded(c: Uint8Array, junk: number): Uint8Array {
    const b = new Uint8Array(c.length + 37 + 41).fill(junk);
    b.set(c, 37);
    return b.subarray(37, 37 + c.length);
  }

  test('a split at every byte gives identical output', () => {
    for (let s = 0; s <= bytes.length; s++) {
      const { slots, dec } = decodeChunks([padded(bytes.subarray(0, s), 0xff), padded(bytes.subarray(s), 0x07)]);
      expect(slots, `split at ${s}`).toEqual(reference);
      expect(dec.pendingBytes + dec.bytesConsumed).toBe(bytes.length);
    }
  });

  test('random chunkings give identical output, and a reused read buffer is safe (fast-check)', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 60 }), { maxLength: 40 }), fc.boolean(), (sizes, reuse) => {
      // Like the tailer: one read buffer overwritten for every chunk once the decoder is done with it.
      const readBuf = new Uint8Array(4096);
      const sab = createRing({ slotCount: 8, slotBytes: RECORD_SLOT_BYTES });
      const w = RingWriter.attach(sab);
      const r = RingReader.attach(sab);
      const dec = new DepthDecoder({ fileName: FILE });
      const slots: Slot[] = [];
      let off = 0;
      let k = 0;
      let emptyInARow = 0;
      while (off < bytes.length) {
        let n = Math.min(sizes.length === 0 ? 64 : sizes[k++ % sizes.length]!, bytes.length - off);
        // empty chunks are part of the test, but a schedule of only zeros must still make progress
        emptyInARow = n === 0 ? emptyInARow + 1 : 0;
        if (emptyInARow > sizes.length) { n = 1; emptyInARow = 0; }
        let chunk: Uint8Array;
        if (reuse) { readBuf.fill(0xee); readBuf.set(bytes.subarray(off, off + n), 3); chunk = readBuf.subarray(3, 3 + n); }
        else chunk = padded(bytes.subarray(off, off + n), 0x5a);
        off += n;
        dec.push(chunk);
        for (;;) {
          dec.decodeInto(w);
          const m = r.available();
          for (let i = 0; i < m; i++) slots.push(slotToObject(r.views, r.slotByte(i)));
          r.release(m);
          if (dec.pendingRecords === 0) break;
        }
        expect(dec.pendingBytes + dec.bytesConsumed).toBe(off);
      }
      expect(slots).toEqual(reference);
    }), { numRuns: 150 });
  });
});

describe('DepthDecoder: back-pressure', () => {
  test('a tiny ring drained at random loses and duplicates nothing and never splits DEPTH(end-of-batch)+BOOK_END', () => {
    fc.assert(fc.property(
      fc.array(recArb, { minLength: 1, maxLength: 80 }),
      fc.constantFrom(2, 4, 8),
      fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 1, maxLength: 20 }),
      fc.integer({ min: 2, max: 9 }),
      (recs, slotCount, drains, maxBatch) => {
        const bytes = writeMem(recs);
        const sab = createRing({ slotCount, slotBytes: RECORD_SLOT_BYTES });
        const w = RingWriter.attach(sab);
        const r = RingReader.attach(sab);
        const dec = new DepthDecoder({ fileName: FILE, maxBatchSlots: maxBatch });
        dec.push(bytes);
        const got: Slot[] = [];
        let k = 0;
        for (let guard = 0; ; guard++) {
          expect(guard).toBeLessThan(100_000);
          dec.decodeInto(w);
          const avail = r.available();
          if (avail > 0) {
            // the last published slot is never an end-of-batch DEPTH without its BOOK_END
            const last = slotToObject(r.views, r.slotByte(avail - 1));
            expect(last.kind === RecordKind.DEPTH && (last.depthFlags! & EOB) !== 0).toBe(false);
          }
          const m = Math.min(avail, Math.max(1, drains[k++ % drains.length]!));
          for (let i = 0; i < m; i++) got.push(slotToObject(r.views, r.slotByte(i)));
          r.release(m);
          if (dec.pendingRecords === 0 && r.available() === 0) break;
        }
        expect(got).toEqual(expectedSlots(recs));
        expect(dec.slotsPublished).toBe(got.length);
      },
    ), { numRuns: 150 });
  });

  test('a full ring returns 0 and keeps state; the next call resumes', () => {
    const recs = sampleRecs();
    const sab = createRing({ slotCount: 4, slotBytes: RECORD_SLOT_BYTES });
    const w = RingWriter.attach(sab);
    const r = RingReader.attach(sab);
    const dec = new DepthDecoder({ fileName: FILE });
    dec.push(writeMem(recs));
    expect(dec.decodeInto(w)).toBe(4);
    expect(dec.decodeInto(w)).toBe(0); // full
    expect(dec.nextRecordIndex).toBe(4);
    expect(dec.pendingRecords).toBe(recs.length - 4);
    expect(() => dec.push(new Uint8Array(24))).toThrow(/pendingRecords/);
    r.available();
    r.release(4);
    expect(dec.decodeInto(w)).toBe(4);
    expect(dec.nextRecordIndex).toBe(8);
  });

  test('a slot too small for the record layout is refused', () => {
    const sab = createRing({ slotCount: 4, slotBytes: 32 });
    const dec = new DepthDecoder({ fileName: FILE });
    dec.push(writeMem(sampleRecs()));
    expect(() => dec.decodeInto(RingWriter.attach(sab))).toThrow(/cannot hold/);
  });
});

describe('DepthDecoder: checkpoints', () => {
  const recs = sampleRecs();
  const bytes = writeMem(recs);

  test('startRecordIndex skips the records already handed on (streamed from byte 0)', () => {
    const { slots, dec } = decodeAll(bytes, { startRecordIndex: 11 });
    expect(slots).toEqual(expectedSlots(recs.slice(11), 0, 0, 11));
    expect(dec.bytesConsumed).toBe(bytes.length);
  });

  test('a resumed decoder can jump to nextReadOffset after the header', () => {
    const dec = new DepthDecoder({ fileName: FILE, startRecordIndex: 13 });
    dec.push(bytes.subarray(0, 64));
    expect(dec.nextReadOffset).toBe(64 + 13 * REC);
    expect(() => dec.push(bytes.subarray(100), 100 + 1000)).toThrow(/does not follow/);
    const sab = createRing({ slotCount: 64, slotBytes: RECORD_SLOT_BYTES });
    const w = RingWriter.attach(sab);
    const r = RingReader.attach(sab);
    dec.push(bytes.subarray(dec.nextReadOffset), dec.nextReadOffset);
    dec.decodeInto(w);
    const n = r.available();
    const slots: Slot[] = [];
    for (let i = 0; i < n; i++) slots.push(slotToObject(r.views, r.slotByte(i)));
    expect(slots).toEqual(expectedSlots(recs.slice(13), 0, 0, 13));
    expect(dec.bytesConsumed).toBe(bytes.length);
    expect(dec.recordOffset(13)).toBe(64 + 13 * REC);
  });

  test('a checkpoint beyond the end of the file is a coded truncation error', () => {
    expect(() => decodeAll(bytes, { startRecordIndex: 1000, fileBytes: bytes.length })).toThrow(expect.objectContaining({ code: 'ENGINE_ERR_FILE_TRUNCATED' }) as Error);
    const { dec } = decodeAll(bytes, { startRecordIndex: 1000 });
    expect(() => dec.endOfInput()).toThrow(expect.objectContaining({ code: 'ENGINE_ERR_FILE_TRUNCATED' }) as Error);
  });
});

describe('DepthDecoder: bad files', () => {
  function header(fields: Parameters<DepthWriter['header']>[0], extra = 0): Uint8Array {
    const w = DepthWriter.toMemory({ raw: true });
    w.header(fields);
    if (extra > 0) w.writeBytes(new Uint8Array(extra));
    return w.contents();
  }

  test('wrong magic', () => {
    const dec = new DepthDecoder({ fileName: FILE });
    expectDepthError(() => dec.push(header({ magic: 0x12345678 }, 48)), 0);
    // sticky: every later call throws the same error
    expectDepthError(() => dec.decodeInto(RingWriter.attach(createRing({ slotCount: 4, slotBytes: 64 }))), 0);
    expectDepthError(() => dec.endOfInput(), 0);
  });

  test('an .scid file handed to the depth decoder says so', () => {
    const bytes = new Uint8Array(readFileSync(new URL('../../test/fixtures/sierra/ESM23-excerpt.scid', import.meta.url)));
    const err = expectDepthError(() => decodeAll(bytes), 0);
    expect(err.message).toMatch(/\.scid/);
  });

  test('header size below 64', () => {
    expectDepthError(() => decodeAll(header({ headerBytes: 32 })), 4);
  });

  test('header size beyond the file (known size: at once; streaming: at end of input)', () => {
    const bytes = header({ headerBytes: 4096 }, 100);
    expectDepthError(() => decodeAll(bytes, { fileBytes: bytes.length }), 4);
    const { dec } = decodeAll(bytes);
    expect(dec.header?.headerBytes).toBe(4096);
    const err = expectDepthError(() => dec.endOfInput(), 4);
    expect(err.message).toMatch(/beyond the end of the file/);
  });

  test('an implausible header size is refused while streaming', () => {
    expectDepthError(() => decodeAll(header({ headerBytes: 0x7fff0000 })), 4);
  });

  test('a larger declared header is honoured: records start at HeaderSize', () => {
    const w = DepthWriter.toMemory({ raw: true });
    w.header({ headerBytes: 128, length: 128 });
    w.record(T0, DepthCommand.ADD_BID_LEVEL, EOB, 1, 100, 5);
    const { slots } = decodeAll(w.contents());
    expect(slots.map((s) => s.kind)).toEqual([RecordKind.DEPTH, RecordKind.BOOK_END]);
    expect(slots[0]!.price).toBe(100);
  });

  test('record size other than 24', () => {
    expectDepthError(() => decodeAll(header({ recordBytes: 40 })), 8);
    expectDepthError(() => decodeAll(header({ recordBytes: 0 })), 8);
  });

  test('empty file', () => {
    const { dec, slots } = decodeAll(new Uint8Array(0));
    expect(slots).toEqual([]);
    const err = expectDepthError(() => dec.endOfInput(), 0);
    expect(err.message).toMatch(/empty/);
  });

  test('file shorter than the header fields', () => {
    const { dec } = decodeAll(header({}).subarray(0, 10));
    expectDepthError(() => dec.endOfInput(), 10);
  });

  test('file shorter than the 64-byte header', () => {
    const { dec } = decodeAll(header({}).subarray(0, 40));
    expectDepthError(() => dec.endOfInput(), 4);
  });

  test('header only: a valid file with no records', () => {
    const { dec, slots } = decodeAll(header({}));
    expect(slots).toEqual([]);
    expect(dec.nextRecordIndex).toBe(0);
    expect(dec.bytesConsumed).toBe(64);
    dec.endOfInput();
  });

  test('a truncated last record stays pending and completes when the rest arrives', () => {
    const recs = sampleRecs().slice(0, 4);
    const bytes = writeMem(recs);
    const cut = bytes.length - 14;
    const sab = createRing({ slotCount: 64, slotBytes: RECORD_SLOT_BYTES });
    const w = RingWriter.attach(sab);
    const r = RingReader.attach(sab);
    const dec = new DepthDecoder({ fileName: FILE });
    dec.push(bytes.slice(0, cut));
    expect(dec.decodeInto(w)).toBe(3);
    expect(dec.pendingBytes).toBe(10);
    expect(dec.pendingRecords).toBe(0);
    expect(dec.bytesConsumed).toBe(64 + 3 * REC);
    dec.endOfInput(); // not an error: a live file may still grow
    dec.push(bytes.slice(cut));
    expect(dec.decodeInto(w)).toBe(1);
    const n = r.available();
    const slots: Slot[] = [];
    for (let i = 0; i < n; i++) slots.push(slotToObject(r.views, r.slotByte(i)));
    expect(slots).toEqual(expectedSlots(recs));
  });

  test('a command byte above 7 is a coded error at that record, after the good records were published', () => {
    const recs = sampleRecs();
    const w = DepthWriter.toMemory({ raw: true });
    w.header();
    recs.forEach((r, i) => w.record(r.ts, i === 5 ? 8 : r.cmd, r.flags, r.orders, r.price, r.qty));
    const sab = createRing({ slotCount: 64, slotBytes: RECORD_SLOT_BYTES });
    const ring = RingWriter.attach(sab);
    const reader = RingReader.attach(sab);
    const dec = new DepthDecoder({ fileName: FILE });
    dec.push(w.contents());
    const err = expectDepthError(() => dec.decodeInto(ring), 64 + 5 * REC);
    expect(err.detail.command).toBe(8);
    expect(err.detail.recordIndex).toBe(5);
    expect(reader.available()).toBe(5);
    expect(dec.nextRecordIndex).toBe(5);
    expect(dec.bytesConsumed).toBe(64 + 5 * REC);
    expectDepthError(() => dec.decodeInto(ring), 64 + 5 * REC); // sticky
    expectDepthError(() => dec.push(new Uint8Array(1)), 64 + 5 * REC);
  });

  test('a bad command in a record split across chunks is reported at the right file offset', () => {
    const w = DepthWriter.toMemory({ raw: true });
    w.header();
    w.record(T0, 2, 0, 1, 100, 1);
    w.record(T0, 255, 0, 1, 100, 1);
    const bytes = w.contents();
    expectDepthError(() => decodeChunks([bytes.subarray(0, 64 + 30), bytes.subarray(64 + 30)]), 64 + REC);
  });
});

describe('DepthDecoder: fuzz', () => {
  /** Push `bytes` in chunks, decode through a small ring; only ENGINE_ERR_DEPTH_FORMAT may be thrown. */
  function fuzzRun(bytes: Uint8Array, sizes: number[], slotCount: number): void {
    const sab = createRing({ slotCount, slotBytes: RECORD_SLOT_BYTES });
    const w = RingWriter.attach(sab);
    const r = RingReader.attach(sab);
    const dec = new DepthDecoder({ fileName: FILE });
    let off = 0;
    let k = 0;
    let lastSeq = -1;
    try {
      while (off < bytes.length) {
        const n = Math.min(bytes.length - off, 1 + (sizes.length === 0 ? 100 : sizes[k++ % sizes.length]!));
        const chunk = new Uint8Array(n + 16).fill(0x01).subarray(8, 8 + n); // junk around the chunk
        chunk.set(bytes.subarray(off, off + n));
        off += n;
        dec.push(chunk);
        for (let guard = 0; ; guard++) {
          if (guard > 10_000) throw new Error('decoder hangs');
          dec.decodeInto(w);
          const m = r.available();
          for (let i = 0; i < m; i++) {
            const s = slotToObject(r.views, r.slotByte(i));
            if (s.kind === RecordKind.DEPTH) { expect(s.seq).toBe(lastSeq + 1); lastSeq = s.seq!; expect(s.command).toBeLessThanOrEqual(7); }
            else expect(s.kind).toBe(RecordKind.BOOK_END);
          }
          r.release(m);
          if (dec.pendingRecords === 0) break;
        }
        expect(dec.pendingBytes + dec.bytesConsumed).toBe(off);
      }
      dec.endOfInput();
      expect(dec.pendingBytes + dec.bytesConsumed).toBe(bytes.length);
    } catch (e) {
      if (!isEngineError(e, 'ENGINE_ERR_DEPTH_FORMAT')) throw e;
    }
  }

  test('random bytes: only coded format errors, no crash, no hang', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 700 }), fc.array(fc.nat(90)), fc.constantFrom(2, 4, 16), (bytes, sizes, slots) => {
      fuzzRun(bytes, sizes, slots);
    }), { numRuns: 300 });
  });

  test('random bytes behind a valid magic: only coded format errors', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 700 }), fc.array(fc.nat(90)), (tail, sizes) => {
      const bytes = new Uint8Array(4 + tail.length);
      bytes.set([0x53, 0x43, 0x44, 0x44]);
      bytes.set(tail, 4);
      fuzzRun(bytes, sizes, 4);
    }), { numRuns: 300 });
  });

  test('valid header and records with flipped bits: only coded format errors', () => {
    const base = writeMem(sampleRecs());
    fc.assert(fc.property(
      fc.array(fc.record({ at: fc.nat(base.length - 1), bit: fc.integer({ min: 0, max: 7 }) }), { minLength: 1, maxLength: 8 }),
      fc.nat(base.length),
      fc.array(fc.nat(70)),
      (flips, cut, sizes) => {
        const bytes = base.slice(0, Math.max(cut, 1));
        for (const f of flips) if (f.at < bytes.length) bytes[f.at]! ^= 1 << f.bit;
        fuzzRun(bytes, sizes, 4);
      },
    ), { numRuns: 400 });
  });
});

describe('DepthDecoder: options', () => {
  test('bad options are coded errors', () => {
    for (const o of [{ sourceId: 256 }, { symbolId: -1 }, { priceMultiplier: 0 }, { startRecordIndex: 1.5 }, { maxBatchSlots: 1 }, { fileName: '' }]) {
      expect(() => new DepthDecoder({ fileName: FILE, ...o }), JSON.stringify(o)).toThrow(expect.objectContaining({ code: 'ENGINE_ERR_INVALID_ARG' }) as Error);
    }
  });
});
