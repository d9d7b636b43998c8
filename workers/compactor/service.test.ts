import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, test } from 'vitest';
import { Journal } from '../../engine/journal/journal.ts';
import { slotViewsOf } from '../../engine/journal/format.ts';
import { Prng } from '../sim/prng.ts';
import { RECORD_SLOT_BYTES, RecordKind, writeTrade } from '../../schemas/records.ts';
import { CompactorDb } from './duck.ts';
import { SOURCE_ID, SYMBOLS, type TickSpec, writeJournalHours } from './fixtures/journal-ticks.ts';
import { hourFileName, partitionDir, readParquetSql, utcDateHour } from './layout.ts';
import { resolvePartitionFiles } from './partitions.ts';
import { CompactorPool } from './pool.ts';
import { CompactionService } from './service.ts';

const H = 3_600_000_000;
const D0 = Date.UTC(2025, 10, 11) * 1000; // 2025-11-11 00:00 UTC, µs
const root = mkdtempSync(join(tmpdir(), 'tp-compact-svc-'));
const pool = new CompactorPool({ threads: 1 });
afterAll(async () => {
  await pool.close();
  rmSync(root, { recursive: true, force: true });
});
let dirN = 0;
const freshDir = (): string => {
  const d = join(root, `d${dirN++}`);
  mkdirSync(d);
  return d;
};

async function query(sql: string): Promise<unknown[][]> {
  const db = await CompactorDb.open({ threads: 1 });
  try {
    return await db.exclusive((c) => CompactorDb.rows(c, sql));
  } finally {
    await db.close();
  }
}

/** Expected (rows, Σ size, Σ price×size in 1/4 ticks) per symbol-hour from the source ticks. */
function expected(ticks: readonly TickSpec[]): Map<string, { rows: number; size: number; notional4: number; seqs: Set<number> }> {
  const m = new Map<string, { rows: number; size: number; notional4: number; seqs: Set<number> }>();
  for (const t of ticks) {
    const k = `${SYMBOLS[t.symbolId]} ${t.tsMicros - (t.tsMicros % H)}`;
    let e = m.get(k);
    if (!e) m.set(k, (e = { rows: 0, size: 0, notional4: 0, seqs: new Set() }));
    e.rows++;
    e.size += t.size;
    if (!t.quote) e.notional4 += Math.round(t.price * 4) * t.size;
    e.seqs.add(t.seq);
  }
  return m;
}

async function checkHourFile(dataDir: string, symbol: string, hour: number, exp: { rows: number; size: number; notional4: number }): Promise<void> {
  const { date, hour: hh } = utcDateHour(hour);
  const path = join(partitionDir(dataDir, 'ticks', symbol, date), hourFileName(hh));
  const r = await query(`SELECT count(*)::DOUBLE, coalesce(sum(size), 0)::DOUBLE, coalesce(sum(round(price * 4)::BIGINT * size), 0)::DOUBLE, ` +
    `count(DISTINCT seq)::DOUBLE, min(source), max(source), count(src_index)::DOUBLE FROM ${readParquetSql(path)}`);
  expect(r[0]).toEqual([exp.rows, exp.size, exp.notional4, exp.rows, 'source4', 'source4', exp.rows]);
}

