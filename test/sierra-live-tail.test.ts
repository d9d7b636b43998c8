/**
 * Live tail, end to end through real threads: the simulator appends to .scid and .depth files while a
 * Sierra source worker tails them into a ring; the worker is killed (terminated) and restarted by the
 * supervisor several times mid-stream; the consumer on this thread must see every record exactly once,
 * in file order, for every file.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { afterEach, expect, test } from 'vitest';
import { IngestProgress } from '../engine/ingest/progress.ts';
import { createRing, RingReader } from '../engine/ring/ring.ts';
import { Supervisor } from '../engine/supervisor.ts';
import {
  BOOK_END_SRC_INDEX_BYTE, DEPTH_SRC_INDEX_BYTE, RecordKind, RECORD_SLOT_BYTES, TRADE_SRC_INDEX_BYTE,
  readKind, readSymbolId, readU32,
} from '../schemas/records.ts';
import { DepthWriter } from '../workers/sierra/depth-writer.ts';
import { ScidWriter } from '../workers/sierra/scid-writer.ts';
import { DEFAULT_SYMBOLS, MarketSim } from '../workers/sim/market-sim.ts';

const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('simulator appends while the tailer runs; worker killed 3 times; every record exactly once, in order', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tickpipe-tail-'));
  dirs.push(dir);
  const depthDir = join(dir, 'MarketDepthData');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(depthDir);
  const start = Date.UTC(2025, 10, 11, 14, 30) * 1000;
  const day = '2025-11-11';
  const sim = new MarketSim(start, DEFAULT_SYMBOLS, { seed: 11, rateScale: 4 });
  const symbols = DEFAULT_SYMBOLS.map((s) => s.symbol);
  const scid: Record<string, ScidWriter> = {};
  const depth: Record<string, DepthWriter> = {};
  for (const s of symbols) {
    scid[s] = ScidWriter.open(join(dir, `${s}_FUT_CME.scid`));
    depth[s] = DepthWriter.toFile(join(depthDir, `${s}_FUT_CME.${day}.depth`));
  }
  const written = { trades: new Map<string, number>(), depth: new Map<string, number>() };
  let simNow = start;
  const tradeCount = (s: string): number => sim.trades(s);
  const step = (): void => {
    simNow += 200_000; // 200 ms of market per step
    sim.run(simNow, scid, depth);
    for (const s of symbols) { scid[s]!.flushSync(); depth[s]!.flush(); }
  };
  step();

  const ring = createRing({ slotCount: 1024, slotBytes: RECORD_SLOT_BYTES });
  const files = symbols.flatMap((s, i) => [
    { kind: 'scid' as const, symbol: s, symbolId: i + 1, sourceId: 1, path: join(dir, `${s}_FUT_CME.scid`) },
    { kind: 'depth' as const, symbol: s, symbolId: i + 1, sourceId: 2, dir: depthDir, prefix: `${s}_FUT_CME`, fromDate: day },
  ]);
  const progress = IngestProgress.create(files.length);
  const sup = new Supervisor();
  const errors: string[] = [];
  sup.on('source-error', (_n: string, e: Error) => errors.push(e.message));
  sup.on('stage-error', (_n: string, e: Error) => errors.push(`stage error: ${e.message}`));
  sup.add({
    name: 'sierra', entry: new URL('../workers/sierra-scid.worker.ts', import.meta.url),
    data: { name: 'sierra', ring, progress, files, dataDir: join(dir, 'data'), pollMs: 10, checkpointEveryMs: 50 },
    outputs: [ring], backoffMs: 10, maxRestarts: 10,
  });
  await sup.start();

  // consumer: per symbol id, the next expected record index of each kind
  const reader = RingReader.attach(ring);
  const nextTrade = new Map<number, number>();
  const nextDepth = new Map<number, number>();
  const lastDepthEob = new Map<number, number>();
  const problems: string[] = [];
  let received = 0;
  let stop = false;
  const consume = async (): Promise<void> => {
    const v = reader.views;
    while (!stop || reader.available() > 0) {
      const n = reader.available();
      if (n === 0) { await reader.waitForDataAsync(20); continue; }
      for (let i = 0; i < n; i++) {
        const b = reader.slotByte(i);
        const kind = readKind(v, b);
        const sym = readSymbolId(v, b);
        if (kind === RecordKind.TRADE) {
          const idx = readU32(v, b, TRADE_SRC_INDEX_BYTE);
          const want = nextTrade.get(sym) ?? 0;
          if (idx !== want && problems.length < 10) problems.push(`trade sym ${sym}: got record ${idx}, expected ${want}`);
          nextTrade.set(sym, idx + 1);
        } else if (kind === RecordKind.DEPTH) {
          const idx = readU32(v, b, DEPTH_SRC_INDEX_BYTE);
          const want = nextDepth.get(sym) ?? 0;
          if (idx !== want && problems.length < 10) problems.push(`depth sym ${sym}: got record ${idx}, expected ${want}`);
          nextDepth.set(sym, idx + 1);
        } else if (kind === RecordKind.BOOK_END) {
          const idx = readU32(v, b, BOOK_END_SRC_INDEX_BYTE);
          if (idx !== (nextDepth.get(sym) ?? 0) - 1 && problems.length < 10) problems.push(`book end sym ${sym} at ${idx} does not follow its record`);
          lastDepthEob.set(sym, idx);
        } else if (problems.length < 10) problems.push(`unexpected record kind ${kind}`);
        received++;
      }
      reader.release(n);
    }
  };
  const consumer = consume();

  // append for ~2.5 s, killing the worker three times at different points
  const killAt = new Set([6, 13, 21]);
  for (let k = 0; k < 28; k++) {
    step();
    if (killAt.has(k)) {
      const restarted = once(sup, 'stage-restarted');
      await sup.kill('sierra');
      await restarted;
    }
    await sleep(80);
  }
  for (const s of symbols) { written.trades.set(s, tradeCount(s)); written.depth.set(s, sim.depthRecords(s)); }

  // wait for the consumer to catch up with everything written
  const deadline = Date.now() + 30_000;
  const done = (): boolean => symbols.every((s, i) => (nextTrade.get(i + 1) ?? 0) === written.trades.get(s) && (nextDepth.get(i + 1) ?? 0) === written.depth.get(s));
  while (!done() && Date.now() < deadline) { await sleep(1000); if (process.env.DEBUG_TAIL) console.log(JSON.stringify([...nextTrade], null, 0), JSON.stringify([...nextDepth]), JSON.stringify([...written.trades]), JSON.stringify([...written.depth]), JSON.stringify(sup.status()[0])); }
  await sup.close({ timeoutMs: 5000 });
  stop = true;
  await consumer;
  for (const s of symbols) { scid[s]!.closeSync(); depth[s]!.close(); }

  expect(problems).toEqual([]);
  expect(errors).toEqual([]);
  const status = sup.status()[0]!;
  expect(status.restarts).toBe(3);
  symbols.forEach((s, i) => {
    expect(written.trades.get(s)!).toBeGreaterThan(1000);
    expect(nextTrade.get(i + 1)).toBe(written.trades.get(s));
    expect(nextDepth.get(i + 1)).toBe(written.depth.get(s));
  });
  expect(received).toBeGreaterThan(0);
  expect(lastDepthEob.size).toBe(symbols.length);
  expect(status.lastError).toBeNull();
}, 60_000);
