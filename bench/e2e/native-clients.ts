/**
 * Native WebSocket clients for the end-to-end bench: bench/native/ws-client.cc in its end-to-end mode
 * (WS_CLIENT_E2E=1), N connections on one epoll thread in a separate process, one process per frame format.
 * Each connection subscribes to every symbol's trades, reads binary FlatBuffers or JSON tick batches, and
 * keeps per symbol the tick count, Σ ticks × size, first/last seq and seq breaks, which come back as the same
 * WsClientTotals the in-process `ws` clients report; latency per tick = arrival − the tick's event time, on
 * the producer's clock (CLOCK_MONOTONIC + the offset measured here), every tick in `latencyAll`, the measured
 * window's (event time ≥ FROM) in `latency`.
 *
 * Why native by default: ten `ws` clients in worker threads of the engine's own process took about a third
 * of a core (JSON.parse, frame objects, their GC) on this 2-core machine, and that CPU was charged to the
 * engine's latency; a bot that cares about latency runs in its own process, often native. No pinning and no
 * busy polling here (the client sleeps in epoll_wait like the JS clients sleep in libuv).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { clockOffsetMicros, histogramLine } from '../native/build.ts';
import { latencyHistogram, summarize, type LatencySummary, type WsClientTotals } from './stats.ts';

export interface NativeClientsResult {
  clients: WsClientTotals[];
  latency: LatencySummary;
  latencyAll: LatencySummary;
  errors: string[];
  /** user + system CPU of the client process, µs */
  cpuMicros: number;
}

export interface NativeClients {
  /** resolves when every connection is subscribed */
  ready: Promise<void>;
  /** start of the measured window (Unix µs) */
  from(micros: number): void;
  stop(): Promise<NativeClientsResult>;
  kill(): Promise<void>;
}

/** Parse the SYMS lines of a stopped client: per connection, per symbol id → totals under the symbol's name. */
export function parseSyms(lines: readonly string[], names: ReadonlyMap<number, string>, count: number): { clients: WsClientTotals[]; errors: string[] } {
  const errors: string[] = [];
  const clients: WsClientTotals[] = Array.from({ length: count }, () => ({ symbols: Object.fromEntries([...names.values()].map((s) => [s, { count: 0, sum: 0, firstSeq: -1, lastSeq: -1, seqBreaks: 0 }])), closed: null }));
  for (const l of lines) {
    if (!l.startsWith('SYMS ')) continue;
    const [, idx, closed, ...syms] = l.split(' ');
    const c = clients[Number(idx)];
    if (c === undefined) { errors.push(`native client: SYMS for unknown connection ${idx}`); continue; }
    if (closed === '1') c.closed = 'closed by the server';
    for (const kv of syms) {
      const [id, n, sum, first, last, breaks] = kv.split(':').map(Number) as [number, number, number, number, number, number];
      const name = names.get(id);
      if (name === undefined) { errors.push(`native client ${idx}: ticks of unexpected symbol id ${id}`); continue; }
      c.symbols[name] = { count: n, sum, firstSeq: first, lastSeq: last, seqBreaks: breaks };
    }
  }
  return { clients, errors };
}

export function startNativeClients(bin: string, port: number, wsPath: string, count: number, symbols: ReadonlyArray<{ symbol: string; id: number }>): NativeClients {
  const child: ChildProcessWithoutNullStreams = spawn(bin, ['127.0.0.1', String(port), wsPath, String(count), symbols.map((s) => s.symbol).join(','), clockOffsetMicros().toFixed(3), '-1', '0'], {
    stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, WS_CLIENT_E2E: '1' },
  });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => { if (stderr.length < 4000) stderr += b.toString(); });
  const lines = createInterface({ input: child.stdout });
  let readyWaiter: { resolve: () => void; reject: (e: Error) => void } | null = null;
  let collecting: { lines: string[]; resolve: (ls: string[]) => void; reject: (e: Error) => void } | null = null;
  let failed: Error | null = null;
  const fail = (e: Error): void => {
    failed ??= e;
    readyWaiter?.reject(e);
    collecting?.reject(e);
  };
  lines.on('line', (line) => {
    if (line.startsWith('FATAL')) { fail(new Error(`native ws-client: ${line}; ${stderr}`)); return; }
    if (collecting !== null) {
      if (line === 'END') { const c = collecting; collecting = null; c.resolve(c.lines); } else collecting.lines.push(line);
      return;
    }
    if (line.startsWith('READY')) readyWaiter?.resolve();
  });
  child.on('exit', (code) => fail(new Error(`native ws-client exited (${code}); stderr: ${stderr}`)));
  child.on('error', (e) => fail(e));
  const ready = new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`native ws-client: not subscribed within 30 s; stderr: ${stderr}`)), 30_000);
    readyWaiter = { resolve: () => { clearTimeout(t); resolve(); }, reject: (e) => { clearTimeout(t); reject(e); } };
    if (failed) readyWaiter.reject(failed);
  });
  return {
    ready,
    from: (micros) => { child.stdin.write(`FROM ${micros.toFixed(0)}\n`); },
    stop: async () => {
      const ls = await new Promise<string[]>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`native ws-client: no result within 30 s; stderr: ${stderr}`)), 30_000);
        collecting = { lines: [], resolve: (x) => { clearTimeout(t); resolve(x); }, reject: (e) => { clearTimeout(t); reject(e); } };
        if (failed) { collecting.reject(failed); return; }
        child.stdin.write('STOP\n');
      });
      const res = ls.find((l) => l.startsWith('RESULT '))!.split(' ').slice(1).map(Number);
      const { clients, errors } = parseSyms(ls, new Map(symbols.map((s) => [s.id, s.symbol])), count);
      if (res[1]! > 0) errors.push(`native ws-client: ${res[1]} protocol errors; stderr: ${stderr.slice(0, 1000)}`);
      return {
        clients, errors, cpuMicros: res[4]! + res[5]!,
        latency: summarize(histogramLine(ls, 'HIST', latencyHistogram())),
        latencyAll: summarize(histogramLine(ls, 'HISTALL', latencyHistogram())),
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
