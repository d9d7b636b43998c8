/**
 * `tickpipe inspect`: the real CLI as a child process (`node bin/tickpipe.js inspect …`) on files made
 * by the project's writers and on the real Sierra recording, every JSON field checked against values
 * computed here independently from the writers' inputs (BigInt sums, a Map-based book, Date-based ISO
 * formatting). Plus in-process checks of the streaming edge cases (read boundaries, notional rounding,
 * legacy time, bar files).
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { isEngineError } from '../../engine/errors.ts';
import { DepthWriter } from '../../workers/sierra/depth-writer.ts';
import { ScidSide, ScidSubTrade } from '../../workers/sierra/scid-format.ts';
import { ScidWriter } from '../../workers/sierra/scid-writer.ts';
import { type DepthInspection, type ScidInspection, f32Shortest, inspectFile } from './inspect.ts';

const BIN = fileURLToPath(new URL('../../bin/tickpipe.js', import.meta.url));
const FIXTURE = fileURLToPath(new URL('../../test/fixtures/sierra/ESM23-excerpt.scid', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'tickpipe-inspect-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface CliResult { code: number; stdout: string; stderr: string }

function cli(...args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd: dir, encoding: 'utf8', env: { ...process.env, TICKPIPE_DEBUG: '' } }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

async function inspectJson<T>(path: string): Promise<T> {
  const r = await cli('inspect', '--json', path);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as T;
}

/** ISO 8601 UTC with 6 fractional digits, computed without engine/clock. */
function isoMicros(us: number): string {
  const ms = Math.floor(us / 1000);
  return `${new Date(ms).toISOString().slice(0, 23)}${String(us - ms * 1000).padStart(3, '0')}Z`;
}

/** Exact Σ price × size, in µ-units of price (prices here have at most 6 decimals), rounded half up to cents. */
function notionalOf(prices: number[], sizes: number[]): number {
  let micro = 0n;
  for (let i = 0; i < prices.length; i++) micro += BigInt(Math.round(prices[i]! * 1e6)) * BigInt(sizes[i]!);
  const cents = (micro + 5000n) / 10000n;
  return Number(cents) / 100;
}

/** mulberry32: reproducible inputs. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    let t = (s = (s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Tape {
  ts: number[]; price: number[]; bid: number[]; ask: number[]; size: number[]; side: number[]; sub: number[];
}

/** A tick tape with quarter ticks, cent prices (f32-inexact), 1/64 prices, bundles, same-ms counters, side 0. */
function makeTape(n: number, seed: number): Tape {
  const r = rng(seed);
  const t: Tape = { ts: [], price: [], bid: [], ask: [], size: [], side: [], sub: [] };
  let us = Date.UTC(2025, 10, 11, 14, 30) * 1000;
  let bidTicks = 84_000;
  while (t.ts.length < n) {
    us = (Math.floor(us / 1000) + 1 + Math.floor(r() * 50)) * 1000;
    const side = r() < 0.45 ? ScidSide.BUY : r() < 0.9 ? ScidSide.SELL : ScidSide.NONE;
    const bid = bidTicks * 0.25, ask = (bidTicks + 1) * 0.25;
    const kind = r();
    if (kind < 0.08 && n - t.ts.length >= 2) {
      const len = Math.min(n - t.ts.length, 2 + Math.floor(r() * 4));
      for (let k = 0; k < len; k++) {
        t.ts.push(us + k); t.bid.push(bid); t.ask.push(ask); t.side.push(side);
        t.price.push(side === ScidSide.SELL ? bid - 0.25 * k : ask + 0.25 * k);
        t.size.push(1 + Math.floor(r() * 30));
        t.sub.push(k === 0 ? ScidSubTrade.FIRST : k === len - 1 ? ScidSubTrade.LAST : ScidSubTrade.MIDDLE);
      }
      continue;
    }
    let price = side === ScidSide.SELL ? bid : ask;
    if (kind < 0.1) price = Number((21000.01 + Math.floor(r() * 100) / 100).toFixed(2)); // whole cents, not exact in f32
    else if (kind < 0.11) price = 110 + Math.floor(r() * 64) / 64; // 1/64 ticks, exact in f32, not whole cents
    t.ts.push(us); t.price.push(price); t.bid.push(bid); t.ask.push(ask); t.side.push(side); t.sub.push(ScidSubTrade.NONE);
    t.size.push(r() < 0.02 ? 100_000 + Math.floor(r() * 1_000_000) : 1 + Math.floor(r() * 10));
    if (r() < 0.1) bidTicks += r() < 0.5 ? 1 : -1;
  }
  return t;
}

