/**
 * Test and benchmark helpers for the Redis sink (not used by the engine): a record producer that does
 * what the validator does for the sink (append to a real journal, then publish into the sink's real
 * ring), a private redis-server process on a free port, and polling helpers.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { APPEND_FULL, Journal } from '../../engine/journal/journal.ts';
import { slotViewsOf } from '../../engine/journal/format.ts';
import { RingWriter, createRing, type SlotViews } from '../../engine/ring/ring.ts';
import { SymbolRegistry } from '../../engine/symbols/registry.ts';
import { OUTPUT_OVERFLOW_STATUS } from '../../engine/validate/stage.ts';
import { GapKind, RECORD_RING_KIND, RECORD_SLOT_BYTES, RecordKind, TradeFlag, writeGap, writeTrade } from '../../schemas/records.ts';

export interface TestTrade {
  kind?: number;
  sourceId: number;
  symbolId: number;
  seq: number;
  tsMicros: number;
  price: number;
  size: number;
  bid?: number;
  ask?: number;
  flags?: number;
}

export function writeTestRecord(v: SlotViews, b: number, t: TestTrade): void {
  writeTrade(v, b, t.kind ?? RecordKind.TRADE, t.sourceId, t.symbolId, t.seq, t.tsMicros, t.price, t.bid ?? t.price - 0.25, t.ask ?? t.price + 0.25,
    t.size, t.flags ?? TradeFlag.SIDE_BUY, 0, 0, t.seq, 1);
}

/**
 * The deterministic trade sequence behind makeTrades / writeTrades: `perMs` trades per millisecond (same-ms order in
 * the µs digits, Sierra style), round robin over `symbolIds`, seq per symbol from 1, ending near `endMs`.
 */
function eachTrade(n: number, symbolIds: readonly number[], endMs: number, perMs: number,
  fn: (i: number, symbolId: number, seq: number, tsMicros: number, price: number, size: number, flags: number) => void): void {
  const startMs = endMs - Math.ceil(n / perMs) - 1;
  const seqs = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const sym = symbolIds[i % symbolIds.length]!;
    const seq = (seqs.get(sym) ?? 0) + 1;
    seqs.set(sym, seq);
    const ms = startMs + Math.floor(i / perMs);
    fn(i, sym, seq, ms * 1000 + (i % perMs), 21_000 + ((i * 7) % 400) * 0.25, 1 + (i % 9), i % 2 === 0 ? TradeFlag.SIDE_BUY : TradeFlag.SIDE_SELL);
  }
}

/** Deterministic trades for `symbolIds` (see eachTrade) as objects. */
export function makeTrades(n: number, symbolIds: readonly number[], endMs: number, sourceId = 1, perMs = 3): TestTrade[] {
  const out: TestTrade[] = [];
  eachTrade(n, symbolIds, endMs, perMs, (_i, symbolId, seq, tsMicros, price, size, flags) => { out.push({ sourceId, symbolId, seq, tsMicros, price, size, flags }); });
  return out;
}

/**
 * The trades of `makeTrades(n, symbolIds, endMs, sourceId, perMs)` written straight into slots 0..n-1 of
 * `v` (no object per trade: for benchmarks of millions of records).
 */
export function writeTrades(v: SlotViews, n: number, symbolIds: readonly number[], endMs: number, sourceId = 1, perMs = 3): void {
  eachTrade(n, symbolIds, endMs, perMs, (i, sym, seq, ts, price, size, flags) => {
    writeTrade(v, i * RECORD_SLOT_BYTES, RecordKind.TRADE, sourceId, sym, seq, ts, price, price - 0.25, price + 0.25, size, flags, 0, 0, seq, 1);
  });
}

export function makeRegistry(symbols: readonly string[]): { registry: SymbolRegistry; ids: number[] } {
  const registry = SymbolRegistry.create({ capacity: 64 });
  return { registry, ids: symbols.map((s) => registry.register(s)) };
}

/**
 * Stands in for the validator's side of the sink contract: every record is appended to the journal,
 * then published into the sink's ring. `push` waits (async) for ring space, like a validator would.
 */
export class RecordFeeder {
  readonly ring: SharedArrayBuffer;
  readonly writer: RingWriter;
  readonly journal: Journal | null;
  readonly #scratch = slotViewsOf(new ArrayBuffer(RECORD_SLOT_BYTES));

