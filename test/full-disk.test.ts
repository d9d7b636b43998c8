/**
 * A full disk is a clear error, not a silent stall (issue 4, "Bad input"). The disk is really full: a small
 * tmpfs mounted on the test's data directory (ENOSPC from the kernel), or, as a fallback that needs no
 * mount, a journal file that is a symlink to /dev/full (every write fails with ENOSPC).
 *
 *  - Journal: the failing commit is ENGINE_ERR_FILE_IO with errno ENOSPC naming the hour file; `flush()`
 *    rejects, `append()` throws, `onError` is told once; nothing acknowledged (committed) is lost, and once
 *    space is back a reopened journal (torn tail cut) takes the rest.
 *  - Engine: the validator stage reports the journal's ENOSPC in its status (stage lastError, the engine's
 *    recentErrors) within seconds, whether ticks keep coming or the failing commit was the last one; when
 *    space comes back the supervisor's restart resumes and every source tick is in the journal exactly once.
 *  - Compactor: on a full disk the hour's Parquet write fails, the service retries with back-off, keeps the
 *    journal, shows the failure in status(); once space is back the hour is compacted.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { isEngineError, type EngineError } from '../engine/errors.ts';
import { dayDirOf, hourFilePath, slotViewsOf } from '../engine/journal/format.ts';
import { fillRecord, recordMatches } from '../engine/journal/fixtures/records.ts';
import { Journal } from '../engine/journal/journal.ts';
import { loadConfig, type EngineConfig } from '../engine/config.ts';
import { Engine, VALIDATOR_STAGE } from '../engine/engine.ts';
import type { StageStatus } from '../engine/supervisor.ts';
import { RECORD_SLOT_BYTES, RecordKind, readKind, readSeq, readSourceId, readSymbolId, readTsMicros } from '../schemas/records.ts';
import { SYMBOLS, writeJournalHours } from '../workers/compactor/fixtures/journal-ticks.ts';
import { CompactorPool } from '../workers/compactor/pool.ts';
import { CompactorDb } from '../workers/compactor/duck.ts';
import { writeHourParquet } from '../workers/compactor/hour-writer.ts';
import { compactionErrorOf, CompactionService } from '../workers/compactor/service.ts';
import { makeTape } from '../workers/compactor/test-ticks.ts';
import { PIPELINE_SYMBOLS, writePipelineFiles } from './fixtures/pipeline-ticks.ts';
import { fillDisk, mountTmpfs, resizeTmpfs, tmpfsUnavailable, unmountTmpfs } from './fixtures/full-disk.ts';

const root = mkdtempSync(join(tmpdir(), 'tp-fulldisk-'));
const mounts: string[] = [];
afterAll(() => {
  for (const m of mounts) unmountTmpfs(m);
  rmSync(root, { recursive: true, force: true });
});
let dirN = 0;
/** A fresh tmpfs of `bytes` (registered for unmount). */
function freshTmpfs(bytes: number): string {
  const d = join(root, `m${dirN++}`);
  mountTmpfs(d, bytes);
  mounts.push(d);
  return d;
}

const NO_TMPFS = tmpfsUnavailable();
if (NO_TMPFS !== null) console.warn(`full-disk tests on a tmpfs are skipped: ${NO_TMPFS} (the /dev/full fallback runs)`);
const onTmpfs = NO_TMPFS === null ? test : test.skip;
const skipNote = NO_TMPFS === null ? '' : ` [skipped: ${NO_TMPFS}]`;

/** 2025-11-11T14:00Z */
const T0 = Date.UTC(2025, 10, 11, 14) * 1000;
const slot = slotViewsOf(new ArrayBuffer(RECORD_SLOT_BYTES));
const SRC = 3;
const tsOf = (seq: number): number => T0 + seq * 10;

function appendRange(j: Journal, from: number, to: number): void {
  for (let s = from; s < to; s++) {
    fillRecord(slot, 0, SRC, s, tsOf(s));
    if (j.append(slot, 0) <= 0) throw new Error(`journal refused record ${s}`);
  }
}

/** Seqs replayed from the open hours, each checked word for word. */
function replaySeqs(j: Journal): number[] {
  const out: number[] = [];
  j.replay('open-hours', (v, off, count) => {
    for (let k = 0; k < count; k++) {
      const b = off + k * RECORD_SLOT_BYTES;
      const seq = readSeq(v, b);
      if (!recordMatches(v, b, readSourceId(v, b), seq, readTsMicros(v, b))) throw new Error(`record ${seq} replayed damaged`);
      out.push(seq);
    }
  });
  return out;
}