function writeTape(path: string, t: Tape): void {
  const w = ScidWriter.open(path, { bufferRecords: 1000 });
  for (let i = 0; i < t.ts.length; i++) w.trade(t.ts[i]!, t.price[i]!, t.bid[i]!, t.ask[i]!, t.size[i]!, t.side[i]!, t.sub[i]!, 1);
  w.closeSync();
}

function expectedScid(t: Tape): Record<string, unknown> {
  const n = t.ts.length;
  let atBid = 0, atAsk = 0, sub = 0, vol = 0;
  for (let i = 0; i < n; i++) {
    vol += t.size[i]!;
    if (t.side[i] === ScidSide.SELL) atBid++;
    if (t.side[i] === ScidSide.BUY) atAsk++;
    if (t.sub[i] === ScidSubTrade.FIRST || t.sub[i] === ScidSubTrade.LAST) sub++;
  }
  return {
    kind: 'scid', records: n, firstTs: isoMicros(t.ts[0]!), lastTs: isoMicros(t.ts[n - 1]!),
    priceMin: Math.min(...t.price), priceMax: Math.max(...t.price), volume: vol, atBid, atAsk, subTrades: sub,
    notional: notionalOf(t.price, t.size),
  };
}

// CLI blocks run their tests concurrently: each test is a child process, mostly waiting on start-up.
describe.concurrent('inspect .scid (CLI)', () => {
  const tape = makeTape(20_000, 42);
  const path = join(dir, 'MNQZ25_FUT_CME.scid');
  beforeAll(() => writeTape(path, tape));

  test('every contract field matches the writer inputs', async () => {
    const j = await inspectJson<ScidInspection>(path);
    expect(j).toMatchObject(expectedScid(tape));
    // Cross-check the sample really exercises what it should.
    expect(j.subTrades).toBeGreaterThan(100);
    expect(j.atBid + j.atAsk).toBeLessThan(j.records);
    expect(Number.isInteger(j.notional * 100) || Math.abs(j.notional * 100 - Math.round(j.notional * 100)) < 1e-6).toBe(true);
    // Extras.
    const middles = tape.sub.filter((s) => s === ScidSubTrade.MIDDLE).length;
    expect(j).toMatchObject({
      file: path, fileBytes: 56 + 40 * 20_000, headerBytes: 56, recordBytes: 40, version: 1, recordMode: 'tick',
      timeEncoding: 'int64', trailingBytes: 0, numTrades: 20_000, subTradeMiddle: middles, unknownOpenBits: 0,
      invalidPrices: 0, badTimestamps: 0, tsBackwards: 0, symbol: 'MNQZ25',
    });
    expect(j.subTradeFirst + j.subTradeLast).toBe(j.subTrades);
  });

  test('the readable summary is aligned text with the same figures', async () => {
    const r = await cli('inspect', path);
    expect(r.code).toBe(0);
    const exp = expectedScid(tape);
    expect(r.stdout).toMatch(/^ {2}kind +scid \(Sierra Chart intraday, tick records, int64 DateTime\)$/m);
    expect(r.stdout).toContain(`records        ${(20_000).toLocaleString('en-US')}`);
    expect(r.stdout).toContain(`first          ${String(exp.firstTs)}`);
    expect(r.stdout).toContain(`last           ${String(exp.lastTs)}`);
    expect(r.stdout).toContain(`volume         ${(exp.volume as number).toLocaleString('en-US')}`);
    expect(r.stdout).toContain((exp.notional as number).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 }));
    expect(() => JSON.parse(r.stdout) as unknown).toThrow();
  });

  test('the real Sierra recording (ESM23 excerpt), exactly', async () => {
    const j = await inspectJson<ScidInspection>(FIXTURE);
    expect(j).toMatchObject({
      kind: 'scid', records: 10, firstTs: '2023-02-21T20:37:19.026000Z', lastTs: '2023-02-21T20:40:52.682001Z',
      priceMin: 4047, priceMax: 4048.5, volume: 10, atBid: 8, atAsk: 2, subTrades: 2,
      notional: 4048 + 4048 + 4047.5 + 4047.75 + 4047.75 + 4048 + 4047 + 4048 + 4048.5 + 4048.25,
      headerBytes: 56, recordBytes: 40, version: 1, utcStartIndex: 0, recordMode: 'tick', timeEncoding: 'int64',
      trailingBytes: 0, numTrades: 10, subTradeFirst: 1, subTradeLast: 1, subTradeMiddle: 0, unknownOpenBits: 0,
      outsideQuote: 1, badTimestamps: 0, tsBackwards: 0, symbol: 'ESM23',
    });
    expect(j.notional).toBe(40478.75);
    expect(j.priceScale).toMatchObject({ tickSize: 0.25, multiplier: 1 });
  });

  test('a truncated last record is a trailing partial, not an error', async () => {
    const p = join(dir, 'partial.scid');
    const t = makeTape(5, 3);
    const w = ScidWriter.open(p, { raw: true });
    for (let i = 0; i < 5; i++) w.trade(t.ts[i]!, t.price[i]!, t.bid[i]!, t.ask[i]!, t.size[i]!, t.side[i]!, t.sub[i]!, 1);
    w.rawBytes(new Uint8Array(17).fill(0x41));
    w.closeSync();
    const j = await inspectJson<ScidInspection>(p);
    expect(j).toMatchObject({ ...expectedScid(t), trailingBytes: 17, fileBytes: 56 + 5 * 40 + 17 });
  });

  test('a header-only file is valid and empty: records 0, no times or prices', async () => {
    const p = join(dir, 'empty-body.scid');
    ScidWriter.open(p).closeSync();
    const j = await inspectJson<ScidInspection>(p);
    expect(j).toMatchObject({
      kind: 'scid', records: 0, firstTs: null, lastTs: null, priceMin: null, priceMax: null, volume: 0, atBid: 0,
      atAsk: 0, subTrades: 0, notional: 0, trailingBytes: 0,
    });
  });
});

