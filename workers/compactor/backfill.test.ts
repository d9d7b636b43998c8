/**
 * runBackfillFile on one thread, file after file, as a pool thread runs `tickpipe backfill` tasks: hour
 * columns and read buffers are reused across hours and files, the decode loop gives the event loop a turn
 * between ring batches while an hour is written, and a file may start decoding (`onDecoded`) while the
 * previous one's hours are still being written. Whatever the overlap, every file's results, Parquet rows,
 * bars, quarantine and gap entries must equal those of the same files run one at a time.
 */
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { SimFiles } from '../sim/sim-files.ts';
import { type BackfillFileResult, type BackfillFileTask, runBackfillFile } from './backfill.ts';
import { CompactorDb } from './duck.ts';
import { readParquetSql } from './layout.ts';
import { resolvePartitionFiles } from './partitions.ts';

const SYMBOLS = ['MNQZ25', 'NQZ25', 'MESZ25'];
const T0 = Date.UTC(2025, 10, 11, 13, 20) * 1000; // ~2 h of trades: hours 13, 14 and 15 UTC
const root = mkdtempSync(join(tmpdir(), 'tp-backfill-chain-'));
const scid = join(root, 'sierra');
let db: CompactorDb;

/** Overwrite bytes of record `i` (40-byte records after a 56-byte header). */
function patch(file: string, i: number, at: number, bytes: Uint8Array): void {
  const fd = openSync(file, 'r+');
  writeSync(fd, bytes, 0, bytes.length, 56 + i * 40 + at);
  closeSync(fd);
}

beforeAll(async () => {
  const sim = new SimFiles({ outDir: scid, startMicros: T0, symbols: SYMBOLS, seed: 11, ticksPerSecond: 6, depth: false, maxTrades: 45_000 });
  sim.runUntil(Number.POSITIVE_INFINITY);
  sim.close();
  // Bad ticks in several hours (off the 0.25 grid: quarantined), so quarantine entries are filed per hour too.
  const mnq = join(scid, 'MNQZ25_FUT_CME.scid');
  for (const i of [100, 7_000, 14_000]) patch(mnq, i, 20, new Uint8Array(new Float32Array([12_345.1]).buffer));
  patch(join(scid, 'MESZ25_FUT_CME.scid'), 9_000, 20, new Uint8Array(new Float32Array([6_001.13]).buffer));
  db = await CompactorDb.open({ threads: 2 });
});
afterAll(async () => {
  await db.close();
  rmSync(root, { recursive: true, force: true });
});

const task = (dataDir: string, s: string, k: number, chunkBytes?: number): BackfillFileTask => ({
  kind: 'backfill-file', dataDir, file: join(scid, `${s}_FUT_CME.scid`), symbol: s, symbolId: k + 1, tickSize: 0.25, startMicros: null, endMicros: null, chunkBytes,
});

/** Per hour file of a symbol: name, rows and an order-independent hash of every column of every row. */
async function contents(dataDir: string, kind: 'ticks' | 'bars', symbol: string): Promise<string[]> {
  const files = await resolvePartitionFiles(dataDir, kind, symbol);
  const out: string[] = [];
  for (const f of files) {
    const cols = kind === 'ticks' ? 'ts, ts_ms, price, size, bid, ask, side, source, seq, flags, src_index' : 'ts, open, high, low, close, volume, trades, buy_volume, sell_volume, vwap';
    const r = await db.exclusive((c) => CompactorDb.rows(c, `SELECT count(*)::VARCHAR, sum(hash(${cols})::HUGEINT)::VARCHAR FROM ${readParquetSql(f)}`));
    out.push(`${f.slice(dataDir.length)} ${(r[0] as unknown[]).join(' ')}`);
  }
  return out;
}

/** Bytes of every quarantine and gap day file. */
function stores(dataDir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const d of ['quarantine', 'gaps']) {
    let names: string[] = [];
    try { names = readdirSync(join(dataDir, d)).filter((n) => n.endsWith('.tpq') || n.endsWith('.tpg')); } catch { names = []; }
    // entries carry their arrival time (Date.now()): compare everything but that last f64 of each 80-byte entry
    for (const n of names) {
      const b = readFileSync(join(dataDir, d, n));
      const parts: string[] = [];
      for (let o = 16; o + 80 <= b.length; o += 80) parts.push(b.subarray(o, o + 72).toString('hex'));
      out[`${d}/${n}`] = parts.sort().join(',');
    }
  }
  return out;
}

