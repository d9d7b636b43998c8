/**
 * SierraIngest on real files (made with the project's writers) in a temp dir.
 *
 * One-shot reads (`follow: false`) run in this thread: `run()` returns once every file is read. Live
 * behaviour (files that appear, grow, shrink or are replaced while tailed; back-pressure) runs the real
 * worker (`workers/sierra-scid.worker.ts`) under the `Supervisor`, with this thread as the ring's consumer.
 * A "process restart" is a new SierraIngest with a new ring and a new progress table on the same data dir.
 */
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { checkpointPath } from '../../engine/checkpoint.ts';
import { isEngineError, type EngineError } from '../../engine/errors.ts';
import { IngestProgress } from '../../engine/ingest/progress.ts';
import { createRing, RingReader, ringStats } from '../../engine/ring/ring.ts';
import { Supervisor } from '../../engine/supervisor.ts';
import {
  BOOK_END_SRC_INDEX_BYTE, DEPTH_SRC_INDEX_BYTE, GAP_EXPECTED_SEQ_BYTE, GAP_KIND_BYTE, GapKind, RecordKind, RECORD_SLOT_BYTES,
  TRADE_PRICE_BYTE, TRADE_SRC_INDEX_BYTE, DepthCommand, readF64, readKind, readSymbolId, readTsMicros, readU32,
} from '../../schemas/records.ts';
import { DepthWriter } from './depth-writer.ts';
import { nextIdleSleep, SierraIngest, type IngestFileSpec, type SierraIngestOptions } from './ingest.ts';
import { ScidWriter } from './scid-writer.ts';

const T0 = Date.UTC(2025, 10, 11, 14, 30) * 1000;
const DAY_US = 86_400_000_000;
const SCID_HB = 56;
const SCID_RB = 40;
const DEPTH_HB = 64;
const DEPTH_RB = 24;
const ADD_BID = DepthCommand.ADD_BID_LEVEL;

let dir = '';
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), 'tickpipe-ingest-')); });
afterEach(() => { rmSync(dir, { recursive: true, force: true }); });

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const range = (a: number, b: number): number[] => Array.from({ length: Math.max(0, b - a) }, (_, i) => a + i);

// ---- files ----------------------------------------------------------------------------------------

/** Trade i of a file whose times start at `base`: time base + i ms, price 5000 + (i % 97) / 4 (f32-exact). */
const tradeTs = (base: number, i: number): number => T0 + base + i * 1000;
const tradePrice = (i: number): number => 5000 + (i % 97) / 4;

/** Write (or with `append`, add) trades `from` .. `to`-1 to a .scid file. */
function writeScid(path: string, from: number, to: number, opts: { base?: number; append?: boolean } = {}): void {
  const w = ScidWriter.open(path, { append: opts.append === true });
  for (let i = from; i < to; i++) {
    const p = tradePrice(i);
    w.trade(tradeTs(opts.base ?? 0, i), p, p - 0.25, p, 1 + (i % 5), 1 + (i % 2), 0);
  }
  w.closeSync();
}

/** One whole .scid record's bytes (trade `i`), for writing partial records. */
function scidRecordBytes(i: number, base = 0): Uint8Array {
  const tmp = join(dir, `rec-${i}-${base}.tmp`);
  writeScid(tmp, i, i + 1, { base });
  const b = new Uint8Array(readFileSync(tmp)).subarray(SCID_HB);
  unlinkSync(tmp);
  return b;
}

/** Append raw bytes to a .scid file (a partial record, garbage). */
function appendScidRaw(path: string, bytes: Uint8Array): void {
  const w = ScidWriter.open(path, { append: true, raw: true });
  w.rawBytes(bytes);
  w.closeSync();
}

/**
 * Write `batches` depth batches (each: one ADD_BID_LEVEL record per level, end-of-batch on the last) to a
 * .depth file, record times from `base`; returns the records written. Batch 0 of a new file is a snapshot.
 */
function writeDepth(path: string, batches: number, opts: { base?: number; append?: boolean; levels?: number } = {}): number {
  const w = DepthWriter.toFile(path, { append: opts.append === true });
  const before = w.recordCount;
  const levels = opts.levels ?? 3;
  for (let b = 0; b < batches; b++) {
    const ts = T0 + (opts.base ?? 0) + (before + b) * 1000;
    if (b === 0 && before === 0) {
      w.snapshot(ts, range(0, levels).map((k) => ({ price: 5000 - k / 4, quantity: 10 + k })), []);
    } else {
      w.update(ts, range(0, levels).map((k) => ({ command: ADD_BID, price: 5000 - k / 4, quantity: b + k })));
    }
  }
  const n = w.recordCount - before;
  w.close();
  return n;
}

const depthName = (prefix: string, day: string): string => `${prefix}.${day}.depth`;

// ---- ring records ---------------------------------------------------------------------------------

interface Rec { kind: number; sym: number; idx: number; ts: number; price: number; gapKind: number; expected: number }

function readRec(r: RingReader, i: number): Rec {
  const v = r.views;
  const b = r.slotByte(i);
  const kind = readKind(v, b);
  const idxByte = kind === RecordKind.TRADE ? TRADE_SRC_INDEX_BYTE : kind === RecordKind.DEPTH ? DEPTH_SRC_INDEX_BYTE : kind === RecordKind.BOOK_END ? BOOK_END_SRC_INDEX_BYTE : -1;
  return {
    kind, sym: readSymbolId(v, b), ts: readTsMicros(v, b),
    idx: idxByte >= 0 ? readU32(v, b, idxByte) : -1,
    price: kind === RecordKind.TRADE ? readF64(v, b, TRADE_PRICE_BYTE) : NaN,
    gapKind: kind === RecordKind.GAP ? readU32(v, b, GAP_KIND_BYTE) : 0,
    expected: kind === RecordKind.GAP ? readU32(v, b, GAP_EXPECTED_SEQ_BYTE) : 0,
  };
}

