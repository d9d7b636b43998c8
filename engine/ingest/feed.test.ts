import { describe, expect, test } from 'vitest';
import type { RecordListener } from '../../api/types.ts';
import { RingWriter, createRing, setRingState, type SlotViews } from '../ring/ring.ts';
import { RingState } from '../ring/layout.ts';
import { RecordKind, readSeq, writeTrade, writeGap, GapKind } from '../../schemas/records.ts';
import { FeedDrain } from './feed.ts';

const T0 = Date.UTC(2025, 11, 3, 15) * 1000;

function publish(w: RingWriter, n: number, from: number): void {
  const got = w.claim(n);
  for (let i = 0; i < got; i++) {
    if ((from + i) % 10 === 9) writeGap(w.views, w.slotByte(i), 1, 1, 0, T0, T0 + 1, GapKind.SEQUENCE, 1, 2, 0);
    else writeTrade(w.views, w.slotByte(i), RecordKind.TRADE, 1, 1 + ((from + i) % 2), from + i, T0 + from + i, 21000, NaN, NaN, 1, 0, 0, 0, 0, 1);
  }
  w.publish(got);
}

class Collect implements RecordListener {
  seqs: number[] = [];
  batches = 0;
  onRecord(v: SlotViews, b: number): void { this.seqs.push(readSeq(v, b)); }
  onBatchEnd(): void { this.batches++; }
}

describe('FeedDrain', () => {
  test('every listener gets every record in ring order; a throwing listener is dropped, the others go on; stop drains', async () => {
    const ring = createRing({ slotCount: 64, slotBytes: 64 });
    const w = RingWriter.attach(ring);
    const errors: unknown[] = [];
    const feed = new FeedDrain('feed', ring, (e) => errors.push(e));
    const a = new Collect();
    const b = new Collect();
    let calls = 0;
    const bad: RecordListener = { onRecord: () => { calls++; if (calls === 5) throw new Error('boom'); }, onBatchEnd: () => undefined };
    const offB = feed.subscribe(b);
    feed.subscribe(a);
    feed.subscribe(bad);
    expect(feed.listenerCount).toBe(3);
    feed.start();
    for (let i = 0; i < 200; i += 20) {
      while (w.freeSlots < 20) await new Promise((r) => setTimeout(r, 1));
      publish(w, 20, i);
      if (i === 100) offB();
    }
    setRingState(ring, RingState.STOPPED);
    await feed.stop();
    expect(a.seqs.length).toBe(200);
    expect(a.seqs.filter((_, i) => i % 10 !== 9)).toEqual([...Array(200).keys()].filter((i) => i % 10 !== 9));
    // unsubscribed midway: a prefix of the stream (how long depends on how far the drain had got)
    expect(b.seqs.length).toBeGreaterThanOrEqual(120 - 64);
    expect(b.seqs.length).toBeLessThan(200);
    expect(b.seqs).toEqual(a.seqs.slice(0, b.seqs.length));
    expect(calls).toBe(5);
    expect(errors.map((e) => (e as Error).message)).toEqual(['boom']);
    expect(feed.listenerCount).toBe(1);
    expect(feed.counters).toMatchObject({ records: 200, trades: 180, gaps: 20, listenerErrors: 1 });
    expect(feed.tradesBySymbol[1]! + feed.tradesBySymbol[2]!).toBe(180);
    expect(a.batches).toBeGreaterThan(0);
  });
});
