/**
 * Model-based property test of the SPSC ring (STYLE.md §3.13): random schedules of claim / partial
 * publish / partial release on one thread against a plain-array FIFO model. Every step checks the
 * capacity invariant and that the shared counters (ringStats) agree with the model. Schedules run from
 * sequence 0 and from sequences just below 2^31 and 2^32 (createRingAtSeq), so the wrapping int32
 * arithmetic is exercised, and with the 64-bit published/released counters seeded just below 2^32.
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  CTRL_I32, PUBLISHED_HI_I32, PUBLISHED_LO_I32, READ_SEQ_I32, RELEASED_HI_I32, RELEASED_LO_I32, WRITE_SEQ_I32,
} from './layout.ts';
import { createRingAtSeq, RingReader, RingWriter, ringStats } from './ring.ts';

/** Byte offsets of what the test writes into each slot (slots are >= 16 bytes). */
const SEQ_OFF_BYTE = 0; // u32: the model's sequence number
const TAG_OFF_BYTE = 8; // f64: seq * 3.5, a second, wider field that must travel with it

interface Step {
  claim: number; // slots asked for (may exceed the free space; capped at the ring size below)
  publishPart: number; // 0..1: fraction of the claimed slots published (partial publish)
  publishRest: boolean; // then publish the rest of the claim in a second call
  pop: number; // slots the consumer tries to read
  releaseSplit: number; // 0..1: release what was read in two calls split here
}

interface Start {
  seq: number; // initial write/read sequence (int32 bits)
  counter: number; // initial published/released counters (resumed ring)
}

const step: fc.Arbitrary<Step> = fc.record({
  claim: fc.nat(70),
  publishPart: fc.double({ min: 0, max: 1, noNaN: true }),
  publishRest: fc.boolean(),
  pop: fc.nat(70),
  releaseSplit: fc.double({ min: 0, max: 1, noNaN: true }),
});

/** Cheap equality check for the inner loops (vitest's expect is too slow for ~10^6 checks per file). */
function eq(actual: number | undefined, expected: number, what: string): void {
  if (actual !== expected) throw new Error(`${what}: got ${String(actual)}, expected ${expected}`);
}

/** Seed both 64-bit counters (layout: LO = low 32 bits, HI = 2 x high 32 bits, odd only mid-carry). */
function setCounters(ctrl: Int32Array, value: number): void {
  const lo = value % 4294967296;
  const hi = Math.floor(value / 4294967296);
  ctrl[PUBLISHED_LO_I32] = lo | 0; ctrl[PUBLISHED_HI_I32] = (hi * 2) | 0;
  ctrl[RELEASED_LO_I32] = lo | 0; ctrl[RELEASED_HI_I32] = (hi * 2) | 0;
}

/** Run one schedule against the model; throws (expect) on the first divergence. */
function runSchedule(slotCount: number, start: Start, steps: readonly Step[]): { pushed: number } {
  const slotBytes = 16;
  const sab = createRingAtSeq({ slotCount, slotBytes }, start.seq);
  const ctrl = new Int32Array(sab, 0, CTRL_I32);
  setCounters(ctrl, start.counter); // before attach: the writer and reader resume from these
  const writer = RingWriter.attach(sab);
  const reader = RingReader.attach(sab);
  const wv = writer.views;
  const rv = reader.views;
  const model: number[] = [];
  let next = 0;
  let popped = 0;

  const put = (i: number, seq: number): void => {
    const b = writer.slotByte(i);
    eq(b % 8, 0, 'slot alignment');
    wv.u32[(b + SEQ_OFF_BYTE) >> 2] = seq;
    wv.f64[(b + TAG_OFF_BYTE) >> 3] = seq * 3.5;
  };

  for (const s of steps) {
    const want = Math.min(s.claim, slotCount);
    const free = slotCount - model.length;
    const k = writer.claim(want);
    eq(k, Math.min(want, free), 'claim result'); // gets what fits, never more, never an exception
    for (let i = 0; i < k; i++) put(i, next + i);
    const p1 = Math.floor(k * s.publishPart);
    writer.publish(p1);
    for (let i = 0; i < p1; i++) model.push(next + i);
    next += p1;
    if (s.publishRest && k - p1 > 0) {
      // the rest of the claim is still claimed; after a publish slot indices restart at 0
      for (let i = 0; i < k - p1; i++) eq(wv.u32[(writer.slotByte(i) + SEQ_OFF_BYTE) >> 2], next + i, 'rest of claim');
      writer.publish(k - p1);
      for (let i = 0; i < k - p1; i++) model.push(next + i);
      next += k - p1;
    }

    const avail = reader.available();
    eq(avail, model.length, 'available');
    const m = Math.min(s.pop, avail);
    for (let i = 0; i < m; i++) {
      const b = reader.slotByte(i);
      const expected = model[i]!;
      eq(rv.u32[(b + SEQ_OFF_BYTE) >> 2], expected, `slot ${i} seq`);
      eq(rv.f64[(b + TAG_OFF_BYTE) >> 3], expected * 3.5, `slot ${i} f64`);
    }
    const r1 = Math.floor(m * s.releaseSplit);
    reader.release(r1);
    reader.release(m - r1);
    model.splice(0, m);
    popped += m;

    // capacity invariant and counters, every step
    const st = ringStats(sab);
    eq(st.occupancy, model.length, 'occupancy');
    if (st.occupancy < 0 || st.occupancy > slotCount) throw new Error(`occupancy ${st.occupancy} outside 0..${slotCount}`);
    eq(writer.freeSlots, slotCount - model.length, 'free slots');
    eq(reader.available(), model.length, 'available after release');
    eq(st.published, start.counter + next, 'published counter');
    eq(st.released, start.counter + popped, 'released counter');
    eq(st.published - st.released, st.occupancy, 'published - released');
    eq(Atomics.load(ctrl, WRITE_SEQ_I32), (start.seq + next) | 0, 'write sequence word');
    eq(Atomics.load(ctrl, READ_SEQ_I32), (start.seq + popped) | 0, 'read sequence word');
  }
  return { pushed: next };
}

