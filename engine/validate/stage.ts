/**
 * The validator stage (runs in workers/validator.worker.ts; in-process in tests): consumes the source
 * rings, validates every record (validator.ts), and for each record kept:
 *   journal (group commit) → hot window (trades) → latest table → feed ring (main thread) → Redis ring.
 * Rejected records (and, by default, kept records with verdict flags) go to the quarantine; GAP records
 * (from the sources, and the validator's sequence/time gaps) to the gap store.
 *
 * ## Exactly once into the journal, across kill -9
 *
 * Input slots are released to the source only once the journal has COMMITTED (fsynced) every record taken
 * from them: the stage reads ahead of its release point, and releases up to the last batch whose records
 * are all durable. A file source checkpoints the position its ring's consumer RELEASED (not the one it
 * published; workers/sierra/ingest.ts `durableConsumer`), so a restart never starts after a record that
 * is not in the journal: no loss. It may start before records that are (the checkpoint is written every
 * second): on start the stage replays the journal's open hours into the validator (`Validator.prime`),
 * which raises each (source, symbol) lane's replay floor to the highest seq stored, and the re-sent
 * records are answered REPLAYED and dropped (not quarantined). Records quarantined by the previous run
 * (read back from the quarantine files) are recognised one by one (`primeQuarantined`), so nothing is
 * quarantined twice either. Quarantine and gap
 * entries are written (writeSync) at the end of every batch, before its slots can be released, and
 * fdatasynced with each journal commit.
 *
 * Output rings never stall the stage: when the main thread (feed ring) or the Redis sink (redis ring)
 * falls behind and its ring is full, records for it are dropped and counted, and once space is back a
 * GAP record (kind SOURCE_STATUS, status OUTPUT_OVERFLOW, start/end = event times of the first/last
 * dropped record, expectedSeq = records dropped) tells the consumer what it missed; it is all in the
 * journal (the Redis sink catches up from there).
 */
import { Journal, APPEND_COMPACTED_HOUR, APPEND_FULL } from '../journal/journal.ts';
import { HotWindow } from '../hot/hot-window.ts';
import { LatestTable } from '../latest/latest-table.ts';
import { CTRL_I32, READ_SEQ_I32, RingState } from '../ring/layout.ts';
import { RingReader, RingWriter, type SlotViews } from '../ring/ring.ts';
import { SymbolRegistry } from '../symbols/registry.ts';
import { slotViewsOf } from '../journal/format.ts';
import {
  GapKind, RECORD_SLOT_BYTES, RecordKind, SIDE_MASK, TradeFlag, writeGap,
} from '../../schemas/records.ts';
import { RecordLogWriter, listLogDays, scanLogFile } from './record-log.ts';
import { QUARANTINE_EXT, QUARANTINE_MAGIC, gapWriter, quarantineWriter } from './stores.ts';
import { RejectReason, VERDICT_MASK, Validator, type ValidatorOptions } from './validator.ts';

/** GAP status code of an output-overflow marker (SOURCE_STATUS gap in an output ring). */
export const OUTPUT_OVERFLOW_STATUS = 0x4f56; // 'OV'

/** Validator knobs that travel in workerData (plain values). */
export type ValidatorSettings = Omit<ValidatorOptions, 'tickSizeOf' | 'calendar'> & { calendar?: 'cme-globex' | 'us-equity-rth' | '24x7' };

export interface ValidatorStageOptions {
  name: string;
  dataDir: string;
  /** Source rings to consume (records of schemas/records.ts). */
  inputs: SharedArrayBuffer[];
  /** Ring of validated records for the main thread (RecordFeed), or null. */
  feedRing: SharedArrayBuffer | null;
  /** Ring of journaled records for the Redis sink, or null (REDIS_URL unset). */
  redisRing: SharedArrayBuffer | null;
  /** Hot window (trades of the last hour), or null. */
  hot: SharedArrayBuffer | null;
  latest: SharedArrayBuffer;
  registry: SharedArrayBuffer;
  validator?: ValidatorSettings;
  /** Journal group commit interval (default 100 ms). */
  commitIntervalMs?: number;
  /** Quarantine kept-but-flagged records too (default true). */
  quarantineFlagged?: boolean;
}