const range = (a: number, b: number): number[] => Array.from({ length: b - a }, (_, i) => a + i);

/** The coded error of a full disk, naming the hour file. */
function expectEnospc(err: unknown, path: string): void {
  expect(isEngineError(err, 'ENGINE_ERR_FILE_IO')).toBe(true);
  const e = err as EngineError;
  expect(e.detail.errno).toBe('ENOSPC');
  expect(e.detail.file).toBe(path);
  expect(e.message).toContain(path);
  expect(e.message).toContain('ENOSPC');
}

describe('journal on a full disk', () => {
  onTmpfs(`a commit that hits a full tmpfs is ENGINE_ERR_FILE_IO/ENOSPC naming the file; nothing acknowledged is lost; with space back a reopened journal takes the rest${skipNote}`, async () => {
    const dataDir = freshTmpfs(1 << 20); // 1 MiB: about 15 000 records after the file system's own use
    const errors: EngineError[] = [];
    const j = Journal.open({ dataDir, commitIntervalMs: 0, commitRecords: 1000, onError: (e) => errors.push(e) });
    const path = hourFilePath(j.dir, T0);
    let acked = 0; // records whose commit succeeded: what an owner would have acknowledged
    let failure: unknown = null;
    for (let batch = 0; batch < 100 && failure === null; batch++) {
      appendRange(j, acked, acked + 1000);
      try {
        acked = await j.flush();
      } catch (err) {
        failure = err;
      }
    }
    expect(failure).not.toBeNull(); // the disk filled up: it did not stall, the commit rejected
    expectEnospc(failure, path);
    expect(acked).toBeGreaterThan(5000);
    expect(j.committedSeq).toBe(acked);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBe(failure);
    expect(j.failure).toBe(failure);
    // every later use says the same thing at once
    fillRecord(slot, 0, SRC, 999_999, tsOf(999_999));
    expect(() => j.append(slot, 0)).toThrow(failure as Error);
    expect(() => j.flushSync()).toThrow(failure as Error);
    await expect(j.flush()).rejects.toBe(failure);
    await expect(j.close()).rejects.toBe(failure);

    // space comes back: the reopened journal cuts the torn tail of the failed block and keeps every acknowledged record
    resizeTmpfs(dataDir, 8 << 20);
    const j2 = Journal.open({ dataDir, commitIntervalMs: 0 });
    expect(replaySeqs(j2)).toEqual(range(0, acked));
    appendRange(j2, acked, acked + 3000);
    expect(await j2.flush()).toBe(3000);
    expect(replaySeqs(j2)).toEqual(range(0, acked + 3000));
    await j2.close();
  });

  onTmpfs(`a timer commit (no flush waiting) on a full tmpfs reports through onError and the next append throws${skipNote}`, async () => {
    const dataDir = freshTmpfs(1 << 20);
    const errors: EngineError[] = [];
    const j = Journal.open({ dataDir, commitIntervalMs: 5, onError: (e) => errors.push(e) });
    appendRange(j, 0, 100);
    await j.flush();
    fillDisk(dataDir, 0);
    appendRange(j, 100, 1100); // 64 KB: the page cache cannot take it
    const t0 = Date.now();
    while (errors.length === 0 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 5));
    expect(errors).toHaveLength(1);
    expectEnospc(errors[0], hourFilePath(j.dir, T0));
    expect(j.committedSeq).toBe(100);
    fillRecord(slot, 0, SRC, 2000, tsOf(2000));
    expect(() => j.append(slot, 0)).toThrow(errors[0] as Error);
    await expect(j.close()).rejects.toBe(errors[0]);
  });

  test('fallback without a mount: an hour file that is a symlink to /dev/full fails its commit with ENOSPC naming it', async () => {
    const dataDir = join(root, `devfull${dirN++}`);
    const journalDir = join(dataDir, 'journal');
    mkdirSync(dayDirOf(journalDir, T0), { recursive: true });
    const path = hourFilePath(journalDir, T0);
    symlinkSync('/dev/full', path); // an empty file at open (size 0); every write to it is ENOSPC
    const errors: EngineError[] = [];
    const j = Journal.open({ dataDir, commitIntervalMs: 0, onError: (e) => errors.push(e) });
    appendRange(j, 0, 10);
    let failure: unknown = null;
    await j.flush().catch((err: unknown) => { failure = err; });
    expectEnospc(failure, path);
    expect(errors).toEqual([failure]);
    expect(j.committedSeq).toBe(0);
    expect(() => j.flushSync()).toThrow(failure as Error);
    await expect(j.close()).rejects.toBe(failure);
  });
});

