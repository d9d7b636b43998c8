/**
 * WebSocket fan-out (issue 5): 10,000 ticks/s to 100 `ws` clients over loopback, tick-to-client latency
 * p50/p99 (hdr-histogram-js) and a zero-loss check (every client sees every seq exactly once, in order).
 *
 * The server side is the real thing: a uWS app with `/ws` (api/ws) on this thread, fed through
 * `hub.onRecord` / `hub.onBatchEnd` with real 64-byte TRADE slots, as the engine's record feed does, in
 * batches of what is due every TICKPIPE_WS_BENCH_BATCH_MS (default 2 ms, like the engine's feed drain
 * handing over what arrived since its last wake). Clients run in two worker threads (50 each), binary
 * frames, decoded without per-tick objects. Latency = receipt wall clock − the tick's tsMicros, which the
 * producer stamps with the wall clock when it hands the batch to the hub: it covers encoding, fan-out, the
 * kernel and the client's decode. The 100 JavaScript clients run in the same process on the same cores as
 * the server: on a small machine their CPU, not the server's fan-out (reported separately, per batch),
 * sets the tail. TICKPIPE_WS_BENCH_CLIENTS changes the client count.
 *
 * Run alone: `node --import tsx bench/ws.bench.ts [--quick]`.
 */
import { pathToFileURL } from 'node:url';
import * as hdr from 'hdr-histogram-js';
import { App, us_listen_socket_close, us_socket_local_port, type us_listen_socket } from 'uWebSockets.js';
import { attachWebSocket } from '../api/ws/hub.ts';
import { TestKeys, slotViews } from '../api/ws/fixtures/harness.ts';
import { HotWindow } from '../engine/hot/hot-window.ts';
import { deriveFrontMonth } from '../engine/symbols/contracts.ts';
import { SymbolRegistry } from '../engine/symbols/registry.ts';
import { spawnWorker } from '../engine/worker-host.ts';
import { RecordKind, TradeFlag, writeTrade } from '../schemas/records.ts';
import { sig, type BenchResult, type BenchSuite } from './lib.ts';

const CLIENTS = Number(process.env.TICKPIPE_WS_BENCH_CLIENTS ?? 100);
const WORKERS = CLIENTS >= 2 ? 2 : 1;
const RATE = 10_000;
/** Feed batch interval: the engine's feed drain hands over what arrived since its last wake. */
const BATCH_MS = Number(process.env.TICKPIPE_WS_BENCH_BATCH_MS ?? 2);

interface WorkerResult { code: 'RESULT'; received: number; errors: number; frames: number; lastSeqs: number[]; histogram: string }

