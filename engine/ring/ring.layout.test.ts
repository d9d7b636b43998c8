/**
 * Layout tests (dbn's layout_tests habit): the ring control block keeps each writer on its own 128-byte
 * line, the data region and slots are aligned for the typed-array aliases, and the record slot layouts
 * in schemas/records.ts neither overlap nor leave the slot. Positions are derived from the exported
 * constants; the only literal is the 128-byte requirement itself.
 */
import { describe, expect, test } from 'vitest';
import * as L from './layout.ts';
import { createRing, RingReader, RingWriter, type SlotViews } from './ring.ts';
import * as R from '../../schemas/records.ts';

/** The requirement (STYLE.md §3.1): control words of different writers never share a 128-byte span. */
const REQUIRED_LINE_BYTES = 128;
const I32_BYTES = Int32Array.BYTES_PER_ELEMENT;

const OWNERS = {
  allocator: { MAGIC_I32: L.MAGIC_I32, LAYOUT_VERSION_I32: L.LAYOUT_VERSION_I32, SLOT_BYTES_I32: L.SLOT_BYTES_I32, SLOT_COUNT_I32: L.SLOT_COUNT_I32, RECORD_KIND_I32: L.RECORD_KIND_I32 },
  producer: { WRITE_SEQ_I32: L.WRITE_SEQ_I32, PRODUCER_PARKED_I32: L.PRODUCER_PARKED_I32, PUBLISHED_LO_I32: L.PUBLISHED_LO_I32, PUBLISHED_HI_I32: L.PUBLISHED_HI_I32, FULL_STALLS_I32: L.FULL_STALLS_I32, PRODUCER_PARKS_I32: L.PRODUCER_PARKS_I32 },
  consumer: { READ_SEQ_I32: L.READ_SEQ_I32, CONSUMER_PARKED_I32: L.CONSUMER_PARKED_I32, RELEASED_LO_I32: L.RELEASED_LO_I32, RELEASED_HI_I32: L.RELEASED_HI_I32, CONSUMER_PARKS_I32: L.CONSUMER_PARKS_I32 },
  supervisor: { STATE_I32: L.STATE_I32, HEARTBEAT_I32: L.HEARTBEAT_I32 },
} as const;

/** Every exported *_I32 constant of layout.ts, so a new word cannot be added without an owner here. */
const ALL_I32 = Object.entries(L).filter(([k, v]) => k.endsWith('_I32') && typeof v === 'number' && k !== 'CTRL_I32' && k !== 'I32_PER_LINE');

const lineOf = (i32: number): number => Math.floor((i32 * I32_BYTES) / REQUIRED_LINE_BYTES);

describe('ring control block', () => {
  test('every control word has exactly one owner in the table', () => {
    const owned = new Map<string, string>();
    for (const [owner, words] of Object.entries(OWNERS)) for (const name of Object.keys(words)) owned.set(name, owner);
    for (const [name] of ALL_I32) expect(owned.has(name), `${name} has no owner in the layout test`).toBe(true);
    expect(owned.size).toBe(ALL_I32.length);
  });

  test('control words are distinct and inside the control block', () => {
    const seen = new Set<number>();
    for (const [name, i] of ALL_I32) {
      const idx = i as number;
      expect(Number.isInteger(idx), name).toBe(true);
      expect(idx, name).toBeGreaterThanOrEqual(0);
      expect((idx + 1) * I32_BYTES, name).toBeLessThanOrEqual(L.CTRL_BYTES);
      expect(seen.has(idx), `${name} shares index ${idx}`).toBe(false);
      seen.add(idx);
    }
  });

  test('producer, consumer and supervisor words sit on different 128-byte lines (and not on line 0)', () => {
    const linesBy = new Map<string, Set<number>>();
    for (const [owner, words] of Object.entries(OWNERS)) linesBy.set(owner, new Set(Object.values(words).map(lineOf)));
    const owners = [...linesBy.keys()];
    for (let a = 0; a < owners.length; a++) {
      for (let b = a + 1; b < owners.length; b++) {
        const la = linesBy.get(owners[a]!)!;
        const lb = linesBy.get(owners[b]!)!;
        for (const line of la) expect(lb.has(line), `${owners[a]} and ${owners[b]} share 128-byte line ${line}`).toBe(false);
      }
    }
    // each hot party fits on one line, so one owner = one line
    for (const owner of ['producer', 'consumer', 'supervisor']) expect(linesBy.get(owner)!.size, owner).toBe(1);
    expect(L.LINE_BYTES % REQUIRED_LINE_BYTES).toBe(0);
    expect(L.I32_PER_LINE * I32_BYTES).toBe(L.LINE_BYTES);
  });

  test('data region starts 128-aligned and every slot is 8-aligned', () => {
    expect(L.CTRL_BYTES % REQUIRED_LINE_BYTES).toBe(0);
    expect(L.CTRL_I32 * I32_BYTES).toBe(L.CTRL_BYTES);
    for (const slotBytes of [8, 32, R.RECORD_SLOT_BYTES, 4096]) {
      const sab = createRing({ slotCount: 16, slotBytes });
      expect(sab.byteLength).toBe(L.ringBytes(16, slotBytes));
      const w = RingWriter.attach(sab);
      const r = RingReader.attach(sab);
      expect(w.slotByte(0)).toBe(L.CTRL_BYTES);
      expect(w.slotByte(0) % REQUIRED_LINE_BYTES).toBe(0);
      for (let i = 0; i < 16; i++) {
        expect(w.slotByte(i) % 8).toBe(0);
        expect(r.slotByte(i)).toBe(w.slotByte(i));
        expect(w.slotByte(i) + slotBytes).toBeLessThanOrEqual(sab.byteLength);
      }
    }
  });

  test('slot sizes in use are multiples of 8; 4-byte atomics are lock-free', () => {
    expect(R.RECORD_SLOT_BYTES % 8).toBe(0);
    expect(L.MAX_SLOT_BYTES % 8).toBe(0);
    expect(Atomics.isLockFree(Int32Array.BYTES_PER_ELEMENT)).toBe(true); // a byte size, not an index
    // sequences wrap at 2^32: occupancy math needs slot counts below 2^31
    expect(L.MAX_SLOT_COUNT).toBeLessThan(2 ** 31);
  });
});