// ---- the engine: the validator stage's journal on a full disk ---------------------------------------

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const quiet = { info: (): void => undefined, warn: (): void => undefined };

function engineConfig(data: string, src: string, more: Record<string, string> = {}): EngineConfig {
  return loadConfig({ ...more,
    TICKPIPE_DATA_DIR: data, TICKPIPE_PORT: '0', TICKPIPE_DEMO: '0', TICKPIPE_COMPACT: '0', TICKPIPE_SIERRA_DIR: src,
    TICKPIPE_SYMBOLS: PIPELINE_SYMBOLS.join(','), TICKPIPE_POLL_MS: '50', TICKPIPE_HOT_CAPACITY: String(1 << 16), TICKPIPE_RING_SLOTS: more.TICKPIPE_RING_SLOTS ?? '2048',
  });
}

/** Source ticks in the journal: TRADE (symbol, seq) → times seen. */
function journalTrades(dataDir: string): Map<number, number> {
  const j = Journal.open({ dataDir, commitIntervalMs: 0 });
  const count = new Map<number, number>();
  try {
    j.replay('open-hours', (v, off, n) => {
      for (let i = 0; i < n; i++) {
        const b = off + i * RECORD_SLOT_BYTES;
        if (readKind(v, b) !== RecordKind.TRADE) continue;
        const key = readSymbolId(v, b) * 1e9 + readSeq(v, b);
        count.set(key, (count.get(key) ?? 0) + 1);
      }
    });
  } finally {
    j.closeSync();
  }
  return count;
}

function validatorStatus(engine: Engine): StageStatus {
  return engine.supervisor.status().find((s) => s.name === VALIDATOR_STAGE)!;
}

/** Wait until the validator stage's lastError names ENOSPC in the journal; returns it. Fails after `ms`. */
async function waitForEnospc(engine: Engine, journalDir: string, ms: number): Promise<string> {
  const t0 = Date.now();
  for (;;) {
    const e = validatorStatus(engine).lastError ?? '';
    if (e.includes('ENOSPC')) {
      expect(e).toContain('ENGINE_ERR_FILE_IO');
      expect(e).toContain(journalDir);
      return e;
    }
    if (Date.now() - t0 > ms) throw new Error(`no ENOSPC error within ${ms} ms (a silent stall); stage: ${JSON.stringify(validatorStatus(engine))}`);
    await sleep(20);
  }
}

/** Wait until the stage runs again and has taken and released every record its inputs hold. */
async function waitSettled(engine: Engine, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  let prev = -1;
  let idleSince = Date.now();
  for (;;) {
    const st = validatorStatus(engine);
    const v = st.lastStats;
    const settled = st.state === 'running' && v.records === prev && v.journalCommittedSeq === v.journalAppendedSeq && v.released === v.records;
    if (!settled) { prev = v.records ?? 0; idleSince = Date.now(); } else if (Date.now() - idleSince > 800) return;
    if (Date.now() > deadline) throw new Error(`did not settle: ${JSON.stringify(st)}`);
    await sleep(50);
  }
}

