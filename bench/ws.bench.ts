/**
 * WebSocket fan-out (issue 5): 10,000 ticks/s to 100 clients over loopback, tick-to-client latency
 * p50/p99/p99.9 (hdr-histogram-js) and a zero-loss check (every client sees every seq exactly once, in order).
 *
 * The server side is the real thing: a uWS app with `/ws` (api/ws) on this thread, fed through
 * `hub.onRecord` / `hub.onBatchEnd` with real 64-byte TRADE slots, as the engine's record feed does, in
 * batches of what is due every TICKPIPE_WS_BENCH_BATCH_MS (default 2 ms, like the engine's feed drain
 * handing over what arrived since its last wake). Latency = receipt clock − the tick's tsMicros, which the
 * producer stamps when it hands the batch to the hub: it covers encoding, fan-out, the kernel and the
 * client's receive and decode.
 *
 * Client fleets, one after the other, each against a fresh server (all rows are reported):
 *
 * 1. Native (the headline row): bench/native/ws-client.cc, compiled here with `g++ -O2` into a temp dir
 *    and run as a separate process: one epoll thread, 100 connections, its own RFC 6455 handshake and frame
 *    parser, binary frames read with a bounds-checked FlatBuffers walk (seq and tsMicros of every tick).
 *    That is what a latency-sensitive bot is: its own process, usually native. Its clock is the producer's
 *    (CLOCK_MONOTONIC + the offset to performance.timeOrigin + performance.now(), measured here). By default
 *    it is pinned to the last CPU and busy-polls for 300 µs after its last event before sleeping in
 *    epoll_wait (what low-latency bots do; on this 2-vCPU guest a sleeping receiver makes every one of the
 *    server's 100 sends pay a cross-CPU wake-up). TICKPIPE_WS_BENCH_CLIENT_CPU=-1 and
 *    TICKPIPE_WS_BENCH_CLIENT_SPIN_US=0 give a plain client that always sleeps. It also reports, per batch,
 *    when the first client got it and the spread to the last one (the serial cost of 100 sends).
 * 2. Baseline, same run: bench/native/tcp-fanout.cc, the kernel floor of the same fan-out with no WebSocket,
 *    uWS, hub or JavaScript (a C sender doing one send() per socket per batch, the native fleet's measured
 *    frame size and batch interval, the same receiver settings). The ratio row says what the server
 *    software adds on top of what loopback TCP itself costs on this machine.
 * 3. JavaScript: 100 `ws` clients in two worker threads of THIS process (api/ws/fixtures/ws-clients.worker.ts),
 *    binary frames decoded without per-tick objects. On a 2-core machine these threads compete with the
 *    server's thread for the same cores; their CPU, not the hub's fan-out, sets that row's tail (the CPU rows
 *    show it).
 *
 * Reported per fleet: latency, what the server sent (frames/s and bytes/s from the hub's counters), the
 * hub's own fan-out time per batch (encode + uWS publish, measured inside onBatchEnd; uWS does the actual
 * send()s right after, when it drains its topic tree, so they are not in it), the CPU of the server thread
 * (hub + uWS drain + producer), of the clients and of the whole machine (other processes' work shows there:
 * the tail follows it), and the loss check (the bench throws if anything is lost, duplicated or out of order).
 * Without g++ the bench says so (a "skipped" row) and runs the JS fleet only.
 *
 * TICKPIPE_WS_BENCH_CLIENTS changes the client count, TICKPIPE_WS_BENCH_FLEETS=native|js|native,js which
 * fleets run. Run alone: `flock /tmp/tickpipe-bench.lock node --import tsx bench/ws.bench.ts [--quick]`.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import type { Worker } from 'node:worker_threads';
import * as hdr from 'hdr-histogram-js';
import { App, us_listen_socket_close, us_socket_local_port, type us_listen_socket } from 'uWebSockets.js';
import { attachWebSocket, type WsHub } from '../api/ws/hub.ts';
import { TestKeys, slotViews } from '../api/ws/fixtures/harness.ts';
import { HotWindow } from '../engine/hot/hot-window.ts';
import { deriveFrontMonth } from '../engine/symbols/contracts.ts';
import { SymbolRegistry } from '../engine/symbols/registry.ts';
import { spawnWorker } from '../engine/worker-host.ts';
import { RecordKind, TradeFlag, writeTrade } from '../schemas/records.ts';
import { sig, type BenchResult, type BenchSuite } from './lib.ts';
import { buildNative, clockOffsetMicros, histogramLine as nativeHistogramLine, TCP_FANOUT_SRC, WS_CLIENT_SRC } from './native/build.ts';

const CLIENTS = Number(process.env.TICKPIPE_WS_BENCH_CLIENTS ?? 100);
const WORKERS = CLIENTS >= 2 ? 2 : 1;
const RATE = 10_000;
/** Feed batch interval: the engine's feed drain hands over what arrived since its last wake. */
const BATCH_MS = Number(process.env.TICKPIPE_WS_BENCH_BATCH_MS ?? 2);
const FLEETS = (process.env.TICKPIPE_WS_BENCH_FLEETS ?? 'native,js').split(',').map((s) => s.trim());
/**
 * Native client: pinned to this CPU (default the last one; -1: not pinned) and busy-polling this many µs after
 * its last event before it sleeps in epoll_wait (default 300; 0: always sleeps). See the header for why.
 */