// ---- depth ------------------------------------------------------------------------------------------

interface DepthRec { ts: number; cmd: number; flags: number; orders: number; price: number; qty: number }

/** Snapshot, then random batches of updates (some deletes of missing levels, MODIFY to 0, several per ts). */
function makeDepth(batches: number, seed: number): DepthRec[] {
  const r = rng(seed);
  const out: DepthRec[] = [];
  let ts = Date.UTC(2025, 10, 11, 14, 30) * 1000 + 123;
  const push = (cmd: number, price: number, qty: number, eob: boolean): void => {
    out.push({ ts, cmd, flags: eob ? 1 : 0, orders: qty > 0 ? 1 + (qty >> 3) : 0, price, qty });
  };
  const snapshot = (mid: number): void => {
    push(1, 0, 0, false);
    for (let i = 0; i < 10; i++) push(2, (mid - i) * 0.25, 5 + i, false);
    for (let i = 0; i < 10; i++) push(3, (mid + 1 + i) * 0.25, 6 + i, i === 9);
  };
  snapshot(84_000);
  for (let b = 0; b < batches; b++) {
    if (r() < 0.7) ts += 1 + Math.floor(r() * 5000);
    if (r() < 0.01) { snapshot(84_000 + Math.floor(r() * 8) - 4); continue; }
    const k = 1 + Math.floor(r() * 4);
    for (let i = 0; i < k; i++) {
      const bidSide = r() < 0.5;
      const off = Math.floor(r() * 14);
      const price = (bidSide ? 84_000 - off + 2 : 84_001 + off - 2) * 0.25;
      const c = r();
      const cmd = c < 0.3 ? (bidSide ? 2 : 3) : c < 0.8 ? (bidSide ? 4 : 5) : (bidSide ? 6 : 7);
      const qty = cmd >= 6 ? 0 : r() < 0.1 ? 0 : 1 + Math.floor(r() * 50);
      push(cmd, price, qty, i === k - 1);
    }
  }
  // A trailing batch without its end-of-batch record: staged, never applied.
  push(2, 84_005 * 0.25, 99, false);
  return out;
}