function drainRing(r: RingReader, into: Rec[], max = Infinity): number {
  const n = Math.min(r.available(), max);
  for (let i = 0; i < n; i++) into.push(readRec(r, i));
  r.release(n);
  return n;
}

/**
 * The record indices a symbol delivered, in ring order: trades and depth records by their source index,
 * a FILE_RESET gap as 'R' (BOOK_END slots are left out; see bookEnds).
 */
function seqOf(recs: Rec[], sym: number): (number | 'R')[] {
  const out: (number | 'R')[] = [];
  for (const r of recs) {
    if (r.sym !== sym) continue;
    if (r.kind === RecordKind.TRADE || r.kind === RecordKind.DEPTH) out.push(r.idx);
    else if (r.kind === RecordKind.GAP && r.gapKind === GapKind.FILE_RESET) out.push('R');
  }
  return out;
}
const tradesOf = (recs: Rec[], sym: number): Rec[] => recs.filter((r) => r.sym === sym && r.kind === RecordKind.TRADE);
const bookEnds = (recs: Rec[], sym: number): number => recs.filter((r) => r.sym === sym && r.kind === RecordKind.BOOK_END).length;

// ---- running an ingest ----------------------------------------------------------------------------

const scidSpec = (symbolId: number, path: string): IngestFileSpec => ({ kind: 'scid', symbol: `S${symbolId}`, symbolId, sourceId: 1, path });
const depthSpec = (symbolId: number, d: string, prefix: string, fromDate?: string): IngestFileSpec => ({
  kind: 'depth', symbol: `D${symbolId}`, symbolId, sourceId: 2, dir: d, prefix, ...(fromDate ? { fromDate } : {}),
});

interface OneShot { recs: Rec[]; errors: EngineError[]; warns: string[]; ring: SharedArrayBuffer }

/** A one-shot read in this thread: a new ring and progress table (a new process). The ring must hold everything. */
function runOnce(files: IngestFileSpec[], extra: Partial<SierraIngestOptions> = {}, slots = 8192): OneShot {
  const ring = createRing({ slotCount: slots, slotBytes: RECORD_SLOT_BYTES });
  const errors: EngineError[] = [];
  const warns: string[] = [];
  const ingest = new SierraIngest(
    { name: 'src', ring, progress: IngestProgress.create(files.length), files, dataDir: join(dir, 'data'), follow: false, pollMs: 5, ...extra },
    { sourceError: (e) => errors.push(e), warn: (m) => warns.push(m) },
  );
  ingest.run();
  const recs: Rec[] = [];
  const reader = RingReader.attach(ring);
  drainRing(reader, recs);
  return { recs, errors, warns, ring };
}

function errorFor(errors: EngineError[], file: string): EngineError {
  const found = errors.filter((e) => e.detail.file === file);
  expect(found.map((e) => e.message), `errors for ${file}`).toHaveLength(1);
  const e = found[0]!;
  expect(e.message).toContain(file);
  return e;
}

function readCheckpoint(): { files: Record<string, { path?: string; tag?: number; offset: number; recordIndex: number; fingerprint?: string }> } {
  return JSON.parse(readFileSync(checkpointPath(join(dir, 'data'), 'src'), 'utf8')) as never;
}

/** The real source worker under a Supervisor; this thread consumes the ring. */
class Live {
  readonly recs: Rec[] = [];
  readonly errors: EngineError[] = [];
  readonly warns: string[] = [];
  readonly fatal: string[] = [];
  readonly ring: SharedArrayBuffer;
  readonly #sup = new Supervisor();
  readonly #reader: RingReader;
  #stop = false;
  #consumer: Promise<void> = Promise.resolve();
  /** Slots released per step and the pause between steps (a slow consumer), or Infinity / 0. */
  perStep = Infinity;
  stepMs = 0;

  private constructor(slots: number) {
    this.ring = createRing({ slotCount: slots, slotBytes: RECORD_SLOT_BYTES });
    this.#reader = RingReader.attach(this.ring);
  }

  static async start(files: IngestFileSpec[], opts: { slots?: number; pollMs?: number; perStep?: number; stepMs?: number } = {}): Promise<Live> {
    const live = new Live(opts.slots ?? 4096);
    live.perStep = opts.perStep ?? Infinity;
    live.stepMs = opts.stepMs ?? 0;
    const sup = live.#sup;
    sup.on('source-error', (_n: string, e: EngineError) => live.errors.push(e));
    sup.on('warning', (e: Error) => live.warns.push(e.message));
    sup.on('stage-error', (_n: string, e: Error) => live.fatal.push(e.message));
    sup.add({
      name: 'src', entry: new URL('../sierra-scid.worker.ts', import.meta.url), outputs: [live.ring], maxRestarts: 0,
      data: {
        name: 'src', ring: live.ring, progress: IngestProgress.create(files.length), files, dataDir: join(dir, 'data'),
        follow: true, pollMs: opts.pollMs ?? 20, checkpointEveryMs: 50,
      } satisfies SierraIngestOptions,
    });
    await sup.start();
    live.#consumer = live.#consume();
    return live;
  }