export const run: BenchSuite = async ({ quick }) => {
  const seconds = quick ? 2 : 10;
  const registry = SymbolRegistry.create({ capacity: 16 });
  const symbol = deriveFrontMonth('MNQ', Date.now() * 1000).symbol;
  const id = registry.register(symbol);
  const hot = HotWindow.create({ symbols: 16, capacityPerSymbol: 1 << 16 });
  const app = App();
  const keys = new TestKeys().add('bench', ['stream']);
  const hub = attachWebSocket(app, { authenticator: keys, registry, hot, status: () => ({}), sourceNames: ['', 'bench'] });
  const sock = await new Promise<us_listen_socket>((res, rej) => app.listen('127.0.0.1', 0, (s) => (s ? res(s) : rej(new Error('listen failed')))));
  const url = `ws://127.0.0.1:${us_socket_local_port(sock)}/ws?format=binary&token=bench`;
  const workers = Array.from({ length: WORKERS }, () => spawnWorker(new URL('../api/ws/fixtures/ws-clients.worker.ts', import.meta.url), { url, count: CLIENTS / WORKERS, symbol }, { name: 'ws-bench-clients' }));
  try {
    await Promise.all(workers.map((w) => new Promise<void>((res, rej) => {
      const t = setTimeout(() => rej(new Error('clients did not subscribe within 30 s')), 30_000);
      w.on('message', (m: { code: string }) => { if (m.code === 'READY') { clearTimeout(t); res(); } });
      w.once('error', rej);
    })));

    // producer: exactly RATE ticks per second, in batches of what is due each loop turn
    const views = slotViews(1024);
    let seq = 0;
    const t0 = performance.now();
    const endAt = t0 + seconds * 1000;
    await new Promise<void>((resolve) => {
      const step = (): void => {
        const now = performance.now();
        const due = Math.min(now, endAt);
        const target = Math.floor(((due - t0) / 1000) * RATE);
        let k = 0;
        const wall = (performance.timeOrigin + now) * 1000;
        while (seq < target && k < 1024) {
          seq++;
          const p = 21000 + (seq % 200) * 0.25;
          writeTrade(views, k * 64, RecordKind.TRADE, 1, id, seq, wall, p, p - 0.25, p + 0.25, 1, TradeFlag.SIDE_BUY, 0, 0, seq, 1);
          hub.onRecord(views, k * 64);
          k++;
        }
        if (k > 0) hub.onBatchEnd();
        if (now >= endAt && seq >= target) { resolve(); return; }
        setTimeout(step, BATCH_MS); // batches of what is due, without spinning a core
      };
      setTimeout(step, BATCH_MS);
    });
    const produced = seq;
    // wait until every client has everything (or 20 s)
    const progress = (): Promise<number> => Promise.all(workers.map((w) => new Promise<number>((res) => {
      const on = (m: { code: string; received?: number }): void => { if (m.code === 'PROGRESS') { w.off('message', on); res(m.received ?? 0); } };
      w.on('message', on);
      w.postMessage({ code: 'PROGRESS' });
    }))).then((xs) => xs.reduce((a, b) => a + b, 0));
    const drainEnd = Date.now() + 20_000;
    while ((await progress()) < produced * CLIENTS && Date.now() < drainEnd) await new Promise((r) => setTimeout(r, 50));
    const results = await Promise.all(workers.map((w) => new Promise<WorkerResult>((res) => {
      w.on('message', (m: WorkerResult) => { if (m.code === 'RESULT') res(m); });
      w.postMessage({ code: 'STOP' });
    })));
    const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
    let received = 0, errors = 0, frames = 0, short = 0;
    for (const r of results) {
      h.add(hdr.decodeFromCompressedBase64(r.histogram));
      received += r.received; errors += r.errors; frames += r.frames;
      for (const last of r.lastSeqs) if (last !== produced) short++;
    }
    const expected = produced * CLIENTS;
    const lost = expected - received;
    const stats = hub.stats();
    const out: BenchResult[] = [
      { name: `tick-to-client latency, ${RATE / 1000}k ticks/s to ${CLIENTS} clients (batches of ${BATCH_MS} ms)`, unit: 'µs', value: sig(h.getValueAtPercentile(50)), p50: sig(h.getValueAtPercentile(50)), p99: sig(h.getValueAtPercentile(99)), p999: sig(h.getValueAtPercentile(99.9)), max: sig(h.maxValue) },
      { name: 'ticks delivered per second (all clients)', unit: 'ticks/s', value: sig(received / seconds) },
      { name: 'frames per second (all clients)', unit: 'frames/s', value: sig(frames / seconds) },
      { name: 'hub fan-out time per batch', unit: 'µs', value: stats.fanoutMicros.p50, p50: stats.fanoutMicros.p50, p99: stats.fanoutMicros.p99, max: stats.fanoutMicros.max },
      { name: 'lost or out-of-order ticks (must be 0)', unit: 'ticks', value: lost + errors },
      { name: 'slow-consumer closes (must be 0)', unit: 'clients', value: stats.drops.slowConsumerCloses },
    ];
    if (lost !== 0 || errors !== 0 || short !== 0) {
      throw new Error(`zero-loss check failed: produced ${produced} ticks × ${CLIENTS} clients = ${expected}, received ${received}, sequence errors ${errors}, clients short of the last seq ${short}`);
    }
    return out;
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
    hub.close();
    us_listen_socket_close(sock);
  }
};

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const r = await run({ quick: process.argv.includes('--quick') });
  console.table(r);
  process.exit(0);
}