const CLIENT_CPU = Number(process.env.TICKPIPE_WS_BENCH_CLIENT_CPU ?? availableParallelism() - 1);
const CLIENT_SPIN_US = Number(process.env.TICKPIPE_WS_BENCH_CLIENT_SPIN_US ?? 300);

/** What a fleet of clients reports at the end. */
interface FleetResult {
  received: number;
  errors: number;
  frames: number;
  /** last seq seen, per client */
  lastSeqs: number[];
  histogram: hdr.Histogram;
  /** client CPU over the run, µs (-1 when unknown) */
  cpuMicros: number;
  /** JS fleet: time inside the message handlers (decode + checks), µs */
  handlerMicros?: number;
  minFrames: number;
  maxFrames: number;
  /** native fleet, per batch: latency of the first connection to receive it, and last − first receipt */
  firstReceipt?: hdr.Histogram;
  spread?: hdr.Histogram;
}

interface Fleet {
  /** resolves when every client is subscribed */
  ready: Promise<void>;
  progress(): Promise<number>;
  stop(): Promise<FleetResult>;
  kill(): Promise<void>;
}

function newHistogram(): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
}

/** CPU time of the calling thread in µs (Linux /proc/thread-self/stat, USER_HZ = 100); -1 when unavailable. */
function threadCpuMicros(): number {
  try {
    const st = readFileSync('/proc/thread-self/stat', 'utf8');
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * 10_000;
  } catch {
    return -1;
  }
}

/** Machine-wide busy and total jiffies (/proc/stat), or null. */
function machineJiffies(): { busy: number; total: number } | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const total = v.reduce((a, b) => a + b, 0);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return null;
  }
}

// ---- native fleet --------------------------------------------------------------------------------------

function histogramLine(lines: string[], tag: string): hdr.Histogram {
  return nativeHistogramLine(lines, tag, newHistogram());
}

interface FloorResult extends FleetResult { senderMicrosPerBatch: number; batches: number; machineBusy: number }

/** Same-run kernel floor: bench/native/tcp-fanout.cc with the native fleet's frame size, batch interval and client settings. */
async function runFloor(bin: string, seconds: number, batchMicros: number, frameBytes: number): Promise<FloorResult> {
  const m0 = machineJiffies();
  const args = [String(CLIENTS), batchMicros.toFixed(0), String(seconds), String(Math.max(16, Math.round(frameBytes))), String(CLIENT_CPU), String(CLIENT_SPIN_US)];
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => { stdout += b.toString(); });
  child.stderr.on('data', (b: Buffer) => { if (stderr.length < 4000) stderr += b.toString(); });
  const code = await new Promise<number | null>((res, rej) => { child.once('exit', res); child.once('error', rej); });
  const m1 = machineJiffies();
  const ls = stdout.split('\n');
  if (code !== 0 || !ls.includes('END')) throw new Error(`tcp-fanout failed (exit ${code}): ${stderr}`);
  const r = ls.find((l) => l.startsWith('RESULT '))!.split(' ').slice(1).map(Number);
  return {
    received: r[0]!, errors: r[1]!, frames: r[2]!, lastSeqs: [], histogram: histogramLine(ls, 'HIST'), cpuMicros: r[4]! + r[5]!,
    minFrames: NaN, maxFrames: NaN, firstReceipt: histogramLine(ls, 'HFIRST'), spread: histogramLine(ls, 'HSPREAD'),
    senderMicrosPerBatch: r[6]! / r[7]!, batches: r[7]!,
    machineBusy: m0 && m1 && m1.total > m0.total ? (m1.busy - m0.busy) / (m1.total - m0.total) : NaN,
  };
}