export interface StageEvents {
  stats?(stats: Record<string, number>): void;
  warn?(message: string): void;
}

const BATCH = 4096;
const MARKS = 4096;

/** At close, how long to wait for a free output slot for a pending overflow marker. */
const CLOSE_MARKER_WAIT_MS = 2000;

interface Output {
  w: RingWriter;
  claimed: number;
  n: number;
  dropped: number;
  dropStartTs: number;
  dropEndTs: number;
  totalDropped: number;
}

export class ValidatorStage {
  readonly validator: Validator;
  readonly journal: Journal;
  readonly #readers: RingReader[];
  readonly #ctrl: Int32Array[];
  readonly #ahead: Int32Array; // per input: slots processed beyond the release point
  // release marks (FIFO): journal appended seq at a batch end, input index, slots
  readonly #markSeq = new Float64Array(MARKS);
  readonly #markInput = new Int32Array(MARKS);
  readonly #markSlots = new Int32Array(MARKS);
  #markHead = 0;
  #markLen = 0;
  readonly #hot: HotWindow | null;
  readonly #latest: LatestTable;
  readonly #registry: SymbolRegistry;
  readonly #tick = new Float64Array(65536).fill(NaN);
  readonly #quarantine: RecordLogWriter;
  readonly #gaps: RecordLogWriter;
  readonly #outs: Output[] = [];
  readonly #feed: Output | null;
  readonly #redis: Output | null;
  readonly #scratch: SlotViews = slotViewsOf(new ArrayBuffer(RECORD_SLOT_BYTES));
  readonly #quarantineFlagged: boolean;
  /** The journal commits on its own timer (commitIntervalMs > 0): idle moments need not force an fsync. */
  readonly #timerCommits: boolean;
  #stop = false;
  #now = Date.now() * 1000;
  readonly c = {
    records: 0, journaled: 0, quarantined: 0, flaggedQuarantined: 0, replayed: 0, lateForCompactedHour: 0, gaps: 0,
    hotRejected: 0, forwarded: 0, feedDropped: 0, redisDropped: 0, overflowMarkersUnsent: 0, commits: 0, lastCommitMicros: 0, maxCommitMicros: 0,
    primedRecords: 0, primedQuarantine: 0, journalFullWaits: 0, released: 0,
  };

