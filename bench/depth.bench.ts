/**
 * Market depth throughput: `.depth` decode into a ring, and decode + order book apply, against a naive
 * baseline measured in the same run.
 *
 * The file is made by DepthWriter from the market simulator (one MNQ-like symbol, ~40 levels a side,
 * a full snapshot every 10 minutes, small update batches near the top between): about 3 million
 * records (quick mode: about 0.5 million).
 *
 * - decode only: DepthDecoder -> SPSC ring (4096 slots) -> consumer releases the slots unread.
 * - decode + book: the consumer applies every slot to an OrderBook (`applyFromSlot`) and reads the best
 *   bid/ask after every applied batch. Target: >= 5 million records/s.
 * - naive baseline: what a first version would do: a DataView with `getBigInt64` per record, an object
 *   per record staged in an array per batch, a `Map<number, number>` per side, and a sort of the keys on
 *   every best-price query (once per batch).
 *
 * Each variant processes its whole input per iteration; the figure is records / median iteration time.
 * The naive baseline is about 50x slower, so it and the fast path it is compared with run on a prefix of
 * the file (150 k records; quick: 50 k): one snapshot and the updates after it.
 */
import { Bench } from 'tinybench';
import { OrderBook } from '../engine/book/index.ts';
import { RingReader, RingWriter, createRing } from '../engine/ring/ring.ts';
import { DepthCommand, RECORD_SLOT_BYTES } from '../schemas/records.ts';
import { DepthDecoder } from '../workers/sierra/depth-decoder.ts';
import { DepthWriter } from '../workers/sierra/depth-writer.ts';
import { MarketSim } from '../workers/sim/market-sim.ts';
import { sig, type BenchResult, type BenchSuite } from './lib.ts';

const T0 = Date.UTC(2025, 10, 11, 14, 30) * 1000;
const SYMBOL = 'MNQZ25';

function makeFile(minutes: number): { bytes: Uint8Array; records: number } {
  const w = DepthWriter.toMemory({ bufferBytes: 1 << 24 });
  const sim = new MarketSim(T0, [{ symbol: SYMBOL, tickSize: 0.25, startPrice: 21000, baseRate: 120, depthLevels: 40 }], { seed: 42 });
  sim.run(T0 + minutes * 60_000_000, {}, { [SYMBOL]: w });
  return { bytes: w.contents(), records: w.recordCount };
}

/** Decoder -> ring -> (optionally) book; returns a checksum so nothing is optimised away. */
function replay(bytes: Uint8Array, ring: { w: RingWriter; r: RingReader }, applyBook: boolean): number {
  const dec = new DepthDecoder({ fileName: `${SYMBOL}_FUT_CME.2025-11-11.depth` });
  const book = new OrderBook({ tickSize: 0.25 });
  const { w, r } = ring;
  const v = r.views;
  let acc = 0;
  dec.push(bytes);
  for (;;) {
    dec.decodeInto(w);
    const n = r.available();
    if (applyBook) {
      for (let i = 0; i < n; i++) {
        if (book.applyFromSlot(v, r.slotByte(i))) acc += book.bestBid + book.bestAsk;
      }
    }
    r.release(n);
    if (dec.pendingRecords === 0) break;
  }
  return acc + dec.nextRecordIndex;
}

interface NaiveRec { ts: number; cmd: number; flags: number; orders: number; price: number; qty: number }

/** The baseline: DataView + BigInt per record, an object per record, Map per side, sort per best-price query. */
function naiveReplay(bytes: Uint8Array): number {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerBytes = dv.getUint32(4, true);
  const bids = new Map<number, number>();
  const asks = new Map<number, number>();
  let batch: NaiveRec[] = [];
  let acc = 0;
  for (let p = headerBytes; p + 24 <= bytes.length; p += 24) {
    const rec: NaiveRec = {
      ts: Number(dv.getBigInt64(p, true) - 2209161600000000n),
      cmd: dv.getUint8(p + 8), flags: dv.getUint8(p + 9), orders: dv.getUint16(p + 10, true),
      price: dv.getFloat32(p + 12, true), qty: dv.getUint32(p + 16, true),
    };
    batch.push(rec);
    if ((rec.flags & 1) === 0) continue;
    for (const c of batch) {
      if (c.cmd === DepthCommand.CLEAR_BOOK) { bids.clear(); asks.clear(); continue; }
      if (c.cmd < DepthCommand.ADD_BID_LEVEL) continue;
      const side = c.cmd % 2 === 0 ? bids : asks;
      if (c.cmd >= DepthCommand.DELETE_BID_LEVEL || c.qty === 0) side.delete(c.price);
      else side.set(c.price, c.qty);
    }
    batch = [];
    const bestBid = [...bids.keys()].sort((a, b) => b - a)[0] ?? Number.NaN;
    const bestAsk = [...asks.keys()].sort((a, b) => a - b)[0] ?? Number.NaN;
    acc += bestBid + bestAsk;
  }
  return acc;
}