function nativeFleet(bin: string, port: number, wsPath: string, count: number, symbol: string): Fleet {
  const child: ChildProcessWithoutNullStreams = spawn(bin, ['127.0.0.1', String(port), wsPath, String(count), symbol, clockOffsetMicros().toFixed(3), String(CLIENT_CPU), String(CLIENT_SPIN_US)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => { if (stderr.length < 4000) stderr += b.toString(); });
  const lines = createInterface({ input: child.stdout });
  const waiters: { prefix: string; resolve: (line: string) => void; reject: (e: Error) => void }[] = [];
  let collecting: { lines: string[]; resolve: (ls: string[]) => void } | null = null;
  const failAll = (e: Error): void => { for (const w of waiters.splice(0)) w.reject(e); };
  lines.on('line', (line) => {
    if (line.startsWith('FATAL')) { failAll(new Error(`native ws-client: ${line}; ${stderr}`)); return; }
    if (collecting !== null) {
      if (line === 'END') { const c = collecting; collecting = null; c.resolve(c.lines); } else collecting.lines.push(line);
      return;
    }
    const i = waiters.findIndex((w) => line.startsWith(w.prefix));
    if (i >= 0) waiters.splice(i, 1)[0]!.resolve(line);
  });
  child.on('exit', (code) => failAll(new Error(`native ws-client exited (${code}) early; stderr: ${stderr}`)));
  child.on('error', (e) => failAll(e));
  const expect = (prefix: string, timeoutMs: number): Promise<string> => new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`native ws-client: no "${prefix}" within ${timeoutMs} ms; stderr: ${stderr}`)), timeoutMs);
    waiters.push({ prefix, resolve: (l) => { clearTimeout(t); resolve(l); }, reject: (e) => { clearTimeout(t); reject(e); } });
  });
  const collect = (): Promise<string[]> => new Promise<string[]>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`native ws-client: no result within 30 s; stderr: ${stderr}`)), 30_000);
    collecting = { lines: [], resolve: (ls) => { clearTimeout(t); resolve(ls); } };
  });
  return {
    ready: expect('READY', 30_000).then(() => undefined),
    progress: async () => {
      const p = expect('PROGRESS', 10_000);
      child.stdin.write('PROGRESS\n');
      return Number((await p).split(' ')[1]);
    },
    stop: async () => {
      const all = collect();
      child.stdin.write('STOP\n');
      const ls = await all;
      const res = ls.find((l) => l.startsWith('RESULT '))!.split(' ').slice(1).map(Number);
      const last = ls.find((l) => l.startsWith('LAST'))!.split(' ').slice(1).map(Number);
      const hist = (tag: string): hdr.Histogram => histogramLine(ls, tag);
      if (stderr !== '') console.error(`native ws-client stderr:\n${stderr}`);
      return {
        received: res[0]!, errors: res[1]!, frames: res[2]!, lastSeqs: last, histogram: hist('HIST'), cpuMicros: res[4]! + res[5]!, minFrames: res[6]!, maxFrames: res[7]!,
        firstReceipt: hist('HFIRST'), spread: hist('HSPREAD'),
      };
    },
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGKILL');
        await new Promise((r) => child.once('exit', r));
      }
    },
  };
}

// ---- JS fleet (worker threads) -------------------------------------------------------------------------

interface WorkerResult {
  code: 'RESULT'; received: number; errors: number; frames: number; lastSeqs: number[]; histogram: string;
  handlerMicros: number; cpuMicros: number; minFrames: number; maxFrames: number;
}