// ---- record slot layouts (schemas/records.ts) --------------------------------------------------------

type FieldType = 'u8' | 'u16' | 'u32' | 'f64';
const SIZE: Record<FieldType, number> = { u8: 1, u16: 2, u32: 4, f64: 8 };
type Field = readonly [name: string, offsetByte: number, type: FieldType];

const HEADER: readonly Field[] = [
  ['KIND', R.KIND_BYTE, 'u8'], ['SOURCE_ID', R.SOURCE_ID_BYTE, 'u8'], ['SYMBOL_ID', R.SYMBOL_ID_BYTE, 'u16'],
  ['SEQ', R.SEQ_BYTE, 'u32'], ['TS_MICROS', R.TS_MICROS_BYTE, 'f64'],
];
const TRADE_BODY: readonly Field[] = [
  ['TRADE_PRICE', R.TRADE_PRICE_BYTE, 'f64'], ['TRADE_BID', R.TRADE_BID_BYTE, 'f64'], ['TRADE_ASK', R.TRADE_ASK_BYTE, 'f64'],
  ['TRADE_SIZE', R.TRADE_SIZE_BYTE, 'u32'], ['TRADE_FLAGS', R.TRADE_FLAGS_BYTE, 'u32'], ['TRADE_BID_SIZE', R.TRADE_BID_SIZE_BYTE, 'u32'],
  ['TRADE_ASK_SIZE', R.TRADE_ASK_SIZE_BYTE, 'u32'], ['TRADE_SRC_INDEX', R.TRADE_SRC_INDEX_BYTE, 'u32'], ['TRADE_NUM_TRADES', R.TRADE_NUM_TRADES_BYTE, 'u32'],
];
const KINDS: Record<string, readonly Field[]> = {
  TRADE: [...HEADER, ...TRADE_BODY],
  QUOTE: [...HEADER, ...TRADE_BODY],
  DEPTH: [...HEADER,
    ['DEPTH_PRICE', R.DEPTH_PRICE_BYTE, 'f64'], ['DEPTH_QUANTITY', R.DEPTH_QUANTITY_BYTE, 'u32'], ['DEPTH_COMMAND', R.DEPTH_COMMAND_BYTE, 'u8'],
    ['DEPTH_FLAGS', R.DEPTH_FLAGS_BYTE, 'u8'], ['DEPTH_NUM_ORDERS', R.DEPTH_NUM_ORDERS_BYTE, 'u16'], ['DEPTH_SRC_INDEX', R.DEPTH_SRC_INDEX_BYTE, 'u32']],
  BOOK_END: [...HEADER,
    ['BOOK_END_RECORDS', R.BOOK_END_RECORDS_BYTE, 'u32'], ['BOOK_END_SNAPSHOT', R.BOOK_END_SNAPSHOT_BYTE, 'u32'], ['BOOK_END_SRC_INDEX', R.BOOK_END_SRC_INDEX_BYTE, 'u32']],
  GAP: [...HEADER,
    ['GAP_END_TS_MICROS', R.GAP_END_TS_MICROS_BYTE, 'f64'], ['GAP_EXPECTED_SEQ', R.GAP_EXPECTED_SEQ_BYTE, 'u32'], ['GAP_GOT_SEQ', R.GAP_GOT_SEQ_BYTE, 'u32'],
    ['GAP_KIND', R.GAP_KIND_BYTE, 'u32'], ['GAP_STATUS', R.GAP_STATUS_BYTE, 'u32']],
  PAYLOAD_REF: [...HEADER,
    ['PAYLOAD_OFFSET', R.PAYLOAD_OFFSET_BYTE, 'f64'], ['PAYLOAD_BYTES', R.PAYLOAD_BYTES_BYTE, 'u32'], ['PAYLOAD_ID', R.PAYLOAD_ID_BYTE, 'u32'],
    ['PAYLOAD_TYPE', R.PAYLOAD_TYPE_BYTE, 'u32'], ['PAYLOAD_CHECKSUM', R.PAYLOAD_CHECKSUM_BYTE, 'u32']],
  BAR: [...HEADER,
    ['BAR_OPEN', R.BAR_OPEN_BYTE, 'f64'], ['BAR_HIGH', R.BAR_HIGH_BYTE, 'f64'], ['BAR_LOW', R.BAR_LOW_BYTE, 'f64'], ['BAR_CLOSE', R.BAR_CLOSE_BYTE, 'f64'],
    ['BAR_VOLUME', R.BAR_VOLUME_BYTE, 'u32'], ['BAR_NUM_TRADES', R.BAR_NUM_TRADES_BYTE, 'u32'], ['BAR_BID_VOLUME', R.BAR_BID_VOLUME_BYTE, 'u32'],
    ['BAR_ASK_VOLUME', R.BAR_ASK_VOLUME_BYTE, 'u32']],
};

