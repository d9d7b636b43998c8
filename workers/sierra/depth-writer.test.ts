import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { OrderBook } from '../../engine/book/index.ts';
import { isEngineError } from '../../engine/errors.ts';
import { RingReader, RingWriter, createRing } from '../../engine/ring/ring.ts';
import { DEPTH_FLAG_END_OF_BATCH, DepthCommand, RECORD_SLOT_BYTES, RecordKind, slotToObject } from '../../schemas/records.ts';
import { MarketSim } from '../sim/market-sim.ts';
import { DepthDecoder } from './depth-decoder.ts';
import { DEPTH_MAGIC_LE, DEPTH_RECORD_BYTES, SC_EPOCH_TO_UNIX_MICROS } from './depth-format.ts';
import { DepthWriter } from './depth-writer.ts';

const EOB = DEPTH_FLAG_END_OF_BATCH;
const C = DepthCommand;
const T0 = Date.UTC(2025, 10, 11, 14, 30) * 1000;

const dir = mkdtempSync(join(tmpdir(), 'tickpipe-depth-writer-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Slot = Record<string, number>;

function decodeFile(path: string): { depth: Slot[]; bookEnds: Slot[]; book: OrderBook; dec: DepthDecoder } {
  const bytes = new Uint8Array(readFileSync(path));
  const sab = createRing({ slotCount: 1024, slotBytes: RECORD_SLOT_BYTES });
  const w = RingWriter.attach(sab);
  const r = RingReader.attach(sab);
  const dec = new DepthDecoder({ fileName: path, fileBytes: bytes.length });
  const book = new OrderBook({ tickSize: 0.25 });
  const depth: Slot[] = [];
  const bookEnds: Slot[] = [];
  dec.push(bytes);
  for (;;) {
    dec.decodeInto(w);
    const n = r.available();
    for (let i = 0; i < n; i++) {
      const s = slotToObject(r.views, r.slotByte(i));
      (s.kind === RecordKind.DEPTH ? depth : bookEnds).push(s);
      book.applyFromSlot(r.views, r.slotByte(i));
    }
    r.release(n);
    if (dec.pendingRecords === 0) break;
  }
  dec.endOfInput();
  return { depth, bookEnds, book, dec };
}

describe('DepthWriter', () => {
  test('writes the SCDD header and 24-byte little-endian records', () => {
    const path = join(dir, 'layout.depth');
    const w = DepthWriter.toFile(path);
    w.record(T0 + 7, C.MODIFY_ASK_LEVEL, EOB, 513, 21000.25, 4_000_000_000);
    w.close();
    const b = readFileSync(path);
    expect(b.length).toBe(64 + 24);
    expect(b.toString('latin1', 0, 4)).toBe('SCDD');
    expect([b.readUInt32LE(0), b.readUInt32LE(4), b.readUInt32LE(8), b.readUInt32LE(12)]).toEqual([DEPTH_MAGIC_LE, 64, 24, 1]);
    expect(b.subarray(16, 64).every((x) => x === 0)).toBe(true);
    expect(b.readBigInt64LE(64)).toBe(BigInt(T0 + 7 + SC_EPOCH_TO_UNIX_MICROS)); // BigInt only here, as an independent check
    expect([b[72], b[73], b.readUInt16LE(74), b.readFloatLE(76), b.readUInt32LE(80), b.readUInt32LE(84)]).toEqual([C.MODIFY_ASK_LEVEL, EOB, 513, 21000.25, 4_000_000_000, 0]);
  });

  test('snapshot(): CLEAR_BOOK, bids, asks, end-of-batch flag on the last record only', () => {
    const path = join(dir, 'snapshot.depth');
    const w = DepthWriter.toFile(path);
    w.snapshot(T0, [{ price: 100, quantity: 5 }, { price: 99.75, quantity: 6, numOrders: 3 }], [{ price: 100.25, quantity: 7 }]);
    w.snapshot(T0 + 1, [], []);
    w.update(T0 + 2, [{ command: C.MODIFY_BID_LEVEL, price: 100, quantity: 0 }, { command: C.ADD_ASK_LEVEL, price: 100.5, quantity: 2 }]);
    w.update(T0 + 3, []);
    expect(w.recordCount).toBe(4 + 1 + 2);
    w.close();
    const { depth, bookEnds, book } = decodeFile(path);
    expect(depth.map((s) => [s.command, s.depthFlags, s.numOrders])).toEqual([
      [C.CLEAR_BOOK, 0, 0], [C.ADD_BID_LEVEL, 0, 1], [C.ADD_BID_LEVEL, 0, 3], [C.ADD_ASK_LEVEL, EOB, 1],
      [C.CLEAR_BOOK, EOB, 0],
      [C.MODIFY_BID_LEVEL, 0, 0], [C.ADD_ASK_LEVEL, EOB, 1],
    ]);
    expect(bookEnds.map((s) => [s.records, s.snapshot])).toEqual([[4, 1], [1, 1], [2, 0]]);
    expect(book.bidLevels).toBe(0);
    expect(book.snapshot().asks).toEqual([{ price: 100.5, quantity: 2, orders: 1 }]);
  });

  test('append mode continues a valid file and counts its records', () => {
    const path = join(dir, 'append.depth');
    const a = DepthWriter.toFile(path);
    a.snapshot(T0, [{ price: 100, quantity: 5 }], [{ price: 100.25, quantity: 5 }]);
    a.close();
    const b = DepthWriter.toFile(path, { append: true });
    expect(b.recordCount).toBe(3);
    expect(b.byteLength).toBe(64 + 3 * 24);
    b.update(T0 + 1, [{ command: C.DELETE_BID_LEVEL, price: 100, quantity: 0 }]);
    b.close();
    const { depth, book } = decodeFile(path);
    expect(depth.map((s) => s.seq)).toEqual([0, 1, 2, 3]);
    expect(book.bidLevels).toBe(0);
    expect(book.askLevels).toBe(1);
  });

  test('append mode creates a missing or empty file with a header', () => {
    const missing = join(dir, 'new-append.depth');
    const w = DepthWriter.toFile(missing, { append: true });
    w.record(T0, C.ADD_BID_LEVEL, EOB, 1, 100, 1);
    w.close();
    expect(decodeFile(missing).depth.length).toBe(1);
    const empty = join(dir, 'empty-append.depth');
    writeFileSync(empty, '');
    const e = DepthWriter.toFile(empty, { append: true });
    e.close();
    expect(statSync(empty).size).toBe(64);
  });

  test('append mode refuses an invalid header and a partial trailing record (unless asked to cut it)', () => {
    const bad = join(dir, 'bad-append.depth');
    writeFileSync(bad, Buffer.alloc(64, 0x41));
    expect(() => DepthWriter.toFile(bad, { append: true })).toThrow(expect.objectContaining({ code: 'ENGINE_ERR_DEPTH_FORMAT' }) as Error);
    const partial = join(dir, 'partial-append.depth');
    const w = DepthWriter.toFile(partial);
    w.record(T0, C.ADD_BID_LEVEL, EOB, 1, 100, 1);
    w.close();
    appendFileSync(partial, Buffer.alloc(10, 0xff));
    let caught: unknown;
    try { DepthWriter.toFile(partial, { append: true }); } catch (e) { caught = e; }
    expect(isEngineError(caught, 'ENGINE_ERR_DEPTH_FORMAT')).toBe(true);
    expect((caught as { detail: Record<string, unknown> }).detail).toMatchObject({ file: partial, byteOffset: 64 + 24 });
    const fixed = DepthWriter.toFile(partial, { append: true, truncatePartialRecord: true });
    expect(fixed.recordCount).toBe(1);
    fixed.record(T0 + 1, C.ADD_ASK_LEVEL, EOB, 1, 101, 1);
    fixed.close();
    expect(statSync(partial).size).toBe(64 + 2 * 24);
    expect(decodeFile(partial).depth.map((s) => s.price)).toEqual([100, 101]);
  });

  test('a normal writer validates every field; a raw writer writes anything', () => {
    const w = DepthWriter.toMemory();
    const bad: [number, number, number, number, number, number][] = [
      [T0, 8, 0, 0, 1, 1], [T0, 1, 256, 0, 1, 1], [T0, 1, 0, 70000, 1, 1], [T0, 1, 0, 0, 1, -1], [T0, 1, 0, 0, 1e39, 1],
      [T0 + 0.5, 1, 0, 0, 1, 1], [T0, 1, 0, 0, Number.NaN, 1],
    ];
    for (const [ts, cmd, flags, orders, price, qty] of bad) {
      expect(() => w.record(ts, cmd, flags, orders, price, qty), String([ts, cmd, flags, orders, price, qty])).toThrow(expect.objectContaining({ code: 'ENGINE_ERR_INVALID_ARG' }) as Error);
    }
    expect(w.recordCount).toBe(0);
    expect(() => w.header()).toThrow(/raw/);
    expect(() => w.writeBytes(new Uint8Array(1))).toThrow(/raw/);

    const raw = DepthWriter.toMemory({ raw: true });
    expect(raw.contents().length).toBe(0); // no header written for you
    raw.header({ magic: 0x11223344, headerBytes: 10, recordBytes: 40, version: 9, length: 20 });
    raw.record(T0, 200, 0xff, 0, Number.NaN, 1);
    raw.writeBytes(new Uint8Array([1, 2, 3]));
    const b = Buffer.from(raw.contents());
    expect(b.length).toBe(20 + 24 + 3);
    expect([b.readUInt32LE(0), b.readUInt32LE(4), b.readUInt32LE(8), b.readUInt32LE(12)]).toEqual([0x11223344, 10, 40, 9]);
    expect(b[20 + 8]).toBe(200);
    expect(Number.isNaN(b.readFloatLE(20 + 12))).toBe(true);
  });

  test('write after close is refused; close is idempotent; contents() is for memory writers', () => {
    const path = join(dir, 'closed.depth');
    const w = DepthWriter.toFile(path);
    expect(() => w.contents()).toThrow(/in-memory/);
    w.close();
    w.close();
    expect(() => w.record(T0, 0, 0, 0, 0, 0)).toThrow(/after close/);
  });

  test('buffered output reaches the file on flush (and across buffer refills)', () => {
    const path = join(dir, 'big.depth');
    const w = DepthWriter.toFile(path, { bufferBytes: 1024 });
    for (let i = 0; i < 1000; i++) w.record(T0 + i, C.ADD_BID_LEVEL, EOB, 1, 100 + i * 0.25, i);
    w.flush();
    expect(statSync(path).size).toBe(64 + 1000 * DEPTH_RECORD_BYTES);
    w.close();
    const { depth } = decodeFile(path);
    expect(depth.length).toBe(1000);
    expect(depth[999]).toMatchObject({ seq: 999, tsMicros: T0 + 999, price: 100 + 999 * 0.25, quantity: 999 });
  });

  test('as the simulator sink it produces a file that replays to a sane book', () => {
    const path = join(dir, 'MNQZ25_FUT_CME.2025-11-11.depth');
    const w = DepthWriter.toFile(path);
    const sim = new MarketSim(T0, [{ symbol: 'MNQZ25', tickSize: 0.25, startPrice: 21000, baseRate: 100 }], { seed: 3, snapshotEveryMicros: 20_000_000 });
    sim.run(T0 + 60_000_000, {}, { MNQZ25: w });
    w.close();
    expect(w.recordCount).toBe(sim.depthRecords('MNQZ25'));
    const { depth, bookEnds, book, dec } = decodeFile(path);
    expect(depth.length).toBe(w.recordCount);
    expect(bookEnds.filter((s) => s.snapshot === 1).length).toBe(3); // t = 0, 20 s, 40 s
    expect(book.version).toBe(bookEnds.length);
    expect(book.crossed).toBe(false);
    expect(book.stats().crossedBatches).toBe(0);
    expect(book.bestBid).toBeLessThan(book.bestAsk);
    expect(book.bidLevels).toBeGreaterThan(0);
    expect(book.askLevels).toBeGreaterThan(0);
    expect(book.stagedRecords).toBe(0);
    expect(dec.committedRecordIndex).toBe(w.recordCount);
  });
});