function jsFleet(url: string, count: number, symbol: string): Fleet {
  const workers: Worker[] = Array.from({ length: count >= 2 ? WORKERS : 1 }, (_, k) => spawnWorker(
    new URL('../api/ws/fixtures/ws-clients.worker.ts', import.meta.url),
    { url, count: Math.floor(count / WORKERS) + (k < count % WORKERS ? 1 : 0), symbol }, { name: 'ws-bench-clients' },
  ));
  const ready = Promise.all(workers.map((w) => new Promise<void>((res, rej) => {
    const t = setTimeout(() => rej(new Error('clients did not subscribe within 30 s')), 30_000);
    w.on('message', (m: { code: string }) => { if (m.code === 'READY') { clearTimeout(t); res(); } });
    w.once('error', rej);
  }))).then(() => undefined);
  return {
    ready,
    progress: () => Promise.all(workers.map((w) => new Promise<number>((res) => {
      const on = (m: { code: string; received?: number }): void => { if (m.code === 'PROGRESS') { w.off('message', on); res(m.received ?? 0); } };
      w.on('message', on);
      w.postMessage({ code: 'PROGRESS' });
    }))).then((xs) => xs.reduce((a, b) => a + b, 0)),
    stop: async () => {
      const rs = await Promise.all(workers.map((w) => new Promise<WorkerResult>((res) => {
        w.on('message', (m: WorkerResult) => { if (m.code === 'RESULT') res(m); });
        w.postMessage({ code: 'STOP' });
      })));
      const h = newHistogram();
      const out: FleetResult = { received: 0, errors: 0, frames: 0, lastSeqs: [], histogram: h, cpuMicros: 0, handlerMicros: 0, minFrames: Infinity, maxFrames: 0 };
      for (const r of rs) {
        h.add(hdr.decodeFromCompressedBase64(r.histogram));
        out.received += r.received; out.errors += r.errors; out.frames += r.frames; out.lastSeqs.push(...r.lastSeqs);
        out.cpuMicros = out.cpuMicros < 0 || r.cpuMicros < 0 ? -1 : out.cpuMicros + r.cpuMicros;
        out.handlerMicros! += r.handlerMicros;
        out.minFrames = Math.min(out.minFrames, r.minFrames); out.maxFrames = Math.max(out.maxFrames, r.maxFrames);
      }
      return out;
    },
    kill: async () => { await Promise.all(workers.map((w) => w.terminate())); },
  };
}

// ---- one run: fresh server, one fleet ------------------------------------------------------------------

interface RunFigures {
  seconds: number;
  produced: number;
  batches: number;
  fleet: FleetResult;
  framesOut: number;
  bytesOut: number;
  fanout: ReturnType<WsHub['stats']>['fanoutMicros'];
  slowCloses: number;
  serverCpuMicros: number;
  machineBusy: number;
}

async function runFleet(kind: 'native' | 'js', seconds: number, nativeBin: string | null): Promise<RunFigures> {
  const registry = SymbolRegistry.create({ capacity: 16 });
  const symbol = deriveFrontMonth('MNQ', Date.now() * 1000).symbol;
  const id = registry.register(symbol);
  const hot = HotWindow.create({ symbols: 16, capacityPerSymbol: 1 << 16 });
  const app = App();
  const keys = new TestKeys().add('bench', ['stream']);
  const hub = attachWebSocket(app, { authenticator: keys, registry, hot, status: () => ({}), sourceNames: ['', 'bench'] });
  const sock = await new Promise<us_listen_socket>((res, rej) => app.listen('127.0.0.1', 0, (s) => (s ? res(s) : rej(new Error('listen failed')))));
  const port = us_socket_local_port(sock);
  const wsPath = '/ws?format=binary&token=bench';
  const fleet = kind === 'native' ? nativeFleet(nativeBin!, port, wsPath, CLIENTS, symbol) : jsFleet(`ws://127.0.0.1:${port}${wsPath}`, CLIENTS, symbol);
  try {
    await fleet.ready;
    const before = hub.stats();
    const cpu0 = threadCpuMicros();
    const m0 = machineJiffies();

    // producer: exactly RATE ticks per second, in batches of what is due each loop turn
    const views = slotViews(1024);
    let seq = 0;
    let batches = 0;
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
        if (k > 0) { hub.onBatchEnd(); batches++; if (process.env.KICK) setImmediate(() => undefined); }
        if (now >= endAt && seq >= target) { resolve(); return; }
        setTimeout(step, BATCH_MS); // batches of what is due, without spinning a core
      };
      setTimeout(step, BATCH_MS);
    });
    const produced = seq;
    const cpu1 = threadCpuMicros();
    const m1 = machineJiffies();
    const after = hub.stats();
    // wait until every client has everything (or 20 s)
    const drainEnd = Date.now() + 20_000;
    while ((await fleet.progress()) < produced * CLIENTS && Date.now() < drainEnd) await new Promise((r) => setTimeout(r, 50));
    const res = await fleet.stop();
    return {
      seconds, produced, batches, fleet: res,
      framesOut: after.framesOut - before.framesOut, bytesOut: after.bytesOut - before.bytesOut, fanout: after.fanoutMicros,
      slowCloses: after.drops.slowConsumerCloses,
      serverCpuMicros: cpu0 >= 0 && cpu1 >= 0 ? cpu1 - cpu0 : -1,
      machineBusy: m0 && m1 && m1.total > m0.total ? (m1.busy - m0.busy) / (m1.total - m0.total) : NaN,
    };
  } finally {
    await fleet.kill();
    hub.close();
    us_listen_socket_close(sock);
  }
}

