/**
 * SimFiles (simulator → Sierra files) in-process, and `tickpipe gen` as a real child process, with every
 * file checked by the project's decoders or by `tickpipe inspect`.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, test } from 'vitest';
import { OrderBook } from '../../engine/book/order-book.ts';
import { isEngineError } from '../../engine/errors.ts';
import { type ScidInspection, inspectFile } from '../../scripts/commands/inspect.ts';
import { DEPTH_HEADER_BYTES, DEPTH_RECORD_BYTES } from '../sierra/depth-format.ts';
import { decodeScidColumns } from '../sierra/scid-decoder.ts';
import { TradeFlag } from '../../schemas/records.ts';
import { DEFAULT_SYMBOLS } from './market-sim.ts';
import { SIM_TRADES_PER_BASE_RATE, SimFiles, depthFileName, expectedTicksPerSecond, runLive, scidFileName, simSymbolsFor } from './sim-files.ts';

const BIN = fileURLToPath(new URL('../../bin/tickpipe.js', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'tickpipe-simfiles-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let nDirs = 0;
const newDir = (): string => join(root, `d${nDirs++}`);
const T0 = Date.UTC(2025, 10, 11, 14, 30) * 1000;

interface CliResult { code: number; stdout: string; stderr: string }
function cli(...args: string[]): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { cwd: root, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

function scidFiles(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.endsWith('.scid')).sort().map((f) => join(dir, f));
}

/** Every sub-trade bundle in the file is FIRST, MIDDLE*, LAST (a cut at maxTrades must not leave an orphan). */
function expectWellFormedBundles(path: string): number {
  const c = decodeScidColumns(new Uint8Array(readFileSync(path)), { fileName: path });
  let open = false;
  for (let i = 0; i < c.count; i++) {
    const f = c.flags[i]!;
    if ((f & TradeFlag.SUB_FIRST) !== 0) { expect(open).toBe(false); open = true; }
    else if ((f & TradeFlag.SUB_LAST) !== 0) { expect(open).toBe(true); open = false; }
    if (i > 0) expect(c.tsMicros[i]!).toBeGreaterThanOrEqual(c.tsMicros[i - 1]!);
  }
  expect(open).toBe(false);
  return c.count;
}

/** Replay a depth file into a book (engine/book) by reading its records. */
function replayDepth(path: string, book: OrderBook): number {
  const b = readFileSync(path);
  const n = (b.length - DEPTH_HEADER_BYTES) / DEPTH_RECORD_BYTES;
  expect(Number.isInteger(n)).toBe(true);
  for (let i = 0, p = DEPTH_HEADER_BYTES; i < n; i++, p += DEPTH_RECORD_BYTES) {
    const ts = b.readInt32LE(p + 4) * 4294967296 + b.readUInt32LE(p) - 2_209_161_600_000_000;
    book.apply(ts, b.readUInt8(p + 8), b.readUInt8(p + 9), b.readUInt16LE(p + 10), b.readFloatLE(p + 12), b.readUInt32LE(p + 16));
  }
  return n;
}