describe('CompactionService', () => {
  test('compacts closed journal hours (one verified Parquet per symbol-hour + bars), deletes each journal only after its files are in place', async () => {
    const dataDir = freshDir();
    const hours = [D0 + 14 * H, D0 + 15 * H, D0 + 16 * H];
    const ticks = writeJournalHours(dataDir, hours, 400);
    const journal = Journal.open({ dataDir, commitIntervalMs: 0 });
    const deleted: number[] = [];
    const svc = new CompactionService({
      dataDir, pool, now: () => (D0 + 16 * H + 30 * 60_000_000) / 1000, symbolName: (id) => SYMBOLS[id],
      deleteJournalHour: async (h, n) => {
        // verification happened before: both symbols' tick and bar files are in place when the delete comes
        for (const sym of Object.values(SYMBOLS)) {
          const { date, hour } = utcDateHour(h);
          expect(existsSync(join(partitionDir(dataDir, 'ticks', sym, date), hourFileName(hour)))).toBe(true);
          expect(existsSync(join(partitionDir(dataDir, 'bars', sym, date), hourFileName(hour)))).toBe(true);
        }
        expect(n).toBe(400 * 2 + 3); // every record of the file, depth records included
        await journal.deleteHour(h, { expectedRecords: n });
        deleted.push(h);
      },
    });
    await svc.runOnce();
    expect(deleted).toEqual([hours[0], hours[1]]); // hour 16 is still open (now = 16:30)
    const states = journal.listHours().map((x) => [x.hourStartMicros, x.state]);
    expect(states).toEqual([[hours[0], 'compacted'], [hours[1], 'compacted'], [hours[2], 'open']]);
    const exp = expected(ticks);
    for (const h of [hours[0] as number, hours[1] as number]) {
      for (const sym of Object.values(SYMBOLS)) await checkHourFile(dataDir, sym, h, exp.get(`${sym} ${h}`)!);
    }
    const st = svc.status();
    expect(st.hoursCompacted).toBe(2);
    expect(st.rowsWritten).toBe(2 * 2 * 400);
    expect(st.failures).toBe(0);
    expect(st.pendingHours).toBe(0);
    expect(st.disk.files).toBe(8);
    expect(st.disk.ticksBytes).toBeGreaterThan(0);
    expect(st.durations.maxHourMs).toBeGreaterThan(0);
    // a second cycle finds nothing to do
    await svc.runOnce();
    expect(svc.status().hoursCompacted).toBe(2);
    await svc.close();
    await journal.close();
  });

  test('a failing write (partition directory blocked) is retried with back-off while the journal is kept; it succeeds once the cause is gone', async () => {
    const dataDir = freshDir();
    const h = D0 + 9 * H;
    const ticks = writeJournalHours(dataDir, [h], 200);
    // a regular file where the symbol's partition directory must go: mkdir fails (ENOTDIR), even as root
    mkdirSync(join(dataDir, 'ticks'), { recursive: true });
    const blocker = join(dataDir, 'ticks', 'symbol=MNQZ25');
    writeFileSync(blocker, 'not a directory');
    const journal = Journal.open({ dataDir, commitIntervalMs: 0 });
    let deletes = 0;
    const svc = new CompactionService({
      dataDir, pool, now: () => (h + 2 * H) / 1000, symbolName: (id) => SYMBOLS[id], retryBaseMs: 50, retryMaxMs: 400,
      deleteJournalHour: async (hr, n) => { deletes++; await journal.deleteHour(hr, { expectedRecords: n }); },
    });
    svc.start();
    const deadline = Date.now() + 15_000;
    while (svc.status().failures < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    let st = svc.status();
    expect(st.failures).toBeGreaterThanOrEqual(2); // the first attempt and at least one retry
    expect(st.state === 'retrying' || st.state === 'running').toBe(true);
    const hourErr = st.recentErrors.find((e) => e.what === '2025-11-11T09:00Z');
    expect(hourErr?.code).toBe('ENGINE_ERR_FILE_IO');
    expect(hourErr?.message).toContain('symbol=MNQZ25');
    expect(st.lastError).not.toBeNull();
    expect(deletes).toBe(0);
    expect(journal.listHours()[0]?.state).toBe('open');
    expect(existsSync(journal.listHours()[0]!.path)).toBe(true);
    rmSync(blocker);
    while (svc.status().hoursCompacted < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    st = svc.status();
    expect(st.hoursCompacted).toBe(1);
    expect(deletes).toBe(1);
    expect(journal.listHours()[0]?.state).toBe('compacted');
    const exp = expected(ticks);
    for (const sym of Object.values(SYMBOLS)) await checkHourFile(dataDir, sym, h, exp.get(`${sym} ${h}`)!);
    while (svc.status().state !== 'idle' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(svc.status().consecutiveFailures).toBe(0);
    await svc.close();
    await journal.close();
  });

  test('late records arriving after the hour was read: the journal refuses the delete, the next cycle compacts the hour again with them', async () => {
    const dataDir = freshDir();
    const h = D0 + 3 * H;
    writeJournalHours(dataDir, [h], 100);
    const journal = Journal.open({ dataDir, commitIntervalMs: 0 });
    const v = slotViewsOf(new ArrayBuffer(RECORD_SLOT_BYTES));
    let first = true;
    const svc = new CompactionService({
      dataDir, pool, now: () => (h + 2 * H) / 1000, symbolName: (id) => SYMBOLS[id],
      deleteJournalHour: async (hr, n) => {
        if (first) {
          first = false;
          writeTrade(v, 0, RecordKind.TRADE, SOURCE_ID, 3, 999_999, h + 3_599_000_000, 20_100, 20_099.75, 20_100, 7, 1, 0, 0, 0, 1);
          journal.append(v, 0);
          journal.flushSync();
        }
        await journal.deleteHour(hr, { expectedRecords: n });
      },
    });
    await svc.runOnce();
    expect(svc.status().lastError?.code).toBe('ENGINE_ERR_JOURNAL');
    expect(journal.listHours()[0]?.state).toBe('open');
    await svc.runOnce();
    expect(svc.status().hoursCompacted).toBe(1);
    const { date, hour } = utcDateHour(h);
    const r = await query(`SELECT count(*)::DOUBLE, count(*) FILTER (WHERE seq = 999999)::DOUBLE FROM ${readParquetSql(join(partitionDir(dataDir, 'ticks', 'MNQZ25', date), hourFileName(hour)))}`);
    expect(r[0]).toEqual([101, 1]);
    await svc.close();
    await journal.close();
  });

  test('an unknown symbol id keeps the hour and reports ENGINE_ERR_UNKNOWN_SYMBOL; consolidation and retention run for complete days', async () => {
    const dataDir = freshDir();
    // a day 400 days ago (purged), and two hours of yesterday (compacted, then consolidated)
    const nowMs = D0 / 1000 + 86_400_000 + 2 * 3_600_000; // day after D0, 02:00
    const old = D0 - 400 * 86_400_000_000;
    writeJournalHours(dataDir, [old + 5 * H, D0 + 10 * H, D0 + 11 * H], 50);
    const journal = Journal.open({ dataDir, commitIntervalMs: 0 });
    let allowEs = false;
    const svc = new CompactionService({
      dataDir, pool, now: () => nowMs, symbolName: (id) => (id === 5 && !allowEs ? undefined : SYMBOLS[id]),
      deleteJournalHour: (hr, n) => journal.deleteHour(hr, { expectedRecords: n }),
    });
    await svc.runOnce();
    let st = svc.status();
    expect(st.lastError?.code).toBe('ENGINE_ERR_UNKNOWN_SYMBOL');
    expect(st.hoursCompacted).toBe(0);
    allowEs = true;
    await svc.runOnce();
    st = svc.status();
    expect(st.hoursCompacted).toBe(3);
    expect(st.daysConsolidated).toBe(4); // D0 and the old day, both symbols (consolidation runs before the purge)
    const files = await resolvePartitionFiles(dataDir, 'ticks', 'MNQZ25');
    expect(files.map((f) => f.slice(dataDir.length))).toEqual(['/ticks/symbol=MNQZ25/date=2025-11-11/day.parquet']);
    expect(st.partitionsPurged).toBe(4); // ticks and bars of the old day, both symbols
    expect(st.journalDaysPruned).toBe(1); // the old day's journal directory held only .compacted markers
    expect(existsSync(join(dataDir, 'journal', new Date(old / 1000).toISOString().slice(0, 10)))).toBe(false);
    expect(existsSync(join(dataDir, 'journal', '2025-11-11', '10.compacted'))).toBe(true);
    await svc.close();
    await journal.close();
  });
});

// ---- crash test ----------------------------------------------------------------------------------

const CHILD = fileURLToPath(new URL('./fixtures/service-child.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const children = new Set<ChildProcess>();
afterEach(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  children.clear();
});

function runChild(dataDir: string, nowMs: number, killAfterMs: number | null): Promise<{ done: boolean; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, dataDir, String(nowMs)], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let out = '';
    let stderr = '';
    const safety = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (killAfterMs !== null && out.includes('READY') && !out.includes('KILLARMED')) {
        out += 'KILLARMED';
        setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      }
    });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('error', reject);
    child.on('exit', () => {
      clearTimeout(safety);
      resolve({ done: out.includes('DONE'), stderr });
    });
  });
}