function check(kind: string, f: RunFigures): void {
  const expected = f.produced * CLIENTS;
  const short = f.fleet.lastSeqs.filter((s) => s !== f.produced).length + (CLIENTS - f.fleet.lastSeqs.length);
  if (f.fleet.received !== expected || f.fleet.errors !== 0 || short !== 0 || f.slowCloses !== 0) {
    throw new Error(`${kind} clients: zero-loss check failed: produced ${f.produced} ticks × ${CLIENTS} clients = ${expected}, received ${f.fleet.received}, `
      + `sequence/protocol errors ${f.fleet.errors}, clients short of the last seq ${short}, slow-consumer closes ${f.slowCloses}`);
  }
}

function rows(kind: 'native' | 'js', f: RunFigures): BenchResult[] {
  const h = f.fleet.histogram;
  const label = kind === 'native'
    ? `${CLIENTS} native clients (separate process, one epoll thread${CLIENT_CPU >= 0 ? ` pinned to CPU ${CLIENT_CPU}` : ''}${CLIENT_SPIN_US > 0 ? `, busy-polls ${CLIENT_SPIN_US} µs` : ', sleeps in epoll_wait'})`
    : `${CLIENTS} JS ws clients (2 worker threads of the bench process, same cores as the server)`;
  const s = f.seconds;
  const pct = (us: number): number => (us < 0 ? NaN : sig((100 * us) / (s * 1e6), 3));
  const out: BenchResult[] = [
    {
      name: `tick-to-client latency, ${RATE / 1000}k ticks/s to ${label}, batches of ${BATCH_MS} ms`, unit: 'µs',
      value: sig(h.getValueAtPercentile(99)), p50: sig(h.getValueAtPercentile(50)), p99: sig(h.getValueAtPercentile(99)),
      p999: sig(h.getValueAtPercentile(99.9)), max: sig(h.maxValue),
    },
    { name: `${kind} clients: lost, duplicated or out-of-order ticks (must be 0)`, unit: 'ticks', value: f.produced * CLIENTS - f.fleet.received + f.fleet.errors },
    { name: `${kind} clients: ticks delivered per second (all clients)`, unit: 'ticks/s', value: sig(f.fleet.received / s) },
    { name: `${kind} run: server sent frames per second (all clients)`, unit: 'frames/s', value: sig(f.framesOut / s) },
    { name: `${kind} run: server sent bytes per second (WebSocket payload)`, unit: 'B/s', value: sig(f.bytesOut / s) },
    { name: `${kind} clients: frames per second per client (value: mean; max: the busiest client)`, unit: 'frames/s', value: sig(f.fleet.frames / CLIENTS / s), max: sig(f.fleet.maxFrames / s) },
    { name: `${kind} run: hub fan-out time per batch (encode + publish, in onBatchEnd; ${f.batches} batches)`, unit: 'µs', value: f.fanout.p50, p50: f.fanout.p50, p99: f.fanout.p99, max: f.fanout.max },
    { name: `${kind} run: server thread CPU (hub + uWS + producer), % of one core`, unit: '%', value: pct(f.serverCpuMicros) },
    { name: `${kind} run: server thread CPU per batch`, unit: 'µs', value: f.serverCpuMicros < 0 ? NaN : sig(f.serverCpuMicros / f.batches) },
    { name: `${kind} clients: CPU, % of one core (all ${CLIENTS} clients)`, unit: '%', value: pct(f.fleet.cpuMicros) },
    { name: `${kind} clients: CPU per frame received (all client work, kernel included)`, unit: 'µs', value: f.fleet.cpuMicros < 0 ? NaN : sig(f.fleet.cpuMicros / f.fleet.frames, 3) },
  ];
  const pcts = (x: hdr.Histogram): Pick<BenchResult, 'value' | 'p50' | 'p99' | 'p999' | 'max'> => ({
    value: sig(x.getValueAtPercentile(99)), p50: sig(x.getValueAtPercentile(50)), p99: sig(x.getValueAtPercentile(99)), p999: sig(x.getValueAtPercentile(99.9)), max: sig(x.maxValue),
  });
  if (f.fleet.firstReceipt && f.fleet.spread) {
    out.push({ name: `${kind} clients: per batch, latency of the first client to receive it`, unit: 'µs', ...pcts(f.fleet.firstReceipt) });
    out.push({ name: `${kind} clients: per batch, fan-out spread (last client's receipt − first client's)`, unit: 'µs', ...pcts(f.fleet.spread) });
  }
  if (f.fleet.handlerMicros !== undefined) {
    out.push({ name: 'js clients: decode + check time per frame (message handler only, after ws framing)', unit: 'µs', value: sig(f.fleet.handlerMicros / f.fleet.frames, 3) });
  }
  out.push({ name: `${kind} run: whole machine busy (all processes, 2 cores = 100 %)`, unit: '%', value: sig(100 * f.machineBusy, 3) });
  return out;
}

