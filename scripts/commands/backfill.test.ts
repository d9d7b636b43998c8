import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { CompactorDb } from '../../workers/compactor/duck.ts';
import { CompactorPool } from '../../workers/compactor/pool.ts';
import { readParquetSql } from '../../workers/compactor/layout.ts';
import { resolvePartitionFiles } from '../../workers/compactor/partitions.ts';
import { verifyDataDir } from '../../workers/compactor/verify.ts';
import { decodeScidColumns } from '../../workers/sierra/scid-decoder.ts';
import { SimFiles } from '../../workers/sim/sim-files.ts';
import { ScidWriter } from '../../workers/sierra/scid-writer.ts';
import { TradeFlag } from '../../schemas/records.ts';
import { QuarantineStore } from '../../engine/validate/stores.ts';
import { runBackfill } from './backfill.ts';

const T0 = Date.UTC(2025, 10, 11, 13, 55) * 1000; // 13:55 UTC: the files cross the 14:00 boundary
const root = mkdtempSync(join(tmpdir(), 'tp-backfill-'));
const pool = new CompactorPool({ threads: 2 });
afterAll(async () => {
  await pool.close();
  rmSync(root, { recursive: true, force: true });
});
let n = 0;
const fresh = (): string => {
  const d = join(root, `r${n++}`);
  mkdirSync(d);
  return d;
};

function genFiles(dir: string, maxTrades: number, seed = 7): void {
  const sim = new SimFiles({ outDir: dir, startMicros: T0, symbols: ['MNQZ25', 'MESZ25'], seed, ticksPerSecond: 40, depth: false, maxTrades });
  sim.runUntil(Number.POSITIVE_INFINITY);
  sim.close();
}

async function query(sql: string): Promise<unknown[][]> {
  const db = await CompactorDb.open({ threads: 1 });
  try {
    return await db.exclusive((c) => CompactorDb.rows(c, sql));
  } finally {
    await db.close();
  }
}

/** Rows, Σ size and Σ round(price·4)·size of a symbol over all its Parquet files (reading rule applied). */
async function stored(dataDir: string, symbol: string): Promise<number[]> {
  const files = await resolvePartitionFiles(dataDir, 'ticks', symbol);
  if (files.length === 0) return [0, 0, 0, 0];
  const r = await query(`SELECT count(*)::DOUBLE, sum(size)::DOUBLE, sum(round(price * 4)::BIGINT * size)::DOUBLE, count(DISTINCT src_index)::DOUBLE FROM ${readParquetSql(files)}`);
  return (r[0] as unknown[]).map(Number);
}

/** The same figures straight from the .scid file, minus the record indexes in `skip`. */
function source(file: string, skip: ReadonlySet<number> = new Set()): number[] {
  const c = decodeScidColumns(new Uint8Array(readFileSync(file)), { fileName: file });
  let rows = 0, size = 0, notional = 0;
  for (let i = 0; i < c.count; i++) {
    if (skip.has(i)) continue;
    rows++;
    size += c.totalVolume[i] as number;
    notional += Math.round((c.close[i] as number) * 4) * (c.totalVolume[i] as number);
  }
  return [rows, size, notional, rows];
}

/** Overwrite bytes of record `i` (40-byte records after a 56-byte header). */
function patch(file: string, i: number, at: number, bytes: Uint8Array): void {
  const fd = openSync(file, 'r+');
  writeSync(fd, bytes, 0, bytes.length, 56 + i * 40 + at);
  closeSync(fd);
}
const f32 = (x: number): Uint8Array => new Uint8Array(new Float32Array([x]).buffer);
const u32 = (x: number): Uint8Array => new Uint8Array(new Uint32Array([x]).buffer);

