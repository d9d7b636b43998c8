import { closeSync, mkdirSync, mkdtempSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runBackfillFile } from '../../workers/compactor/backfill.ts';
import { CompactorDb } from '../../workers/compactor/duck.ts';
import { SYMBOLS, writeJournalHours } from '../../workers/compactor/fixtures/journal-ticks.ts';
import { hourFileName, PARQUET_COPY_OPTIONS, partitionDir, readParquetSql, sqlString } from '../../workers/compactor/layout.ts';
import { CompactorPool } from '../../workers/compactor/pool.ts';
import { CompactionService } from '../../workers/compactor/service.ts';
import { SimFiles } from '../../workers/sim/sim-files.ts';
import { hourFilePath } from '../journal/format.ts';
import { SpotChecker } from './spot-checker.ts';

const H = 3_600_000_000;
const D = Date.UTC(2025, 10, 11) * 1000;
const root = mkdtempSync(join(tmpdir(), 'tp-spot-'));
let db: CompactorDb;
beforeAll(async () => { db = await CompactorDb.open({ threads: 1 }); });
afterAll(async () => {
  await db.close();
  rmSync(root, { recursive: true, force: true });
});

function patch(file: string, i: number, at: number, bytes: Uint8Array): void {
  const fd = openSync(file, 'r+');
  writeSync(fd, bytes, 0, bytes.length, 56 + i * 40 + at);
  closeSync(fd);
}

describe('SpotChecker', () => {
  test('Sierra rows are re-read from the .scid record named by src_index; an altered record is reported field by field', async () => {
    const dir = join(root, 'scid');
    const scid = join(dir, 'sierra');
    const dataDir = join(dir, 'data');
    const sim = new SimFiles({ outDir: scid, startMicros: D + 13 * H + 57 * 60_000_000, symbols: ['MNQZ25', 'MESZ25'], seed: 3, ticksPerSecond: 8, depth: false, maxTrades: 1500 });
    sim.runUntil(Number.POSITIVE_INFINITY);
    sim.close();
    let total = 0;
    for (const s of ['MNQZ25', 'MESZ25']) {
      const r = await runBackfillFile({ kind: 'backfill-file', dataDir, file: join(scid, `${s}_FUT_CME.scid`), symbol: s, tickSize: 0.25, startMicros: null, endMicros: null }, db);
      expect(r.errors).toEqual([]);
      total += r.rowsWritten;
    }
    expect(total).toBe(1500);
    const checker = (): SpotChecker => new SpotChecker({
      dataDir, seed: 7, samplePerRun: 40_000, scidPathOf: (sym, src) => (src === 'sierra' ? join(scid, `${sym}_FUT_CME.scid`) : null),
    });
    const clean = checker();
    const r0 = await clean.runOnce();
    expect(r0).toEqual({ checked: 1500, matched: 1500, mismatched: 0, skipped: 0 });
    expect(clean.status().accuracy).toBe(1);
    expect(clean.status().goalMet).toBe(true);
    await clean.close();

    // the source changes under the stored data: a price and a size
    const mnq = join(scid, 'MNQZ25_FUT_CME.scid');
    patch(mnq, 10, 20, new Uint8Array(new Float32Array([12_345.5]).buffer));
    patch(mnq, 20, 28, new Uint8Array(new Uint32Array([777]).buffer));
    const sc = checker();
    const r1 = await sc.runOnce();
    expect(r1).toEqual({ checked: 1500, matched: 1498, mismatched: 2, skipped: 0 });
    const st = sc.status();
    expect(st.accuracy).toBeCloseTo(1498 / 1500, 12);
    expect(st.goalMet).toBe(false);
    const found = st.mismatches.map((m) => [m.origin, m.symbol, m.srcIndex, m.fields.map((f) => [f.field, f.source])]).sort((a, b) => Number(a[2]) - Number(b[2]));
    expect(found).toEqual([
      ['scid', 'MNQZ25', 10, [['price', '12345.5']]],
      ['scid', 'MNQZ25', 20, [['size', '777']]],
    ]);
    expect(st.mismatches[0]?.sourcePath).toMatch(/MNQZ25_FUT_CME\.scid#(10|20)$/);
    await sc.close();
  });

  test('live rows are compared with their journal: before the delete (service hook) and while the journal exists; a tampered Parquet row is found', async () => {
    const dataDir = join(root, 'live');
    mkdirSync(dataDir);
    const h = D + 5 * H;
    writeJournalHours(dataDir, [h], 150);
    const sc = new SpotChecker({ dataDir, seed: 11, samplePerRun: 10_000, symbolName: (id) => SYMBOLS[id] });
    const pool = new CompactorPool({ threads: 1 });
    const svc = new CompactionService({
      dataDir, pool, now: () => (h + 2 * H) / 1000, symbolName: (id) => SYMBOLS[id], spotChecker: sc,
      deleteJournalHour: async () => { /* keep the journal for the second check */ },
    });
    await svc.runOnce();
    await svc.close();
    await pool.close();
    expect(svc.status().hoursCompacted).toBe(1);
    let st = sc.status();
    expect([st.checked, st.matched, st.mismatched]).toEqual([300, 300, 0]); // every tick of the hour, via the hook

    // tamper one stored price of MNQZ25
    const file = join(partitionDir(dataDir, 'ticks', 'MNQZ25', '2025-11-11'), hourFileName('05'));
    const victim = Number((await db.exclusive((c) => CompactorDb.rows(c, `SELECT min(seq)::DOUBLE FROM ${readParquetSql(file)} WHERE price IS NOT NULL`)))[0]?.[0]);
    await db.exclusive((c) => c.run(`COPY (SELECT * REPLACE (CASE WHEN seq = ${victim} THEN price + 1 ELSE price END AS price) FROM ${readParquetSql(file)}) TO ${sqlString(`${file}.x`)} (${PARQUET_COPY_OPTIONS})`));
    renameSync(`${file}.x`, file);
    const r = await sc.runOnce();
    expect(r.checked).toBe(300);
    expect(r.mismatched).toBe(1);
    st = sc.status();
    expect(st.mismatches).toHaveLength(1);
    expect(st.mismatches[0]).toMatchObject({ origin: 'journal', symbol: 'MNQZ25', seq: victim, sourcePath: hourFilePath(join(dataDir, 'journal'), h) });
    expect(st.mismatches[0]?.fields.map((f) => f.field)).toEqual(['price']);
    expect(Number(st.mismatches[0]?.fields[0]?.stored) - Number(st.mismatches[0]?.fields[0]?.source)).toBe(1);
    expect(st.accuracy).toBeCloseTo(599 / 600, 12);

    // once the journal is gone, live rows have no source left: skipped, not counted as matches
    rmSync(hourFilePath(join(dataDir, 'journal'), h));
    const r2 = await sc.runOnce();
    expect(r2).toEqual({ checked: 0, matched: 0, mismatched: 0, skipped: 300 });
    await sc.close();
  });
});
