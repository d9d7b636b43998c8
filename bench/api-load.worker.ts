/**
 * Closed-loop load generator for bench/api.bench.ts, in its own thread: `connections` keep-alive TCP
 * connections, each sends one request, waits for the whole answer, records the latency (hdr-histogram) and
 * sends the next. Speaks HTTP/1.1 (answers framed by Content-Length) or RESP (a bulk-string reply), so the
 * same client measures the HTTP server and Redis. Posts `{ code: 'done', ... }` with throughput and
 * latency percentiles in µs.
 */
import { connect, type Socket } from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import * as hdr from 'hdr-histogram-js';

export interface LoadData {
  host: string;
  port: number;
  protocol: 'http' | 'resp';
  /** Raw request bytes (one request). */
  request: string;
  connections: number;
  warmupMs: number;
  durationMs: number;
}

export interface LoadDone {
  code: 'done';
  requests: number;
  errors: number;
  elapsedMs: number;
  rps: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

const d = workerData as LoadData;
const req = Buffer.from(d.request);
const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
const CRLFCRLF = Buffer.from('\r\n\r\n');

let recording = false;
let stopping = false;
let requests = 0;
let errors = 0;

/** Bytes of a complete answer at the start of buf, or 0 when it is not complete yet (-1: malformed). */
function frameLength(buf: Buffer): number {
  if (d.protocol === 'http') {
    const end = buf.indexOf(CRLFCRLF);
    if (end < 0) return 0;
    const head = buf.toString('latin1', 0, end);
    const m = /\r\ncontent-length: *(\d+)/i.exec(head);
    if (m === null) return -1;
    const total = end + 4 + Number(m[1]);
    return buf.length >= total ? total : 0;
  }
  const nl = buf.indexOf('\r\n');
  if (nl < 0) return 0;
  if (buf[0] !== 0x24) return nl + 2; // +OK, -ERR, :n
  const n = Number(buf.toString('latin1', 1, nl));
  if (n < 0) return nl + 2;
  const total = nl + 2 + n + 2;
  return buf.length >= total ? total : 0;
}

function runConnection(done: () => void): void {
  const s: Socket = connect({ host: d.host, port: d.port, noDelay: true });
  let buf: Buffer = Buffer.alloc(0);
  let t0 = 0;
  const send = (): void => {
    if (stopping) { s.end(); return; }
    t0 = performance.now();
    s.write(req);
  };
  s.on('connect', send);
  s.on('data', (chunk: Buffer) => {
    buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    for (;;) {
      const n = frameLength(buf);
      if (n === 0) return;
      if (n < 0) { errors++; s.destroy(); return; }
      buf = buf.subarray(n);
      if (recording) {
        requests++;
        h.recordValue(Math.max(1, Math.round((performance.now() - t0) * 1000)));
      }
      send();
    }
  });
  s.on('error', () => { errors++; });
  s.on('close', done);
}

let open = d.connections;
const t = { start: 0, end: 0 };
const finished = new Promise<void>((resolve) => {
  for (let i = 0; i < d.connections; i++) runConnection(() => { if (--open === 0) resolve(); });
});
setTimeout(() => {
  recording = true;
  t.start = performance.now();
  setTimeout(() => {
    recording = false;
    t.end = performance.now();
    stopping = true;
  }, d.durationMs);
}, d.warmupMs);
await finished;
const elapsedMs = t.end - t.start;
const out: LoadDone = {
  code: 'done', requests, errors, elapsedMs, rps: requests / (elapsedMs / 1000),
  p50: h.getValueAtPercentile(50), p99: h.getValueAtPercentile(99), p999: h.getValueAtPercentile(99.9), max: h.maxValue,
};
parentPort?.postMessage(out);
