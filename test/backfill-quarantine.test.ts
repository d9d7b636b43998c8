/**
 * `tickpipe backfill` puts its rejects (and gaps) into the engine's own stores: `<data-dir>/quarantine/<day>.tpq`
 * and `<data-dir>/gaps/<day>.tpg` (engine/validate/stores.ts format), with the engine's symbol ids, so
 * `engine.quarantine`, `GET /api/v1/quarantine` and `/api/v1/gaps` show them; a rerun (and a rerun of a
 * sub-range) adds no entry twice.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { loadConfig } from '../engine/config.ts';
import { Engine } from '../engine/engine.ts';
import { LOG_ENTRY_BYTES, LOG_HEADER_BYTES } from '../engine/validate/record-log.ts';
import { GapStore, QuarantineStore } from '../engine/validate/stores.ts';
import { CompactorPool } from '../workers/compactor/pool.ts';
import { engineSymbolIds, runBackfill } from '../scripts/commands/backfill.ts';
import { PIPELINE_SYMBOLS, writePipelineFiles } from './fixtures/pipeline-ticks.ts';

const root = mkdtempSync(join(tmpdir(), 'tp-bf-quarantine-'));
const pool = new CompactorPool({ threads: 2 });
afterAll(async () => {
  await pool.close();
  rmSync(root, { recursive: true, force: true });
});

const symbolOf = (id: number): string | null => PIPELINE_SYMBOLS[id - 1] ?? null;

async function quarantined(dataDir: string): Promise<string[]> {
  const q = await new QuarantineStore(dataDir, symbolOf).query({ includeFlagged: false, limit: 100_000 });
  return q.map((e) => `${e.symbol}|${e.seq}|${e.reason}|${e.sourceId}`).sort();
}

function entriesOnDisk(dir: string, ext: string): number {
  if (!existsSync(dir)) return 0;
  let n = 0;
  for (const f of readdirSync(dir)) {
    if (!f.endsWith(`.${ext}`)) continue;
    const size = statSync(join(dir, f)).size;
    expect((size - LOG_HEADER_BYTES) % LOG_ENTRY_BYTES).toBe(0); // one header, whole entries (no second header from a race)
    n += (size - LOG_HEADER_BYTES) / LOG_ENTRY_BYTES;
  }
  return n;
}

test('engine symbol ids: configured symbols by position, others after them with a warning', () => {
  const r = engineSymbolIds(['MESZ25', 'ESZ25', 'NQZ25', 'CLZ25'], ['NQZ25', 'MNQZ25', 'MESZ25']);
  expect(r.ids).toEqual({ MESZ25: 3, ESZ25: 5, NQZ25: 1, CLZ25: 4 });
  expect(r.warnings).toHaveLength(2);
  expect(r.warnings[0]).toContain('CLZ25');
  expect(r.warnings[0]).toContain('next new symbol');
  // the ids the engine recorded (symbol-ids.json) win over the configured order: NQZ25 was registered second
  const rec = engineSymbolIds(['MESZ25', 'NQZ25', 'CLZ25'], ['NQZ25', 'MNQZ25', 'MESZ25'], ['MNQZ25', 'NQZ25']);
  expect(rec.ids).toEqual({ NQZ25: 2, MESZ25: 3, CLZ25: 4 });
  expect(rec.warnings).toHaveLength(1);
});

test('backfill rejects land in the engine quarantine store with the engine symbol ids, once, however often it runs; the API serves them', async () => {
  const dir = join(root, 'a');
  const scid = join(dir, 'sierra');
  const dataDir = join(dir, 'data');
  mkdirSync(scid, { recursive: true });
  const exp = await writePipelineFiles(scid, 30_000, { seed: 21, injectEvery: 400 });
  const want = exp.bad.map((b) => `${b.symbol}|${b.seq}|${b.reason}|1`).sort();
  expect(want.length).toBeGreaterThan(50);

  const first = await runBackfill({ scidDir: scid, dataDir, pool, workers: 2, configuredSymbols: PIPELINE_SYMBOLS, fileSuffix: '_FUT_CME' });
  expect(first.errors).toEqual([]);
  expect(first.warnings).toEqual([]);
  expect(first.symbolIds).toEqual({ NQZ25: 1, MNQZ25: 2, MESZ25: 3 });
  expect(first.rejected).toBe(exp.bad.length);
  expect(first.quarantineWritten).toBe(exp.bad.length);
  expect(await quarantined(dataDir)).toEqual(want);
  expect(existsSync(join(dataDir, 'quarantine', 'backfill', 'symbol=MNQZ25'))).toBe(false); // no NDJSON beside the store any more
  const qEntries = entriesOnDisk(join(dataDir, 'quarantine'), 'tpq');
  expect(qEntries).toBe(exp.bad.length);
  const gapsFirst = await new GapStore(dataDir, symbolOf).query({ limit: 100_000 });
  expect(gapsFirst.length).toBe(first.gapsWritten);
  expect(first.gapsWritten).toBe(first.files.reduce((s, f) => s + f.gaps, 0));

  // a rerun, and a rerun of a sub-range (the validator starts cold there: its verdicts near the start may differ)
  const second = await runBackfill({ scidDir: scid, dataDir, pool, workers: 2, configuredSymbols: PIPELINE_SYMBOLS });
  expect(second.errors).toEqual([]);
  expect(second.rejected).toBe(exp.bad.length);
  expect(second.quarantineWritten).toBe(0);
  expect(second.gapsWritten).toBe(0);
  const third = await runBackfill({ scidDir: scid, dataDir, pool, configuredSymbols: PIPELINE_SYMBOLS, start: '2025-12-03T15:10:00Z', end: '2025-12-03T16:00:00Z' });
  expect(third.errors).toEqual([]);
  expect(third.rejected).toBeGreaterThan(0);
  expect(third.quarantineWritten).toBe(0);
  expect(await quarantined(dataDir)).toEqual(want);
  expect(entriesOnDisk(join(dataDir, 'quarantine'), 'tpq')).toBe(qEntries);
  expect((await new GapStore(dataDir, symbolOf).query({ limit: 100_000 })).length).toBe(gapsFirst.length);

  // the engine (same symbols, so the same ids) serves them on GET /api/v1/quarantine
  const empty = join(dir, 'no-live-files');
  mkdirSync(empty);
  const engine = await Engine.start(loadConfig({
    TICKPIPE_DATA_DIR: dataDir, TICKPIPE_PORT: '0', TICKPIPE_HOST: '127.0.0.1', TICKPIPE_DEMO: '0', TICKPIPE_COMPACT: '0', TICKPIPE_SIERRA_DIR: empty,
    TICKPIPE_SYMBOLS: PIPELINE_SYMBOLS.join(','), TICKPIPE_HOT_CAPACITY: '1024',
  }), { info: () => undefined, warn: () => undefined });
  try {
    const { key } = await engine.keys!.create({ name: 'bf-test', scopes: ['historical'] });
    const url = `http://127.0.0.1:${engine.port}/api/v1/quarantine?symbol=MNQZ25&limit=10000`;
    const res = await fetch(url, { headers: { authorization: `Bearer ${key}` } });
    expect(res.status).toBe(200);
    const rows = (await res.json() as { data: { seq: number; reason: string; symbol: string; kept: boolean }[] }).data.filter((r) => !r.kept);
    expect(rows.map((r) => `${r.symbol}|${r.seq}|${r.reason}|1`).sort()).toEqual(want.filter((w) => w.startsWith('MNQZ25|')));
  } finally {
    await engine.close();
  }
});