describe('SimFiles', () => {
  test('file names as Sierra writes them', () => {
    expect(scidFileName('MNQZ25')).toBe('MNQZ25_FUT_CME.scid');
    expect(depthFileName('MNQZ25', Date.UTC(2025, 10, 11, 23, 59, 59, 999) * 1000 + 999)).toBe('MNQZ25_FUT_CME.2025-11-11.depth');
    expect(depthFileName('MNQZ25', Date.UTC(2025, 10, 12) * 1000)).toBe('MNQZ25_FUT_CME.2025-11-12.depth');
  });

  test('writes valid files whose contents match the stats, depth files included', () => {
    const dir = newDir();
    const f = new SimFiles({ outDir: dir, startMicros: T0, seed: 3 });
    const n = f.runUntil(T0 + 20_000_000);
    f.close();
    const s = f.stats;
    expect(n).toBe(s.trades);
    expect(s.trades).toBeGreaterThan(5000);
    expect(s.files.filter((x) => x.kind === 'scid').map((x) => basename(x.path))).toEqual(DEFAULT_SYMBOLS.map((d) => scidFileName(d.symbol)));
    let trades = 0;
    for (const fs of s.files.filter((x) => x.kind === 'scid')) {
      const r = inspectFile(fs.path) as ScidInspection;
      expect(r.records).toBe(fs.records);
      expect(r.firstTs).toBe(new Date(fs.firstTsMicros / 1000).toISOString().replace('Z', '000Z'));
      expect(r.tsBackwards).toBe(0);
      expect(r.unknownOpenBits).toBe(0);
      expect(r.priceScale?.multiplier).toBe(1);
      trades += expectWellFormedBundles(fs.path);
    }
    expect(trades).toBe(s.trades);
    let depth = 0;
    for (const fs of s.files.filter((x) => x.kind === 'depth')) {
      const r = inspectFile(fs.path);
      expect(r.kind).toBe('depth');
      if (r.kind !== 'depth') continue;
      expect(r.records).toBe(fs.records);
      expect(r.commands.clearBook).toBe(1); // the simulator's snapshot at start; none due in 20 s
      expect(r.stagedRecords).toBe(0);
      expect(r.bidLevels).toBeGreaterThan(0);
      expect(r.askLevels).toBeGreaterThan(0);
      expect(r.crossed).toBe(false);
      depth += r.records;
    }
    expect(depth).toBe(s.depthRecords);
    expect(s.firstTsMicros).toBeGreaterThanOrEqual(T0);
    expect(s.lastTsMicros).toBeLessThan(T0 + 20_000_000);
  });

  test('maxTrades writes exactly that many trades and cuts sweeps cleanly', () => {
    for (const max of [0, 1, 977, 5000]) {
      const dir = newDir();
      const f = new SimFiles({ outDir: dir, startMicros: T0, seed: 11, maxTrades: max });
      f.runUntil(Number.POSITIVE_INFINITY);
      expect(f.done).toBe(true);
      f.close();
      expect(f.stats.trades).toBe(max);
      let total = 0;
      for (const p of scidFiles(dir)) total += expectWellFormedBundles(p);
      expect(total).toBe(max);
      // no depth written after the last trade
      if (max > 0) for (const d of f.stats.files.filter((x) => x.kind === 'depth')) expect(d.lastTsMicros).toBeLessThanOrEqual(f.stats.lastTsMicros);
    }
    // A limit that falls inside a sweep (found by scanning): the last record is re-marked LAST.
    const probe = new SimFiles({ outDir: newDir(), startMicros: T0, seed: 11, maxTrades: 3000, depth: false });
    probe.runUntil(Number.POSITIVE_INFINITY);
    probe.close();
    const sym = probe.stats.files.find((x) => x.records > 0)!;
    const cols = decodeScidColumns(new Uint8Array(readFileSync(sym.path)), { fileName: sym.path });
    let cut = -1; // global index of a MIDDLE record
    for (let i = 0; i < cols.count && cut < 0; i++) if ((cols.flags[i]! & TradeFlag.SUB_MIDDLE) !== 0) cut = i;
    expect(cut).toBeGreaterThan(0);
    // Count trades of all symbols up to and including that record's timestamp.
    const limitTs = cols.tsMicros[cut]!;
    let limit = 0;
    for (const p of scidFiles(probe.outDir)) {
      const c = decodeScidColumns(new Uint8Array(readFileSync(p)), { fileName: p });
      for (let i = 0; i < c.count; i++) if (c.tsMicros[i]! < limitTs || (p === sym.path && i <= cut)) limit++;
    }
    const dir = newDir();
    const g = new SimFiles({ outDir: dir, startMicros: T0, seed: 11, maxTrades: limit, depth: false });
    g.runUntil(Number.POSITIVE_INFINITY);
    g.close();
    const c2 = decodeScidColumns(new Uint8Array(readFileSync(join(dir, basename(sym.path)))), { fileName: sym.path });
    expect(c2.count).toBe(cut + 1);
    expect(c2.flags[cut]! & TradeFlag.SUB_LAST).toBe(TradeFlag.SUB_LAST);
    expectWellFormedBundles(join(dir, basename(sym.path)));
  });

  test('the same seed and start give the same bytes; another seed does not', () => {
    const run = (seed: number): Map<string, Buffer> => {
      const dir = newDir();
      const f = new SimFiles({ outDir: dir, startMicros: T0, seed, maxTrades: 4000 });
      f.runUntil(Number.POSITIVE_INFINITY);
      f.close();
      return new Map(f.stats.files.map((x) => [x.path.slice(dir.length), readFileSync(x.path)]));
    };
    const a = run(5), b = run(5), c = run(6);
    expect([...a.keys()]).toEqual([...b.keys()]);
    for (const [k, v] of a) expect(Buffer.compare(v, b.get(k)!)).toBe(0);
    expect([...a].some(([k, v]) => Buffer.compare(v, c.get(k)!) !== 0)).toBe(true);
  });

  test('depth files roll at UTC midnight, and each day file replays to the full book on its own', () => {
    const dir = newDir();
    const start = Date.UTC(2025, 10, 11, 23, 59, 30) * 1000;
    const f = new SimFiles({ outDir: dir, startMicros: start, seed: 2, symbols: ['MNQZ25', 'NQZ25'] });
    f.runUntil(start + 60_000_000);
    f.close();
    for (const sym of ['MNQZ25', 'NQZ25']) {
      const d1 = join(f.depthDir, `${sym}_FUT_CME.2025-11-11.depth`);
      const d2 = join(f.depthDir, `${sym}_FUT_CME.2025-11-12.depth`);
      expect(existsSync(d1) && existsSync(d2)).toBe(true);
      const r1 = inspectFile(d1), r2 = inspectFile(d2);
      expect(r1.lastTs! < '2025-11-12T00:00:00.000000Z').toBe(true);
      expect(r2.firstTs! >= '2025-11-12T00:00:00.000000Z').toBe(true);
      // Day 2 starts with a snapshot of the book as it stood.
      const b = readFileSync(d2);
      expect(b.readUInt8(DEPTH_HEADER_BYTES + 8)).toBe(1);
      const both = new OrderBook();
      replayDepth(d1, both);
      replayDepth(d2, both);
      const alone = new OrderBook();
      replayDepth(d2, alone);
      const sa = alone.snapshot(), sb = both.snapshot();
      expect(sa.bids).toEqual(sb.bids);
      expect(sa.asks).toEqual(sb.asks);
      expect(sa.stagedRecords).toBe(0);
    }
  });

  test('ticksPerSecond sets the total rate across symbols', () => {
    const target = 3000;
    const f = new SimFiles({ outDir: newDir(), startMicros: T0, seed: 4, ticksPerSecond: target, depth: false });
    f.runUntil(T0 + 60_000_000);
    f.close();
    const rate = f.stats.trades / 60;
    // 20 seeds measured: 0.996..1.005 of the target over 60 s.
    expect(rate).toBeGreaterThan(target * 0.95);
    expect(rate).toBeLessThan(target * 1.05);
    expect(expectedTicksPerSecond({})).toBeCloseTo(DEFAULT_SYMBOLS.reduce((s, d) => s + d.baseRate, 0) * SIM_TRADES_PER_BASE_RATE, 6);
  });

  test('symbol names resolve to simulator configs', () => {
    const c = simSymbolsFor(['MNQH26', 'NQH26', 'SPY', 'XYZ']);
    expect(c[0]).toMatchObject({ symbol: 'MNQH26', tickSize: 0.25, startPrice: 21000, follows: 'NQH26' });
    expect(c[1]).toMatchObject({ symbol: 'NQH26', tickSize: 0.25 });
    expect(c[2]).toMatchObject({ symbol: 'SPY', tickSize: 0.01 });
    expect(c[3]!.follows).toBeUndefined();
    expect(simSymbolsFor(['MNQZ25'])[0]!.follows).toBeUndefined(); // its leader is not in the list
    const es = simSymbolsFor(['MESZ25', 'ESZ25']);
    expect(es[0]).toMatchObject({ symbol: 'MESZ25', startPrice: 6000, follows: 'ESZ25' });
    expect(es[1]).toMatchObject({ symbol: 'ESZ25', startPrice: 6000, tickSize: 0.25 });
    expect(es[1]!.follows).toBeUndefined();
    for (const bad of [['a/b'], ['X', 'X'], ['']]) {
      let err: unknown = null;
      try { simSymbolsFor(bad); } catch (e) { err = e; }
      expect(isEngineError(err, 'ENGINE_ERR_INVALID_ARG')).toBe(true);
    }
  });

  test('runLive appends in real time, flushes, and stops on abort with the files closed', async () => {
    const dir = newDir();
    const ac = new AbortController();
    const seen: number[] = [];
    const start = Date.now() * 1000 - 2_000_000; // two seconds of history, then live
    const p = runLive({ outDir: dir, startMicros: start, seed: 9, ticksPerSecond: 4000, flushEveryMs: 100, onFlush: (n) => seen.push(n) }, ac.signal);
    const t0 = Date.now();
    // At least 700 ms and three flushes (the timers may run late on a busy machine).
    while (Date.now() - t0 < 700 || seen.length < 3) await new Promise((r) => setTimeout(r, 50));
    // Flushed while running: what is on disk is whole records that inspect reads.
    const mid = scidFiles(dir).reduce((s, x) => s + (inspectFile(x) as ScidInspection).records, 0);
    expect(mid).toBeGreaterThan(4000); // the history at least
    const before = Date.now() * 1000;
    ac.abort(); // the abort listener runs now: writes up to this instant, closes the files
    const after = Date.now() * 1000;
    const s = await p;
    for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeGreaterThanOrEqual(seen[i - 1]!);
    const total = scidFiles(dir).reduce((sum, x) => sum + expectWellFormedBundles(x), 0);
    expect(total).toBe(s.trades);
    expect(s.trades).toBeGreaterThanOrEqual(mid);
    expect(s.lastTsMicros).toBeLessThanOrEqual(after);
    expect(s.lastTsMicros).toBeGreaterThan(before - 100_000); // 4000 trades/s: a trade in the last 0.1 s
  });
});

