import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { isEngineError } from '../../engine/errors.ts';
import { CompactorDb } from './duck.ts';
import { writeHourParquet } from './hour-writer.ts';
import { defaultCutoffDate, purgeOlderThan, resolvePartitionFiles } from './partitions.ts';
import { makeTape } from './test-ticks.ts';

let root: string;
let db: CompactorDb;
beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'tickpipe-purge-'));
  db = await CompactorDb.open({ threads: 1 });
});
afterAll(async () => {
  await db.close();
  rmSync(root, { recursive: true, force: true });
});

let k = 0;
const freshDir = (): string => {
  const d = join(root, `d${k++}`);
  mkdirSync(d);
  return d;
};

/** Real hour files for (symbol, date, hour) triples. */
async function seed(dataDir: string, parts: [string, string, number][]): Promise<void> {
  for (const [symbol, date, hour] of parts) {
    const start = Date.parse(`${date}T00:00:00Z`) * 1000 + hour * 3_600_000_000;
    await writeHourParquet({ dataDir, symbol, hourStartMicros: start, columns: makeTape(50, start, hour + 1), count: 50, source: 'sierra', db });
  }
}

describe('purgeOlderThan', () => {
  test('removes tick and bar partitions dated before the cutoff, keeps the cutoff date and later', async () => {
    const dataDir = freshDir();
    await seed(dataDir, [
      ['MNQZ25', '2024-11-10', 13], ['MNQZ25', '2024-11-11', 13], ['MNQZ25', '2024-11-12', 0], ['MNQZ25', '2025-11-11', 14],
      ['ESZ25', '2024-01-05', 20], ['ESZ25', '2025-06-01', 1],
    ]);
    const res = await purgeOlderThan(dataDir, '2024-11-11');
    expect(res.cutoffDate).toBe('2024-11-11');
    expect(res.removed.map((p) => p.slice(dataDir.length)).sort()).toEqual([
      '/bars/interval=1m/symbol=ESZ25/date=2024-01-05',
      '/bars/interval=1m/symbol=MNQZ25/date=2024-11-10',
      '/ticks/symbol=ESZ25/date=2024-01-05',
      '/ticks/symbol=MNQZ25/date=2024-11-10',
    ]);
    expect(readdirSync(join(dataDir, 'ticks', 'symbol=MNQZ25'))).toEqual(['date=2024-11-11', 'date=2024-11-12', 'date=2025-11-11']);
    expect(readdirSync(join(dataDir, 'bars', 'interval=1m', 'symbol=MNQZ25'))).toEqual(['date=2024-11-11', 'date=2024-11-12', 'date=2025-11-11']);
    expect(readdirSync(join(dataDir, 'ticks', 'symbol=ESZ25'))).toEqual(['date=2025-06-01']);
    // a second run removes nothing
    expect((await purgeOlderThan(dataDir, new Date('2024-11-11T12:00:00Z'))).removed).toEqual([]);
  });

  test('default cutoff is 365 days before today (UTC); symbol directories left empty go too', async () => {
    expect(defaultCutoffDate(Date.parse('2025-11-11T23:59:00Z'))).toBe('2024-11-11');
    expect(defaultCutoffDate(Date.parse('2024-03-01T00:00:00Z'))).toBe('2023-03-02'); // across a leap day
    const dataDir = freshDir();
    await seed(dataDir, [['NQZ24', '2024-11-01', 5], ['NQZ25', '2025-11-10', 5]]);
    const res = await purgeOlderThan(dataDir, undefined, { nowMs: Date.parse('2025-11-11T08:00:00Z') });
    expect(res.cutoffDate).toBe('2024-11-11');
    expect(res.removed.length).toBe(2);
    expect(existsSync(join(dataDir, 'ticks', 'symbol=NQZ24'))).toBe(false);
    expect(readdirSync(join(dataDir, 'ticks'))).toEqual(['symbol=NQZ25']);
  });

  test('removes stale temporary files (crash leftovers) but not fresh ones or data files', async () => {
    const dataDir = freshDir();
    await seed(dataDir, [['MNQZ25', '2025-11-11', 14]]);
    const dir = join(dataDir, 'ticks', 'symbol=MNQZ25', 'date=2025-11-11');
    const stale = join(dir, '.hour=14.parquet.1-1-abc.tmp');
    const fresh = join(dir, '.hour=15.parquet.1-2-def.tmp');
    writeFileSync(stale, 'x');
    writeFileSync(fresh, 'y');
    const old = new Date(Date.now() - 2 * 3_600_000);
    utimesSync(stale, old, old);
    const res = await purgeOlderThan(dataDir, '2020-01-01');
    expect(res.removedTmp).toEqual([stale]);
    expect(readdirSync(dir).sort()).toEqual(['.hour=15.parquet.1-2-def.tmp', 'hour=14.parquet']);
  });

  test('an empty or missing data dir purges nothing; bad cutoffs and unreadable trees are coded errors', async () => {
    expect((await purgeOlderThan(join(root, 'nope'), '2025-01-01')).removed).toEqual([]);
    const codeOf = async (p: Promise<unknown>): Promise<string> => p.then(() => 'resolved', (e: unknown) => (isEngineError(e) ? e.code : 'uncoded'));
    expect(await codeOf(purgeOlderThan(root, '2025-1-1'))).toBe('ENGINE_ERR_INVALID_ARG');
    expect(await codeOf(purgeOlderThan(root, new Date(Number.NaN)))).toBe('ENGINE_ERR_INVALID_ARG');
    const dataDir = freshDir();
    writeFileSync(join(dataDir, 'ticks'), 'a file where a directory should be');
    expect(await codeOf(purgeOlderThan(dataDir, '2025-01-01'))).toBe('ENGINE_ERR_FILE_IO');
  });
});

describe('resolvePartitionFiles', () => {
  test('lists hour files per date in time order, prefers day.parquet, honours the date range', async () => {
    const dataDir = freshDir();
    await seed(dataDir, [['MNQZ25', '2025-11-10', 23], ['MNQZ25', '2025-11-11', 2], ['MNQZ25', '2025-11-11', 10], ['MNQZ25', '2025-11-12', 0]]);
    const t = (d: string, f: string): string => join(dataDir, 'ticks', 'symbol=MNQZ25', `date=${d}`, f);
    expect(await resolvePartitionFiles(dataDir, 'ticks', 'MNQZ25')).toEqual([
      t('2025-11-10', 'hour=23.parquet'), t('2025-11-11', 'hour=02.parquet'), t('2025-11-11', 'hour=10.parquet'), t('2025-11-12', 'hour=00.parquet'),
    ]);
    writeFileSync(t('2025-11-11', 'day.parquet'), 'stand-in');
    expect(await resolvePartitionFiles(dataDir, 'ticks', 'MNQZ25', { fromDate: '2025-11-11', toDate: '2025-11-11' })).toEqual([t('2025-11-11', 'day.parquet')]);
    expect((await resolvePartitionFiles(dataDir, 'bars', 'MNQZ25', { fromDate: '2025-11-12' })).map((p) => p.slice(dataDir.length))).toEqual([
      '/bars/interval=1m/symbol=MNQZ25/date=2025-11-12/hour=00.parquet',
    ]);
    expect(await resolvePartitionFiles(dataDir, 'ticks', 'UNKNOWN')).toEqual([]);
  });
});