/** Header + the first `records` records of `bytes` (a smaller file of the same market). */
function prefix(bytes: Uint8Array, records: number): Uint8Array {
  const headerBytes = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(4, true);
  return bytes.subarray(0, Math.min(bytes.length, headerBytes + records * 24));
}

function p50Rate(bench: Bench, name: string, records: number): number {
  const t = bench.tasks.find((x) => x.name === name);
  const p50 = t?.result?.latency.p50;
  if (p50 === undefined || !(p50 > 0)) throw new Error(`depth bench: no result for ${name}`);
  return records / (p50 / 1000);
}

export const run: BenchSuite = async ({ quick }) => {
  const { bytes, records } = makeFile(quick ? 10 : 60);
  // The naive baseline is ~50x slower: it runs on a prefix (one snapshot and the updates after it),
  // and so does the fast path it is compared with.
  const prefixRecords = Math.min(records, quick ? 50_000 : 150_000);
  const small = prefix(bytes, prefixRecords);
  const sab = createRing({ slotCount: 4096, slotBytes: RECORD_SLOT_BYTES });
  const ring = { w: RingWriter.attach(sab), r: RingReader.attach(sab) };

  // Both must see the same best prices after every batch.
  const a = replay(small, ring, true) - prefixRecords;
  const b = naiveReplay(small);
  if (!(Math.abs(a - b) <= 1e-9 * Math.abs(b))) throw new Error(`depth bench: book replay (${a}) and naive baseline (${b}) disagree`);

  let sink = 0;
  const opts = { time: 0, warmup: true, warmupIterations: 1, warmupTime: 0 };
  const fast = new Bench({ ...opts, iterations: quick ? 3 : 5 });
  fast
    .add('decode', () => { sink += replay(bytes, ring, false); })
    .add('decode+book', () => { sink += replay(bytes, ring, true); });
  await fast.run();
  // short runs (tens of ms): more of them, so one descheduling on a busy machine does not set the median
  const fastSmall = new Bench({ ...opts, iterations: 21, warmupIterations: 3 });
  fastSmall.add('decode+book prefix', () => { sink += replay(small, ring, true); });
  await fastSmall.run();
  const naive = new Bench({ ...opts, iterations: quick ? 2 : 3 });
  naive.add('naive prefix', () => { sink += naiveReplay(small); });
  await naive.run();
  if (sink === 42) console.log('');

  const decodeOnly = p50Rate(fast, 'decode', records);
  const full = p50Rate(fast, 'decode+book', records);
  const fastPrefix = p50Rate(fastSmall, 'decode+book prefix', prefixRecords);
  const naivePrefix = p50Rate(naive, 'naive prefix', prefixRecords);
  const m = (n: number): string => `${(n / 1e6).toFixed(2)} M records`;
  const results: BenchResult[] = [
    { name: `depth decode only (${m(records)})`, unit: 'records/s', value: sig(decodeOnly) },
    { name: `depth decode + book apply (${m(records)}; target 5 M/s)`, unit: 'records/s', value: sig(full) },
    {
      name: `depth decode + book apply vs naive (first ${m(prefixRecords)})`, unit: 'records/s', value: sig(fastPrefix),
      baseline: 'naive: DataView+BigInt, object per record, Map per side, sort per best-price query', baselineValue: sig(naivePrefix),
      ratio: sig(fastPrefix / naivePrefix, 3),
    },
  ];
  return results;
};
