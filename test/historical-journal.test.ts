/**
 * `/api/v1/ticks/historical` over every state an hour can be in (test/historical-journal.fixture.ts): Parquet
 * only (compacted, journal deleted), mid-compaction (Parquet written, journal not deleted, and holding late
 * records the Parquet lacks), journal only (compaction off / never ran), the open hour in the journal, and
 * the hot window; every format parsed back and compared tick by tick with the source, bars against bars
 * computed from the source, no gap and no duplicate at any seam; a corrupt journal hour and the retention
 * edge listed as unavailable; then the journal-only hour is compacted for real and every answer stays the same.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { historicalLimits } from '../api/rest/historical.ts';
import { listJournalHours, sharedJournalReader } from '../engine/history/journal-reader.ts';
import { rangesWithout, readJournalPart } from '../engine/history/plan.ts';
import { Journal } from '../engine/journal/journal.ts';
import { hourFilePath } from '../engine/journal/format.ts';
import handle from '../workers/compactor/tasks.ts';
import {
  DATA_END, H10, H11, H12, H13, H14, H15, HOUR, startJournalFixture, type JournalFixture,
} from './historical-journal.fixture.ts';
import { barsOf, expectBars, historical, inRange, iso, pickBar, pickTick, type Format, type Row } from './historical-helpers.ts';

let f: JournalFixture;
beforeAll(async () => { f = await startJournalFixture(); }, 60_000);
afterAll(async () => { await f.close(); });

const FORMATS: Format[] = ['json', 'ndjson', 'csv', 'parquet'];
const MIN = 60_000_000;

async function ticks(sym: string, a: number, b: number, format: Format = 'ndjson'): Promise<Row[]> {
  const r = await historical(f.base, f.key, sym, a, b, format);
  if (r.status !== 200) throw new Error(`${r.status} ${JSON.stringify(r.body)}`);
  return r.rows.map(pickTick);
}

function expectNoDuplicate(rows: readonly Row[]): void {
  const keys = rows.map((r) => `${r.ts_us}/${r.seq}`);
  expect(new Set(keys).size).toBe(keys.length);
}

describe('the stored data is in the states the test is about', () => {
  test('12:00 compacted and deleted; 13:00 in Parquet and the journal; 14:00 and 15:00 journal only; 10:00 journal', async () => {
    const jd = join(f.dir, 'journal');
    expect(existsSync(hourFilePath(jd, H12))).toBe(false);
    expect(existsSync(join(jd, '2025-11-11', '12.compacted'))).toBe(true);
    expect(existsSync(hourFilePath(jd, H13))).toBe(true);
    for (const sym of ['MNQZ25', 'NQZ25']) {
      expect(existsSync(join(f.dir, 'ticks', `symbol=${sym}`, 'date=2025-11-11', 'hour=12.parquet'))).toBe(true);
      expect(existsSync(join(f.dir, 'ticks', `symbol=${sym}`, 'date=2025-11-11', 'hour=13.parquet'))).toBe(true);
      expect(existsSync(join(f.dir, 'bars', 'interval=1m', `symbol=${sym}`, 'date=2025-11-11', 'hour=13.parquet'))).toBe(true);
      expect(existsSync(join(f.dir, 'ticks', `symbol=${sym}`, 'date=2025-11-11', 'hour=14.parquet'))).toBe(false);
    }
    expect((await listJournalHours(jd, H10, H15 + HOUR)).map((h) => h.hourStartMicros)).toEqual([H10, H13, H14, H15]);
  });
});

describe('raw ticks across Parquet, journal and hot window: every format equals the source', () => {
  for (const format of FORMATS) {
    test(`${format}: MNQ 12:00–15:30 (Parquet, mid-compaction, journal, hot window)`, async () => {
      const got = await ticks('MNQ', H12, H15 + 30 * MIN, format);
      const want = f.expected('MNQZ25');
      expect(want.length).toBeGreaterThan(10_000);
      expect(got.length).toBe(want.length);
      expect(got).toEqual(want);
    });
    test(`${format}: NQ 12:00–15:30 (no hot rows: the journal answers up to the open hour's last tick)`, async () => {
      const got = await ticks('NQZ25', H12, H15 + 30 * MIN, format);
      expect(got).toEqual(f.expected('NQZ25'));
      expect(got.at(-1)!.ts_us).toBeLessThan(DATA_END);
      expect(got.at(-1)!.ts_us).toBeGreaterThan(DATA_END - MIN);
    });
  }

  test('mid-compaction hour: answered from the journal only (it holds late ticks the Parquet lacks), no duplicate', async () => {
    const got = await ticks('MNQZ25', H13, H14, 'json');
    const want = inRange(f.expected('MNQZ25'), H13, H14);
    expect(got).toEqual(want);
    const c13 = f.compactions[1]!.symbols.find((s) => s.symbol === 'MNQZ25')!;
    expect(got.length).toBeGreaterThan(c13.rows); // Parquet alone would miss the late third
    expectNoDuplicate(got);
  });

  test('journal-only hour and the open hour (journal + hot window)', async () => {
    for (const [a, b] of [[H14, H15], [H15, H15 + HOUR]] as const) {
      expect(await ticks('MNQZ25', a, b, 'csv')).toEqual(inRange(f.expected('MNQZ25'), a, b));
      expect(await ticks('NQZ25', a, b, 'csv')).toEqual(inRange(f.expected('NQZ25'), a, b));
    }
  });
});

describe('no seam', () => {
  test('ranges across every boundary: Parquet→journal (13:00), journal→journal (14:00), journal→hot (the cut), inside the hot window (15:00)', async () => {
    const mnq = f.expected('MNQZ25');
    for (const mid of [H13, H14, f.mnqCut, H15]) {
      const a = mid - 7 * MIN;
      const b = mid + 7 * MIN;
      const got = await ticks('MNQZ25', a, b);
      expect(got).toEqual(inRange(mnq, a, b));
      expect(got.some((r) => r.ts_us < mid) && got.some((r) => r.ts_us >= mid)).toBe(true);
      expectNoDuplicate(got);
    }
  });

  test('ranges that start or end exactly at a boundary or the cut, or are 1 µs wide across one', async () => {
    const mnq = f.expected('MNQZ25');
    const c = f.mnqCut;
    for (const [a, b] of [[H12, H13], [H13, H14], [H14, c], [c, H15], [H13 - 1, H13 + 1], [H14 - 1, H14 + 1], [c - 1, c + 1], [c, c + 1]] as const) {
      expect(await ticks('MNQZ25', a, b, 'json')).toEqual(inRange(mnq, a, b));
    }
  });

  test('property: any range inside 11:50–15:30 equals the source (raw ticks and 1m bars), both symbols', async () => {
    const lo = H12 - 10 * MIN;
    const hi = H15 + 30 * MIN;
    await fc.assert(fc.asyncProperty(fc.integer({ min: lo, max: hi - 1 }), fc.integer({ min: 1, max: 150 * MIN }), fc.constantFrom('MNQZ25', 'NQZ25'), async (a, len, sym) => {
      const b = Math.min(hi, a + len);
      const want = inRange(f.expected(sym as 'MNQZ25' | 'NQZ25'), a, b);
      expect(await ticks(sym, a, b)).toEqual(want);
      const bars = (await historical(f.base, f.key, sym, a, b, 'ndjson', '1m')).rows.map(pickBar);
      expectBars(bars, barsOf(want, MIN));
    }), { numRuns: 8, seed: 7 });
  });
});

describe('bars across Parquet, journal and hot window', () => {
  const intervals: [string, number][] = [['1s', 1e6], ['1m', 6e7], ['5m', 3e8], ['15m', 9e8], ['1h', 3.6e9], ['4h', 1.44e10], ['1d', 8.64e10]];
  for (const [name, us] of intervals) {
    test(`${name}: MNQ 12:00–15:30 equals bars of the source ticks (the mid-compaction hour's stale bar file is not used)`, async () => {
      const got = (await historical(f.base, f.key, 'MNQ', H12, H15 + 30 * MIN, 'ndjson', name)).rows.map(pickBar);
      expectBars(got, barsOf(f.expected('MNQZ25'), us));
    });
  }

  test('unaligned range in every format: partial minutes at both ends, bars straddling 13:00, 14:00 and the cut', async () => {
    const a = H12 + 30 * MIN + 30_500_000;
    const b = f.mnqCut + 90_250_000;
    const want = { '1m': barsOf(inRange(f.expected('MNQZ25'), a, b), MIN), '15m': barsOf(inRange(f.expected('MNQZ25'), a, b), 15 * MIN) };
    for (const name of ['1m', '15m'] as const) {
      for (const format of FORMATS) {
        const r = await historical(f.base, f.key, 'MNQZ25', a, b, format, name);
        expect(r.status).toBe(200);
        expectBars(r.rows.map(pickBar), want[name]);
      }
    }
  });
});

describe('unavailable parts', () => {
  test('a corrupt journal hour: the ticks before the fault, and the hour named as unavailable (json body and header, every format)', async () => {
    const r = await historical(f.base, f.key, 'MNQZ25', H10, H11, 'json');
    expect(r.status).toBe(200);
    expect(r.rows.map(pickTick)).toEqual(f.corruptHourReadable);
    expect(f.corruptHourReadable.length).toBeGreaterThan(100);
    const un = (r.body as { unavailable: { from: string; to: string; reason: string }[] }).unavailable;
    expect(un).toHaveLength(1);
    expect(un[0]).toMatchObject({ from: iso(H10), to: iso(H11) });
    expect(un[0]!.reason).toMatch(/^MNQZ25: journal hour not readable whole \(ENGINE_ERR_JOURNAL: .*corrupt/);
    for (const format of ['ndjson', 'csv', 'parquet'] as const) {
      const x = await historical(f.base, f.key, 'MNQZ25', H10 + 10 * MIN, H12 + MIN, format);
      expect(x.status).toBe(200);
      expect(x.headers.get('x-tickpipe-unavailable')).toContain(`${iso(H10 + 10 * MIN)}/${iso(H11)} MNQZ25: journal hour not readable whole`);
      expect(x.rows.map(pickTick)).toEqual([...inRange(f.corruptHourReadable, H10 + 10 * MIN, H11), ...inRange(f.expected('MNQZ25'), H12, H12 + MIN)]);
    }
  });

  test('a range partly older than retention and through a corrupt hour lists both parts; a clean range lists none', async () => {
    const r = await historical(f.base, f.key, 'MNQ', Date.parse('2024-11-01T00:00:00Z') * 1000, H13 + 10 * MIN, 'json');
    expect(r.status).toBe(200);
    const un = (r.body as { unavailable: { from: string; to: string; reason: string }[] }).unavailable;
    expect(un.map((u) => [u.from, u.to])).toEqual([['2024-11-01T00:00:00.000000Z', '2024-11-11T00:00:00.000000Z'], [iso(H10), iso(H11)]]);
    expect(un[0]!.reason).toBe('older than the retention of 365 days');
    expect(r.rows.map(pickTick)).toEqual([...f.corruptHourReadable, ...inRange(f.expected('MNQZ25'), 0, H13 + 10 * MIN)]);
    const clean = await historical(f.base, f.key, 'MNQ', H12, DATA_END, 'json');
    expect((clean.body as { unavailable: unknown[] }).unavailable).toEqual([]);
    expect(clean.headers.get('x-tickpipe-unavailable')).toBeNull();
  });

  test('more journal ticks than the per-request limit is 413 RANGE_TOO_LARGE (never unbounded memory)', async () => {
    const keep = historicalLimits.journalMaxRows;
    historicalLimits.journalMaxRows = 1000;
    try {
      const r = await historical(f.base, f.key, 'MNQZ25', H13, H15, 'csv');
      expect(r.status).toBe(413);
      expect((r.body as { error: { code: string } }).error.code).toBe('RANGE_TOO_LARGE');
      // the Parquet-only hour needs no journal rows
      expect((await historical(f.base, f.key, 'MNQZ25', H12, H13, 'csv')).status).toBe(200);
    } finally {
      historicalLimits.journalMaxRows = keep;
    }
  });
});

describe('journal listing and the compactor racing a read', () => {
  test('a .tpj with its .compacted marker beside it (delete in progress) is not a journal hour; strays are ignored', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tickpipe-jlist-'));
    try {
      const day = join(dir, '2025-11-11');
      mkdirSync(day, { recursive: true });
      for (const n of ['09.tpj', '09.compacted', '10.tpj', '11.compacted', 'xx.tpj', '25.tpj', '10.tpj.tmp']) writeFileSync(join(day, n), '');
      mkdirSync(join(dir, 'not-a-day'));
      expect((await listJournalHours(dir, H10 - 2 * HOUR, H12)).map((h) => h.hourStartMicros)).toEqual([H10]);
      expect(await listJournalHours(dir, H11, H12)).toEqual([]);
      expect(await listJournalHours(join(dir, 'absent'), H10, H12)).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('an hour whose journal is deleted between the listing and the read is left to Parquet (not answered, not a fault)', async () => {
    const jd = join(f.dir, 'journal');
    const listed = await listJournalHours(jd, H12, H15);
    const gone = { hourStartMicros: H12, path: hourFilePath(jd, H12) }; // listed earlier, deleted since
    const part = await readJournalPart({
      reader: sharedJournalReader(), journalDir: jd, symbolId: 2, fromMicros: H12, toMicros: H15, tradesOnly: false, maxRows: 1e7, hours: [gone, ...listed],
    });
    expect([...part.hours].sort()).toEqual([H13, H14]);
    expect(part.faults).toEqual([]);
    expect(rangesWithout(H12, H15, part.hours)).toEqual([[H12, H13]]);
    const want = inRange(f.expected('NQZ25'), H13, H15);
    expect(part.ticks.length).toBe(want.length);
    expect(Array.from(part.ticks.seq.subarray(0, part.ticks.length))).toEqual(want.map((r) => r.seq));
  });
});

describe('the journal-only hour is compacted for real while the API serves', () => {
  test('Parquet written (journal still there), then the journal deleted: every answer is the same at each step', async () => {
    const want = f.expected('MNQZ25');
    const before = await ticks('MNQZ25', H13 + 30 * MIN, H15 + 30 * MIN, 'parquet');
    expect(before).toEqual(inRange(want, H13 + 30 * MIN, H15 + 30 * MIN));
    // compact 14:00: the pool task writes and verifies its Parquet; the journal is not deleted yet
    const r = await handle({
      kind: 'compact-hour', dataDir: f.dir, journalPath: hourFilePath(join(f.dir, 'journal'), H14), hourStartMicros: H14,
      symbolNames: { 1: 'MNQZ25', 2: 'NQZ25', 3: 'MESZ25' }, sourceNames: { 1: 'sierra', 2: 'sierra-depth' },
    });
    expect(r.kind).toBe('compacted');
    for (const format of FORMATS) expect(await ticks('MNQZ25', H13 + 30 * MIN, H15 + 30 * MIN, format)).toEqual(before);
    expect(await ticks('NQZ25', H12, DATA_END, 'ndjson')).toEqual(f.expected('NQZ25'));
    // the journal owner deletes the verified hour
    const j = Journal.open({ dataDir: f.dir, commitIntervalMs: 0 });
    try {
      await j.deleteHour(H14, { expectedRecords: r.kind === 'compacted' ? r.records : -1 });
    } finally {
      await j.close();
    }
    expect(existsSync(hourFilePath(join(f.dir, 'journal'), H14))).toBe(false);
    for (const format of FORMATS) expect(await ticks('MNQZ25', H13 + 30 * MIN, H15 + 30 * MIN, format)).toEqual(before);
    expect(await ticks('NQZ25', H12, DATA_END, 'csv')).toEqual(f.expected('NQZ25'));
    const bars = (await historical(f.base, f.key, 'MNQ', H12, DATA_END, 'json', '1m')).rows.map(pickBar);
    expectBars(bars, barsOf(want, MIN));
  });
});