/** The book after replaying whole batches, with a Map per side (independent of engine/book). */
function replay(recs: DepthRec[]): { bids: Map<number, number>; asks: Map<number, number> } {
  const bids = new Map<number, number>(), asks = new Map<number, number>();
  let staged: DepthRec[] = [];
  for (const x of recs) {
    staged.push(x);
    if ((x.flags & 1) === 0) continue;
    for (const s of staged) {
      if (s.cmd === 1) { bids.clear(); asks.clear(); continue; }
      const side = s.cmd % 2 === 0 ? bids : asks;
      if (s.cmd >= 6 || s.qty === 0) side.delete(s.price);
      else side.set(s.price, s.qty);
    }
    staged = [];
  }
  return { bids, asks };
}

function writeDepth(path: string, recs: DepthRec[]): void {
  const w = DepthWriter.toFile(path);
  for (const x of recs) w.record(x.ts, x.cmd, x.flags, x.orders, x.price, x.qty);
  w.close();
}

describe.concurrent('inspect .depth (CLI)', () => {
  const recs = makeDepth(3000, 9);
  const path = join(dir, 'MNQZ25_FUT_CME.2025-11-11.depth');
  beforeAll(() => writeDepth(path, recs));

  test('commands and the replayed book match the writer inputs', async () => {
    const j = await inspectJson<DepthInspection>(path);
    const count = (c: number): number => recs.filter((x) => x.cmd === c).length;
    const book = replay(recs);
    expect(j).toMatchObject({
      kind: 'depth', records: recs.length, firstTs: isoMicros(recs[0]!.ts), lastTs: isoMicros(recs[recs.length - 1]!.ts),
      commands: {
        clearBook: count(1), addBid: count(2), addAsk: count(3), modifyBid: count(4), modifyAsk: count(5), deleteBid: count(6), deleteAsk: count(7),
      },
      bestBid: Math.max(...book.bids.keys()), bestAsk: Math.min(...book.asks.keys()),
      bidLevels: book.bids.size, askLevels: book.asks.size,
      headerBytes: 64, recordBytes: 24, trailingBytes: 0, stagedRecords: 1, invalidCommands: 0, noneCommands: 0,
      batches: recs.filter((x) => (x.flags & 1) !== 0).length, symbol: 'MNQZ25',
      bestBidQuantity: book.bids.get(Math.max(...book.bids.keys())), bestAskQuantity: book.asks.get(Math.min(...book.asks.keys())),
    });
    expect(j.commands.clearBook).toBeGreaterThan(1);
    expect(Object.keys(j.commands).sort()).toEqual(['addAsk', 'addBid', 'clearBook', 'deleteAsk', 'deleteBid', 'modifyAsk', 'modifyBid']);
  });

  test('the kind comes from the magic bytes, not the extension', async () => {
    const asScid = join(dir, 'really-depth.scid');
    writeFileSync(asScid, readFileSync(path));
    const d = await inspectJson<DepthInspection>(asScid);
    expect(d.kind).toBe('depth');
    expect(d.records).toBe(recs.length);
    const asDepth = join(dir, 'really-ticks.depth');
    writeFileSync(asDepth, readFileSync(FIXTURE));
    const s = await inspectJson<ScidInspection>(asDepth);
    expect(s).toMatchObject({ kind: 'scid', records: 10, notional: 40478.75 });
  });

  test('readable summary', async () => {
    const r = await cli('inspect', path);
    expect(r.code).toBe(0);
    const book = replay(recs);
    expect(r.stdout).toMatch(/^ {2}kind +depth \(Sierra Chart market depth\)$/m);
    expect(r.stdout).toContain(`best bid  ${Math.max(...book.bids.keys())} × `);
    expect(r.stdout).toContain(`${book.bids.size} bid / ${book.asks.size} ask`);
  });
});