  constructor(opts: { slots?: number; dataDir?: string | null; commitIntervalMs?: number }) {
    this.ring = createRing({ slotCount: opts.slots ?? 4096, slotBytes: RECORD_SLOT_BYTES, recordKind: RECORD_RING_KIND });
    this.writer = RingWriter.attach(this.ring, RECORD_RING_KIND);
    this.journal = opts.dataDir ? Journal.open({ dataDir: opts.dataDir, commitIntervalMs: opts.commitIntervalMs ?? 20 }) : null;
  }

  async push(trades: readonly TestTrade[], opts: { journal?: boolean; ring?: boolean } = {}): Promise<void> {
    const toJournal = opts.journal ?? true, toRing = opts.ring ?? true;
    for (const t of trades) {
      if (toJournal && this.journal) {
        writeTestRecord(this.#scratch, 0, t);
        while (this.journal.append(this.#scratch, 0) === APPEND_FULL) await this.journal.flush();
      }
      if (!toRing) continue;
      while (this.writer.claim(1) === 0) await this.writer.waitForSpaceAsync(1, 50);
      writeTestRecord(this.writer.views, this.writer.slotByte(0), t);
      this.writer.publish(1);
    }
  }

  /** What the validator publishes after dropping records for a full output ring (engine/validate/stage.ts). */
  async pushOverflowMarker(firstTs: number, lastTs: number, dropped: number): Promise<void> {
    while (this.writer.claim(1) === 0) await this.writer.waitForSpaceAsync(1, 50);
    writeGap(this.writer.views, this.writer.slotByte(0), 0, 0, 0, firstTs, lastTs, GapKind.SOURCE_STATUS, dropped, 0, OUTPUT_OVERFLOW_STATUS);
    this.writer.publish(1);
  }

  /** Publish `n` ready-made records from `src` (a slot buffer) in ring-sized batches, waiting for space (copied with `set`, a memcpy per run of slots). */
  async pushSlots(src: SlotViews, n: number, batch = 512): Promise<void> {
    const dst = this.writer.views.u8;
    let i = 0;
    while (i < n) {
      const k = this.writer.claim(Math.min(batch, n - i));
      if (k === 0) { await this.writer.waitForSpaceAsync(1, 50); continue; }
      for (let j = 0; j < k;) { // claimed slots are contiguous up to the ring's end, then continue at its start
        const d = this.writer.slotByte(j);
        let run = 1;
        while (j + run < k && this.writer.slotByte(j + run) === d + run * RECORD_SLOT_BYTES) run++;
        const s = (i + j) * RECORD_SLOT_BYTES;
        dst.set(src.u8.subarray(s, s + run * RECORD_SLOT_BYTES), d);
        j += run;
      }
      this.writer.publish(k);
      i += k;
    }
  }

  async close(): Promise<void> {
    await this.journal?.close();
  }
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 15_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** A private redis-server without persistence on `port` (so a restart comes back empty). */
export class RedisProcess {
  readonly port: number;
  #child: ChildProcess | null = null;

  constructor(port: number) {
    this.port = port;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--enable-debug-command', 'yes'], { stdio: 'ignore' });
    this.#child = child;
    const probe = new Redis({ port: this.port, host: '127.0.0.1', lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => undefined); // refused while the server starts: expected
    try {
      await waitFor(async () => {
        if (child.exitCode !== null) throw new Error(`redis-server on port ${this.port} exited with ${child.exitCode}`);
        try {
          if (probe.status !== 'ready') await probe.connect();
          return (await probe.ping()) === 'PONG';
        } catch {
          probe.disconnect();
          return false;
        }
      }, 10_000, `redis-server on port ${this.port}`);
    } finally {
      probe.disconnect();
    }
  }

  /** Stop it (SIGKILL by default: no goodbye to clients) and wait for the exit. */
  async stop(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill(signal);
    await exited;
    this.#child = null;
  }
}

/** Can a Redis be reached at `url` right now? */
export async function redisAnswers(url: string): Promise<boolean> {
  const r = new Redis(url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000 });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return (await r.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}

/** Delete every key starting with `prefix` (SCAN + UNLINK). */
export async function deleteKeys(r: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await r.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await r.unlink(keys);
  } while (cursor !== '0');
}