// ---- the CLI --------------------------------------------------------------------------------------

describe.concurrent('tickpipe gen (CLI)', () => {
  test('--count writes exactly that many trades (checked with tickpipe inspect) and is deterministic for a seed', async () => {
    const [d1, d2, d3] = [newDir(), newDir(), newDir()];
    const args = (d: string, seed: string): string[] => ['gen', '--out', d, '--count', '2500', '--seed', seed, '--start', '2025-11-11T14:30:00Z', '--json'];
    const [r1, r2, r3] = await Promise.all([cli(...args(d1, '7')), cli(...args(d2, '7')), cli(...args(d3, '8'))]);
    for (const r of [r1, r2, r3]) expect(r.code).toBe(0);
    const j = JSON.parse(r1.stdout) as { trades: number; files: Array<{ path: string; kind: string; records: number }> };
    expect(j.trades).toBe(2500);
    const ins = await Promise.all(scidFiles(d1).map(async (p) => {
      const r = await cli('inspect', '--json', p);
      expect(r.code).toBe(0);
      return JSON.parse(r.stdout) as ScidInspection;
    }));
    expect(ins.reduce((s, x) => s + x.records, 0)).toBe(2500);
    expect(ins.every((x) => x.firstTs! >= '2025-11-11T14:30:00.000000Z')).toBe(true);
    for (const f of j.files.filter((x) => x.kind === 'scid')) expect(ins.find((x) => x.file === f.path)?.records).toBe(f.records);
    // Same seed: byte-identical files; another seed: different.
    const names = j.files.map((f) => f.path.slice(d1.length));
    expect(names.some((n) => n.endsWith('.depth'))).toBe(true);
    for (const n of names) expect(Buffer.compare(readFileSync(d1 + n), readFileSync(d2 + n))).toBe(0);
    expect(names.some((n) => !existsSync(d3 + n) || Buffer.compare(readFileSync(d1 + n), readFileSync(d3 + n)) !== 0)).toBe(true);
  });

  test('--duration, --symbols, --rate, --no-depth and the readable summary', async () => {
    const d = newDir();
    const r = await cli('gen', '--out', d, '--symbols', 'MESZ25,ESZ25', '--duration', '30s', '--rate', '1000', '--no-depth', '--start', '2025-11-11T14:30:00Z');
    expect(r.code).toBe(0);
    expect(existsSync(join(d, 'MarketDepthData'))).toBe(false);
    expect(readdirSync(d).sort()).toEqual(['ESZ25_FUT_CME.scid', 'MESZ25_FUT_CME.scid']);
    const total = Number(/total: ([\d,]+) trades, 0 depth records/.exec(r.stdout)?.[1]?.replaceAll(',', ''));
    const fromFiles = scidFiles(d).reduce((s, p) => s + (inspectFile(p) as ScidInspection).records, 0);
    expect(total).toBe(fromFiles);
    expect(total).toBeGreaterThan(30 * 1000 * 0.9); // 20 seeds measured: 0.988..1.011 of the target
    expect(total).toBeLessThan(30 * 1000 * 1.1);
    const es = inspectFile(join(d, 'ESZ25_FUT_CME.scid')) as ScidInspection;
    expect(es.priceMin).toBeGreaterThan(5900); // ES trades at MES's level, not a generic 100
    expect(r.stdout).toMatch(/^ {2}MESZ25_FUT_CME\.scid +[\d,]+ {2}2025-11-11T14:30:\d\d\.\d{6}Z {2}2025-11-11T14:30:\d\d\.\d{6}Z$/m);
  });

  test('--live runs until SIGINT: exit 0, files valid, printed count = what inspect finds', async () => {
    const d = newDir();
    const child = spawn(process.execPath, [BIN, 'gen', '--live', '--out', d, '--rate', '2000', '--seed', '3'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (x: string) => { stdout += x; });
    const started = new Promise<void>((resolve) => {
      child.stderr.setEncoding('utf8').on('data', (x: string) => { stderr += x; if (stderr.includes('Ctrl-C to stop')) resolve(); });
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    await started;
    await new Promise((r) => setTimeout(r, 1500));
    child.kill('SIGINT');
    const code = await exited;
    expect(stderr).toMatch(/gen: live, writing to .* at ~2,000 ticks\/s/);
    expect(code).toBe(0);
    const printed = Number(/total: ([\d,]+) trades, ([\d,]+) depth records/.exec(stdout)?.[1]?.replaceAll(',', ''));
    const printedDepth = Number(/total: ([\d,]+) trades, ([\d,]+) depth records/.exec(stdout)?.[2]?.replaceAll(',', ''));
    expect(printed).toBeGreaterThan(500);
    let found = 0;
    for (const p of scidFiles(d)) found += expectWellFormedBundles(p);
    expect(found).toBe(printed);
    const depthDir = join(d, 'MarketDepthData');
    let depth = 0;
    for (const p of readdirSync(depthDir)) {
      const r = inspectFile(join(depthDir, p));
      expect(r.trailingBytes).toBe(0);
      depth += r.records;
    }
    expect(depth).toBe(printedDepth);
  });

  test('--help, and bad options are coded errors', async () => {
    const [h, bad, bad2] = await Promise.all([cli('gen', '--help'), cli('gen', '--out', newDir(), '--duration', '10 parsecs'), cli('gen', '--out', newDir(), '--symbols', 'A/B')]);
    expect(h.code).toBe(0);
    for (const o of ['--out <dir>', '--symbols <list>', '--start <time>', '--duration <d>', '--count <n>', '--rate <n>', '--seed <n>', '--no-depth', '--live']) expect(h.stdout).toContain(o);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/^tickpipe: ENGINE_ERR_INVALID_ARG: --duration must look like 30s, 10m, 1h or 2d .*"10 parsecs"\n$/);
    expect(bad2.code).toBe(1);
    expect(bad2.stderr).toMatch(/^tickpipe: ENGINE_ERR_INVALID_ARG: not a usable symbol name: "A\/B"\n$/);
  });
});