// ---- errors -----------------------------------------------------------------------------------------

describe.concurrent('inspect errors: coded one-line message naming the file, exit 1, no stack trace', () => {
  const cases: Array<{ name: string; make: () => string; code: string; text: RegExp }> = [
    { name: 'missing file', make: () => join(dir, 'no-such-file.scid'), code: 'ENGINE_ERR_FILE_IO', text: /no such file/ },
    { name: 'a directory', make: () => { const p = join(dir, 'a-dir.scid'); mkdirSync(p, { recursive: true }); return p; }, code: 'ENGINE_ERR_FILE_IO', text: /is a directory/ },
    { name: 'empty .scid', make: () => { const p = join(dir, 'empty.scid'); writeFileSync(p, ''); return p; }, code: 'ENGINE_ERR_SCID_FORMAT', text: /empty file/ },
    { name: 'empty .depth', make: () => { const p = join(dir, 'empty.depth'); writeFileSync(p, ''); return p; }, code: 'ENGINE_ERR_DEPTH_FORMAT', text: /empty file/ },
    { name: 'bad magic', make: () => { const p = join(dir, 'zip.scid'); writeFileSync(p, Buffer.from('PK\x03\x04 this is a zip, not Sierra Chart data')); return p; }, code: 'ENGINE_ERR_SCID_FORMAT', text: /not a Sierra Chart file: magic is "PK\\x03\\x04"/ },
    { name: 'shorter than its header', make: () => { const p = join(dir, 'short.scid'); writeFileSync(p, readFileSync(FIXTURE).subarray(0, 30)); return p; }, code: 'ENGINE_ERR_SCID_FORMAT', text: /shorter than its 56-byte header/ },
    { name: 'bad RecordSize', make: () => { const p = join(dir, 'recsize.scid'); ScidWriter.open(p, { raw: true, rawHeader: { recordBytes: 44 } }).closeSync(); return p; }, code: 'ENGINE_ERR_SCID_FORMAT', text: /RecordSize 44/ },
    { name: 'depth header too short', make: () => { const p = join(dir, 'short.depth'); const w = DepthWriter.toFile(p, { raw: true }); w.header({ length: 40 }); w.close(); return p; }, code: 'ENGINE_ERR_DEPTH_FORMAT', text: /beyond the end of the file/ },
  ];
  for (const c of cases) {
    test(c.name, async () => {
      const p = c.make();
      const r = await cli('inspect', '--json', p);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      const lines = r.stderr.trimEnd().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]!.startsWith(`tickpipe: ${c.code}: `)).toBe(true);
      expect(lines[0]).toContain(p);
      expect(lines[0]).toMatch(c.text);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    });
  }

  test('--help', async () => {
    const r = await cli('inspect', '--help');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Usage: tickpipe inspect [options] <file>');
    expect(r.stdout).toContain('--json');
    expect(r.stdout).toContain('--tick-size <n>');
  });
});

// ---- in-process edge cases --------------------------------------------------------------------------

