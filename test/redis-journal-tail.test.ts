/**
 * JournalTail: the Redis sink's read-only, incremental reader of journal files that the validator is
 * still writing. Real journal files written by engine/journal's Journal; then a tail in motion (a block
 * half written), a corrupt block in the middle (reported once as ENGINE_ERR_JOURNAL and skipped), a
 * file deleted under the reader (its hour was compacted), and hours before `fromMicros` not read.
 */
import { appendFileSync, mkdtempSync, openSync, closeSync, readSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { EngineError } from '../engine/errors.ts';
import { HOUR_MICROS, hourFilePath, slotViewsOf } from '../engine/journal/format.ts';
import { Journal } from '../engine/journal/journal.ts';
import { RECORD_SLOT_BYTES } from '../schemas/records.ts';
import { JournalTail } from '../workers/redis-sink/journal-tail.ts';
import { writeTestRecord } from '../workers/redis-sink/testing.ts';

const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

const H0 = Date.UTC(2026, 0, 5, 10) * 1000;

async function writeJournal(dataDir: string, blocks: { hour: number; n: number }[]): Promise<number[]> {
  const j = Journal.open({ dataDir, commitIntervalMs: 0 });
  const v = slotViewsOf(new ArrayBuffer(RECORD_SLOT_BYTES));
  const seqs: number[] = [];
  let seq = 0;
  for (const blk of blocks) {
    for (let i = 0; i < blk.n; i++) {
      seq++;
      writeTestRecord(v, 0, { sourceId: 1, symbolId: 1, seq, tsMicros: H0 + blk.hour * HOUR_MICROS + seq * 10, price: 100, size: 1 });
      expect(j.append(v, 0)).toBeGreaterThan(0);
      seqs.push(seq);
    }
    j.flushSync(); // one block per entry
  }
  await j.close();
  return seqs;
}

function readAll(t: JournalTail): number[] {
  const out: number[] = [];
  for (let n = t.next(); n > 0; n = t.next()) {
    for (let k = 0; k < n; k++) out.push(t.views.u32[(t.byteOffset + k * RECORD_SLOT_BYTES + 4) >> 2]!);
  }
  return out;
}

describe('JournalTail', () => {
  it('reads whole blocks in hour order, continues with what is appended later, and leaves a block in motion for later', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tp-jt-'));
    dirs.push(dataDir);
    const seqs = await writeJournal(dataDir, [{ hour: 0, n: 100 }, { hour: 0, n: 50 }, { hour: 1, n: 70 }]);
    const t = new JournalTail({ dataDir, fromMicros: H0 });
    expect(readAll(t)).toEqual(seqs);
    expect(t.next()).toBe(0);
    // a block of hour 1 half written: not an error, not returned yet
    const path = hourFilePath(join(dataDir, 'journal'), H0 + HOUR_MICROS);
    const full = await (async () => {
      const d2 = mkdtempSync(join(tmpdir(), 'tp-jt2-'));
      dirs.push(d2);
      await writeJournal(d2, [{ hour: 1, n: 20 }]);
      const p2 = hourFilePath(join(d2, 'journal'), H0 + HOUR_MICROS);
      const buf = Buffer.alloc(statSync(p2).size);
      const fd = openSync(p2, 'r');
      readSync(fd, buf, 0, buf.length, 0);
      closeSync(fd);
      return buf.subarray(32); // one block (header + 20 records), without the file header
    })();
    appendFileSync(path, full.subarray(0, 100));
    expect(t.next()).toBe(0);
    expect(t.corruptBlocks).toBe(0);
    appendFileSync(path, full.subarray(100));
    expect(readAll(t)).toHaveLength(20);
    // hours before fromMicros are not read
    expect(readAll(new JournalTail({ dataDir, fromMicros: H0 + HOUR_MICROS + 5 }))).toHaveLength(90);
  });

  it('reports a corrupt block with valid blocks after it once (ENGINE_ERR_JOURNAL) and skips it; a deleted file is dropped', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tp-jt-'));
    dirs.push(dataDir);
    const seqs = await writeJournal(dataDir, [{ hour: 0, n: 30 }, { hour: 0, n: 40 }, { hour: 0, n: 50 }, { hour: 1, n: 10 }]);
    const path = hourFilePath(join(dataDir, 'journal'), H0);
    // flip a payload byte of the second block: file header 32, block 1 = 16 + 30·64
    const at = 32 + 16 + 30 * 64 + 16 + 100;
    const fd = openSync(path, 'r+');
    const b = Buffer.alloc(1);
    readSync(fd, b, 0, 1, at);
    b[0] = b[0]! ^ 0xff;
    writeSync(fd, b, 0, 1, at);
    closeSync(fd);
    const errors: EngineError[] = [];
    const t = new JournalTail({ dataDir, fromMicros: H0, corruptAfterMs: 0, onCorrupt: (e) => errors.push(e) });
    const got: number[] = [];
    for (let pass = 0; pass < 4; pass++) { got.push(...readAll(t)); t.rewind(); }
    expect(got.sort((x, y) => x - y)).toEqual(seqs.filter((s) => s <= 30 || s > 70));
    expect(errors).toHaveLength(1);
    expect(errors[0]!.code).toBe('ENGINE_ERR_JOURNAL');
    expect(errors[0]!.message).toContain(path);
    expect(t.skippedRecords).toBe(40);
    rmSync(hourFilePath(join(dataDir, 'journal'), H0 + HOUR_MICROS));
    t.rewind();
    expect(t.next()).toBe(0); // the compacted hour's file is gone: no error
  });
});