describe('engine on a full disk', () => {
  onTmpfs(`ingest fills the data disk: the validator stage reports the journal's ENOSPC (not a stall); space back, it resumes and every tick is journaled exactly once${skipNote}`, async () => {
    const dir = join(root, `e${dirN++}`);
    const src = join(dir, 'sierra');
    mkdirSync(src, { recursive: true });
    const exp = await writePipelineFiles(src, 60_000, { seed: 11 }); // ~3.9 MB of journal
    const data = freshTmpfs(2 << 20);
    const journalDir = join(data, 'journal');
    const engine = await Engine.start(engineConfig(data, src), quiet);
    try {
      const err = await waitForEnospc(engine, journalDir, 30_000);
      expect(validatorStatus(engine).lastStats.journalCommittedSeq ?? 0).toBeLessThan(exp.total);
      expect(engine.status().recentErrors).toEqual(expect.arrayContaining([expect.stringContaining('ENOSPC')]));
      expect(err).toMatch(/journal: cannot (write|fsync|create journal file)/);
      resizeTmpfs(data, 64 << 20); // space comes back
      await waitSettled(engine, 90_000);
      expect(validatorStatus(engine).restarts).toBeGreaterThanOrEqual(1);
    } finally {
      await engine.close();
    }
    const count = journalTrades(data);
    expect([...count.values()].filter((c) => c > 1).length).toBe(0);
    expect(count.size).toBe(exp.goodTotal);
    const q = await engine.quarantine.query({ includeFlagged: false, limit: 100_000 });
    expect(q.map((e) => `${e.symbol}|${e.seq}|${e.reason}`).sort()).toEqual(exp.bad.map((b) => `${b.symbol}|${b.seq}|${b.reason}`).sort());
  }, 150_000);

  onTmpfs(`a disk that stays full: the stage gives up after its restarts ('failed', the ENOSPC in status); space back, the operator's restart resumes it, exactly once${skipNote}`, async () => {
    const dir = join(root, `e${dirN++}`);
    const src = join(dir, 'sierra');
    mkdirSync(src, { recursive: true });
    const exp = await writePipelineFiles(src, 40_000, { seed: 13 });
    const data = freshTmpfs(1 << 20);
    const engine = await Engine.start(engineConfig(data, src), quiet);
    try {
      await waitForEnospc(engine, join(data, 'journal'), 30_000);
      for (const t0 = Date.now(); validatorStatus(engine).state !== 'failed';) {
        if (Date.now() - t0 > 60_000) throw new Error(`the stage did not give up: ${JSON.stringify(validatorStatus(engine))}`);
        await sleep(50);
      }
      expect(validatorStatus(engine).lastError).toContain('ENOSPC');
      expect(engine.ready()).toBe(false); // /readyz says 503
      expect(engine.status().recentErrors).toEqual(expect.arrayContaining([expect.stringContaining('validator gave up after repeated failures')]));
      resizeTmpfs(data, 64 << 20);
      await engine.supervisor.restart(VALIDATOR_STAGE); // the panel's admin action
      await waitSettled(engine, 90_000);
      // the ENOSPC is kept, dated before the worker now running (the panel shows it as "before the last restart")
      const after = validatorStatus(engine);
      expect(after.lastError).toContain('ENOSPC');
      expect(after.lastErrorAt).toBeGreaterThan(0);
      expect(after.lastErrorAt).toBeLessThanOrEqual(after.startedAt);
    } finally {
      await engine.close();
    }
    const count = journalTrades(data);
    expect([...count.values()].filter((c) => c > 1).length).toBe(0);
    expect(count.size).toBe(exp.goodTotal);
  }, 150_000);

  onTmpfs(`the last commit before the input goes quiet fails on a full disk: still reported, not a silent stall${skipNote}`, async () => {
    const dir = join(root, `e${dirN++}`);
    const src = join(dir, 'sierra');
    mkdirSync(src, { recursive: true });
    const exp = await writePipelineFiles(src, 1500, { seed: 12, minutes: 10, injectEvery: 1e9 });
    const data = freshTmpfs(1 << 20);
    const journalDir = join(data, 'journal');
    // a slow group commit (5 s: room for a slow start of the other stages on a loaded machine) and rings big enough that nothing forces an early commit: every tick is
    // appended (staged in memory) before the first commit, and then the input goes quiet for good
    const engine = await Engine.start(engineConfig(data, src, { TICKPIPE_COMMIT_INTERVAL_MS: '5000', TICKPIPE_RING_SLOTS: '16384' }), quiet);
    try {
      for (const t0 = Date.now(); (validatorStatus(engine).lastStats.journalAppendedSeq ?? 0) < exp.goodTotal;) {
        if (Date.now() - t0 > 30_000) throw new Error(`ingest did not start: ${JSON.stringify(validatorStatus(engine).lastStats)}`);
        await sleep(10);
      }
      expect(validatorStatus(engine).lastStats.journalCommittedSeq).toBe(0);
      const filler = fillDisk(data, 0); // the disk fills before the timer's commit
      await waitForEnospc(engine, journalDir, 30_000);
      rmSync(filler);
      await waitSettled(engine, 90_000);
      expect(validatorStatus(engine).restarts).toBeGreaterThanOrEqual(1);
    } finally {
      await engine.close();
    }
    const count = journalTrades(data);
    expect([...count.values()].filter((c) => c > 1).length).toBe(0);
    expect(count.size).toBe(exp.goodTotal);
  }, 150_000);
});

