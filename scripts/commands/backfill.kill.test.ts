/**
 * `tickpipe backfill` as a process: killed with -9 mid-run and run again (every tick exactly once), and
 * the exit code when a requested file is missing. Kept apart from backfill.test.ts (child processes are slow).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, expect, test } from 'vitest';
import { CompactorDb } from '../../workers/compactor/duck.ts';
import { readParquetSql } from '../../workers/compactor/layout.ts';
import { resolvePartitionFiles } from '../../workers/compactor/partitions.ts';
import { verifyDataDir } from '../../workers/compactor/verify.ts';
import { decodeScidColumns } from '../../workers/sierra/scid-decoder.ts';
import { Prng } from '../../workers/sim/prng.ts';
import { SimFiles } from '../../workers/sim/sim-files.ts';

const T0 = Date.UTC(2025, 10, 11, 13, 55) * 1000;
const root = mkdtempSync(join(tmpdir(), 'tp-backfill-kill-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function stored(dataDir: string, symbol: string): Promise<number[]> {
  const files = await resolvePartitionFiles(dataDir, 'ticks', symbol);
  if (files.length === 0) return [0, 0, 0];
  const db = await CompactorDb.open({ threads: 1 });
  try {
    const r = await db.exclusive((c) => CompactorDb.rows(c, `SELECT count(*)::DOUBLE, sum(size)::DOUBLE, count(DISTINCT src_index)::DOUBLE FROM ${readParquetSql(files)}`));
    return (r[0] as unknown[]).map(Number);
  } finally {
    await db.close();
  }
}

function source(file: string): number[] {
  const c = decodeScidColumns(new Uint8Array(readFileSync(file)), { fileName: file });
  let size = 0;
  for (let i = 0; i < c.count; i++) size += c.totalVolume[i] as number;
  return [c.count, size, c.count];
}

// ---- the CLI, killed and resumed --------------------------------------------------------------------

const BIN = fileURLToPath(new URL('../../bin/tickpipe.js', import.meta.url));
// the engine's symbols (quarantine entries carry their ids; an unconfigured symbol would be a warning on stderr)
const ENV = { ...process.env, TICKPIPE_SYMBOLS: 'MNQZ25,MESZ25,NQZ25' };
const children = new Set<ChildProcess>();
afterEach(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  children.clear();
});

function cli(args: string[], killAfterMs: number | null): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: ENV });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const safety = setTimeout(() => child.kill('SIGKILL'), 90_000);
    const killer = killAfterMs === null ? null : setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(safety);
      if (killer) clearTimeout(killer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

function cliKillAfterLine(args: string[], marker: string, delayMs: number): Promise<{ signal: string | null }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'ignore'], env: ENV });
    children.add(child);
    const safety = setTimeout(() => child.kill('SIGKILL'), 90_000);
    child.stdout.on('data', (d: Buffer) => { if (d.toString().includes(marker)) setTimeout(() => child.kill('SIGKILL'), delayMs); });
    child.on('error', reject);
    child.on('exit', (_code, signal) => {
      clearTimeout(safety);
      resolve({ signal });
    });
  });
}

test('the CLI killed with -9 mid-run and run again: every tick exactly once; a missing file makes the exit code 1', async () => {
  const dir = root;
  const scid = join(dir, 'sierra');
  const dataDir = join(dir, 'data');
  const sim = new SimFiles({ outDir: scid, startMicros: T0, symbols: ['MNQZ25', 'MESZ25', 'NQZ25'], seed: 5, ticksPerSecond: 120, depth: false, maxTrades: 60_000 });
  sim.runUntil(Number.POSITIVE_INFINITY);
  sim.close();
  const args = ['backfill', '--scid-dir', scid, '--data-dir', dataDir, '--workers', '1'];
  const rnd = new Prng(99);
  let killed = 0;
  // the CLI prints a line per finished file: kill right after the first one (mid-run: hours of the other
  // files are being written), at a random delay
  const r1 = await cliKillAfterLine(args, 'records', Math.floor(rnd.next() * 300));
  if (r1.signal === 'SIGKILL') killed++;
  const final = await cli(args, null);
  expect(final.stderr).toBe('');
  expect(final.code).toBe(0);
  expect(killed).toBeGreaterThanOrEqual(1);
  for (const s of ['MNQZ25', 'MESZ25', 'NQZ25']) expect(await stored(dataDir, s)).toEqual(source(join(scid, `${s}_FUT_CME.scid`)));
  // a kill in the middle of a write may leave a hidden temp file (a warning: retention removes it), nothing else
  const v = await verifyDataDir(dataDir);
  expect(v.errors).toBe(0);
  for (const p of v.problems) expect([p.severity, p.code, p.path.split('/').pop()?.endsWith('.tmp')]).toEqual(['warning', 'bad-partition', true]);
  const missing = await cli([...args, '--symbols', 'MNQZ25,NOPEZ25', '--json'], null);
  expect(missing.code).toBe(1);
  expect(missing.stderr).toContain('ENGINE_ERR_FILE_IO');
  expect(missing.stderr).toContain('NOPEZ25');
  const summary = JSON.parse(missing.stdout) as { rowsWritten: number; files: unknown[] };
  expect(summary.files).toHaveLength(1);
  expect(await stored(dataDir, 'MNQZ25')).toEqual(source(join(scid, 'MNQZ25_FUT_CME.scid')));
}, 180_000);
