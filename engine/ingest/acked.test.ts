import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { loadCheckpoint } from '../checkpoint.ts';
import { RingReader, RingWriter, createRing, createRingAtSeq } from '../ring/ring.ts';
import { SierraIngest } from '../../workers/sierra/ingest.ts';
import { ScidWriter } from '../../workers/sierra/scid-writer.ts';
import { AckedProgress } from './acked.ts';
import { IngestProgress } from './progress.ts';

function fp(recordIndex: number, tag = 0): { recordIndex: number; offset: number; lastTsMicros: number; tag: number; published: number } {
  return { recordIndex, offset: 56 + recordIndex * 40, lastTsMicros: recordIndex * 10, tag, published: recordIndex };
}

describe('AckedProgress: checkpoints follow what the consumer released', () => {
  test('a file is acked up to the last publish the consumer released, never beyond', () => {
    const ring = createRing({ slotCount: 16, slotBytes: 64 });
    const w = RingWriter.attach(ring);
    const r = RingReader.attach(ring);
    const a = new AckedProgress(ring, 2);
    a.set(0, fp(0));
    a.set(1, fp(100));
    const publish = (n: number, slot: number, idx: number): void => { w.claim(n); w.publish(n); a.record(slot, fp(idx)); };
    publish(4, 0, 4);
    publish(2, 1, 102);
    publish(3, 0, 7);
    a.advance();
    expect([a.get(0).recordIndex, a.get(1).recordIndex]).toEqual([0, 100]);
    expect(a.drained).toBe(false);
    r.available(); r.release(5); // inside the second publish: only the first is acked
    a.advance();
    expect([a.get(0).recordIndex, a.get(1).recordIndex]).toEqual([4, 100]);
    r.available(); r.release(1);
    a.advance();
    expect([a.get(0), a.get(1).recordIndex]).toEqual([{ recordIndex: 4, offset: 56 + 160, lastTsMicros: 40, tag: 0 }, 102]);
    r.available(); r.release(3);
    a.advance();
    expect(a.get(0).recordIndex).toBe(7);
    expect(a.drained).toBe(true);
  });

  test('a full FIFO skips entries (the checkpoint lags, never leads); sequences wrap', () => {
    const ring = createRingAtSeq({ slotCount: 8, slotBytes: 64 }, 0x7ffffffc);
    const w = RingWriter.attach(ring);
    const r = RingReader.attach(ring);
    const a = new AckedProgress(ring, 1, 2);
    a.set(0, fp(0));
    for (let i = 1; i <= 4; i++) { w.claim(1); w.publish(1); a.record(0, fp(i)); }
    expect(a.skipped).toBe(2);
    r.available(); r.release(4); // across the int32 wrap
    a.advance();
    expect(a.get(0).recordIndex).toBe(2); // the last recorded entry, not the newest publish
    expect(a.drained).toBe(true);
    w.claim(1); w.publish(1); a.record(0, fp(5));
    r.available(); r.release(1);
    a.advance();
    expect(a.get(0).recordIndex).toBe(5);
  });
});

describe('Sierra source with durableConsumer', () => {
  test('the checkpoint is the position the consumer released, never the one published', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tickpipe-acked-'));
    try {
      const path = join(dir, 'X.scid');
      const w = ScidWriter.open(path);
      const t0 = Date.UTC(2025, 11, 3, 15) * 1000;
      for (let i = 0; i < 50; i++) w.trade(t0 + i, 21000 + i * 0.25, 21000, 21100, 1, 1, 0, 1);
      await w.close();
      const ring = createRing({ slotCount: 64, slotBytes: 64 });
      const files = [{ kind: 'scid' as const, symbol: 'X', symbolId: 1, sourceId: 1, path }];
      const opts = { name: 'src', ring, progress: IngestProgress.create(1), files, dataDir: join(dir, 'data'), follow: false, pollMs: 5, maxChunkBytes: 56 + 10 * 40 };
      const ingest = new SierraIngest({ ...opts, durableConsumer: true }, { sourceError: () => undefined, warn: () => undefined });
      ingest.run(); // reads all 50 (publishes of ≤ 10 records); nothing released yet
      const key = Object.keys(loadCheckpoint(opts.dataDir, 'src').files)[0]!;
      expect(loadCheckpoint(opts.dataDir, 'src').files[key]!.recordIndex).toBe(0);
      const r = RingReader.attach(ring);
      r.available();
      r.release(25); // the consumer stored 25
      ingest.saveCheckpoint();
      const cp = loadCheckpoint(opts.dataDir, 'src').files[key]!;
      expect(cp.recordIndex).toBeLessThanOrEqual(25);
      expect(cp.recordIndex).toBeGreaterThanOrEqual(20);
      expect(cp.offset).toBe(56 + cp.recordIndex * 40);
      r.available();
      r.release(25);
      ingest.saveCheckpoint();
      expect(loadCheckpoint(opts.dataDir, 'src').files[key]!.recordIndex).toBe(50);
      // without durableConsumer the published position is saved at once
      const ring2 = createRing({ slotCount: 64, slotBytes: 64 });
      const plain = new SierraIngest({ ...opts, name: 'plain', ring: ring2, progress: IngestProgress.create(1) }, { sourceError: () => undefined, warn: () => undefined });
      plain.run();
      expect(Object.values(loadCheckpoint(opts.dataDir, 'plain').files)[0]!.recordIndex).toBe(50);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