/** Byte set covered by a list of fields. */
function coverage(fields: readonly Field[]): Set<number> {
  const s = new Set<number>();
  for (const [, off, t] of fields) for (let i = 0; i < SIZE[t]; i++) s.add(off + i);
  return s;
}

/** Calls the real writer of a kind into slot byte `b`, with values that are nonzero in every byte where possible. */
const WRITERS: Record<string, (v: SlotViews, b: number) => void> = {
  TRADE: (v, b) => R.writeTrade(v, b, R.RecordKind.TRADE, 0x5a, 0x1234, 0x01020304, 1.7e15 + 0.123, 21_000.25, 21_000, 21_000.5, 0x11223344, 0x55667788, 0x0a0b0c0d, 0x0e0f1011, 0x12131415, 0x16171819),
  QUOTE: (v, b) => R.writeTrade(v, b, R.RecordKind.QUOTE, 0x5a, 0x1234, 0x01020304, 1.7e15 + 0.123, NaN, 21_000, 21_000.5, 0x11223344, 0x55667788, 0x0a0b0c0d, 0x0e0f1011, 0x12131415, 0x16171819),
  DEPTH: (v, b) => R.writeDepth(v, b, 0x5a, 0x1234, 0x01020304, 1.7e15 + 0.123, 0x03, 0x81, 0x2345, 21_000.75, 0x11223344, 0x55667788),
  BOOK_END: (v, b) => R.writeBookEnd(v, b, 0x5a, 0x1234, 0x01020304, 1.7e15 + 0.123, 0x11223344, 0x01010101, 0x55667788),
  GAP: (v, b) => R.writeGap(v, b, 0x5a, 0x1234, 0x01020304, 1.7e15 + 0.123, 1.7e15 + 9.5, 0x11223344, 0x55667788, 0x0a0b0c0d, 0x0e0f1011),
  PAYLOAD_REF: (v, b) => R.writePayloadRef(v, b, 0x5a, 0x1234, 0x01020304, 1.7e15 + 0.123, 0x11223344, 0x55667788, 123_456_789.5, 0x0a0b0c0d, 0x0e0f1011),
  BAR: (v, b) => R.writeBar(v, b, 0x5a, 0x1234, 0x01020304, 1.7e15 + 0.123, 21_000.25, 21_010.5, 20_990.75, 21_005.25, 0x11223344, 0x55667788, 0x0a0b0c0d, 0x0e0f1011),
};

