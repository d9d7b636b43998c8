import { copyFileSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { consolidateDay } from '../../workers/compactor/consolidate.ts';
import { CompactorDb } from '../../workers/compactor/duck.ts';
import { writeHourParquet } from '../../workers/compactor/hour-writer.ts';
import { partitionDir, PARQUET_COPY_OPTIONS, readParquetSql, sqlString } from '../../workers/compactor/layout.ts';
import { makeTape } from '../../workers/compactor/test-ticks.ts';
import { verifyDataDir, type VerifyProblem } from '../../workers/compactor/verify.ts';
import { runVerify } from './verify.ts';

const H = 3_600_000_000;
const D = Date.UTC(2025, 10, 11) * 1000;
const root = mkdtempSync(join(tmpdir(), 'tp-verify-'));
let db: CompactorDb;
beforeAll(async () => { db = await CompactorDb.open({ threads: 1 }); });
afterAll(async () => {
  await db.close();
  rmSync(root, { recursive: true, force: true });
});
let n = 0;

/** A clean data dir: MNQZ25 hours 13 and 14 of D, ESZ25 a consolidated day D-1 (3 hours). */
async function cleanDir(): Promise<string> {
  const dataDir = join(root, `v${n++}`);
  for (const h of [13, 14]) {
    await writeHourParquet({ dataDir, symbol: 'MNQZ25', hourStartMicros: D + h * H, columns: makeTape(3000, D + h * H, h), count: 3000, source: 'sierra', db });
  }
  for (const h of [1, 2, 3]) {
    await writeHourParquet({ dataDir, symbol: 'ESZ25', hourStartMicros: D - 24 * H + h * H, columns: makeTape(2000, D - 24 * H + h * H, 50 + h), count: 2000, source: 'sierra', db });
  }
  await consolidateDay(dataDir, 'ESZ25', '2025-11-10', { db });
  return dataDir;
}

const run = (sql: string): Promise<void> => db.exclusive(async (c) => { await c.run(sql); });
const summary = (ps: VerifyProblem[]): string[] => ps.map((p) => `${p.severity} ${p.code} ${p.path.split('/').slice(-3).join('/')}`).sort();

describe('tickpipe verify', () => {
  test('a clean data dir (hour files, a consolidated day) has no problems', async () => {
    const dataDir = await cleanDir();
    const r = await verifyDataDir(dataDir, { db });
    expect(r.problems).toEqual([]);
    expect(r.files).toBe(4 + 2); // 2 tick + 2 bar hour files, 1 tick + 1 bar day file
    expect(r.rows).toBe(2 * 3000 + 3 * 2000);
    const lines: string[] = [];
    const rep = await runVerify(dataDir, (l) => lines.push(l));
    expect(rep.errors).toBe(0);
    expect(lines).toEqual(['verify: 6 file(s), 12000 tick row(s), 0 error(s), 0 warning(s)']);
  });

  test('detects an unsorted file, rows outside their hour, duplicate rows, a conflicting hour beside a day file, bad names, an unreadable file and bars that do not match', async () => {
    const dataDir = await cleanDir();
    const mnq = partitionDir(dataDir, 'ticks', 'MNQZ25', '2025-11-11');
    const h13 = join(mnq, 'hour=13.parquet');
    const h14 = join(mnq, 'hour=14.parquet');
    // unsorted: hour 13 rewritten in descending time order (same rows: bars still match)
    await run(`COPY (SELECT * FROM ${readParquetSql(h13)} ORDER BY ts DESC) TO ${sqlString(`${h13}.x`)} (${PARQUET_COPY_OPTIONS})`);
    renameSync(`${h13}.x`, h13);
    // duplicate rows: hour 14 with its first 10 rows twice
    await run(`COPY (SELECT * FROM (SELECT * FROM ${readParquetSql(h14)} UNION ALL (SELECT * FROM ${readParquetSql(h14)} ORDER BY ts LIMIT 10)) ORDER BY ts, seq) TO ${sqlString(`${h14}.x`)} (${PARQUET_COPY_OPTIONS})`);
    renameSync(`${h14}.x`, h14);
    // rows outside the partition: hour 14's file copied as hour 05 (ticks and bars)
    copyFileSync(join(mnq, 'hour=14.parquet'), join(mnq, 'hour=05.parquet'));
    copyFileSync(join(partitionDir(dataDir, 'bars', 'MNQZ25', '2025-11-11'), 'hour=14.parquet'), join(partitionDir(dataDir, 'bars', 'MNQZ25', '2025-11-11'), 'hour=05.parquet'));
    // an hour file beside ESZ25's day file that differs from the day's rows for that hour
    const es = partitionDir(dataDir, 'ticks', 'ESZ25', '2025-11-10');
    await writeHourParquet({ dataDir: join(root, 'scratch'), symbol: 'ESZ25', hourStartMicros: D - 24 * H + 2 * H, columns: makeTape(500, D - 24 * H + 2 * H, 999), count: 500, source: 'sierra', db });
    copyFileSync(join(partitionDir(join(root, 'scratch'), 'ticks', 'ESZ25', '2025-11-10'), 'hour=02.parquet'), join(es, 'hour=02.parquet'));
    // bad names and an unreadable file
    mkdirSync(join(dataDir, 'ticks', 'symbol=MNQZ25', 'date=2025-13-45'));
    writeFileSync(join(mnq, 'notes.txt'), 'hello');
    mkdirSync(partitionDir(dataDir, 'ticks', 'NQZ25', '2025-11-11'), { recursive: true });
    writeFileSync(join(partitionDir(dataDir, 'ticks', 'NQZ25', '2025-11-11'), 'hour=03.parquet'), 'PAR1 garbage, not parquet');

    const r = await verifyDataDir(dataDir, { db });
    expect(summary(r.problems)).toEqual([
      'error bad-partition symbol=MNQZ25/date=2025-11-11/notes.txt',
      'error bad-partition ticks/symbol=MNQZ25/date=2025-13-45',
      'error bars-mismatch symbol=MNQZ25/date=2025-11-11/hour=05.parquet', // bars of the copied hour miss the duplicated trades too
      'error bars-mismatch symbol=MNQZ25/date=2025-11-11/hour=14.parquet', // bars of hour 14 miss the duplicated trades
      'error duplicate-rows symbol=MNQZ25/date=2025-11-11/hour=05.parquet',
      'error duplicate-rows symbol=MNQZ25/date=2025-11-11/hour=14.parquet',
      'error hour-beside-day symbol=ESZ25/date=2025-11-10/hour=02.parquet',
      'error ts-outside-partition symbol=MNQZ25/date=2025-11-11/hour=05.parquet',
      'error ts-outside-partition symbol=MNQZ25/date=2025-11-11/hour=05.parquet', // the bars file too
      'error unreadable symbol=NQZ25/date=2025-11-11/hour=03.parquet',
      'error unsorted symbol=MNQZ25/date=2025-11-11/hour=13.parquet',
    ]);
    const lines: string[] = [];
    const rep = await runVerify(dataDir, (l) => lines.push(l));
    expect(rep.errors).toBe(11);
    expect(lines.at(-1)).toBe(`verify: ${rep.files} file(s), ${rep.rows} tick row(s), 11 error(s), 0 warning(s)`);
    expect(lines.some((l) => l.startsWith('error unsorted ') && l.includes('out of (ts, seq) order'))).toBe(true);
  });

  test('an hour file beside the day file that holds the same rows (interrupted consolidation) is only a warning', async () => {
    const dataDir = await cleanDir();
    const scratch = join(root, `s${n++}`);
    await writeHourParquet({ dataDir: scratch, symbol: 'ESZ25', hourStartMicros: D - 24 * H + 1 * H, columns: makeTape(2000, D - 24 * H + 1 * H, 51), count: 2000, source: 'sierra', db });
    copyFileSync(join(partitionDir(scratch, 'ticks', 'ESZ25', '2025-11-10'), 'hour=01.parquet'), join(partitionDir(dataDir, 'ticks', 'ESZ25', '2025-11-10'), 'hour=01.parquet'));
    const r = await verifyDataDir(dataDir, { db });
    expect(summary(r.problems)).toEqual(['warning hour-beside-day symbol=ESZ25/date=2025-11-10/hour=01.parquet']);
    expect(r.errors).toBe(0);
  });
});
