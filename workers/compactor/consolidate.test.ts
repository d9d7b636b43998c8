import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBConnection, DuckDBInstance, type DuckDBValue } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { isEngineError } from '../../engine/errors.ts';
import { consolidateDay } from './consolidate.ts';
import { CompactorDb } from './duck.ts';
import { sumFigures } from './figures.ts';
import { type HourWriteResult, writeHourParquet } from './hour-writer.ts';
import { isTmpName } from './layout.ts';
import { resolvePartitionFiles } from './partitions.ts';
import { makeTape } from './test-ticks.ts';

const DAY0 = Date.UTC(2025, 10, 11) * 1000; // 2025-11-11 00:00 UTC
const HOUR = 3_600_000_000;
let root: string;
let db: CompactorDb;
let readerInstance: DuckDBInstance;
let reader: DuckDBConnection;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'tickpipe-consolidate-'));
  db = await CompactorDb.open({ threads: 2 });
  readerInstance = await DuckDBInstance.create(':memory:', { autoinstall_known_extensions: 'false' });
  reader = await readerInstance.connect();
});

afterAll(async () => {
  await db.close();
  reader.closeSync();
  readerInstance.closeSync();
  rmSync(root, { recursive: true, force: true });
});

let n = 0;
const freshDir = (): string => {
  const d = join(root, `d${n++}`);
  mkdirSync(d);
  return d;
};

async function rows(sql: string): Promise<DuckDBValue[][]> {
  return (await reader.runAndReadAll(sql)).getRows();
}

const TICKS_DIR = (dataDir: string): string => join(dataDir, 'ticks', 'symbol=MNQZ25', 'date=2025-11-11');
const BARS_DIR = (dataDir: string): string => join(dataDir, 'bars', 'interval=1m', 'symbol=MNQZ25', 'date=2025-11-11');

/** Write `hours` hour files of MNQZ25 on 2025-11-11 (sizes vary; hour 3 is empty). */
async function writeHours(dataDir: string, hours: readonly number[]): Promise<HourWriteResult[]> {
  const out: HourWriteResult[] = [];
  for (const h of hours) {
    const count = h === 3 ? 0 : 300 + h * 37;
    const start = DAY0 + h * HOUR;
    out.push(await writeHourParquet({ dataDir, symbol: 'MNQZ25', hourStartMicros: start, columns: makeTape(count, start, 1000 + h), count, source: 'sierra', db }));
  }
  return out;
}

