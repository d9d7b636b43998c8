/**
 * `tickpipe backfill --convert-timestamp-to-ms`: the original orchestrator's switch that added an epoch-ms
 * `ts_ms` column to the Parquet it wrote. Here every row always has `ts` (TIMESTAMP µs, UTC, with Sierra's
 * sub-millisecond counter that orders same-millisecond trades) and `ts_ms` = floor(ts / 1000): the flag is
 * documented as always on (--help, README, a line in the run's output) and the files are the same with or
 * without it: no tick lost, the counter kept.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, test } from 'vitest';
import { CompactorDb } from '../workers/compactor/duck.ts';
import { readParquetSql } from '../workers/compactor/layout.ts';
import { resolvePartitionFiles } from '../workers/compactor/partitions.ts';
import { SimFiles } from '../workers/sim/sim-files.ts';

const root = mkdtempSync(join(tmpdir(), 'tp-bf-flags-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const BIN = fileURLToPath(new URL('../bin/tickpipe.js', import.meta.url));
const ENV = { ...process.env, TICKPIPE_SYMBOLS: 'MNQZ25' };

function cli(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: ENV, timeout: 90_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

async function rows(dataDir: string): Promise<unknown[][]> {
  const files = await resolvePartitionFiles(dataDir, 'ticks', 'MNQZ25');
  const db = await CompactorDb.open({ threads: 1 });
  try {
    return await db.exclusive((c) => CompactorDb.rows(c, `SELECT epoch_us(ts)::DOUBLE, ts_ms::DOUBLE, price, size::DOUBLE, seq::DOUBLE FROM ${readParquetSql(files)} ORDER BY ts, seq`));
  } finally {
    await db.close();
  }
}

test('--help documents --convert-timestamp-to-ms as always on', () => {
  const r = cli(['backfill', '--help']);
  expect(r.code).toBe(0);
  const help = r.stdout.replace(/\s+/g, ' ');
  expect(help).toContain('--convert-timestamp-to-ms');
  expect(help).toMatch(/--convert-timestamp-to-ms .*always on here .*ts_ms = floor\(ts \/ 1000\)/);
});

test('with or without --convert-timestamp-to-ms the Parquet is the same: ts in µs with the sub-ms counter, ts_ms = floor(ts / 1000), every tick', async () => {
  const scid = join(root, 'sierra');
  mkdirSync(scid);
  const sim = new SimFiles({ outDir: scid, startMicros: Date.UTC(2025, 10, 11, 14, 50) * 1000, symbols: ['MNQZ25'], seed: 3, ticksPerSecond: 60, depth: false, maxTrades: 20_000 });
  sim.runUntil(Number.POSITIVE_INFINITY);
  sim.close();
  const withFlag = cli(['backfill', '--scid-dir', scid, '--data-dir', join(root, 'a'), '--convert-timestamp-to-ms']);
  expect(withFlag.stderr).toBe('');
  expect(withFlag.code).toBe(0);
  expect(withFlag.stdout).toContain('--convert-timestamp-to-ms is always on');
  const without = cli(['backfill', '--scid-dir', scid, '--data-dir', join(root, 'b')]);
  expect(without.code).toBe(0);
  expect(without.stdout).not.toContain('--convert-timestamp-to-ms');
  const a = await rows(join(root, 'a'));
  const b = await rows(join(root, 'b'));
  expect(a.length).toBe(20_000);
  expect(a).toEqual(b);
  let sameMs = 0;
  for (let i = 0; i < a.length; i++) {
    const [us, ms] = a[i] as [number, number];
    expect(ms).toBe(Math.floor(us / 1000));
    if (i > 0 && (a[i - 1] as number[])[1] === ms) sameMs++;
  }
  // same-millisecond trades stay distinct rows, ordered by the µs counter
  expect(sameMs).toBeGreaterThan(0);
  expect(new Set(a.map((r) => r[0])).size).toBe(a.length);
});