const START_SEQS = [
  0,
  0x7fffff00, // 256 below 2^31: the int32 sign flip
  0x7fffffff,
  -200, // 200 below 2^32 (as int32): unsigned wrap to 0
  0xffffff00 | 0,
  -0x80000000,
] as const;

describe('ring FIFO model (fast-check)', () => {
  for (const seq of START_SEQS) {
    test(`any claim/publish/release schedule is a FIFO, start sequence ${seq} (0x${(seq >>> 0).toString(16)})`, () => {
      fc.assert(
        fc.property(
          fc.constantFrom(2, 4, 8, 64),
          fc.constantFrom(0, 0xffffff00, 0xfffffff0 * 3),
          fc.array(step, { maxLength: 120 }),
          (slotCount, counter, steps) => { runSchedule(slotCount, { seq, counter }, steps); },
        ),
        { numRuns: 300 },
      );
    });
  }

  test('random start sequences anywhere in the int32 range', () => {
    fc.assert(
      fc.property(fc.integer({ min: -0x80000000, max: 0x7fffffff }), fc.array(step, { maxLength: 60 }), (seq, steps) => {
        runSchedule(16, { seq, counter: 0 }, steps);
      }),
      { numRuns: 500 },
    );
  });

  test('the schedules really cross 2^31 and 2^32 (wrap regression: ring-wrap-at-2^31)', () => {
    // Deterministic pushes of 3 slots at a time through an 8-slot ring, far enough to cross each boundary.
    const steps: Step[] = Array.from({ length: 400 }, () => ({ claim: 3, publishPart: 1, publishRest: false, pop: 3, releaseSplit: 0.5 }));
    for (const seq of [0x7fffff00, 0xffffff00 | 0]) {
      const { pushed } = runSchedule(8, { seq, counter: 0xffffff00 }, steps);
      expect(pushed).toBe(1200);
      // the sequence word changed sign (2^31) or passed zero (2^32) during the run
      const end = (seq + pushed) | 0;
      expect(Math.sign(end)).not.toBe(Math.sign(seq));
    }
  });

  test('64-bit counters: a carry left half done (odd HI word) is decoded from LO and repaired by the next owner', () => {
    for (const [loWord, expected] of [[5, 3 * 4294967296 + 5], [0xfffffff0 | 0, 2 * 4294967296 + 0xfffffff0]] as const) {
      const sab = createRingAtSeq({ slotCount: 8, slotBytes: 16 }, 0);
      const ctrl = new Int32Array(sab, 0, CTRL_I32);
      // owner died between "HI = 2H+1" and "HI = 2H+2" (H = 2): LO tells whether the wrapped value landed
      ctrl[PUBLISHED_HI_I32] = 2 * 2 + 1; ctrl[PUBLISHED_LO_I32] = loWord;
      ctrl[RELEASED_HI_I32] = 2 * 2 + 1; ctrl[RELEASED_LO_I32] = loWord;
      expect(ringStats(sab).published).toBe(expected);
      expect(ringStats(sab).released).toBe(expected);
      const w = RingWriter.attach(sab);
      const r = RingReader.attach(sab);
      expect(ctrl[PUBLISHED_HI_I32]! & 1).toBe(0); // repaired
      expect(ctrl[RELEASED_HI_I32]! & 1).toBe(0);
      w.publish(w.claim(3));
      r.available(); r.release(3);
      expect(ringStats(sab)).toMatchObject({ published: expected + 3, released: expected + 3 });
    }
  });
});
