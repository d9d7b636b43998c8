/**
 * Benchmark peer for bench/ring.bench.ts: one of two real threads that move records, either through a
 * tickpipe ring or through `postMessage` (the baseline). The main thread only orchestrates.
 *
 * Commands arrive on parentPort, one at a time: the peer attaches / sets up, answers `ready`, blocks on
 * the shared start gate, runs, and answers `done` with its checksum and elapsed time. Both sides compute
 * the same order-sensitive checksum over the records, so the suite can fail loudly on a mismatch.
 */
import { parentPort, type MessagePort } from 'node:worker_threads';
import { RingReader, RingWriter, type SlotViews } from '../engine/ring/ring.ts';
import {
  RecordKind, SEQ_BYTE, TRADE_PRICE_BYTE, TRADE_SIZE_BYTE, TS_MICROS_BYTE, writeTrade,
} from '../schemas/records.ts';

export type PeerCommand =
  | { cmd: 'ring-produce' | 'ring-consume'; ring: SharedArrayBuffer; gate: SharedArrayBuffer; count: number; batch: number; spin: boolean }
  | { cmd: 'pm-produce' | 'pm-consume'; port: MessagePort; gate: SharedArrayBuffer; ack: SharedArrayBuffer; count: number; mode: 'batch64' | 'object' }
  | { cmd: 'exit' };

export interface PeerDone { code: 'done'; checksum: number; elapsedMs: number; parks?: number }

const port = parentPort!;

// ---- the records -------------------------------------------------------------------------------------
// Record s: seq = s, ts = TS0 + s, price = 20000 + (s & 1023) * 0.25, size = (s & 15) + 1. The 64-byte slot
// is a full TRADE record (schemas/records.ts); the 32-byte slot is a compact tick (STYLE.md §3.4 layout).
const TS0 = 1.7e15;
const C32_SEQ_BYTE = 4; // u32
const C32_TS_BYTE = 8; // f64
const C32_PRICE_BYTE = 16; // f64
const C32_SIZE_BYTE = 24; // u32
const C32_FLAGS_BYTE = 28; // u32

function step(sum: number, seq: number, ts: number, price: number, size: number): number {
  return (Math.imul(sum, 31) + seq + size + ((price * 4) | 0) + ((ts - TS0) | 0)) | 0;
}

function write64(v: SlotViews, b: number, s: number): void {
  const price = 20_000 + (s & 1023) * 0.25;
  writeTrade(v, b, RecordKind.TRADE, 1, s & 0xffff, s, TS0 + s, price, price - 0.25, price + 0.25, (s & 15) + 1, s & 3, 10, 12, s, 1);
}

function write32(v: SlotViews, b: number, s: number): void {
  v.u8[b] = RecordKind.TRADE;
  v.u16[(b + 2) >> 1] = s & 0xffff;
  v.u32[(b + C32_SEQ_BYTE) >> 2] = s;
  v.f64[(b + C32_TS_BYTE) >> 3] = TS0 + s;
  v.f64[(b + C32_PRICE_BYTE) >> 3] = 20_000 + (s & 1023) * 0.25;
  v.u32[(b + C32_SIZE_BYTE) >> 2] = (s & 15) + 1;
  v.u32[(b + C32_FLAGS_BYTE) >> 2] = s & 3;
}

function waitGate(gate: Int32Array): number {
  while (Atomics.load(gate, 0) === 0) Atomics.wait(gate, 0, 0, 1_000);
  return performance.now();
}

// ---- ring ---------------------------------------------------------------------------------------------

/** `spin`: never park (busy-loop on claim/available) — shows what parking costs; not how the engine runs. */
function ringProduce(sab: SharedArrayBuffer, gate: Int32Array, count: number, batch: number, spin: boolean): PeerDone {
  const w = RingWriter.attach(sab);
  const v = w.views;
  const wide = w.slotBytes >= 64;
  port.postMessage({ code: 'ready' });
  const t0 = waitGate(gate);
  let s = 0;
  let sum = 0;
  while (s < count) {
    const want = batch < count - s ? batch : count - s;
    const n = w.claim(want);
    if (n < want) { if (!spin) w.waitForSpace(want, 1_000); continue; } // whole batches only: the batch size is the point
    for (let i = 0; i < n; i++) {
      const r = s + i;
      if (wide) write64(v, w.slotByte(i), r); else write32(v, w.slotByte(i), r);
      sum = step(sum, r, TS0 + r, 20_000 + (r & 1023) * 0.25, (r & 15) + 1);
    }
    w.publish(n);
    s += n;
  }
  return { code: 'done', checksum: sum, elapsedMs: performance.now() - t0 };
}