export const run: BenchSuite = async ({ quick }) => {
  const seconds = quick ? 2 : 10;
  const out: BenchResult[] = [];
  if (FLEETS.includes('native')) {
    const built = buildNative({ client: WS_CLIENT_SRC, floor: TCP_FANOUT_SRC });
    if ('missing' in built) {
      console.warn(`ws bench: no native client: ${built.missing}; running the JS clients only`);
      out.push({ name: `native clients skipped: ${built.missing}`, unit: 'skipped', value: 0 });
      if (!FLEETS.includes('js')) FLEETS.push('js');
    } else {
      try {
        const f = await runFleet('native', seconds, built.bins.client);
        const nativeRows = rows('native', f);
        out.push(...nativeRows);
        check('native', f);
        // the kernel floor: same run, same frame size, batch interval and receiver settings
        const frameBytes = f.bytesOut / f.framesOut;
        const batchMs = (f.seconds * 1e3) / f.batches;
        console.log(`ws bench: floor run with ${CLIENTS} sockets, ${Math.round(frameBytes)} B every ${batchMs.toFixed(2)} ms (the native run's mean frame and batch interval)`);
        const floor = await runFloor(built.bins.floor, seconds, batchMs * 1000, frameBytes);
        const fh = floor.histogram;
        const wsP99 = nativeRows[0]!.p99!;
        const floorP99 = sig(fh.getValueAtPercentile(99));
        const lostFloor = floor.batches * CLIENTS - floor.received + floor.errors;
        out.push(
          {
            name: 'baseline: raw loopback TCP fan-out floor (C sender, no WebSocket/uWS/hub/JS; same sockets count, frame size, batch interval and receiver as the native run)',
            unit: 'µs', value: floorP99, p50: sig(fh.getValueAtPercentile(50)), p99: floorP99, p999: sig(fh.getValueAtPercentile(99.9)), max: sig(fh.maxValue),
          },
          { name: 'native WebSocket p99 vs the raw TCP floor p99 of the same run', unit: 'ratio', value: sig(wsP99 / floorP99, 3), baseline: 'raw loopback TCP fan-out floor', baselineValue: floorP99, ratio: sig(wsP99 / floorP99, 3) },
          { name: `baseline: floor sender CPU per batch (${CLIENTS} send() calls)`, unit: 'µs', value: sig(floor.senderMicrosPerBatch) },
          { name: 'baseline: floor per batch, fan-out spread (last socket − first)', unit: 'µs', value: sig(floor.spread!.getValueAtPercentile(99)), p50: sig(floor.spread!.getValueAtPercentile(50)), p99: sig(floor.spread!.getValueAtPercentile(99)) },
          { name: 'baseline: floor lost or out-of-order messages (must be 0)', unit: 'messages', value: lostFloor },
          { name: 'baseline: floor run, whole machine busy (2 cores = 100 %)', unit: '%', value: sig(100 * floor.machineBusy, 3) },
        );
        if (lostFloor !== 0) throw new Error(`tcp-fanout floor lost ${lostFloor} messages`);
      } finally {
        rmSync(built.dir, { recursive: true, force: true });
      }
    }
  }
  if (FLEETS.includes('js')) {
    const f = await runFleet('js', seconds, null);
    out.push(...rows('js', f));
    check('js', f);
  }
  return out.filter((r) => !Number.isNaN(r.value)); // a figure this platform cannot measure (no /proc) is left out
};

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const r = await run({ quick: process.argv.includes('--quick') });
  console.table(r.map((x) => ({ name: x.name, unit: x.unit, value: x.value, p50: x.p50, p99: x.p99, p999: x.p999, max: x.max })));
  process.exit(0);
}