const summary = (r: BackfillFileResult): unknown => ({ ...r, errors: r.errors.map((e) => e.code) });

describe('backfill on one thread, file after file', () => {
  test('files chained by onDecoded (the next decodes while the previous hours are written), small reads: same results, rows, bars and store entries as one file at a time', async () => {
    const one = join(root, 'one');
    const chained = join(root, 'chained');
    mkdirSync(one);
    mkdirSync(chained);
    const alone: BackfillFileResult[] = [];
    for (let k = 0; k < SYMBOLS.length; k++) alone.push(await runBackfillFile(task(one, SYMBOLS[k] as string, k), db));

    const events: string[] = [];
    const pending: Promise<BackfillFileResult>[] = [];
    let decodedCalls = 0;
    for (let k = 0; k < SYMBOLS.length; k++) {
      let decoded!: () => void;
      const next = new Promise<void>((resolve) => { decoded = resolve; });
      let first = true;
      const r = runBackfillFile(task(chained, SYMBOLS[k] as string, k, 64 * 1024), db, {
        onKept: () => { if (first) { first = false; events.push(`kept ${k}`); } },
        onDecoded: () => { decodedCalls++; events.push(`decoded ${k}`); decoded(); },
      });
      void r.then(() => events.push(`done ${k}`));
      pending.push(r);
      await Promise.race([next, r]);
    }
    const together = await Promise.all(pending);

    expect(decodedCalls).toBe(SYMBOLS.length);
    // the overlap happened: file k+1 kept ticks before file k's writes were finished
    for (let k = 0; k + 1 < SYMBOLS.length; k++) {
      expect(events.indexOf(`decoded ${k}`)).toBeLessThan(events.indexOf(`kept ${k + 1}`));
      expect(events.indexOf(`kept ${k + 1}`)).toBeLessThan(events.indexOf(`done ${k}`));
    }
    let records = 0;
    for (let k = 0; k < SYMBOLS.length; k++) {
      const a = alone[k] as BackfillFileResult;
      const b = together[k] as BackfillFileResult;
      expect(a.errors).toEqual([]);
      expect(a.hoursWritten).toBe(3);
      expect(summary({ ...b, file: a.file })).toEqual(summary(a));
      records += a.records;
      expect(a.rowsWritten).toBe(a.kept);
      expect(a.kept + a.rejected).toBe(a.records);
    }
    expect(records).toBe(45_000);
    expect((alone[0] as BackfillFileResult).rejected).toBe(3);
    expect((alone[2] as BackfillFileResult).rejected).toBe(1);
    for (const s of SYMBOLS) {
      const ticks = await contents(one, 'ticks', s);
      expect(ticks).toHaveLength(3);
      expect(await contents(chained, 'ticks', s)).toEqual(ticks);
      expect(await contents(chained, 'bars', s)).toEqual(await contents(one, 'bars', s));
    }
    const q = stores(one);
    expect(Object.keys(q).length).toBeGreaterThan(0);
    expect(stores(chained)).toEqual(q);
  }, 60_000);

  test('a smaller file after a bigger one on reused columns holds only its own rows; a rerun adds nothing', async () => {
    const dir = join(root, 'reuse');
    mkdirSync(dir);
    const big = await runBackfillFile(task(dir, 'MNQZ25', 0), db);
    const small = await runBackfillFile(task(dir, 'NQZ25', 1), db);
    expect(big.kept).toBeGreaterThan(small.kept);
    for (const [s, r] of [['MNQZ25', big], ['NQZ25', small]] as const) {
      const files = await resolvePartitionFiles(dir, 'ticks', s);
      const n = await db.exclusive((c) => CompactorDb.rows(c, `SELECT count(*)::DOUBLE, count(DISTINCT src_index)::DOUBLE FROM ${readParquetSql(files)}`));
      expect((n[0] as unknown[]).map(Number)).toEqual([r.kept, r.kept]);
    }
    const again = await runBackfillFile(task(dir, 'NQZ25', 1), db);
    expect(again.hoursSkipped).toBe(small.hoursWritten - 1); // the newest hour is not marked done: rewritten
    expect(again.hoursWritten).toBe(1);
    const files = await resolvePartitionFiles(dir, 'ticks', 'NQZ25');
    const n = await db.exclusive((c) => CompactorDb.rows(c, `SELECT count(*)::DOUBLE FROM ${readParquetSql(files)}`));
    expect(Number((n[0] as unknown[])[0])).toBe(small.kept);
  }, 60_000);
});