describe('tickpipe backfill', () => {
  test('through the validator into hourly Parquet: bad ticks quarantined with their reason; a second run adds no rows', async () => {
    const dir = fresh();
    const scid = join(dir, 'sierra');
    const dataDir = join(dir, 'data');
    genFiles(scid, 30_000);
    const mnq = join(scid, 'MNQZ25_FUT_CME.scid');
    // inject bad ticks into MNQ: zero size, negative price, an off-tick price, a verbatim duplicate
    patch(mnq, 100, 28, u32(0));
    patch(mnq, 200, 20, f32(-5));
    patch(mnq, 300, 20, f32(21_000.1));
    const rec = readFileSync(mnq).subarray(56 + 400 * 40, 56 + 401 * 40);
    patch(mnq, 401, 0, new Uint8Array(rec));
    const bad = new Set([100, 200, 300, 401]);

    const first = await runBackfill({ scidDir: scid, dataDir, pool });
    expect(first.errors).toEqual([]);
    expect(first.rejected).toBe(4);
    expect(first.hoursWritten).toBe(4); // 2 symbols × (13h, 14h)
    expect(await stored(dataDir, 'MNQZ25')).toEqual(source(mnq, bad));
    expect(await stored(dataDir, 'MESZ25')).toEqual(source(join(scid, 'MESZ25_FUT_CME.scid')));
    // the engine's quarantine store holds exactly the injected ticks, under MNQZ25's id (no engine symbols
    // configured here: the demo defaults, then MESZ25, MNQZ25 after them in name order)
    const mnqId = first.symbolIds.MNQZ25!;
    const q = await new QuarantineStore(dataDir).query({ includeFlagged: false });
    expect(q.map((x) => [x.symbolId, x.record.srcIndex, x.reason])).toEqual([[mnqId, 100, 'bad_size'], [mnqId, 200, 'bad_price'], [mnqId, 300, 'off_tick'], [mnqId, 401, 'duplicate']]);

    const second = await runBackfill({ scidDir: scid, dataDir, pool });
    expect(second.errors).toEqual([]);
    expect(second.quarantineWritten).toBe(0);
    expect((await new QuarantineStore(dataDir).query({ includeFlagged: false })).length).toBe(4);
    expect(second.hoursSkipped).toBe(2); // the 13h hours are done; the last hour of each file is rewritten (files may grow)
    expect(await stored(dataDir, 'MNQZ25')).toEqual(source(mnq, bad));
    expect(await stored(dataDir, 'MESZ25')).toEqual(source(join(scid, 'MESZ25_FUT_CME.scid')));
    const v = await verifyDataDir(dataDir);
    expect(v.problems).toEqual([]);
    expect(v.rows).toBe(source(mnq, bad)[0]! + source(join(scid, 'MESZ25_FUT_CME.scid'))[0]!);
  });

  test('--start/--end (widened to whole hours, with --timestamp-tz) import only that range', async () => {
    const dir = fresh();
    const scid = join(dir, 'sierra');
    const dataDir = join(dir, 'data');
    genFiles(scid, 20_000, 9);
    // 09:10 in New York on 2025-11-11 is 14:10 UTC: the 14h hour only
    const r = await runBackfill({ scidDir: scid, dataDir, start: '2025-11-11T09:10:00', end: '2025-11-11T09:20:00', timestampTz: 'America/New_York', symbols: ['MESZ25'], pool });
    expect(r.errors).toEqual([]);
    const c = decodeScidColumns(new Uint8Array(readFileSync(join(scid, 'MESZ25_FUT_CME.scid'))), { fileName: 'x' });
    let inHour = 0;
    for (let i = 0; i < c.count; i++) if ((c.tsMicros[i] as number) >= Date.UTC(2025, 10, 11, 14) * 1000) inHour++;
    expect(inHour).toBeGreaterThan(0);
    expect((await stored(dataDir, 'MESZ25'))[0]).toBe(inHour);
    expect(await resolvePartitionFiles(dataDir, 'ticks', 'MNQZ25')).toEqual([]);
  });

  test('--start on a legacy file (float64 day-count times) finds its first record in the file\'s own encoding', async () => {
    const dir = fresh();
    const scid = join(dir, 'sierra');
    mkdirSync(scid);
    const w = ScidWriter.open(join(scid, 'OLDZ25_FUT_CME.scid'), { legacyTime: true });
    const t0 = Date.UTC(2025, 10, 11, 13, 50) * 1000;
    for (let i = 0; i < 1200; i++) w.trade(t0 + i * 1_000_000, 100 + (i % 7) * 0.25, 99.75, 100.25, 1 + (i % 3), 1 + (i % 2), 0);
    w.closeSync();
    const dataDir = join(dir, 'data');
    const r = await runBackfill({ scidDir: scid, dataDir, start: '2025-11-11T14:05:00Z', pool });
    expect(r.errors).toEqual([]);
    expect(r.records).toBe(1200 - 600); // from 14:00 (the start hour), 10 minutes after the first record
    const files = await resolvePartitionFiles(dataDir, 'ticks', 'OLDZ25');
    expect(files.map((f) => f.split('/').pop())).toEqual(['hour=14.parquet']);
    const q = await query(`SELECT count(*)::DOUBLE, min(flags & ${TradeFlag.LEGACY_TIME})::DOUBLE FROM ${readParquetSql(files)}`);
    expect(q[0]).toEqual([600, TradeFlag.LEGACY_TIME]);
  });

  test('a missing file, a file with a bad header and a file with a corrupt record are reported (coded, naming file and offset); the rest finishes', async () => {
    const dir = fresh();
    const scid = join(dir, 'sierra');
    const dataDir = join(dir, 'data');
    genFiles(scid, 10_000, 11);
    writeFileSync(join(scid, 'BADZ25_FUT_CME.scid'), 'NOPE this is not a Sierra file at all, just text.......................');
    const mes = join(scid, 'MESZ25_FUT_CME.scid');
    patch(mes, 50, 0, new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f])); // an absurd DateTime
    const r = await runBackfill({ scidDir: scid, dataDir, symbols: ['MNQZ25', 'MESZ25', 'BADZ25', 'GONEZ25'], pool });
    const codes = r.errors.map((e) => [e.code, String(e.detail?.file ?? '').split('/').pop(), e.detail?.byteOffset ?? null]).sort();
    expect(codes).toEqual([
      ['ENGINE_ERR_FILE_IO', 'GONEZ25_FUT_CME.scid', null],
      ['ENGINE_ERR_SCID_FORMAT', 'BADZ25_FUT_CME.scid', 0],
      ['ENGINE_ERR_SCID_FORMAT', 'MESZ25_FUT_CME.scid', 56 + 50 * 40],
    ]);
    // MNQ complete; MES complete except the corrupt record, which is listed
    expect(await stored(dataDir, 'MNQZ25')).toEqual(source(join(scid, 'MNQZ25_FUT_CME.scid')));
    const mesFile = r.files.find((f) => f.symbol === 'MESZ25')!;
    expect(mesFile.corrupt.map((c) => [c.recordIndex, c.byteOffset])).toEqual([[50, 56 + 50 * 40]]);
    const good = decodeScidColumns(new Uint8Array(readFileSync(join(scid, 'MNQZ25_FUT_CME.scid'))), { fileName: 'x' });
    expect(good.count).toBeGreaterThan(0);
    expect((await stored(dataDir, 'MESZ25'))[0]).toBe(mesFile.records);
    expect(mesFile.records).toBe((readFileSync(mes).length - 56) / 40 - 1);
    const corruptList = readFileSync(join(dataDir, 'quarantine', 'backfill', 'corrupt', 'MESZ25_FUT_CME.scid.ndjson'), 'utf8');
    expect(corruptList).toContain('"recordIndex":50');
  });
});