  private constructor(o: ValidatorStageOptions, journal: Journal) {
    this.journal = journal;
    this.#registry = SymbolRegistry.attach(o.registry);
    this.#latest = LatestTable.attach(o.latest);
    this.#hot = o.hot ? HotWindow.attach(o.hot) : null;
    const tick = this.#tick;
    const reg = this.#registry;
    this.validator = new Validator({
      ...(o.validator ?? {}),
      tickSizeOf: (id: number): number => {
        let t = tick[id]!;
        if (t !== t) {
          try { t = reg.metaOf(id).tickSize; } catch { t = 0; }
          tick[id] = t;
        }
        return t;
      },
    });
    this.#readers = o.inputs.map((r) => RingReader.attach(r));
    this.#ctrl = o.inputs.map((r) => new Int32Array(r, 0, CTRL_I32));
    this.#ahead = new Int32Array(o.inputs.length);
    this.#quarantine = quarantineWriter(o.dataDir);
    this.#gaps = gapWriter(o.dataDir);
    this.#quarantineFlagged = o.quarantineFlagged ?? true;
    this.#timerCommits = (o.commitIntervalMs ?? 100) > 0;
    const mk = (sab: SharedArrayBuffer): Output => ({ w: RingWriter.attach(sab), claimed: 0, n: 0, dropped: 0, dropStartTs: 0, dropEndTs: 0, totalDropped: 0 });
    this.#feed = o.feedRing ? mk(o.feedRing) : null;
    this.#redis = o.redisRing ? mk(o.redisRing) : null;
    if (this.#feed) this.#outs.push(this.#feed);
    if (this.#redis) this.#outs.push(this.#redis);
  }

  /** Open the journal (recovering torn tails) and prime the validator, hot window and latest table from it. */
  static async open(o: ValidatorStageOptions, events: StageEvents = {}): Promise<ValidatorStage> {
    let stage: ValidatorStage | null = null;
    const journal = Journal.open({
      dataDir: o.dataDir,
      commitIntervalMs: o.commitIntervalMs ?? 100,
      onCommit: (_seq, micros) => {
        if (stage === null) return;
        stage.c.commits++;
        stage.c.lastCommitMicros = micros;
        if (micros > stage.c.maxCommitMicros) stage.c.maxCommitMicros = micros;
        try { stage.#quarantine.sync(); stage.#gaps.sync(); } catch (err) { events.warn?.((err as Error).message); }
      },
    });
    stage = new ValidatorStage(o, journal);
    try {
      await stage.#prime();
    } catch (err) {
      await journal.close().catch(() => undefined);
      throw err;
    }
    return stage;
  }

  /** Stop after the inputs are drained (their producers stopped) or, when they are still running, now. */
  requestStop(): void { this.#stop = true; }

  async #prime(): Promise<void> {
    const hot = this.#hot !== null && this.#hot.stats().appended === 0 ? this.#hot : null; // a restarted stage finds it filled
    let firstHour = Infinity;
    this.journal.replay('open-hours', (v, off, count, hour) => {
      if (hour < firstHour) firstHour = hour;
      for (let k = 0; k < count; k++) {
        const b = off + k * RECORD_SLOT_BYTES;
        this.validator.prime(v, b);
        const kind = v.u8[b];
        if (kind === RecordKind.TRADE) {
          if (hot !== null && v.u16[(b + 2) >> 1]! <= hot.symbols) hot.appendFromSlot(v, b);
          this.#writeLatest(v, b, kind);
        } else if (kind === RecordKind.QUOTE) {
          this.#writeLatest(v, b, kind);
        }
      }
      this.c.primedRecords += count;
    });
    // rejected records of those days raise the replay floor too (nothing is quarantined twice)
    const fromDay = Number.isFinite(firstHour) ? Math.floor(firstHour / 86_400_000_000) - 1 : Math.floor(Date.now() / 86_400_000) - 1;
    const dir = this.#quarantine.dir;
    for (const day of await listLogDays(dir, QUARANTINE_EXT, fromDay)) {
      await scanLogFile(dir, QUARANTINE_EXT, QUARANTINE_MAGIC, day, (v, b, code) => {
        if (code !== 0) {
          this.validator.primeQuarantined(v.u8[b + 1]!, v.u16[(b + 2) >> 1]!, v.u32[(b + 4) >> 2]!);
          this.c.primedQuarantine++;
        }
      });
    }
  }

  /** Consume the inputs until stopped. */
  async run(): Promise<void> {
    let lastStale = 0;
    for (;;) {
      this.#now = Date.now() * 1000;
      let any = false;
      for (const o of this.#outs) this.#claim(o);
      for (let i = 0; i < this.#readers.length; i++) {
        const r = this.#readers[i]!;
        const ahead = this.#ahead[i]!;
        let n = r.available() - ahead;
        if (n <= 0) continue;
        if (n > BATCH) n = BATCH;
        this.#process(r.views, r, ahead, n);
        this.#ahead[i] = ahead + n;
        any = true;
        // after the quarantine/gap entries of this batch are written (below), its slots may be released once the journal holds it
        this.#pushMark(this.journal.appendedSeq, i, n);
      }
      this.#quarantine.writeStaged();
      this.#gaps.writeStaged();
      for (const o of this.#outs) this.#publish(o);
      this.#releaseDurable();
      if (this.#now - lastStale > 1_000_000) {
        lastStale = this.#now;
        this.validator.checkStale(this.#now);
      }
      if (any) {
        // read-ahead bound: half of a ring unreleased is a commit now, not at the next timer tick
        for (let i = 0; i < this.#readers.length; i++) {
          if (this.#ahead[i]! >= this.#readers[i]!.slotCount >> 1 || this.#markLen >= MARKS - this.#readers.length) {
            await this.journal.flush();
            this.#releaseDurable();
            break;
          }
        }
        await new Promise<void>((res) => setImmediate(res));
        continue;
      }
      // idle: done when every producer has stopped and its ring is drained, or when asked to stop
      if (this.#stop || this.#allFinished()) break;
      if (this.#markLen > 0) {
        // A failed timer commit (disk full, I/O error) makes nothing durable any more and no append follows
        // while the input is quiet: fail the stage with the journal's coded error (the supervisor reports it
        // and restarts; the reopened journal keeps what was committed) instead of waiting here for ever.
        if (this.journal.failure !== null) throw this.journal.failure;
        if (this.#timerCommits) {
          // Durability comes from the journal's group commit (its timer, every commitIntervalMs): do not stall
          // the input on an fsync at every idle moment. Forcing one here cost ~800 fdatasyncs/s (plus the
          // quarantine and gap syncs of each commit) at 10k ticks/s, and every tick that arrived meanwhile
          // waited for it: a 7 ms p99 / 30 ms p99.9 tick-to-feed tail in the e2e bench. Poll briefly for new
          // input and release what the timer's commits have made durable.
          if (this.#readers.length === 1) await this.#readers[0]!.waitForMoreDataAsync(this.#ahead[0]!, 2);
          else await new Promise<void>((res) => setTimeout(res, 2));
        } else {
          await this.journal.flush();
        }
        this.#releaseDurable();
        continue;
      }
      if (this.#readers.length === 1) await this.#readers[0]!.waitForDataAsync(50);
      else await new Promise<void>((res) => setTimeout(res, 5));
    }
    await this.close();
  }

  #allFinished(): boolean {
    for (let i = 0; i < this.#readers.length; i++) {
      const r = this.#readers[i]!;
      if (!(r.state === RingState.STOPPED && r.available() - this.#ahead[i]! === 0)) return false;
    }
    return true;
  }

  /** Commit, release what is durable, close files, publish what is pending. */
  async close(): Promise<void> {
    try {
      await this.journal.flush();
    } finally {
      this.#releaseDurable();
      for (const o of this.#outs) {
        this.#claim(o);
        this.#publish(o);
        // A drop window still open (the output ring was full to the end): its OUTPUT_OVERFLOW marker needs one
        // free slot. Give the consumer (still running: it stops after this stage) a bounded moment to make one,
        // or the consumer never learns what it missed (the Redis sink catches up from the journal on it).
        const until = performance.now() + CLOSE_MARKER_WAIT_MS;
        while (o.dropped > 0 && performance.now() < until) {
          await o.w.waitForSpaceAsync(1, 20);
          this.#claim(o);
          this.#publish(o);
        }
        if (o.dropped > 0) this.c.overflowMarkersUnsent++;
      }
      await this.journal.close();
      this.#quarantine.close();
      this.#gaps.close();
    }
  }

  /** Delete a compacted hour's journal (see Journal.deleteHour). */
  deleteHour(hourStartMicros: number, expectedRecords?: number): Promise<void> {
    return this.journal.deleteHour(hourStartMicros, expectedRecords === undefined ? {} : { expectedRecords });
  }

  stats(): Record<string, number> {
    const s: Record<string, number> = { ...this.c };
    const v = this.validator.counters();
    for (const k of Object.keys(v)) s[`validator_${k}`] = v[k]!;
    const j = this.journal.stats();
    s.journalAppendedSeq = j.appendedSeq;
    s.journalCommittedSeq = j.committedSeq;
    s.journalOpenHours = j.openHours;
    s.journalBytesCommitted = j.bytesCommitted;
    s.staleLanes = this.validator.staleLanes().length;
    // of hotRejected: trades the hot window already held (re-delivered after a restart of this stage)
    s.hotDuplicates = this.#hot?.duplicates ?? 0;
    return s;
  }

  // ---- per record ---------------------------------------------------------------------------------------

  #process(v: SlotViews, r: RingReader, first: number, n: number): void {
    const val = this.validator;
    const c = this.c;
    for (let i = first; i < first + n; i++) {
      const b = r.slotByte(i);
      const kind = v.u8[b]!;
      c.records++;
      if (kind === RecordKind.TRADE || kind === RecordKind.QUOTE) {
        const code = val.check(v, b);
        if (code === RejectReason.REPLAYED) { c.replayed++; continue; }
        const verdict = (v.u32[(b + 44) >> 2]! & VERDICT_MASK) >>> 0;
        if (code !== 0) {
          this.#quarantine.append(v, b, code, verdict, this.#now);
          c.quarantined++;
        } else {
          if (this.#journal(v, b)) {
            if (verdict !== 0 && this.#quarantineFlagged) { this.#quarantine.append(v, b, 0, verdict, this.#now); c.flaggedQuarantined++; }
            if (kind === RecordKind.TRADE && this.#hot !== null && (v.u16[(b + 2) >> 1]! > this.#hot.symbols || !this.#hot.appendFromSlot(v, b))) c.hotRejected++;
            this.#writeLatest(v, b, kind);
            this.#forward(v, b);
          }
        }
        if (val.pendingGaps > 0) this.#drainGaps();
      } else if (kind === RecordKind.GAP) {
        val.check(v, b); // FILE_RESET restarts the lane's sequence
        this.#gaps.append(v, b, v.u32[(b + 32) >> 2]!, 0, this.#now);
        c.gaps++;
        if (this.#journal(v, b)) this.#forward(v, b);
      } else if (kind === RecordKind.DEPTH || kind === RecordKind.BOOK_END) {
        this.#forward(v, b);
      } else {
        if (this.#journal(v, b)) this.#forward(v, b);
      }
    }
  }

  /** Append to the journal; false (and quarantined) when the journal refuses the record. */
  #journal(v: SlotViews, b: number): boolean {
    let r = this.journal.append(v, b);
    if (r === APPEND_FULL) {
      this.c.journalFullWaits++;
      this.journal.flushSync(); // both staging buffers busy: a worker thread may block for the fsync
      r = this.journal.append(v, b);
    }
    if (r > 0) { this.c.journaled++; return true; }
    const code = r === APPEND_COMPACTED_HOUR ? RejectReason.LATE_FOR_COMPACTED_HOUR : RejectReason.BAD_TIME; // APPEND_BAD_TIME
    if (r === APPEND_COMPACTED_HOUR) this.c.lateForCompactedHour++;
    this.#quarantine.append(v, b, code, 0, this.#now);
    this.c.quarantined++;
    return false;
  }

  #drainGaps(): void {
    const s = this.#scratch;
    while (this.validator.nextGap(s, 0)) {
      this.#gaps.append(s, 0, s.u32[32 >> 2]!, 0, this.#now);
      this.c.gaps++;
      this.#forward(s, 0);
    }
  }

  #writeLatest(v: SlotViews, b: number, kind: number): void {
    const id = v.u16[(b + 2) >> 1]!;
    if (id < 1 || id > this.#latest.capacity) return;
    if (kind === RecordKind.TRADE) {
      const sideBits = v.u32[(b + 44) >> 2]! & SIDE_MASK;
      const side = sideBits === TradeFlag.SIDE_BUY ? 1 : sideBits === TradeFlag.SIDE_SELL ? 2 : 0;
      this.#latest.writeTick(id, v.f64[(b + 8) >> 3]!, v.f64[(b + 16) >> 3]!, v.u32[(b + 40) >> 2]!, side, v.u32[(b + 4) >> 2]!,
        v.f64[(b + 24) >> 3]!, v.u32[(b + 48) >> 2]!, v.f64[(b + 32) >> 3]!, v.u32[(b + 52) >> 2]!);
    } else {
      this.#latest.writeQuote(id, v.f64[(b + 8) >> 3]!, v.f64[(b + 24) >> 3]!, v.u32[(b + 48) >> 2]!, v.f64[(b + 32) >> 3]!, v.u32[(b + 52) >> 2]!);
    }
  }

  // ---- outputs ------------------------------------------------------------------------------------------

  #forward(v: SlotViews, b: number): void {
    this.c.forwarded++;
    const f = this.#feed;
    if (f !== null) this.#put(f, v, b);
    const r = this.#redis;
    if (r !== null) this.#put(r, v, b);
  }

  #put(o: Output, v: SlotViews, b: number): void {
    if (o.n >= o.claimed) {
      // hand over what is written and look for more space before dropping
      this.#publish(o);
      this.#claim(o);
    }
    if (o.n >= o.claimed) {
      const ts = v.f64[(b + 8) >> 3]!;
      if (o.dropped === 0) o.dropStartTs = ts;
      o.dropEndTs = ts;
      o.dropped++;
      o.totalDropped++;
      if (o === this.#feed) this.c.feedDropped++; else this.c.redisDropped++;
      return;
    }
    const d = o.w.views.u32;
    const s = v.u32;
    const di = o.w.slotByte(o.n) >> 2;
    const si = b >> 2;
    for (let k = 0; k < 16; k++) d[di + k] = s[si + k]!;
    o.n++;
  }

  #claim(o: Output): void {
    if (o.claimed > o.n) return; // still holds a claim
    o.claimed = o.w.claim(Math.min(BATCH * 2, o.w.slotCount));
    o.n = 0;
    if (o.dropped > 0 && o.claimed > 0) {
      // tell the consumer what it missed (it is all in the journal)
      writeGap(o.w.views, o.w.slotByte(0), 0, 0, 0, o.dropStartTs, o.dropEndTs, GapKind.SOURCE_STATUS, o.dropped, 0, OUTPUT_OVERFLOW_STATUS);
      o.n = 1;
      o.dropped = 0;
    }
  }

  #publish(o: Output): void {
    if (o.n > 0) o.w.publish(o.n);
    o.claimed = 0;
    o.n = 0;
  }

  // ---- release of durable input slots -----------------------------------------------------------------------

  #pushMark(seq: number, input: number, slots: number): void {
    // merge with the previous mark of the same input when it waits for the same seq
    if (this.#markLen > 0) {
      const last = (this.#markHead + this.#markLen - 1) % MARKS;
      if (this.#markInput[last] === input && this.#markSeq[last] === seq) { this.#markSlots[last]! += slots; return; }
    }
    const i = (this.#markHead + this.#markLen) % MARKS;
    this.#markSeq[i] = seq;
    this.#markInput[i] = input;
    this.#markSlots[i] = slots;
    this.#markLen++;
  }

  #releaseDurable(): void {
    const committed = this.journal.committedSeq;
    while (this.#markLen > 0) {
      const h = this.#markHead;
      if (this.#markSeq[h]! > committed) break;
      const input = this.#markInput[h]!;
      const n = this.#markSlots[h]!;
      const r = this.#readers[input]!;
      r.available();
      r.release(n);
      this.#ahead[input] = this.#ahead[input]! - n;
      this.c.released += n;
      this.#markHead = (h + 1) % MARKS;
      this.#markLen--;
    }
  }

  /** Ring position (READ_SEQ) released of input `i`: everything before it is durable. */
  releasedSeq(i: number): number {
    return Atomics.load(this.#ctrl[i]!, READ_SEQ_I32);
  }
}
