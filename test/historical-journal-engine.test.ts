/**
 * The whole engine with compaction off (TICKPIPE_COMPACT=0): Sierra files for 3 symbols over 100 minutes
 * across 2 hour boundaries (test/fixtures/pipeline-ticks.ts, with injected bad ticks) go through the source
 * worker, the validator, the journal and the hot window (which keeps only the last hour). Hours older than
 * the hot window are then in the journal only: `GET /api/v1/ticks/historical` over the whole range must
 * return every good tick exactly once, in order (journal hours, then the hot window), in every format, and
 * 1-hour bars must count every good trade.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadConfig } from '../engine/config.ts';
import { Engine } from '../engine/engine.ts';
import { PIPELINE_START_MICROS, PIPELINE_SYMBOLS, writePipelineFiles, type PipelineExpectation } from './fixtures/pipeline-ticks.ts';
import { historical, pickBar, pickTick } from './historical-helpers.ts';

const TICKS = 30_000;
const HOUR = 3_600_000_000;
const quiet = { info: (): void => undefined, warn: (): void => undefined };
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('engine, compaction off: historical answers hours older than the hot window from the journal', () => {
  let dir = '';
  let exp: PipelineExpectation;
  let engine: Engine;
  let base = '';
  let key = '';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tickpipe-histje-'));
    const src = join(dir, 'sierra');
    mkdirSync(src);
    exp = await writePipelineFiles(src, TICKS);
    engine = await Engine.start(loadConfig({
      TICKPIPE_DATA_DIR: join(dir, 'data'), TICKPIPE_PORT: '0', TICKPIPE_DEMO: '0', TICKPIPE_COMPACT: '0', TICKPIPE_SIERRA_DIR: src,
      TICKPIPE_SYMBOLS: PIPELINE_SYMBOLS.join(','), TICKPIPE_POLL_MS: '50', TICKPIPE_RETENTION_DAYS: '3650',
    }), quiet);
    const deadline = Date.now() + 120_000;
    for (;;) {
      const v = engine.validatorStats();
      if ((v.records ?? 0) >= exp.total && v.journalCommittedSeq === v.journalAppendedSeq && v.released === v.records) break;
      if (Date.now() > deadline) throw new Error(`ingest did not finish: ${JSON.stringify(v)}`);
      await sleep(100);
    }
    base = `http://127.0.0.1:${engine.port}`;
    key = engine.keys!.createSync({ name: 'hist-test', scopes: ['historical'] }).key;
  }, 180_000);

  afterAll(async () => {
    await engine?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the hot window holds only the last hour: the first hour is older than it', () => {
    for (const s of PIPELINE_SYMBOLS) {
      const id = engine.registry.requireId(s);
      expect(engine.hot.heldFromMicros(id)).toBeGreaterThan(PIPELINE_START_MICROS + 30 * 60_000_000);
    }
  });

  for (const format of ['ndjson', 'csv', 'parquet'] as const) {
    test(`${format}: every good tick of every symbol once, in order, across journal hours and the hot window`, async () => {
      for (const s of PIPELINE_SYMBOLS) {
        const r = await historical(base, key, s, PIPELINE_START_MICROS - HOUR, PIPELINE_START_MICROS + 3 * HOUR, format);
        expect(r.status).toBe(200);
        const got = r.rows.map(pickTick);
        expect(got.map((x) => x.ts_us)).toEqual(exp.goodTs[s]);
        expect(got.every((x) => x.source === 'sierra' && x.price !== null && x.size > 0)).toBe(true);
        // per hour: count and Σ price × size equal the source's good ticks
        for (const [k, h] of exp.hours) {
          const [sym, hour] = k.split('|');
          if (sym !== s) continue;
          const inHour = got.filter((x) => x.ts_us >= Number(hour) && x.ts_us < Number(hour) + HOUR);
          expect(inHour.length).toBe(h.count);
          expect(inHour.reduce((a, x) => a + (x.price as number) * x.size, 0)).toBeCloseTo(h.sum, 2);
        }
      }
    });
  }

  test('1h bars count every good trade of each hour', async () => {
    for (const s of PIPELINE_SYMBOLS) {
      const r = await historical(base, key, s, PIPELINE_START_MICROS - HOUR, PIPELINE_START_MICROS + 3 * HOUR, 'json', '1h');
      expect(r.status).toBe(200);
      const bars = r.rows.map(pickBar);
      const want = [...exp.hours].filter(([k]) => k.startsWith(`${s}|`)).map(([k, h]) => ({ ts: Number(k.split('|')[1]), trades: h.count }));
      expect(bars.map((b) => ({ ts: b.ts_us, trades: b.trades }))).toEqual(want.sort((a, b) => a.ts - b.ts));
    }
  });
});