test('kill -9 of the service at random points during compaction and consolidation, then restart: every tick is in Parquet exactly once', async () => {
  const dataDir = freshDir();
  const hours = [D0 + 20 * H, D0 + 21 * H, D0 + 22 * H, D0 + 23 * H];
  const ticks = writeJournalHours(dataDir, hours, 3000);
  const nowMs = (D0 + 24 * H + 90 * 60_000_000) / 1000; // next day 01:30: the hours are closed and D0 is complete
  const rnd = new Prng(20251111);
  let kills = 0;
  for (let round = 0; round < 4; round++) {
    const r = await runChild(dataDir, nowMs, 300 + Math.floor(rnd.next() * 2500));
    if (!r.done) kills++;
  }
  const final = await runChild(dataDir, nowMs, null);
  expect(final.stderr).toBe('');
  expect(final.done).toBe(true);
  expect(kills).toBeGreaterThanOrEqual(1);
  // all journals are gone, the day is consolidated, and every tick is there exactly once
  const j = Journal.open({ dataDir, commitIntervalMs: 0 });
  expect(j.listHours().every((x) => x.state === 'compacted')).toBe(true);
  await j.close();
  for (const [id, sym] of Object.entries(SYMBOLS)) {
    const files = await resolvePartitionFiles(dataDir, 'ticks', sym);
    expect(files.map((f) => f.slice(dataDir.length))).toEqual([`/ticks/symbol=${sym}/date=2025-11-11/day.parquet`]);
    const mine = ticks.filter((t) => t.symbolId === Number(id));
    const r = await query(`SELECT count(*)::DOUBLE, count(DISTINCT seq)::DOUBLE, sum(size)::DOUBLE, min(seq)::DOUBLE, max(seq)::DOUBLE FROM ${readParquetSql(files)}`);
    const seqs = mine.map((t) => t.seq);
    expect(r[0]).toEqual([mine.length, mine.length, mine.reduce((s, t) => s + t.size, 0), Math.min(...seqs), Math.max(...seqs)]);
  }
}, 120_000);