function ringConsume(sab: SharedArrayBuffer, gate: Int32Array, count: number, batch: number, spin: boolean): PeerDone {
  const r = RingReader.attach(sab);
  const v = r.views;
  const wide = r.slotBytes >= 64;
  const seqOff = wide ? SEQ_BYTE : C32_SEQ_BYTE;
  const tsOff = wide ? TS_MICROS_BYTE : C32_TS_BYTE;
  const priceOff = wide ? TRADE_PRICE_BYTE : C32_PRICE_BYTE;
  const sizeOff = wide ? TRADE_SIZE_BYTE : C32_SIZE_BYTE;
  port.postMessage({ code: 'ready' });
  const t0 = waitGate(gate);
  let s = 0;
  let sum = 0;
  let parks = 0;
  while (s < count) {
    let n = r.available();
    if (n === 0) { if (!spin) { r.waitForData(1_000); parks++; } continue; }
    if (n > batch) n = batch;
    for (let i = 0; i < n; i++) {
      const b = r.slotByte(i);
      sum = step(sum, v.u32[(b + seqOff) >> 2]!, v.f64[(b + tsOff) >> 3]!, v.f64[(b + priceOff) >> 3]!, v.u32[(b + sizeOff) >> 2]!);
    }
    r.release(n);
    s += n;
  }
  return { code: 'done', checksum: sum, elapsedMs: performance.now() - t0, parks };
}

// ---- postMessage baseline -------------------------------------------------------------------------------
// Flow control so the baseline does not just fill memory: at most WINDOW messages in flight; the consumer
// counts what it handled in ack[0].
const FIELDS = 8; // f64 per record in the batched form: seq, ts, price, bid, ask, size, flags, numTrades
const PER_MSG = 64;
const windowFor = (mode: 'batch64' | 'object'): number => (mode === 'batch64' ? 256 : 8_192);

interface RecordObject { seq: number; ts: number; price: number; bid: number; ask: number; size: number; flags: number; numTrades: number }

function pmProduce(p: MessagePort, gate: Int32Array, ack: Int32Array, count: number, mode: 'batch64' | 'object'): PeerDone {
  port.postMessage({ code: 'ready' });
  const t0 = waitGate(gate);
  const window = windowFor(mode);
  let sent = 0;
  let sum = 0;
  let s = 0;
  while (s < count) {
    let acked = Atomics.load(ack, 0);
    while (sent - acked >= window) { Atomics.wait(ack, 0, acked, 1); acked = Atomics.load(ack, 0); }
    if (mode === 'batch64') {
      const n = PER_MSG < count - s ? PER_MSG : count - s;
      const a = new Float64Array(n * FIELDS);
      for (let i = 0; i < n; i++) {
        const r = s + i;
        const price = 20_000 + (r & 1023) * 0.25;
        const o = i * FIELDS;
        a[o] = r; a[o + 1] = TS0 + r; a[o + 2] = price; a[o + 3] = price - 0.25; a[o + 4] = price + 0.25;
        a[o + 5] = (r & 15) + 1; a[o + 6] = r & 3; a[o + 7] = 1;
        sum = step(sum, r, TS0 + r, price, (r & 15) + 1);
      }
      p.postMessage(a); // structured-clone copy, as a naive sender would
      s += n;
    } else {
      const price = 20_000 + (s & 1023) * 0.25;
      const o: RecordObject = { seq: s, ts: TS0 + s, price, bid: price - 0.25, ask: price + 0.25, size: (s & 15) + 1, flags: s & 3, numTrades: 1 };
      p.postMessage(o);
      sum = step(sum, s, TS0 + s, price, (s & 15) + 1);
      s++;
    }
    sent++;
  }
  return { code: 'done', checksum: sum, elapsedMs: performance.now() - t0 };
}

function pmConsume(p: MessagePort, gate: Int32Array, ack: Int32Array, count: number, mode: 'batch64' | 'object'): void {
  let s = 0;
  let sum = 0;
  let handled = 0;
  let t0 = 0;
  const finish = (): void => {
    const done: PeerDone = { code: 'done', checksum: sum, elapsedMs: performance.now() - t0 };
    p.off('message', onMessage);
    p.close();
    port.postMessage(done);
  };
  const onMessage = (m: Float64Array | RecordObject): void => {
    if (mode === 'batch64') {
      const a = m as Float64Array;
      for (let o = 0; o < a.length; o += FIELDS) sum = step(sum, a[o]!, a[o + 1]!, a[o + 2]!, a[o + 5]!);
      s += a.length / FIELDS;
    } else {
      const r = m as RecordObject;
      sum = step(sum, r.seq, r.ts, r.price, r.size);
      s++;
    }
    handled++;
    Atomics.store(ack, 0, handled);
    if ((handled & 15) === 0) Atomics.notify(ack, 0);
    if (s >= count) finish();
  };
  p.on('message', onMessage);
  port.postMessage({ code: 'ready' });
  t0 = waitGate(gate); // messages queue up meanwhile; none can arrive before the producer passes the gate
}

port.on('message', (c: PeerCommand) => {
  switch (c.cmd) {
    case 'ring-produce': port.postMessage(ringProduce(c.ring, new Int32Array(c.gate), c.count, c.batch, c.spin)); break;
    case 'ring-consume': port.postMessage(ringConsume(c.ring, new Int32Array(c.gate), c.count, c.batch, c.spin)); break;
    case 'pm-produce': port.postMessage(pmProduce(c.port, new Int32Array(c.gate), new Int32Array(c.ack), c.count, c.mode)); break; // the consumer closes the channel
    case 'pm-consume': pmConsume(c.port, new Int32Array(c.gate), new Int32Array(c.ack), c.count, c.mode); break;
    case 'exit': port.close(); break;
    default: throw new Error(`ring-peer: unknown command ${JSON.stringify(c)}`);
  }
});