  async #consume(): Promise<void> {
    const r = this.#reader;
    while (!this.#stop || r.available() > 0) {
      if (drainRing(r, this.recs, this.perStep) === 0) await r.waitForDataAsync(10);
      else if (this.stepMs > 0) await sleep(this.stepMs);
    }
  }

  /** Wait until `cond` holds (checked every 10 ms); fails with `what` and the records seen so far. */
  async until(what: string, cond: () => boolean, timeoutMs = 8000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!cond()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; errors: ${JSON.stringify(this.errors.map((e) => e.message))}; fatal: ${JSON.stringify(this.fatal)}`);
      await sleep(10);
    }
  }

  /** Graceful stop (the worker saves its checkpoint), then the consumer drains what is left. */
  async stop(): Promise<void> {
    await this.#sup.close({ timeoutMs: 5000 });
    this.perStep = Infinity;
    this.stepMs = 0;
    this.#stop = true;
    await this.#consumer;
  }
}

// ---- one-shot reads -------------------------------------------------------------------------------

describe('bad input: coded errors naming the file and byte offset; the other files deliver everything', () => {
  test('bad magic, header and record sizes, empty and short files, a directory', () => {
    const good = join(dir, 'GOOD.scid');
    writeScid(good, 0, 300);
    const dd = join(dir, 'depth');
    mkdirSync(dd);
    const goodDepth = join(dd, depthName('GOODD', '2025-11-11'));
    const depthRecords = writeDepth(goodDepth, 40);

    const bad: { spec: IngestFileSpec; path: string; code: string; byteOffset: number }[] = [];
    const addScid = (name: string, make: (p: string) => void, code: string, byteOffset: number | ((p: string) => number)): void => {
      const p = join(dir, name);
      make(p);
      bad.push({ spec: scidSpec(100 + bad.length, p), path: p, code, byteOffset: typeof byteOffset === 'number' ? byteOffset : byteOffset(p) });
    };
    const addDepth = (prefix: string, make: (w: DepthWriter) => void, code: string, byteOffset: number): void => {
      const p = join(dd, depthName(prefix, '2025-11-11'));
      const w = DepthWriter.toFile(p, { raw: true });
      make(w);
      w.close();
      bad.push({ spec: depthSpec(100 + bad.length, dd, prefix, '2025-11-11'), path: p, code, byteOffset });
    };
    const rawScid = (rawHeader: object, records = 5) => (p: string): void => {
      const w = ScidWriter.open(p, { raw: true, rawHeader });
      for (let i = 0; i < records; i++) w.trade(tradeTs(0, i), 5000, 4999.75, 5000, 1, 1, 0);
      w.closeSync();
    };
    const someRecords = (w: DepthWriter): void => { for (let i = 0; i < 5; i++) w.record(T0 + i, ADD_BID, 1, 1, 5000, 1); };

    addScid('MAGIC.scid', rawScid({ magic: 'SCIX' }), 'ENGINE_ERR_SCID_FORMAT', 0);
    addScid('HSMALL.scid', rawScid({ headerBytes: 40 }), 'ENGINE_ERR_SCID_FORMAT', 4);
    addScid('HBIG.scid', rawScid({ headerBytes: 5000, writtenBytes: 56 }, 10), 'ENGINE_ERR_SCID_FORMAT', (p) => statSync(p).size);
    addScid('RSIZE.scid', rawScid({ recordBytes: 32 }), 'ENGINE_ERR_SCID_FORMAT', 8);
    addScid('EMPTY.scid', (p) => writeFileSync(p, new Uint8Array(0)), 'ENGINE_ERR_SCID_FORMAT', 0);
    addScid('SHORT.scid', (p) => { const w = ScidWriter.open(p, { raw: true, rawHeader: { writtenBytes: 30 } }); w.closeSync(); }, 'ENGINE_ERR_SCID_FORMAT', 30);
    addScid('ADIR.scid', (p) => mkdirSync(p), 'ENGINE_ERR_FILE_IO', -1);
    addDepth('DMAGIC', (w) => { w.header({ magic: 0x58585858 }); someRecords(w); }, 'ENGINE_ERR_DEPTH_FORMAT', 0);
    addDepth('DHSMALL', (w) => { w.header({ headerBytes: 32 }); someRecords(w); }, 'ENGINE_ERR_DEPTH_FORMAT', 4);
    addDepth('DHBIG', (w) => { w.header({ headerBytes: 4096 }); someRecords(w); }, 'ENGINE_ERR_DEPTH_FORMAT', 4);
    addDepth('DRSIZE', (w) => { w.header({ recordBytes: 20 }); someRecords(w); }, 'ENGINE_ERR_DEPTH_FORMAT', 8);
    addDepth('DEMPTY', () => { /* nothing */ }, 'ENGINE_ERR_DEPTH_FORMAT', 0);

    const files = [scidSpec(1, good), ...bad.map((b) => b.spec), depthSpec(2, dd, 'GOODD', '2025-11-11')];
    const { recs, errors } = runOnce(files);

    for (const b of bad) {
      const e = errorFor(errors, b.path);
      expect(e.code, b.path).toBe(b.code);
      if (b.byteOffset >= 0) expect(e.detail.byteOffset, b.path).toBe(b.byteOffset);
    }
    expect(errors).toHaveLength(bad.length);
    expect(seqOf(recs, 1)).toEqual(range(0, 300));
    expect(tradesOf(recs, 1).map((r) => r.ts)).toEqual(range(0, 300).map((i) => tradeTs(0, i)));
    expect(tradesOf(recs, 1).map((r) => r.price)).toEqual(range(0, 300).map(tradePrice));
    expect(seqOf(recs, 2)).toEqual(range(0, depthRecords));
    expect(bookEnds(recs, 2)).toBe(40);
    // nothing at all from the bad files
    for (const b of bad) expect(recs.filter((r) => r.sym === b.spec.symbolId)).toEqual([]);
  });

  test('a header-only file is not an error: zero records', () => {
    const p = join(dir, 'HDR.scid');
    ScidWriter.open(p).closeSync();
    const dd = join(dir, 'd');
    mkdirSync(dd);
    writeDepth(join(dd, depthName('H', '2025-11-11')), 0);
    expect(statSync(p).size).toBe(SCID_HB);
    const { recs, errors, warns } = runOnce([scidSpec(1, p), depthSpec(2, dd, 'H')]);
    expect(errors).toEqual([]);
    expect(warns).toEqual([]);
    expect(recs).toEqual([]);
  });

  test('a truncated last record is not emitted (a warning says so); completed later it is emitted exactly once', () => {
    const p = join(dir, 'PART.scid');
    writeScid(p, 0, 20);
    appendScidRaw(p, scidRecordBytes(20).subarray(0, 17));
    const first = runOnce([scidSpec(1, p)]);
    expect(first.errors).toEqual([]);
    expect(seqOf(first.recs, 1)).toEqual(range(0, 20));
    expect(first.warns.join('\n')).toMatch(/partial record of 17 bytes at byte offset 856/);
    // the writer completes it and adds more; the next process resumes from the checkpoint
    appendScidRaw(p, scidRecordBytes(20).subarray(17));
    writeScid(p, 21, 25, { append: true });
    const second = runOnce([scidSpec(1, p)]);
    expect(second.errors).toEqual([]);
    expect(second.warns).toEqual([]);
    expect(seqOf(second.recs, 1)).toEqual(range(20, 25));
    expect(tradesOf(second.recs, 1).map((r) => r.ts)).toEqual(range(20, 25).map((i) => tradeTs(0, i)));
  });

  test('a corrupt .scid record is reported with its byte offset and stepped over; a run of them is reported twice, not per record', () => {
    const p = join(dir, 'CORRUPT.scid');
    const other = join(dir, 'OTHER.scid');
    writeScid(other, 0, 100);
    writeScid(p, 0, 40);
    appendScidRaw(p, new Uint8Array(SCID_RB)); // record 40: all zero (DateTime 1899)
    writeScid(p, 41, 60, { append: true });
    appendScidRaw(p, new Uint8Array(SCID_RB * 25).fill(0xff)); // records 60..84: garbage
    writeScid(p, 85, 100, { append: true });
    const { recs, errors } = runOnce([scidSpec(1, p), scidSpec(2, other)]);
    expect(errors.map((e) => e.code)).toEqual(['ENGINE_ERR_SCID_FORMAT', 'ENGINE_ERR_SCID_FORMAT', 'ENGINE_ERR_SCID_FORMAT']);
    expect(errors.map((e) => e.detail.byteOffset)).toEqual([SCID_HB + 40 * SCID_RB, SCID_HB + 60 * SCID_RB, SCID_HB + 61 * SCID_RB]);
    expect(errors.map((e) => e.detail.recordIndex)).toEqual([40, 60, 61]);
    expect(errors[2]!.detail.lastByteOffset).toBe(SCID_HB + 84 * SCID_RB);
    expect(errors[2]!.message).toMatch(/24 more corrupt records/);
    for (const e of errors) expect(e.message).toContain(p);
    const want = [...range(0, 40), ...range(41, 60), ...range(85, 100)];
    expect(seqOf(recs, 1)).toEqual(want);
    expect(tradesOf(recs, 1).map((r) => r.ts)).toEqual(want.map((i) => tradeTs(0, i)));
    expect(seqOf(recs, 2)).toEqual(range(0, 100));
  });

  test('a HeaderSize that does not match where the records are: the misaligned records are reported once plus a summary', () => {
    const p = join(dir, 'SHIFT.scid');
    const w = ScidWriter.open(p, { raw: true, rawHeader: { headerBytes: 60, writtenBytes: 56 } });
    for (let i = 0; i < 30; i++) w.trade(tradeTs(0, i), 5000, 4999.75, 5000, 1, 1, 0);
    w.closeSync();
    const { recs, errors } = runOnce([scidSpec(1, p)]);
    expect(recs).toEqual([]);
    expect(errors).toHaveLength(2);
    expect(errors[0]!.detail.byteOffset).toBe(60);
    expect(errors[1]!.message).toMatch(/28 more corrupt records/);
  });

  test('a corrupt .depth record: reported with its byte offset, the records before it delivered, the file stops there', () => {
    const dd = join(dir, 'd');
    mkdirSync(dd);
    const p = join(dd, depthName('BAD', '2025-11-11'));
    const w = DepthWriter.toFile(p, { raw: true });
    w.header();
    for (let i = 0; i < 10; i++) w.record(T0 + i, ADD_BID, i % 3 === 2 ? 1 : 0, 1, 5000, 1);
    w.record(T0 + 10, 9, 0, 1, 5000, 1); // command 9 does not exist
    for (let i = 11; i < 20; i++) w.record(T0 + i, ADD_BID, 0, 1, 5000, 1);
    w.close();
    const good = join(dir, 'G.scid');
    writeScid(good, 0, 50);
    const { recs, errors } = runOnce([depthSpec(1, dd, 'BAD', '2025-11-11'), scidSpec(2, good)]);
    const e = errorFor(errors, p);
    expect(e.code).toBe('ENGINE_ERR_DEPTH_FORMAT');
    expect(e.detail.byteOffset).toBe(DEPTH_HB + 10 * DEPTH_RB);
    expect(errors).toHaveLength(1);
    expect(seqOf(recs, 1)).toEqual(range(0, 10));
    expect(bookEnds(recs, 1)).toBe(3);
    expect(seqOf(recs, 2)).toEqual(range(0, 50));
  });

  test('missing folders are not errors; a depth "folder" that is a file is a coded error; the rest goes on', () => {
    const good = join(dir, 'G.scid');
    writeScid(good, 0, 10);
    const notDir = join(dir, 'NOTADIR');
    writeFileSync(notDir, 'x');
    const t0 = performance.now();
    const { recs, errors } = runOnce([
      depthSpec(1, join(dir, 'no', 'such', 'MarketDepthData'), 'X', '2025-11-11'),
      scidSpec(2, join(dir, 'nowhere', 'X.scid')),
      depthSpec(3, notDir, 'Y'),
      scidSpec(4, good),
    ]);
    expect(performance.now() - t0).toBeLessThan(2000);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.code).toBe('ENGINE_ERR_FILE_IO');
    expect(errors[0]!.message).toContain(notDir);
    expect(seqOf(recs, 4)).toEqual(range(0, 10));
  });
});

describe('checkpoints across process restarts', () => {
  test('a new process resumes where the last one stopped: no duplicate, no gap (.scid and .depth)', () => {
    const p = join(dir, 'A.scid');
    const dd = join(dir, 'd');
    mkdirSync(dd);
    const dp = join(dd, depthName('A', '2025-11-11'));
    writeScid(p, 0, 50);
    const d1 = writeDepth(dp, 10);
    const files = [scidSpec(1, p), depthSpec(2, dd, 'A', '2025-11-11')];
    const r1 = runOnce(files);
    expect(seqOf(r1.recs, 1)).toEqual(range(0, 50));
    expect(seqOf(r1.recs, 2)).toEqual(range(0, d1));
    const cp = readCheckpoint();
    expect(cp.files[`scid:S1:${p}`]).toMatchObject({ offset: SCID_HB + 50 * SCID_RB, recordIndex: 50, path: p });
    expect(cp.files[`depth:D2:${dd}/A`]).toMatchObject({ offset: DEPTH_HB + d1 * DEPTH_RB, recordIndex: d1, path: dp, tag: 20251111 });

    writeScid(p, 50, 80, { append: true });
    const d2 = writeDepth(dp, 7, { append: true });
    const r2 = runOnce(files);
    expect(r2.errors).toEqual([]);
    expect(seqOf(r2.recs, 1)).toEqual(range(50, 80));
    expect(tradesOf(r2.recs, 1).map((r) => r.ts)).toEqual(range(50, 80).map((i) => tradeTs(0, i)));
    expect(seqOf(r2.recs, 2)).toEqual(range(d1, d1 + d2));
    expect(bookEnds(r2.recs, 2)).toBe(7);
    // nothing new: nothing delivered
    const r3 = runOnce(files);
    expect(r3.recs).toEqual([]);
  });

  test('a corrupt checkpoint is ENGINE_ERR_CONFIG naming the checkpoint file', () => {
    const p = join(dir, 'A.scid');
    writeScid(p, 0, 5);
    runOnce([scidSpec(1, p)]);
    const cpFile = checkpointPath(join(dir, 'data'), 'src');
    writeFileSync(cpFile, '{"version":1,"files":{"x":');
    let err: unknown;
    try { runOnce([scidSpec(1, p)]); } catch (e) { err = e; }
    expect(isEngineError(err, 'ENGINE_ERR_CONFIG')).toBe(true);
    expect((err as Error).message).toContain(cpFile);
    expect((err as EngineError).detail.file).toBe(cpFile);
  });

  test('the checkpoint\'s file was replaced (new inode): that file is read from 0, after a FILE_RESET', () => {
    const p = join(dir, 'A.scid');
    writeScid(p, 0, 30);
    runOnce([scidSpec(1, p)]);
    // the new file is longer than the checkpoint offset: only its inode tells it apart
    const tmp = `${p}.tmp`;
    writeScid(tmp, 0, 40, { base: DAY_US });
    renameSync(tmp, p);
    const r = runOnce([scidSpec(1, p)]);
    expect(r.errors).toEqual([]);
    expect(seqOf(r.recs, 1)).toEqual(['R', ...range(0, 40)]);
    expect(r.recs[0]!.expected).toBe(30);
    expect(tradesOf(r.recs, 1).map((x) => x.ts)).toEqual(range(0, 40).map((i) => tradeTs(DAY_US, i)));
  });

  test('same inode but other content (rewritten in place, or deleted and re-created with the inode reused): read from 0', () => {
    const p = join(dir, 'A.scid');
    writeScid(p, 0, 30);
    runOnce([scidSpec(1, p)]);
    const ino = statSync(p).ino;
    writeScid(p, 0, 45, { base: 2 * DAY_US }); // truncate + write: same inode
    expect(statSync(p).ino).toBe(ino);
    const r = runOnce([scidSpec(1, p)]);
    expect(seqOf(r.recs, 1)).toEqual(['R', ...range(0, 45)]);
    expect(tradesOf(r.recs, 1)[0]!.ts).toBe(tradeTs(2 * DAY_US, 0));
    // and a checkpoint of the same, unchanged file still resumes exactly
    writeScid(p, 45, 50, { base: 2 * DAY_US, append: true });
    expect(seqOf(runOnce([scidSpec(1, p)]).recs, 1)).toEqual(range(45, 50));
  });

  test('a checkpoint that cannot be written is reported (once) and the records still flow', () => {
    const p = join(dir, 'A.scid');
    writeScid(p, 0, 2000);
    const cpFile = checkpointPath(join(dir, 'data'), 'src');
    mkdirSync(`${cpFile}.tmp-${process.pid}`, { recursive: true }); // in the way of the atomic write
    const r = runOnce([scidSpec(1, p)], { checkpointEveryMs: 0, maxChunkBytes: 4000 });
    expect(seqOf(r.recs, 1)).toEqual(range(0, 2000));
    expect(r.errors).toHaveLength(1);
    expect(r.errors[0]!.code).toBe('ENGINE_ERR_FILE_IO');
    expect(r.errors[0]!.message).toContain(cpFile);
  });

  test('a checkpoint written before content fingerprints still resumes by inode and size', () => {
    const p = join(dir, 'A.scid');
    writeScid(p, 0, 12);
    runOnce([scidSpec(1, p)]);
    const cpFile = checkpointPath(join(dir, 'data'), 'src');
    const cp = JSON.parse(readFileSync(cpFile, 'utf8')) as { files: Record<string, Record<string, unknown>> };
    for (const f of Object.values(cp.files)) { expect(typeof f.fingerprint).toBe('string'); delete f.fingerprint; delete f.fingerprintHeadBytes; }
    writeFileSync(cpFile, JSON.stringify(cp));
    writeScid(p, 12, 15, { append: true });
    expect(seqOf(runOnce([scidSpec(1, p)]).recs, 1)).toEqual(range(12, 15));
  });
});

describe('daily .depth files', () => {
  test('one-shot: the 11th then the 12th, in order; the checkpoint names the 12th; a restart stays in the 12th', () => {
    const dd = join(dir, 'MarketDepthData');
    mkdirSync(dd);
    const p11 = join(dd, depthName('MNQZ25_FUT_CME', '2025-11-11'));
    const p12 = join(dd, depthName('MNQZ25_FUT_CME', '2025-11-12'));
    const n11 = writeDepth(p11, 8);
    const n12 = writeDepth(p12, 5, { base: DAY_US });
    writeDepth(join(dd, depthName('OTHER', '2025-11-13')), 2); // another prefix: not ours
    const files = [depthSpec(1, dd, 'MNQZ25_FUT_CME', '2025-11-11')];
    const r = runOnce(files);
    expect(r.errors).toEqual([]);
    expect(seqOf(r.recs, 1)).toEqual([...range(0, n11), ...range(0, n12)]);
    const ts = r.recs.filter((x) => x.kind === RecordKind.DEPTH).map((x) => x.ts);
    expect(ts.slice(0, n11).every((t) => t < T0 + DAY_US)).toBe(true);
    expect(ts.slice(n11).every((t) => t >= T0 + DAY_US)).toBe(true);
    const cp = readCheckpoint().files[`depth:D1:${dd}/MNQZ25_FUT_CME`]!;
    expect(cp).toMatchObject({ path: p12, tag: 20251112, recordIndex: n12, offset: DEPTH_HB + n12 * DEPTH_RB });
    // the next process resumes in the 12th (the 11th is not read again)
    const more = writeDepth(p12, 2, { append: true, base: DAY_US });
    expect(seqOf(runOnce(files).recs, 1)).toEqual(range(n12, n12 + more));
  });

  test('without fromDate: the newest file present at start', () => {
    const dd = join(dir, 'MarketDepthData');
    mkdirSync(dd);
    writeDepth(join(dd, depthName('X', '2025-11-10')), 3);
    const n12 = writeDepth(join(dd, depthName('X', '2025-11-12')), 4, { base: DAY_US });
    const r = runOnce([depthSpec(1, dd, 'X')]);
    expect(seqOf(r.recs, 1)).toEqual(range(0, n12));
  });
});

// ---- live: the real worker ------------------------------------------------------------------------

describe('adaptive polling (nextIdleSleep)', () => {
  test('quick while data came within activeMs, then doubling up to the longest interval, back to quick on data', () => {
    const seq: number[] = [];
    let sleep = 1;
    for (let quiet = 0; quiet <= 1000; quiet += 10) { sleep = nextIdleSleep(sleep, 1, 250, quiet, 50); seq.push(sleep); }
    expect(seq.slice(0, 5)).toEqual([1, 1, 1, 1, 1]); // 0-40 ms quiet: live market
    expect(seq.slice(5, 14)).toEqual([2, 4, 8, 16, 32, 64, 128, 250, 250]);
    expect(seq.at(-1)).toBe(250);
    expect(nextIdleSleep(250, 1, 250, 0, 50)).toBe(1); // data again: quick at once
    expect(nextIdleSleep(0.25, 0.25, 1, 100, 50)).toBe(0.5); // fractions
    expect(nextIdleSleep(5, 5, 5, 100, 50)).toBe(5); // min = max: a fixed interval
  });
});

describe('live tail in the source worker', () => {
  test('missing folders, header-only, empty and half-written files are waited for without a busy loop, then picked up', async () => {
    const scidDir = join(dir, 'later-scid');
    const depthDir = join(dir, 'later-depth');
    const seriesDir = join(dir, 'series');
    mkdirSync(seriesDir);
    const hdrOnly = join(dir, 'HDR.scid');
    ScidWriter.open(hdrOnly).closeSync();
    const empty = join(dir, 'EMPTY.scid');
    writeFileSync(empty, new Uint8Array(0));
    const partial = join(dir, 'PART.scid');
    writeScid(partial, 0, 10);
    appendScidRaw(partial, scidRecordBytes(10).subarray(0, 23));
    const growing = join(dir, 'GROW.scid');
    writeScid(growing, 0, 100);
    const s11 = join(seriesDir, depthName('SER', '2025-11-11'));
    const s12 = join(seriesDir, depthName('SER', '2025-11-12'));
    let n11 = writeDepth(s11, 5);
    const files = [
      scidSpec(1, join(scidDir, 'LATE.scid')),
      depthSpec(2, depthDir, 'LATED', '2025-11-11'),
      depthSpec(3, join(dir, 'later-depth2'), 'ANY'), // no fromDate and no folder yet: the newest file once one appears
      scidSpec(4, hdrOnly),
      scidSpec(5, empty),
      scidSpec(6, partial),
      scidSpec(7, growing),
      depthSpec(8, seriesDir, 'SER', '2025-11-11'),
    ];
    const live = await Live.start(files, { pollMs: 20 });
    await live.until('the files present at start', () => seqOf(live.recs, 7).length === 100 && seqOf(live.recs, 6).length === 10 && seqOf(live.recs, 8).length === n11);

    // nothing to do but poll: the worker must sleep between polls (this process's CPU time stays low)
    const cpu0 = process.cpuUsage();
    const wall0 = performance.now();
    await sleep(500);
    const cpu = process.cpuUsage(cpu0);
    const wall = performance.now() - wall0;
    expect((cpu.user + cpu.system) / 1000, `CPU ms over ${wall.toFixed(0)} ms of idle polling`).toBeLessThan(wall * 0.4);

    // now everything shows up or grows
    mkdirSync(scidDir);
    writeScid(join(scidDir, 'LATE.scid'), 0, 30);
    mkdirSync(depthDir);
    const nLate = writeDepth(join(depthDir, depthName('LATED', '2025-11-11')), 4);
    mkdirSync(join(dir, 'later-depth2'));
    const nAny = writeDepth(join(dir, 'later-depth2', depthName('ANY', '2025-11-09')), 3); // a date before "today"
    writeScid(hdrOnly, 0, 7, { append: true });
    writeScid(empty, 0, 6);
    appendScidRaw(partial, scidRecordBytes(10).subarray(23));
    await live.until('the completed record', () => seqOf(live.recs, 6).length >= 11);
    expect(seqOf(live.recs, 6)).toEqual(range(0, 11)); // completed: emitted once
    writeScid(partial, 11, 15, { append: true });
    writeScid(growing, 100, 150, { append: true });
    n11 += writeDepth(s11, 3, { append: true });
    const n12 = writeDepth(s12, 4, { base: DAY_US });
    await live.until('everything', () =>
      seqOf(live.recs, 1).length === 30 && seqOf(live.recs, 2).length === nLate && seqOf(live.recs, 3).length === nAny &&
      seqOf(live.recs, 4).length === 7 && seqOf(live.recs, 5).length === 6 && seqOf(live.recs, 6).length === 15 &&
      seqOf(live.recs, 7).length === 150 && seqOf(live.recs, 8).length === n11 + n12);
    await live.stop();

    expect(live.fatal).toEqual([]);
    expect(live.errors.map((e) => e.message)).toEqual([]);
    expect(seqOf(live.recs, 1)).toEqual(range(0, 30));
    expect(seqOf(live.recs, 2)).toEqual(range(0, nLate));
    expect(seqOf(live.recs, 3)).toEqual(range(0, nAny));
    expect(seqOf(live.recs, 4)).toEqual(range(0, 7));
    expect(seqOf(live.recs, 5)).toEqual(range(0, 6));
    expect(seqOf(live.recs, 6)).toEqual(range(0, 15));
    expect(tradesOf(live.recs, 6).map((r) => r.ts)).toEqual(range(0, 15).map((i) => tradeTs(0, i)));
    expect(seqOf(live.recs, 7)).toEqual(range(0, 150));
    expect(seqOf(live.recs, 8)).toEqual([...range(0, n11), ...range(0, n12)]);
    expect(readCheckpoint().files[`depth:D8:${seriesDir}/SER`]).toMatchObject({ path: s12, tag: 20251112, recordIndex: n12 });
  }, 20_000);

  test('a file that shrinks or is replaced: FILE_RESET, then read again from 0; a corrupt .depth file stops until replaced', async () => {
    const shrink = join(dir, 'SHRINK.scid');
    const repl = join(dir, 'REPL.scid');
    const dd = join(dir, 'd');
    mkdirSync(dd);
    const bad = join(dd, depthName('BAD', '2025-11-11'));
    const other = join(dir, 'OTHER.scid');
    writeScid(shrink, 0, 40);
    writeScid(repl, 0, 25);
    writeScid(other, 0, 20);
    const gone = join(dir, 'GONE.scid');
    writeScid(gone, 0, 15);
    const w = DepthWriter.toFile(bad, { raw: true });
    w.header();
    for (let i = 0; i < 6; i++) w.record(T0 + i, ADD_BID, i === 5 ? 1 : 0, 1, 5000, 1);
    w.record(T0 + 6, 200, 0, 1, 5000, 1); // corrupt command
    w.close();
    const live = await Live.start([scidSpec(1, shrink), scidSpec(2, repl), depthSpec(3, dd, 'BAD', '2025-11-11'), scidSpec(4, other), scidSpec(5, gone)]);
    await live.until('first pass', () => seqOf(live.recs, 1).length === 40 && seqOf(live.recs, 2).length === 25 && seqOf(live.recs, 5).length === 15 && live.errors.length === 1);
    expect(live.errors[0]!.code).toBe('ENGINE_ERR_DEPTH_FORMAT');
    expect(live.errors[0]!.detail).toMatchObject({ file: bad, byteOffset: DEPTH_HB + 6 * DEPTH_RB });
    expect(seqOf(live.recs, 3)).toEqual(range(0, 6));

    // shrink to 10 records (and later grow again); replace with other content via tmp + rename
    truncateSync(shrink, SCID_HB + 10 * SCID_RB);
    const tmp = `${repl}.tmp`;
    writeScid(tmp, 0, 30, { base: DAY_US });
    renameSync(tmp, repl);
    // the corrupt depth file grows: nothing of it is delivered again, nothing reported again
    writeDepth(bad, 2, { append: true });
    await live.until('resets', () => seqOf(live.recs, 1).includes('R') && seqOf(live.recs, 2).length === 25 + 1 + 30);
    writeScid(shrink, 10, 12, { append: true });
    writeScid(other, 20, 30, { append: true });
    await live.until('growth after the reset', () => seqOf(live.recs, 1).length === 40 + 1 + 12 && seqOf(live.recs, 4).length === 30);
    expect(seqOf(live.recs, 3)).toEqual(range(0, 6));
    expect(live.errors).toHaveLength(1);

    // deleted, seen missing, then re-created (ext4 may give it the freed inode number): FILE_RESET, all of it
    unlinkSync(gone);
    await sleep(100);
    writeScid(gone, 0, 18, { base: 3 * DAY_US });
    await live.until('the re-created file', () => seqOf(live.recs, 5).length === 15 + 1 + 18);

    // the corrupt depth file is replaced by a good one: FILE_RESET, then all of it
    const dtmp = join(dd, 'new.tmp');
    const nGood = writeDepth(dtmp, 4);
    renameSync(dtmp, bad);
    await live.until('the replaced depth file', () => seqOf(live.recs, 3).length === 6 + 1 + nGood);
    await live.stop();

    expect(live.fatal).toEqual([]);
    expect(live.errors).toHaveLength(1);
    expect(seqOf(live.recs, 1)).toEqual([...range(0, 40), 'R', ...range(0, 12)]);
    expect(seqOf(live.recs, 2)).toEqual([...range(0, 25), 'R', ...range(0, 30)]);
    expect(tradesOf(live.recs, 2).slice(25).map((r) => r.ts)).toEqual(range(0, 30).map((i) => tradeTs(DAY_US, i)));
    expect(seqOf(live.recs, 3)).toEqual([...range(0, 6), 'R', ...range(0, nGood)]);
    expect(seqOf(live.recs, 4)).toEqual(range(0, 30));
    expect(seqOf(live.recs, 5)).toEqual([...range(0, 15), 'R', ...range(0, 18)]);
    expect(tradesOf(live.recs, 5).slice(15).map((r) => r.ts)).toEqual(range(0, 18).map((i) => tradeTs(3 * DAY_US, i)));
    const gaps = live.recs.filter((r) => r.kind === RecordKind.GAP);
    expect(gaps.map((g) => [g.sym, g.expected])).toEqual(expect.arrayContaining([[1, 40], [2, 25], [3, 6], [5, 15]]));
    expect(live.warns.join('\n')).toMatch(/SHRINK\.scid was truncated/);
    expect(live.warns.join('\n')).toMatch(/REPL\.scid was replaced/);
  }, 20_000);

  test('back-pressure: a 16-slot ring and a slow consumer lose nothing, the producer parks; a stop mid-file resumes exactly', async () => {
    const p = join(dir, 'BIG.scid');
    const dd = join(dir, 'd');
    mkdirSync(dd);
    const dp = join(dd, depthName('BIG', '2025-11-11'));
    writeScid(p, 0, 3000);
    const nDepth = writeDepth(dp, 150, { levels: 4 });
    const files = [scidSpec(1, p), depthSpec(2, dd, 'BIG', '2025-11-11')];
    const live = await Live.start(files, { slots: 16, perStep: 5, stepMs: 1 });
    await live.until('part of the files', () => live.recs.length >= 1200, 10_000);
    const stats = ringStats(live.ring);
    expect(stats.fullStalls).toBeGreaterThan(0);
    expect(stats.producerParks).toBeGreaterThan(0);
    expect(stats.occupancy).toBeLessThanOrEqual(16);
    await live.stop(); // the worker is parked on a full ring: it stops there and saves its checkpoint
    expect(live.fatal).toEqual([]);
    expect(live.errors).toEqual([]);
    const got1 = seqOf(live.recs, 1) as number[];
    const dgot1 = seqOf(live.recs, 2) as number[];
    expect(got1.length).toBeLessThan(3000); // stopped mid-file
    expect(got1).toEqual(range(0, got1.length));
    expect(dgot1).toEqual(range(0, dgot1.length));
    // every end-of-batch record delivered came with its BOOK_END
    // (a snapshot of 5 records, then batches of 4: the end-of-batch records are 4, 8, 12 …)
    expect(bookEnds(live.recs, 2)).toBe(live.recs.filter((r) => r.sym === 2 && r.kind === RecordKind.DEPTH && r.idx > 0 && r.idx % 4 === 0).length);

    // a new process on the same data dir delivers exactly the rest
    const r2 = runOnce(files);
    expect(r2.errors).toEqual([]);
    expect(seqOf(r2.recs, 1)).toEqual(range(got1.length, 3000));
    expect(seqOf(r2.recs, 2)).toEqual(range(dgot1.length, nDepth));
    expect(bookEnds(live.recs, 2) + bookEnds(r2.recs, 2)).toBe(150);
  }, 20_000);
});