describe('consolidateDay', () => {
  test('merges 24 hours into a verified, sorted day file (ticks and bars), then removes the hours; a rerun is a no-op', async () => {
    const dataDir = freshDir();
    const hours = Array.from({ length: 24 }, (_, h) => h);
    const written = await writeHours(dataDir, hours);
    const hourRows = await rows(`SELECT * FROM read_parquet('${TICKS_DIR(dataDir)}/hour=*.parquet', hive_partitioning = false) ORDER BY ts, seq`);

    const res = await consolidateDay(dataDir, 'MNQZ25', '2025-11-11', { db });
    const expected = sumFigures(written);
    expect(res.ticks).toMatchObject({ state: 'consolidated', path: join(TICKS_DIR(dataDir), 'day.parquet'), hoursMerged: 24, hoursRemoved: 24 });
    expect(res.ticks.figures).toEqual(expected);
    expect(readdirSync(TICKS_DIR(dataDir))).toEqual(['day.parquet']);
    expect(readdirSync(BARS_DIR(dataDir))).toEqual(['day.parquet']);
    expect(res.bars.figures?.rows).toBe(written.reduce((a, w) => a + w.bars.rows, 0));

    // the day file holds exactly the hours' rows, in file order (ts, seq), with the contract columns only
    const dayRows = await rows(`SELECT * FROM read_parquet('${res.ticks.path}', hive_partitioning = false)`);
    expect(dayRows).toEqual(hourRows);
    const cols = await rows(`DESCRIBE SELECT * FROM read_parquet('${res.ticks.path}', hive_partitioning = false)`);
    expect(cols.map((r) => r[0])).toEqual(['ts', 'ts_ms', 'price', 'size', 'bid', 'ask', 'side', 'source', 'seq', 'flags', 'src_index']);
    expect(await rows(`SELECT DISTINCT compression FROM parquet_metadata('${res.ticks.path}')`)).toEqual([['ZSTD']]);

    // readers: the glob and the resolver both see every row once
    expect(Number((await rows(`SELECT count(*) FROM read_parquet('${dataDir}/ticks/symbol=*/date=*/*.parquet')`))[0]?.[0])).toBe(expected.rows);
    expect(await resolvePartitionFiles(dataDir, 'ticks', 'MNQZ25')).toEqual([res.ticks.path]);

    const again = await consolidateDay(dataDir, 'MNQZ25', '2025-11-11', { db });
    expect(again.ticks).toMatchObject({ state: 'already', hoursMerged: 0, hoursRemoved: 0, figures: expected });
    expect(again.bars.state).toBe('already');
  });

  test('crash after the day file, before the hours are removed: readers use the day file, the rerun finishes', async () => {
    const dataDir = freshDir();
    const written = await writeHours(dataDir, [0, 1, 2, 5, 9]);
    const total = sumFigures(written).rows;
    let caught: unknown;
    try {
      await consolidateDay(dataDir, 'MNQZ25', '2025-11-11', {
        db, testHooks: { afterDayFile: () => { throw new Error('simulated crash'); } },
      });
    } catch (e) {
      caught = e;
    }
    expect((caught as Error).message).toBe('simulated crash');
    expect(readdirSync(TICKS_DIR(dataDir)).sort()).toEqual(['day.parquet', 'hour=00.parquet', 'hour=01.parquet', 'hour=02.parquet', 'hour=05.parquet', 'hour=09.parquet']);
    // A plain glob would double count here (documented); the resolver does not.
    expect(Number((await rows(`SELECT count(*) FROM read_parquet('${dataDir}/ticks/symbol=*/date=*/*.parquet')`))[0]?.[0])).toBe(2 * total);
    const files = await resolvePartitionFiles(dataDir, 'ticks', 'MNQZ25');
    expect(files).toEqual([join(TICKS_DIR(dataDir), 'day.parquet')]);
    expect(Number((await rows(`SELECT count(*) FROM read_parquet(['${files.join("','")}'])`))[0]?.[0])).toBe(total);

    // one hour already removed before the crash: still fine
    rmSync(join(TICKS_DIR(dataDir), 'hour=01.parquet'));
    const res = await consolidateDay(dataDir, 'MNQZ25', '2025-11-11', { db });
    expect(res.ticks).toMatchObject({ state: 'recovered', hoursRemoved: 4 });
    expect(res.ticks.figures?.rows).toBe(total);
    expect(res.bars.state).toBe('consolidated'); // the crash came before the bars step
    expect(readdirSync(TICKS_DIR(dataDir))).toEqual(['day.parquet']);
  });

  test('a leftover hour that disagrees with the day file stops the run (ENGINE_ERR_COMPACT) and removes nothing', async () => {
    const dataDir = freshDir();
    await writeHours(dataDir, [0, 1]);
    await consolidateDay(dataDir, 'MNQZ25', '2025-11-11', { db });
    // put back a *different* hour 1 file behind the day file's back
    const other = freshDir();
    const [w] = await writeHours(other, [1]);
    // a valid hour-1 file whose rows are not the ones in the day file
    await reader.run(`COPY (SELECT * FROM read_parquet('${w?.path}', hive_partitioning = false) LIMIT 10) TO '${join(TICKS_DIR(dataDir), 'hour=01.parquet')}' (FORMAT parquet)`);
    let caught: unknown;
    try {
      await consolidateDay(dataDir, 'MNQZ25', '2025-11-11', { db });
    } catch (e) {
      caught = e;
    }
    expect(isEngineError(caught, 'ENGINE_ERR_COMPACT')).toBe(true);
    expect((caught as { detail: Record<string, unknown> }).detail.reason).toBe('day-hour-conflict');
    expect(readdirSync(TICKS_DIR(dataDir)).sort()).toEqual(['day.parquet', 'hour=01.parquet']);
  });

  test('a corrupt hour file is a coded DuckDB failure: no day file, no temp file, hours kept', async () => {
    const dataDir = freshDir();
    await writeHours(dataDir, [4, 6]);
    writeFileSync(join(TICKS_DIR(dataDir), 'hour=05.parquet'), 'PAR1 this is not parquet PAR1');
    let caught: unknown;
    try {
      await consolidateDay(dataDir, 'MNQZ25', '2025-11-11', { db });
    } catch (e) {
      caught = e;
    }
    expect(isEngineError(caught, 'ENGINE_ERR_COMPACT')).toBe(true);
    expect((caught as Error).message).toContain('hour=05.parquet');
    const names = readdirSync(TICKS_DIR(dataDir)).sort();
    expect(names).toEqual(['hour=04.parquet', 'hour=05.parquet', 'hour=06.parquet']);
    expect(names.filter(isTmpName)).toEqual([]);
  });

  test('a date with no files is empty; bad dates are ENGINE_ERR_INVALID_ARG', async () => {
    const dataDir = freshDir();
    const res = await consolidateDay(dataDir, 'MNQZ25', '2025-11-12', { db });
    expect(res.ticks).toMatchObject({ state: 'empty', path: null });
    expect(res.bars.state).toBe('empty');
    for (const bad of ['2025-13-01', '2025-02-30', '20251111', '']) {
      let caught: unknown;
      try {
        await consolidateDay(dataDir, 'MNQZ25', bad, { db });
      } catch (e) {
        caught = e;
      }
      expect(isEngineError(caught, 'ENGINE_ERR_INVALID_ARG')).toBe(true);
    }
  });

  test('works without a session argument (opens and closes its own)', async () => {
    const dataDir = freshDir();
    await writeHours(dataDir, [7]);
    const res = await consolidateDay(dataDir, 'MNQZ25', '2025-11-11');
    expect(res.ticks.state).toBe('consolidated');
  });
});
