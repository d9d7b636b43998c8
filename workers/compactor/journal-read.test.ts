import { appendFileSync, copyFileSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { isEngineError } from '../../engine/errors.ts';
import { hourFilePath } from '../../engine/journal/format.ts';
import { SYMBOLS, writeJournalHours } from './fixtures/journal-ticks.ts';
import { forEachJournalBlock, readJournalHour, splitJournalHourFile, splitTicksBySymbol } from './journal-read.ts';

const H = 3_600_000_000;
const h = Date.UTC(2025, 10, 11, 7) * 1000;
const root = mkdtempSync(join(tmpdir(), 'tp-jread-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A real journal hour file (2 symbols × 1500 ticks + 3 depth records, several blocks). */
function journalFile(name: string): string {
  const dataDir = join(root, name);
  writeJournalHours(dataDir, [h], 1500);
  return hourFilePath(join(dataDir, 'journal'), h);
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return isEngineError(e) ? `${e.code} ${String(e.detail.byteOffset ?? '')}` : `uncoded ${String(e)}`;
  }
  return 'ok';
}

describe('readJournalHour (read-only, for the compactor)', () => {
  test('reads every whole block; splits ticks by symbol in append order; other kinds are counted', () => {
    const p = journalFile('ok');
    const r = readJournalHour(p, h);
    expect(r.records).toBe(3003);
    expect(r.tailBytes).toBe(0);
    expect(r.blockOffsets.length).toBeGreaterThan(1);
    const s = splitTicksBySymbol(r);
    expect(s.tickRecords).toBe(3000);
    expect(s.otherRecords).toBe(3);
    expect(s.bySymbol.map((x) => [SYMBOLS[x.symbolId], x.count, x.sourceIds])).toEqual([['MNQZ25', 1500, [4]], ['ESZ25', 1500, [4]]]);
    const mnq = s.bySymbol[0]!;
    for (let i = 1; i < mnq.count; i++) expect(mnq.columns.tsMicros[i]! > mnq.columns.tsMicros[i - 1]!).toBe(true);
    expect(Array.from(mnq.columns.srcIndex!.subarray(0, 3))).toEqual([0, 1, 2]);
  });

  test('a torn tail (a commit cut short) is left unread, never an error: the journal count guards the delete', () => {
    const p = journalFile('torn');
    const full = statSync(p).size;
    truncateSync(p, full - 100);
    const r = readJournalHour(p, h);
    expect(r.records).toBeLessThan(3003);
    expect(r.tailBytes).toBeGreaterThan(0);
    expect(r.validBytes + r.tailBytes).toBe(full - 100);
    appendFileSync(p, Buffer.alloc(7, 0xee)); // garbage after it: still a tail
    expect(readJournalHour(p, h).records).toBe(r.records);
  });

  test('corruption (a bad block with a valid block after it), a foreign hour, a missing file and a torn header', () => {
    const p = journalFile('bad');
    const copy = join(root, 'bad-copy.tpj');
    copyFileSync(p, copy);
    const fd = openSync(p, 'r+');
    writeSync(fd, Buffer.from([0xde, 0xad]), 0, 2, 32 + 16 + 5); // a payload byte of the first block
    closeSync(fd);
    expect(codeOf(() => readJournalHour(p, h))).toBe('ENGINE_ERR_JOURNAL 32');
    expect(codeOf(() => readJournalHour(copy, h + H))).toBe('ENGINE_ERR_JOURNAL 0');
    expect(codeOf(() => readJournalHour(join(root, 'nope.tpj'), h))).toBe('ENGINE_ERR_FILE_IO ');
    const short = join(root, 'short.tpj');
    writeFileSync(short, readFileSync(copy).subarray(0, 20));
    expect(readJournalHour(short, h).records).toBe(0);
    writeFileSync(short, Buffer.alloc(0));
    expect(readJournalHour(short, h).records).toBe(0);
  });

  test('forEachJournalBlock (async, chunked, for the main thread) sees exactly what readJournalHour sees', async () => {
    const p = journalFile('async');
    const sums = async (path: string, chunk: number): Promise<[number, number, number]> => {
      let n = 0, seqSum = 0;
      const r = await forEachJournalBlock(path, h, (v, off, count) => {
        for (let i = 0; i < count; i++) { n++; seqSum += v.u32[((off + i * 64) >> 2) + 1] as number; }
      }, chunk);
      expect(r.records).toBe(n);
      return [n, seqSum, r.tailBytes];
    };
    const whole = readJournalHour(p, h);
    let seqSum = 0;
    for (let k = 0; k < whole.blockOffsets.length; k++) {
      for (let i = 0; i < whole.blockCounts[k]!; i++) seqSum += whole.views.u32[((whole.blockOffsets[k]! + i * 64) >> 2) + 1]!;
    }
    for (const chunk of [4096, 1 << 20]) expect(await sums(p, chunk)).toEqual([3003, seqSum, 0]);
    truncateSync(p, statSync(p).size - 100);
    const torn = readJournalHour(p, h);
    expect((await sums(p, 4096))[0]).toBe(torn.records);
    expect((await sums(p, 4096))[2]).toBe(torn.tailBytes);
    const bad = journalFile('async-bad');
    const fd = openSync(bad, 'r+');
    writeSync(fd, Buffer.from([0xde, 0xad]), 0, 2, 32 + 16 + 5);
    closeSync(fd);
    await expect(forEachJournalBlock(bad, h, () => undefined, 4096)).rejects.toMatchObject({ code: 'ENGINE_ERR_JOURNAL', detail: { byteOffset: 32 } });
    await expect(forEachJournalBlock(join(root, 'none.tpj'), h, () => undefined)).rejects.toMatchObject({ code: 'ENGINE_ERR_FILE_IO' });
  });

  test('splitJournalHourFile (two chunked passes, bounded memory) gives the same columns as a whole-file read', () => {
    const p = journalFile('chunked');
    const cmp = (chunk: number): void => {
      const a = splitTicksBySymbol(readJournalHour(p, h));
      const b = splitJournalHourFile(p, h, chunk);
      expect([b.records, b.tickRecords, b.otherRecords]).toEqual([readJournalHour(p, h).records, a.tickRecords, a.otherRecords]);
      expect(b.bySymbol.map((x) => [x.symbolId, x.count, x.sourceIds])).toEqual(a.bySymbol.map((x) => [x.symbolId, x.count, x.sourceIds]));
      for (let i = 0; i < a.bySymbol.length; i++) {
        for (const k of ['tsMicros', 'price', 'bid', 'ask', 'size', 'flags', 'seq', 'sourceId', 'srcIndex'] as const) {
          expect(Array.from(b.bySymbol[i]!.columns[k]!)).toEqual(Array.from(a.bySymbol[i]!.columns[k]!));
        }
      }
    };
    cmp(4096); // blocks larger than the chunk: the buffer grows
    cmp(1 << 20);
    truncateSync(p, statSync(p).size - 1000);
    cmp(4096);
    expect(splitJournalHourFile(p, h, 4096).tailBytes).toBe(readJournalHour(p, h).tailBytes);
    const bad = journalFile('chunked-bad');
    const fd = openSync(bad, 'r+');
    writeSync(fd, Buffer.from([0xde, 0xad]), 0, 2, 32 + 16 + 5);
    closeSync(fd);
    expect(codeOf(() => splitJournalHourFile(bad, h, 4096))).toBe('ENGINE_ERR_JOURNAL 32');
  });
});
