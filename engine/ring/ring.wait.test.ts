/** waitForMoreDataAsync: a consumer that holds slots it has looked at (unreleased) parks until data beyond them. */
import { describe, expect, test } from 'vitest';
import { RingState } from './layout.ts';
import { RingReader, RingWriter, createRing, setRingState } from './ring.ts';

function ring(): { w: RingWriter; r: RingReader; sab: SharedArrayBuffer } {
  const sab = createRing({ slotCount: 16, slotBytes: 64 });
  return { w: RingWriter.attach(sab), r: RingReader.attach(sab), sab };
}

describe('RingReader.waitForMoreDataAsync', () => {
  test('parks while nothing is published beyond the slots already looked at, and wakes on the next publish', async () => {
    const { w, r } = ring();
    expect(w.claim(3)).toBe(3);
    w.publish(3);
    expect(await r.waitForDataAsync(5)).toBe('changed'); // the plain wait sees the 3 unreleased slots at once
    expect(await r.waitForMoreDataAsync(2, 5)).toBe('changed'); // one slot not looked at yet
    expect(await r.waitForMoreDataAsync(3, 20)).toBe('timed-out'); // all 3 looked at: nothing new
    const woke = r.waitForMoreDataAsync(3, 5000);
    setTimeout(() => { w.claim(1); w.publish(1); }, 10);
    expect(await woke).toBe('changed');
    expect(r.available()).toBe(4);
    r.release(4);
    expect(await r.waitForMoreDataAsync(0, 20)).toBe('timed-out');
  });

  test('a stopped ring never parks; bad timeouts are coded errors', async () => {
    const { r, sab } = ring();
    setRingState(sab, RingState.STOPPED);
    expect(await r.waitForMoreDataAsync(0, 5000)).toBe('changed');
    await expect(r.waitForMoreDataAsync(0, -1)).rejects.toMatchObject({ code: 'ENGINE_ERR_INVALID_ARG' });
  });
});
