import { describe, expect, test } from 'vitest';
import { isEngineError } from '../errors.ts';
import { createRing, RingWriter } from '../ring/ring.ts';
import { IngestProgress } from './progress.ts';

function setup(files = 2): { ring: SharedArrayBuffer; sab: SharedArrayBuffer; w: RingWriter; p: IngestProgress } {
  const ring = createRing({ slotCount: 16, slotBytes: 64 });
  const sab = IngestProgress.create(files);
  return { ring, sab, w: RingWriter.attach(ring), p: IngestProgress.attach(sab, ring) };
}

describe('IngestProgress: a producer can die between any two steps', () => {
  test('death after begin, before publish: the batch did not happen', () => {
    const { ring, sab, w, p } = setup();
    p.seed(0, 10, 56 + 400, 1, 0);
    w.claim(4);
    p.begin(0, 14, 56 + 560, 99, 4);
    // (no publish: the worker died here)
    const again = IngestProgress.attach(sab, ring);
    expect(again.get(0)).toMatchObject({ recordIndex: 10, offset: 456, lastTsMicros: 1 });
  });

  test('death after publish, before commit: the batch happened', () => {
    const { ring, sab, w, p } = setup();
    p.seed(0, 10, 456, 1, 0);
    w.claim(4);
    p.begin(0, 14, 616, 99, 4);
    w.publish(4);
    const again = IngestProgress.attach(sab, ring);
    expect(again.get(0)).toMatchObject({ recordIndex: 14, offset: 616, lastTsMicros: 99, published: 4 });
  });

  test('normal begin/publish/commit, and a file switch is atomic', () => {
    const { ring, sab, w, p } = setup();
    w.claim(2); p.begin(1, 2, 104, 5, 2); w.publish(2); p.commit();
    expect(p.get(1)).toMatchObject({ recordIndex: 2, offset: 104, published: 2 });
    p.switchFile(1, 20251112);
    const again = IngestProgress.attach(sab, ring);
    expect(again.get(1)).toMatchObject({ recordIndex: 0, offset: 0, tag: 20251112, published: 2, lastTsMicros: 5 });
    expect(again.isSeeded(1)).toBe(true);
    expect(again.isSeeded(0)).toBe(false);
  });

  test('bad buffers and slots give coded errors', () => {
    const { ring, p } = setup();
    for (const bad of [new ArrayBuffer(64), new SharedArrayBuffer(8), new SharedArrayBuffer(1024), null]) {
      let err: unknown;
      try { IngestProgress.attach(bad, ring); } catch (e) { err = e; }
      expect(isEngineError(err, 'ENGINE_ERR_LAYOUT')).toBe(true);
    }
    expect(() => p.begin(2, 0, 0, 0, 0)).toThrow(/file slot/);
    expect(() => IngestProgress.create(0)).toThrow(/1\.\.4096/);
  });
});
