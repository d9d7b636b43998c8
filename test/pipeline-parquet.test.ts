/**
 * The whole pipeline with the compaction service on: simulated Sierra files with injected bad ticks, 3 symbols
 * across 2 hour boundaries (all hours closed, so the engine compacts them while it ingests). Afterwards every
 * symbol-hour is in exactly one place, Parquet or the journal (an hour's journal is deleted only once its
 * Parquet is verified), and equals the source exactly: row count and Σ price × size (in ticks × size,
 * integers), with no duplicate (symbol, seq) anywhere.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, expect, test } from 'vitest';
import { loadConfig } from '../engine/config.ts';
import { Engine } from '../engine/engine.ts';
import { Journal } from '../engine/journal/journal.ts';
import { RecordKind, readF64, readKind, readSeq, readSymbolId, readTsMicros, readU32 } from '../schemas/records.ts';
import { PIPELINE_SYMBOLS, writePipelineFiles } from './fixtures/pipeline-ticks.ts';

const HOUR = 3_600_000_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
let dir = '';
afterAll(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

test('compaction on: Parquet ∪ journal per symbol-hour equals the source exactly, nothing twice', async () => {
  dir = mkdtempSync(join(tmpdir(), 'tickpipe-pq-e2e-'));
  const src = join(dir, 'sierra');
  const data = join(dir, 'data');
  mkdirSync(src);
  const exp = await writePipelineFiles(src, 60_000, { seed: 11 });
  const engine = await Engine.start(loadConfig({
    TICKPIPE_DATA_DIR: data, TICKPIPE_PORT: '0', TICKPIPE_DEMO: '0', TICKPIPE_SIERRA_DIR: src, TICKPIPE_SYMBOLS: PIPELINE_SYMBOLS.join(','),
    TICKPIPE_POLL_MS: '50', TICKPIPE_HOT_CAPACITY: String(1 << 16), TICKPIPE_RETENTION_DAYS: '3650',
  }), { info: () => undefined, warn: () => undefined });
  const ids: Record<string, number> = {};
  for (const s of PIPELINE_SYMBOLS) ids[s] = engine.registry.requireId(s);
  try {
    const deadline = Date.now() + 150_000;
    for (;;) {
      const v = engine.validatorStats();
      if ((v.records ?? 0) >= exp.total && v.journalCommittedSeq === v.journalAppendedSeq && v.released === v.records) break;
      if (Date.now() > deadline) throw new Error(`ingest did not finish: ${JSON.stringify(v)}`);
      await sleep(200);
    }
    // The service compacts at start (the sources are already ingesting: some hours may be compacted then, or
    // refused and left for later when more records arrived) and at every hour boundary; run a cycle now
    // rather than wait for the next boundary, as an operator could.
    await engine.compaction!.runOnce();
    const c = engine.compaction!.status();
    expect(c.consecutiveFailures, JSON.stringify(c.recentErrors)).toBe(0);
    expect(c.hoursCompacted, JSON.stringify(c)).toBeGreaterThanOrEqual(3);
  } finally {
    await engine.close();
  }
  const byId: string[] = [];
  for (const s of PIPELINE_SYMBOLS) byId[ids[s]!] = s;
  const got = new Map<string, { count: number; sumTicksXSize: number }>();
  const where = new Map<string, string>();
  const seen = new Set<string>();
  let dups = 0;
  const add = (key: string, place: string, seqKey: string, ticksXSize: number): void => {
    if (seen.has(seqKey)) dups++;
    seen.add(seqKey);
    const prev = where.get(key);
    if (prev !== undefined && prev !== place) throw new Error(`${key} is in both ${prev} and ${place}`);
    where.set(key, place);
    const h = got.get(key) ?? { count: 0, sumTicksXSize: 0 };
    h.count++;
    h.sumTicksXSize += ticksXSize;
    got.set(key, h);
  };
  const j = Journal.open({ dataDir: data, commitIntervalMs: 0 });
  try {
    j.replay('open-hours', (v, off, count, hour) => {
      for (let k = 0; k < count; k++) {
        const b = off + k * 64;
        if (readKind(v, b) !== RecordKind.TRADE) continue;
        const sym = byId[readSymbolId(v, b)]!;
        expect(Math.floor(readTsMicros(v, b) / HOUR) * HOUR).toBe(hour);
        add(`${sym}|${hour}`, 'journal', `${sym}|${readSeq(v, b)}`, Math.round(readF64(v, b, 16) * 4) * readU32(v, b, 40));
      }
    });
  } finally {
    await j.close();
  }
  const db = await DuckDBInstance.create(':memory:', { autoinstall_known_extensions: 'false', autoload_known_extensions: 'false' });
  const conn = await db.connect();
  try {
    const glob = join(data, 'ticks', 'symbol=*', 'date=*', '*.parquet').replaceAll("'", "''");
    const r = await conn.runAndReadAll(`SELECT symbol, CAST(epoch_us(ts) AS DOUBLE) AS us, CAST(seq AS DOUBLE) AS seq, CAST(round(price * 4) * size AS DOUBLE) AS tx
      FROM read_parquet('${glob}', hive_partitioning = true, union_by_name = true)`);
    for (const [sym, us, seq, tx] of r.getRows() as [string, number, number, number][]) {
      add(`${sym}|${Math.floor(us / HOUR) * HOUR}`, 'parquet', `${sym}|${seq}`, tx);
    }
  } finally {
    conn.closeSync();
    db.closeSync();
  }
  expect(dups).toBe(0);
  expect([...where.values()].filter((p) => p === 'parquet').length).toBeGreaterThan(0); // the service did compact
  expect([...got.keys()].sort()).toEqual([...exp.hours.keys()].sort());
  for (const [k, want] of exp.hours) {
    expect({ k, ...got.get(k) }).toEqual({ k, count: want.count, sumTicksXSize: want.sumTicksXSize });
  }
}, 200_000);