describe('record slot layouts (schemas/records.ts)', () => {
  test('the field table covers every RecordKind, and every *_BYTE offset of records.ts is in it', () => {
    expect(Object.keys(KINDS).sort()).toEqual(Object.keys(R.RecordKind).sort());
    const inTable = new Set(Object.values(KINDS).flatMap((f) => f.map(([name]) => `${name}_BYTE`)));
    const declared = Object.keys(R).filter((k) => k.endsWith('_BYTE'));
    expect(declared.filter((k) => !inTable.has(k)), 'offsets in records.ts missing from this table').toEqual([]);
  });

  for (const [kind, fields] of Object.entries(KINDS)) {
    test(`${kind}: fields aligned to their size, inside the slot, no two overlapping`, () => {
      const owner = new Map<number, string>();
      for (const [name, off, t] of fields) {
        expect(Number.isInteger(off), name).toBe(true);
        expect(off % SIZE[t], `${name} (${t} at ${off}) is misaligned`).toBe(0);
        expect(off, name).toBeGreaterThanOrEqual(0);
        expect(off + SIZE[t], `${name} ends past the ${R.RECORD_SLOT_BYTES}-byte slot`).toBeLessThanOrEqual(R.RECORD_SLOT_BYTES);
        if (HEADER.some(([h]) => h === name)) expect(off + SIZE[t], `${name} is past the header`).toBeLessThanOrEqual(R.HEADER_BYTES);
        else expect(off, `${name} overlaps the header`).toBeGreaterThanOrEqual(R.HEADER_BYTES);
        for (let i = 0; i < SIZE[t]; i++) {
          expect(owner.get(off + i), `${name} overlaps ${owner.get(off + i)} at byte ${off + i}`).toBeUndefined();
          owner.set(off + i, name);
        }
      }
    });

    test(`${kind}: the writer touches exactly the declared bytes of its own slot`, () => {
      // Three slots; write into the middle one twice, over 0x00 and over 0xff backgrounds. A byte that
      // differs from the background in either run was written (a written byte cannot equal both).
      const slot = R.RECORD_SLOT_BYTES;
      const sab = createRing({ slotCount: 4, slotBytes: slot });
      const v = RingWriter.attach(sab).views;
      const base = L.CTRL_BYTES;
      const b = base + slot;
      const touched = new Set<number>();
      for (const bg of [0x00, 0xff]) {
        v.u8.fill(bg, base, base + 3 * slot);
        WRITERS[kind]!(v, b);
        for (let i = base; i < base + 3 * slot; i++) if (v.u8[i] !== bg) touched.add(i - b);
      }
      const declared = coverage(fields);
      const outside = [...touched].filter((i) => !declared.has(i)).sort((x, y) => x - y);
      const unwritten = [...declared].filter((i) => !touched.has(i)).sort((x, y) => x - y);
      expect(outside, `${kind} writer touched undeclared bytes (relative to its slot)`).toEqual([]);
      expect(unwritten, `${kind} writer left declared bytes unwritten`).toEqual([]);
    });
  }

  test('readers return what the writers wrote (slotToObject round trip)', () => {
    const sab = createRing({ slotCount: 2, slotBytes: R.RECORD_SLOT_BYTES });
    const v = RingWriter.attach(sab).views;
    const b = L.CTRL_BYTES;
    WRITERS.TRADE!(v, b);
    expect(R.slotToObject(v, b)).toEqual({
      kind: R.RecordKind.TRADE, sourceId: 0x5a, symbolId: 0x1234, seq: 0x01020304, tsMicros: 1.7e15 + 0.123,
      price: 21_000.25, bid: 21_000, ask: 21_000.5, size: 0x11223344, flags: 0x55667788, bidSize: 0x0a0b0c0d,
      askSize: 0x0e0f1011, srcIndex: 0x12131415, numTrades: 0x16171819,
    });
    WRITERS.DEPTH!(v, b);
    expect(R.slotToObject(v, b)).toMatchObject({
      kind: R.RecordKind.DEPTH, price: 21_000.75, quantity: 0x11223344, command: 0x03, depthFlags: 0x81, numOrders: 0x2345, srcIndex: 0x55667788,
    });
    WRITERS.BAR!(v, b);
    expect(R.slotToObject(v, b)).toMatchObject({
      kind: R.RecordKind.BAR, open: 21_000.25, high: 21_010.5, low: 20_990.75, close: 21_005.25, volume: 0x11223344,
      numTrades: 0x55667788, bidVolume: 0x0a0b0c0d, askVolume: 0x0e0f1011,
    });
  });
});