// ---- the compactor: hourly Parquet on a full disk ---------------------------------------------------

describe('compactor on a full disk', () => {
  const pool = new CompactorPool({ threads: 1 });
  afterAll(() => pool.close());

  onTmpfs(`the hour's Parquet write fails on a full disk: retried with back-off, journal kept, status shows it; space back, the hour is compacted${skipNote}`, async () => {
    const dataDir = freshTmpfs(4 << 20);
    const h = Date.UTC(2025, 10, 11, 9) * 1000;
    writeJournalHours(dataDir, [h], 400);
    const filler = fillDisk(dataDir, 0);
    const journal = Journal.open({ dataDir, commitIntervalMs: 0 });
    let deletes = 0;
    const svc = new CompactionService({
      dataDir, pool, now: () => (h + 2 * 3_600_000_000) / 1000, symbolName: (id) => SYMBOLS[id], retryBaseMs: 50, retryMaxMs: 400,
      deleteJournalHour: async (hr, n) => { deletes++; await journal.deleteHour(hr, { expectedRecords: n }); },
    });
    try {
      svc.start();
      const deadline = Date.now() + 30_000;
      while (svc.status().failures < 3 && Date.now() < deadline) await sleep(20);
      let st = svc.status();
      expect(st.failures).toBeGreaterThanOrEqual(3); // the first attempt and retries
      expect(st.consecutiveFailures).toBeGreaterThanOrEqual(2);
      expect(st.state === 'retrying' || st.state === 'running').toBe(true);
      const hourErr = st.recentErrors.find((e) => e.what === '2025-11-11T09:00Z');
      expect(hourErr?.errno).toBe('ENOSPC');
      expect(hourErr?.message).toContain(join(dataDir, 'ticks', 'symbol=MNQZ25', 'date=2025-11-11'));
      expect(st.lastError?.errno).toBe('ENOSPC');
      expect(st.diskFull).toBe(true);
      expect(st.disk.freeBytes).toBe(0);
      // back-off: the next try waits 50 ms doubling per consecutive failure, capped at 400 (the test's clock stands still)
      expect(st.nextRunAt! - st.lastRunAt!).toBe(Math.min(400, 50 * 2 ** (st.consecutiveFailures - 1)));
      expect(st.hoursCompacted).toBe(0);
      expect(deletes).toBe(0);
      expect(journal.listHours()[0]?.state).toBe('open');
      rmSync(filler); // space comes back
      while (svc.status().hoursCompacted < 1 && Date.now() < deadline) await sleep(20);
      st = svc.status();
      expect(st.hoursCompacted).toBe(1);
      expect(deletes).toBe(1);
      expect(journal.listHours()[0]?.state).toBe('compacted');
      while (svc.status().state !== 'idle' && Date.now() < deadline) await sleep(20);
      expect(svc.status().diskFull).toBe(false);
      expect(svc.status().consecutiveFailures).toBe(0);
    } finally {
      await svc.close();
      await journal.close();
    }
  });
});

test('fallback without a mount: DuckDB writing the hour file into /dev/full is a coded compactor error the service classifies as ENOSPC', async () => {
  const dataDir = join(root, `devfull${dirN++}`);
  mkdirSync(dataDir);
  const h = Date.UTC(2025, 10, 11, 9) * 1000;
  const c = makeTape(2000, h, 5);
  const db = await CompactorDb.open({ threads: 1 });
  let caught: unknown = null;
  try {
    await writeHourParquet({
      dataDir, symbol: 'MNQZ25', hourStartMicros: h, columns: c, count: 2000, source: 'sierra', db,
      testHooks: { beforeCopy: (tmp) => { symlinkSync('/dev/full', tmp); } },
    });
  } catch (err) {
    caught = err;
  } finally {
    await db.close();
  }
  expect(isEngineError(caught, 'ENGINE_ERR_COMPACT')).toBe(true);
  expect((caught as Error).message).toMatch(/No space left on device/i);
  expect((caught as Error).message).toContain(join(dataDir, 'ticks', 'symbol=MNQZ25', 'date=2025-11-11'));
  expect(compactionErrorOf(caught, '2025-11-11T09:00Z', 0).errno).toBe('ENOSPC');
  expect(existsSync(join(dataDir, 'ticks', 'symbol=MNQZ25', 'date=2025-11-11', 'hour=09.parquet'))).toBe(false);
});