describe('inspectFile (in-process)', () => {
  test('tiny reads give the same result as one big read (bundles and prices across read boundaries)', () => {
    const t = makeTape(3001, 77);
    const p = join(dir, 'chunks.scid');
    writeTape(p, t);
    const big = inspectFile(p);
    for (const chunkBytes of [40, 120, 1000, 4040]) expect(inspectFile(p, { chunkBytes })).toEqual(big);
    const d = makeDepth(500, 5);
    const dp = join(dir, 'chunks.depth');
    writeDepth(dp, d);
    const dbig = inspectFile(dp);
    for (const chunkBytes of [24, 100, 2400]) expect(inspectFile(dp, { chunkBytes })).toEqual(dbig);
  });

  test('notional is exact to the cent for f32-inexact cent prices, 1/64 prices and big volumes', () => {
    const p = join(dir, 'notional.scid');
    const w = ScidWriter.open(p);
    const T = Date.UTC(2025, 0, 2) * 1000;
    // 4512.3 is stored as 4512.2998046875: naive f32 × volume would give 4512299.80 for 1000 lots.
    w.trade(T, 4512.3, 4512.25, 4512.5, 1000, 1, 0);
    w.trade(T + 1, 110.015625, 110, 110.03125, 3, 2, 0); // 330.046875 → 330.05
    w.trade(T + 2, 0.07, 0.06, 0.08, 4_000_000_000, 1, 0); // 280,000,000.00
    w.closeSync();
    const r = inspectFile(p) as ScidInspection;
    expect(r.notional).toBe(notionalOf([4512.3, 110.015625, 0.07], [1000, 3, 4_000_000_000]));
    expect(r.notional).toBe(284_512_630.05);
    expect(r.priceMax).toBe(4512.3);
    expect(r.volume).toBe(1000 + 3 + 4_000_000_000);
  });

  test('legacy float64 DateTime files', () => {
    const p = join(dir, 'legacy.scid');
    const t = makeTape(50, 8);
    const w = ScidWriter.open(p, { legacyTime: true });
    for (let i = 0; i < 50; i++) w.trade(t.ts[i]!, t.price[i]!, t.bid[i]!, t.ask[i]!, t.size[i]!, t.side[i]!, t.sub[i]!, 1);
    w.closeSync();
    const r = inspectFile(p) as ScidInspection;
    expect(r).toMatchObject({ ...expectedScid(t), timeEncoding: 'float64' });
  });

  test('bar files: price range from Low/High, no sub-trades', () => {
    const p = join(dir, 'bars.scid');
    const w = ScidWriter.open(p);
    const T = Date.UTC(2025, 0, 2, 15) * 1000;
    w.bar(T, 100, 101, 99.5, 100.5, 10, 4, 6, 4);
    w.bar(T + 60_000_000, 100.5, 102.25, 100, 102, 20, 8, 0, 20);
    w.closeSync();
    const r = inspectFile(p) as ScidInspection;
    expect(r).toMatchObject({ recordMode: 'bar', records: 2, priceMin: 99.5, priceMax: 102.25, volume: 30, atBid: 1, atAsk: 2, subTrades: 0, notional: 100.5 * 10 + 102 * 20 });
  });

  test('errors are coded EngineErrors', () => {
    let err: unknown = null;
    try { inspectFile(join(dir, 'missing.depth')); } catch (e) { err = e; }
    expect(isEngineError(err, 'ENGINE_ERR_FILE_IO')).toBe(true);
  });

  test('f32Shortest prints the decimal a trader typed', () => {
    expect(f32Shortest(Math.fround(4512.3))).toBe(4512.3);
    expect(f32Shortest(Math.fround(21000.07))).toBe(21000.07);
    expect(f32Shortest(110.015625)).toBe(110.015625);
    expect(f32Shortest(0.1)).toBe(0.1); // not an f32 value: unchanged
  });
});
