/**
 * Redis sink (DESIGN.md §6): validated records from an SPSC ring into Redis, pipelined.
 *
 * Per TRADE record, in one pipeline per batch:
 *   XADD <prefix>ticks:<SYM> [MINID ~ <now − retention ms>] <ms>-<n> price P size S bid B ask A side B|S| seq Q ts_us T source SRC
 *   (MINID on the first XADD of each stream in the batch)
 *   PUBLISH <prefix>market_data:<source>:trades {"symbol","price","size","side","timestamp","ts_ms","source"}   (live records only)
 * and per symbol touched by the batch, once: HSET <prefix>latest:<SYM> of its newest trade (and the bid/ask
 * of a QUOTE newer than it). QUOTE records only update `latest:<SYM>`; other kinds are counted and ignored.
 * Numbers are written as `String(x)` writes them (an unknown bid/ask, NaN, as ''); in the JSON a price
 * that is not finite is `null`, as JSON.stringify writes it. trade-writer.ts encodes the XADD and PUBLISH
 * of a trade straight into the batch's buffer (the hot path: no string or object per trade); batches of up
 * to `batchRecords` go out on a raw RESP connection (resp.ts), `maxInFlight` of them at a time, and ring
 * slots are released once Redis acknowledged them (in chunks: each release may wake the producer).
 *
 * IDs are derived from the record (ids.ts), so a replay produces the same IDs. The sink knows every
 * stream's last ID (XINFO STREAM `last-generated-id`, fetched at every (re)connect and for symbols
 * registered later) and never sends an ID at or below it: a replay is skipped, never duplicated. Redis
 * itself refuses an XADD whose ID is not above the stream's top, which is the safety net when the sink's
 * view is stale (the batch then fails and the sink re-synchronises).
 *
 * Redis down (or a batch that fails or stalls): the sink keeps draining its ring into a bounded hold
 * buffer (hold.ts), reports 'reconnecting', and never makes the engine wait for Redis. When Redis is
 * ready again it fetches the streams' last IDs; if records may be missing from Redis (first connection
 * of this process, the hold buffer overflowed, or Redis restarted: its `run_id` changed, e.g. without
 * persistence) it replays the journal (journal-tail.ts, read-only) of the retention window through the
 * same ID check, until the journal has passed every record the hold buffer had to discard; then it sends
 * the hold buffer and continues from the ring: no gap, no duplicate.
 *
 * `enableOfflineQueue: false` (decided): with an offline queue ioredis would buffer every command issued
 * while disconnected, without bound (at 250 k ticks/s that is gigabytes within minutes), and replay them
 * blindly after reconnecting, without the last-ID check against what Redis actually holds then. The sink
 * keeps records, not commands, in its own bounded hold buffer, the journal is the unbounded backlog, and
 * a command issued while Redis is down fails at once instead of hanging. Likewise
 * `autoResendUnfulfilledCommands: false` and `maxRetriesPerRequest: 0`: a batch in flight when the
 * connection drops fails, and the sink re-sends its records itself, checked against the streams' last IDs.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { engineError, type EngineError } from '../../engine/errors.ts';
import { HOUR_MICROS } from '../../engine/journal/format.ts';
import { OUTPUT_OVERFLOW_STATUS } from '../../engine/validate/stage.ts';
import { CTRL_BYTES } from '../../engine/ring/layout.ts';
import { RingReader, type SlotViews } from '../../engine/ring/ring.ts';
import { SymbolRegistry } from '../../engine/symbols/registry.ts';
import {
  GAP_EXPECTED_SEQ_BYTE, GAP_KIND_BYTE, GAP_STATUS_BYTE, GapKind, RECORD_RING_KIND, RECORD_SLOT_BYTES, RecordKind, TradeFlag,
} from '../../schemas/records.ts';
import { parseRedisUrl, type RedisTarget } from './config.ts';
import { HoldBuffer } from './hold.ts';
import { N_SOURCE_FACTOR, N_US_FACTOR, parseStreamId } from './ids.ts';
import { JournalTail } from './journal-tail.ts';
import { RespConnection, RespEncoder, encodeArg } from './resp.ts';
import { MAX_TICK_BYTES, TradeWriter } from './trade-writer.ts';
import { C, SinkStatusWriter, createRedisSinkStatus, readRedisSinkStatus, type RedisSinkStatus, type SinkState } from './status.ts';

export interface RedisSinkOptions {
  /** The sink's own SPSC ring of RECORD_SLOT_BYTES records (the sink is its only reader). */
  ring: SharedArrayBuffer;
  /** The shared symbol registry's buffer (`SymbolRegistry.buffer`). */
  registry: SharedArrayBuffer;
  /** REDIS_URL; null/undefined/'' disables the sink (it then drains and discards its ring, state 'disabled'). */
  redisUrl: string | null | undefined;
  /** `<data-dir>` whose `journal/` the catch-up reads. Without it, records Redis missed while down beyond the hold buffer are counted as lost. */
  dataDir?: string | null;
  /** Status buffer from `createRedisSinkStatus()` (readable from any thread); one is created when absent. */
  status?: SharedArrayBuffer;
  /** Prefix of every key and channel (default ''; tests use a unique one). */
  keyPrefix?: string;
  /** Source names by record source id, used in `market_data:<source>:trades` and the `source` field (default 1 → 'sierra', 2 → 'sierra-depth', else 'src<id>'). */
  sourceNames?: Readonly<Record<number, string>>;
  /** Stream retention (MINID trim horizon) in ms (default 3,600,000 = one hour). */
  retentionMs?: number;
  /** MINID trimming: '~' approximate (default, cheap: whole macro nodes) or '=' exact. */
  trim?: '~' | '=';
  /** Records per pipeline (default 1024). */
  batchRecords?: number;
  /**
   * Linger: when fewer than `lingerRecords` (default 256) records wait and no pipeline is in flight, wait
   * this many ms (default 2; 0 = send at once) for more before sending. At a trickle (10 k ticks/s arrive
   * as ~1 ms dribbles of ~10) this sends a few larger pipelines instead of one per dribble: less CPU in
   * this thread and in redis-server, for at most `lingerMs` more latency on the Redis mirror. A full
   * pipeline's worth never waits.
   */
  lingerMs?: number;
  /** See `lingerMs` (default 256). */
  lingerRecords?: number;
  /**
   * Pipelines in flight (default 4). More than 2 keeps Redis busy while this thread is off the CPU on a
   * loaded machine (measured, 2 cores shared with Redis and the producer: median 264 k ticks/s with 2,
   * 314 k with 3, 332 k with 4, batches of 1024).
   */
  maxInFlight?: number;
  /** Hold buffer capacity in records (default 262,144 = 16 MiB). */
  holdRecords?: number;
  /** A batch not answered within this many ms counts as failed: the sink goes on draining into the hold buffer (default 500). */
  stallMs?: number;
  /** ioredis commandTimeout (default 5000). */
  commandTimeoutMs?: number;
  /** Give a catch-up up after the journal made no progress towards its target for this long (default 10,000). */
  catchUpGiveUpMs?: number;
  /** How long after an upstream-overflow marker the journal surely shows the dropped records: the validator's commit interval plus margin (default 1000). */
  journalLagMs?: number;
  /** PUBLISH live trades (default true). */
  publish?: boolean;
  /** Wall clock in Unix ms (default Date.now); sets the trim horizon. */
  now?: () => number;
  /** Extra ioredis options (e.g. retryStrategy); the sink's own choices above win for the offline-queue settings. */
  redisOptions?: RedisOptions;
  /** Every distinct error (connection lost, failed batch, corrupt journal), for logs / WARN messages. */
  onError?: (err: EngineError) => void;
}

interface Batch {
  readonly epoch: number;
  readonly promise: Promise<{ errors: number; firstError: string | null }>;
  readonly from: 'ring' | 'hold' | 'journal';
  count: number;
  trades: number;
  skipped: number;
  outOfOrder: number;
  expired: number;
  unknown: number;
  ignored: number;
  quotes: number;
  published: number;
  newestTsMicros: number;
  settled: boolean;
  ok: boolean;
}

const DEFAULT_SOURCE_NAMES: Readonly<Record<number, string>> = { 1: 'sierra', 2: 'sierra-depth' };

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export class RedisSink {
  readonly target: RedisTarget | null;
  readonly statusBuffer: SharedArrayBuffer;
  readonly #st: SinkStatusWriter;
  readonly #c: Float64Array;
  readonly #ring: RingReader;
  readonly #rv: SlotViews;
  readonly #ringDataEnd: number;
  readonly #registry: SymbolRegistry;
  readonly #dataDir: string | null;
  readonly #prefix: string;
  readonly #sourceNames: Readonly<Record<number, string>>;
  readonly #retentionMs: number;
  readonly #trim: '~' | '=';
  readonly #batchRecords: number;
  readonly #lingerMs: number;
  readonly #lingerRecords: number;
  /** The data now in the ring has had its linger: send it. */
  #lingered = false;
  readonly #maxInFlight: number;
  readonly #stallMs: number;
  readonly #catchUpGiveUpMs: number;
  readonly #publish: boolean;
  readonly #now: () => number;
  readonly #onError: ((err: EngineError) => void) | undefined;
  readonly #redisOptions: RedisOptions;
  readonly #hold: HoldBuffer;
  #redis: Redis | null = null;
  #data: RespConnection | null = null;
  readonly #enc = new RespEncoder();
  /** Encodes each trade's XADD + PUBLISH (the hot path). */
  readonly #tw: TradeWriter;
  /** Wall clock (ms) of the batch being built: its trim horizon. */
  #buildNowMs = 0;
  readonly #connectTimeoutMs: number;
  // pre-encoded constant arguments (of the HSETs; the XADDs and PUBLISHes are trade-writer.ts')
  readonly #A = {
    HSET: encodeArg('HSET'),
    price: encodeArg('price'), size: encodeArg('size'), bid: encodeArg('bid'), ask: encodeArg('ask'), side: encodeArg('side'), seq: encodeArg('seq'),
    ts_us: encodeArg('ts_us'), ts_ms: encodeArg('ts_ms'), timestamp: encodeArg('timestamp'), source: encodeArg('source'), symbol: encodeArg('symbol'),
    quote_ts_us: encodeArg('quote_ts_us'), B: encodeArg('B'), S: encodeArg('S'), none: encodeArg(''),
  };
  readonly #latestKeyArg: Buffer[] = [];
  readonly #symbolArg: Buffer[] = [];
  readonly #srcArg: Buffer[] = [];

  // per symbol id (index = id): stream's last ID (ms, n) as the sink knows it, discard watermark, journal progress
  readonly #lastMs: Float64Array;
  readonly #lastN: Float64Array;
  readonly #wmMs: Float64Array;
  readonly #wmN: Float64Array;
  readonly #seenMs: Float64Array;
  readonly #seenN: Float64Array;
  #wmAny = false;
  #droppedSinceCatchUp = 0;
  /** performance.now() before which a catch-up must not finish (an upstream-overflow marker was seen). */
  #barrierAt = 0;
  readonly #journalLagMs: number;
  /** Symbols 1..#known have their last IDs fetched in this connection epoch. */
  #known = 0;
  // per symbol id: strings built once
  readonly #streamKey: string[] = [];
  // per build: newest trade / quote per symbol
  readonly #touched: Int32Array;
  #touchedCount = 0;
  readonly #tradeIdx: Float64Array;
  readonly #tradeByte: Float64Array;
  readonly #quoteIdx: Float64Array;
  readonly #quoteByte: Float64Array;
  #buildIdx = 0;

  #ready = false;
  #everReady = false;
  #needResync = true;
  #catchUpNeeded = true;
  #runId: string | null = null;
  #retryAt = 0;
  #backoffMs = 50;
  #epoch = 0;
  readonly #pending: Batch[] = [];
  /** Ring slots read into batches and not released yet (in flight, or acknowledged and waiting for #releaseAcked). */
  #ringUnreleased = 0;
  /** The oldest of those, acknowledged by Redis: released in chunks of #releaseChunk, or as soon as nothing else from the ring is in flight. */
  #ringAcked = 0;
  readonly #releaseChunk: number;
  #holdUnacked = 0;
  #stopRequested = false;
  #running: Promise<void> | null = null;
  #newestAckedTs = 0;
  #lastErrorText = '';
  #wake: (() => void) | null = null;

  constructor(opts: RedisSinkOptions) {
    this.target = parseRedisUrl(opts.redisUrl);
    this.statusBuffer = opts.status ?? createRedisSinkStatus();
    this.#st = new SinkStatusWriter(this.statusBuffer);
    this.#c = this.#st.counters;
    this.#ring = RingReader.attach(opts.ring, RECORD_RING_KIND);
    if (this.#ring.slotBytes !== RECORD_SLOT_BYTES) {
      throw engineError('ENGINE_ERR_RING_ATTACH', `the Redis sink's ring must have ${RECORD_SLOT_BYTES}-byte slots, got ${this.#ring.slotBytes}`);
    }
    this.#rv = this.#ring.views;
    // why chunks: a release wakes a producer parked on a full ring (Atomics.notify to an async waiter), which
    // measured ~90 µs of this thread per call, 6 % of its time at one release per 1024-record batch
    this.#releaseChunk = Math.max(1, Math.min(4096, this.#ring.slotCount >> 3));
    this.#ringDataEnd = CTRL_BYTES + this.#ring.slotCount * RECORD_SLOT_BYTES;
    this.#registry = SymbolRegistry.attach(opts.registry);
    const cap = this.#registry.capacity + 1;
    this.#lastMs = new Float64Array(cap);
    this.#lastN = new Float64Array(cap);
    this.#wmMs = new Float64Array(cap);
    this.#wmN = new Float64Array(cap);
    this.#seenMs = new Float64Array(cap);
    this.#seenN = new Float64Array(cap);
    this.#touched = new Int32Array(cap);
    this.#tradeIdx = new Float64Array(cap).fill(-1);
    this.#tradeByte = new Float64Array(cap);
    this.#quoteIdx = new Float64Array(cap).fill(-1);
    this.#quoteByte = new Float64Array(cap);
    this.#dataDir = opts.dataDir ?? null;
    this.#prefix = opts.keyPrefix ?? '';
    if (!/^[\x21-\x7e]{0,64}$/.test(this.#prefix)) throw engineError('ENGINE_ERR_INVALID_ARG', `RedisSink keyPrefix must be at most 64 printable ASCII characters, got ${JSON.stringify(this.#prefix)}`);
    this.#sourceNames = opts.sourceNames ?? DEFAULT_SOURCE_NAMES;
    const int = (v: number | undefined, def: number, min: number, max: number, name: string): number => {
      const x = v ?? def;
      if (!Number.isInteger(x) || x < min || x > max) throw engineError('ENGINE_ERR_INVALID_ARG', `RedisSink ${name} must be an integer ${min}..${max}, got ${String(x)}`);
      return x;
    };
    this.#retentionMs = int(opts.retentionMs, HOUR_MICROS / 1000, 1000, 366 * 86_400_000, 'retentionMs');
    this.#batchRecords = int(opts.batchRecords, 1024, 1, 65_536, 'batchRecords');
    this.#lingerMs = int(opts.lingerMs, 2, 0, 1000, 'lingerMs');
    this.#lingerRecords = int(opts.lingerRecords, 256, 1, 65_536, 'lingerRecords');
    this.#maxInFlight = int(opts.maxInFlight, 4, 1, 64, 'maxInFlight');
    this.#stallMs = int(opts.stallMs, 500, 10, 600_000, 'stallMs');
    this.#catchUpGiveUpMs = int(opts.catchUpGiveUpMs, 10_000, 10, 3_600_000, 'catchUpGiveUpMs');
    this.#journalLagMs = int(opts.journalLagMs, 1000, 0, 600_000, 'journalLagMs');
    const holdRecords = int(opts.holdRecords, 262_144, 16, 1 << 24, 'holdRecords');
    this.#trim = opts.trim ?? '~';
    if (this.#trim !== '~' && this.#trim !== '=') throw engineError('ENGINE_ERR_INVALID_ARG', `RedisSink trim must be '~' or '=', got ${String(opts.trim)}`);
    this.#tw = new TradeWriter(this.#prefix, this.#trim, this.#registry.capacity);
    this.#connectTimeoutMs = opts.redisOptions?.connectTimeout ?? 2000;
    for (const [id, name] of Object.entries(this.#sourceNames)) {
      if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(name)) throw engineError('ENGINE_ERR_INVALID_ARG', `RedisSink source name for id ${id} must be 1-64 chars of A-Z a-z 0-9 _ . : -, got ${JSON.stringify(name)}`);
    }
    this.#publish = opts.publish ?? true;
    this.#now = opts.now ?? Date.now;
    this.#onError = opts.onError;
    this.#hold = new HoldBuffer(holdRecords);
    this.#redisOptions = {
      ...opts.redisOptions,
      lazyConnect: true,
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 0,
      enableReadyCheck: true,
      commandTimeout: opts.commandTimeoutMs ?? 5000,
      connectTimeout: opts.redisOptions?.connectTimeout ?? 2000,
      retryStrategy: opts.redisOptions?.retryStrategy ?? ((times: number) => Math.min(50 * times, 1000)),
    };
    this.#st.setState(this.target === null ? 'disabled' : 'connecting');
  }

  get state(): SinkState {
    return this.#st.state;
  }

  status(): RedisSinkStatus {
    return readRedisSinkStatus(this.statusBuffer);
  }

  /** Start the loop (idempotent); resolves when the sink has stopped (after `stop()`, or once its ring is STOPPED and drained). */
  run(): Promise<void> {
    this.#running ??= this.#run();
    return this.#running;
  }

  /** Ask the loop to stop: it sends what it holds if Redis is live, then closes the connection. */
  stop(): Promise<void> {
    this.#stopRequested = true;
    this.#wake?.();
    return this.#running ?? Promise.resolve();
  }

  // ---- main loop ----------------------------------------------------------------------------------

  async #run(): Promise<void> {
    if (this.target === null) return this.#runDisabled();
    const redis = new Redis(this.target.url, this.#redisOptions);
    this.#redis = redis;
    redis.on('ready', () => {
      if (this.#everReady) this.#c[C.reconnects] = this.#c[C.reconnects]! + 1;
      this.#everReady = true;
      this.#ready = true;
      this.#needResync = true;
      this.#backoffMs = 50;
      this.#wake?.();
    });
    redis.on('close', () => {
      if (this.#ready) this.#error(engineError('ENGINE_ERR', `Redis connection to ${this.target?.redacted ?? ''} lost`));
      this.#ready = false;
      this.#known = 0;
    });
    redis.on('error', (err: Error) => this.#error(engineError('ENGINE_ERR', `Redis: ${err.message}`)));
    redis.connect().catch(() => undefined); // failures are reported by 'error' and retried by retryStrategy
    try {
      for (;;) {
        const live = this.#ready && !this.#needResync && this.#data !== null && this.#now() >= this.#retryAt;
        if (this.#stopRequested && !live) break; // records not sent are in the journal: the next start catches up
        if (live) {
          if (await this.#liveStep()) break;
          continue;
        }
        if (this.#ready && this.#needResync && this.#now() >= this.#retryAt) {
          await this.#resync();
          continue;
        }
        // Not ready: keep the ring moving into the hold buffer.
        await this.#abandonPending();
        this.#st.setState(this.#everReady ? 'reconnecting' : 'connecting');
        this.#ringToHold();
        this.#updateLag();
        if (this.#stopRequested || this.#ring.finished) break; // records left are in the journal
        await this.#idle(50);
      }
    } finally {
      await this.#abandonPending();
      this.#updateLag();
      this.#st.setState('stopped');
      const data = this.#data;
      this.#data = null;
      data?.close();
      this.#redis = null;
      redis.disconnect(false);
    }
  }

  async #runDisabled(): Promise<void> {
    const r = this.#ring;
    for (;;) {
      const n = r.available();
      if (n > 0) {
        this.#c[C.ignored] = this.#c[C.ignored]! + n;
        r.release(n);
        continue;
      }
      if (this.#stopRequested || r.finished) break;
      await r.waitForDataAsync(100);
    }
    this.#st.setState('stopped');
  }

  /** One live iteration; true when the sink should stop. */
  async #liveStep(): Promise<boolean> {
    this.#st.setState('live');
    if (this.#registry.size > this.#known) {
      await this.#fetchLastIds(this.#known + 1, this.#registry.size);
      return false;
    }
    const hold = this.#hold;
    if (hold.size > this.#holdUnacked) {
      // Hold buffer first (it is older than anything in the ring); keep the ring moving behind it.
      this.#ringToHold();
      if (this.#needResync) return false; // the hold buffer overflowed: catch up from the journal first
      const k = Math.min(this.#batchRecords, hold.size - this.#holdUnacked);
      this.#beginBuild();
      const b = this.#newBatch('hold', k);
      const p = this.#enc;
      p.reset();
      let done = 0;
      while (done < k) {
        const seg = hold.contiguousFrom(this.#holdUnacked + done, k - done);
        this.#appendRange(p, hold.views, hold.byteOf(this.#holdUnacked + done), seg, true, b);
        done += seg;
      }
      this.#endBuild(p, hold.views, b);
      this.#holdUnacked += k;
      await this.#send(p, b);
      return false;
    }
    if (this.#holdUnacked > 0) { // everything held is in flight: wait for it before the ring
      await this.#settleOldest();
      return false;
    }
    const r = this.#ring;
    const avail = r.available() - this.#ringUnreleased;
    if (avail > 0) {
      if (this.#registry.size > this.#known) return false; // a symbol registered since: fetch its last ID first
      if (!this.#lingered && avail < this.#lingerRecords && this.#lingerMs > 0 && this.#pending.length === 0 && !this.#stopRequested && !r.finished) {
        this.#lingered = true;
        await delay(this.#lingerMs);
        return false;
      }
      this.#lingered = false;
      const k = Math.min(this.#batchRecords, avail);
      this.#beginBuild();
      const b = this.#newBatch('ring', k);
      const p = this.#enc;
      p.reset();
      const b0 = r.slotByte(this.#ringUnreleased);
      const first = Math.min(k, (this.#ringDataEnd - b0) / RECORD_SLOT_BYTES);
      let used = this.#appendRange(p, this.#rv, b0, first, true, b);
      if (used === first && first < k) used += this.#appendRange(p, this.#rv, r.slotByte(this.#ringUnreleased + first), k - first, true, b);
      this.#endBuild(p, this.#rv, b);
      b.count = used; // less than k when an upstream-overflow marker ended the batch (the rest waits for the catch-up)
      this.#ringUnreleased += used;
      await this.#send(p, b);
      return false;
    }
    if (this.#pending.length > 0) {
      await this.#settleOldest();
      return false;
    }
    this.#updateLag();
    if (this.#stopRequested || r.finished) return true;
    await r.waitForDataAsync(100);
    return false;
  }

  async #idle(ms: number): Promise<void> {
    // Wake on ring data, on 'ready' or on stop, whichever comes first.
    let wake!: () => void;
    const woken = new Promise<void>((res) => { wake = res; });
    this.#wake = wake;
    await Promise.race([woken, this.#ring.waitForDataAsync(ms)]);
    this.#wake = null;
  }

  // ---- batches ----------------------------------------------------------------------------------------

  #newBatch(from: Batch['from'], count: number): Batch {
    return {
      epoch: this.#epoch, promise: Promise.resolve({ errors: 0, firstError: null }), from, count,
      trades: 0, skipped: 0, outOfOrder: 0, expired: 0, unknown: 0, ignored: 0, quotes: 0, published: 0, newestTsMicros: 0, settled: false, ok: false,
    };
  }

  /** Send the encoded batch; waits for the oldest batch when `maxInFlight` are in flight. */
  async #send(enc: RespEncoder, b: Batch): Promise<void> {
    const data = this.#data;
    (b as { promise: Batch['promise'] }).promise = data === null
      ? Promise.reject(engineError('ENGINE_ERR', 'no Redis data connection'))
      : data.send(enc);
    b.promise.then(
      (res) => {
        b.settled = true;
        b.ok = res.errors === 0;
        if (!b.ok) this.#error(engineError('ENGINE_ERR', `Redis refused ${res.errors} command(s) of a batch: ${res.firstError ?? ''}`));
      },
      (err: unknown) => { b.settled = true; b.ok = false; this.#error(engineError('ENGINE_ERR', `Redis pipeline failed: ${errText(err)}`)); },
    );
    this.#pending.push(b);
    while (this.#pending.length >= this.#maxInFlight) await this.#settleOldest();
  }

  /** Wait for the oldest batch (at most `stallMs`); account for it, or fail everything in flight. */
  async #settleOldest(): Promise<void> {
    const b = this.#pending[0];
    if (b === undefined) return;
    if (!b.settled) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        b.promise.then(() => undefined, () => undefined),
        new Promise<void>((r) => { timer = setTimeout(r, this.#stallMs); }),
      ]);
      clearTimeout(timer);
      await Promise.resolve(); // let the settle handlers above run first
    }
    if (!b.settled) {
      this.#error(engineError('ENGINE_ERR_TIMEOUT', `Redis did not answer a pipeline of ${b.count} records within ${this.#stallMs} ms`));
      this.#failAll();
      return;
    }
    if (!b.ok || b.epoch !== this.#epoch) {
      this.#failAll();
      return;
    }
    this.#pending.shift();
    const c = this.#c;
    c[C.sent] = c[C.sent]! + b.trades;
    c[C.skippedDuplicate] = c[C.skippedDuplicate]! + b.skipped;
    c[C.outOfOrder] = c[C.outOfOrder]! + b.outOfOrder;
    c[C.expired] = c[C.expired]! + b.expired;
    c[C.unknownSymbol] = c[C.unknownSymbol]! + b.unknown;
    c[C.ignored] = c[C.ignored]! + b.ignored;
    c[C.quotes] = c[C.quotes]! + b.quotes;
    c[C.published] = c[C.published]! + b.published;
    c[C.batches] = c[C.batches]! + 1;
    if (b.from === 'journal') c[C.catchUpRecords] = c[C.catchUpRecords]! + b.count;
    if (b.newestTsMicros > this.#newestAckedTs) this.#newestAckedTs = b.newestTsMicros;
    if (b.from === 'ring') {
      this.#ringAcked += b.count;
      if (this.#ringAcked >= this.#releaseChunk || this.#ringAcked === this.#ringUnreleased) this.#releaseAcked();
    } else if (b.from === 'hold') {
      this.#hold.shift(b.count);
      this.#holdUnacked -= b.count;
    }
    this.#updateLag();
  }

  #releaseAcked(): void {
    if (this.#ringAcked === 0) return;
    this.#ring.release(this.#ringAcked);
    this.#ringUnreleased -= this.#ringAcked;
    this.#ringAcked = 0;
  }

  /**
   * A batch failed or stalled: forget every batch in flight (their records are still in the ring or the
   * hold buffer and are sent again after a re-sync, checked against the streams' last IDs), back off.
   */
  #failAll(): void {
    this.#epoch++;
    const data = this.#data;
    this.#data = null; // first: its close is ours, not a loss to report
    data?.close(); // late replies must never be matched to later batches: a fresh connection per sync
    this.#pending.length = 0;
    this.#releaseAcked(); // those are in Redis; the rest is read again
    this.#ringUnreleased = 0;
    this.#holdUnacked = 0;
    this.#needResync = true;
    this.#retryAt = this.#now() + this.#backoffMs;
    this.#backoffMs = Math.min(this.#backoffMs * 2, 2000);
    if (this.#st.state === 'live') this.#st.setState('reconnecting');
  }

  /** Not ready: whatever is in flight is given up (late answers are ignored by epoch). */
  async #abandonPending(): Promise<void> {
    if (this.#pending.length === 0) return;
    // Give answers already on their way a moment; then fail the rest.
    while (this.#pending.length > 0) {
      const before = this.#pending.length;
      await this.#settleOldest();
      if (this.#pending.length === before) break;
    }
    if (this.#pending.length > 0) this.#failAll();
  }

  // ---- building commands (hot path: no per-record objects besides the command strings) -------------

  #beginBuild(): void {
    this.#buildIdx = 0;
    this.#buildNowMs = this.#now();
    this.#tw.beginBatch(Math.floor(this.#buildNowMs - this.#retentionMs));
  }

  /**
   * Append commands for `count` contiguous records at byte `b0` of `v`. `live`: PUBLISH too. Returns the
   * records consumed: fewer than `count` when an upstream-overflow marker (the validator dropped records
   * for this ring; they are in the journal) is met: it is consumed and ends the range, because nothing
   * newer may reach a stream before the dropped records are caught up from the journal.
   */
  #appendRange(p: RespEncoder, v: SlotViews, b0: number, count: number, live: boolean, batch: Batch): number {
    const u8 = v.u8, u16 = v.u16, u32 = v.u32, f64 = v.f64;
    const known = this.#known;
    const lastMs = this.#lastMs, lastN = this.#lastN;
    const horizonUs = (this.#buildNowMs - this.#retentionMs) * 1000;
    const tw = this.#tw;
    const publish = live && this.#publish;
    let trades = 0, skipped = 0, outOfOrder = 0, expired = 0, unknown = 0, ignored = 0, quotes = 0, published = 0;
    let newest = batch.newestTsMicros;
    let idx = this.#buildIdx;
    let o = p.len;
    let i = 0;
    for (let b = b0; i < count; i++, b += RECORD_SLOT_BYTES, idx++) {
      const kind = u8[b]!;
      if (kind !== RecordKind.TRADE && kind !== RecordKind.QUOTE) {
        if (kind === RecordKind.GAP && this.#overflowMarker(v, b)) { i++; break; }
        ignored++;
        continue;
      }
      const sym = u16[(b + 2) >> 1]!;
      if (sym === 0 || sym > known) { unknown++; continue; }
      if (kind === RecordKind.QUOTE) {
        quotes++;
        if (!live) continue; // a replayed quote is old news: latest:<SYM> gets the bid/ask of newer records
        this.#touch(sym);
        this.#quoteIdx[sym] = idx;
        this.#quoteByte[sym] = b;
        continue;
      }
      const ts = f64[(b + 8) >> 3]!;
      if (!(ts >= horizonUs)) { expired++; continue; }
      const ms = Math.floor(ts / 1000);
      const src = u8[b + 1]!;
      const seq = u32[(b + 4) >> 2]!;
      const n = Math.floor(ts - ms * 1000) * N_US_FACTOR + src * N_SOURCE_FACTOR + seq;
      const lm = lastMs[sym]!;
      const flags = u32[(b + 44) >> 2]!;
      if (ms < lm || (ms === lm && n <= lastN[sym]!)) {
        if ((flags & TradeFlag.V_OUT_OF_ORDER) !== 0) outOfOrder++; else skipped++;
        continue;
      }
      lastMs[sym] = ms;
      lastN[sym] = n;
      if (!tw.hasSource(src)) this.#sourceName(src);
      p.len = o;
      p.ensure(MAX_TICK_BYTES);
      o = tw.write(p.buf, o, v, b, sym, publish);
      p.commands += publish ? 2 : 1;
      if (publish) published++;
      trades++;
      if (ts > newest) newest = ts;
      this.#touch(sym);
      this.#tradeIdx[sym] = idx;
      this.#tradeByte[sym] = b;
    }
    p.len = o;
    this.#buildIdx = idx;
    batch.trades += trades; batch.skipped += skipped; batch.outOfOrder += outOfOrder; batch.expired += expired; batch.unknown += unknown;
    batch.ignored += ignored; batch.quotes += quotes; batch.published += published; batch.newestTsMicros = newest;
    return i;
  }

  /**
   * Is the GAP record at `b` the validator's output-overflow marker (engine/validate/stage.ts: kind
   * SOURCE_STATUS, status 'OV', expectedSeq = records dropped)? Then those records are only in the journal:
   * schedule a catch-up that reads the journal until it has everything committed `journalLagMs` after now.
   */
  #overflowMarker(v: SlotViews, b: number): boolean {
    if (v.u32[(b + GAP_STATUS_BYTE) >> 2] !== OUTPUT_OVERFLOW_STATUS || v.u32[(b + GAP_KIND_BYTE) >> 2] !== GapKind.SOURCE_STATUS) return false;
    const dropped = v.u32[(b + GAP_EXPECTED_SEQ_BYTE) >> 2]!;
    this.#c[C.upstreamDropped] = this.#c[C.upstreamDropped]! + dropped;
    this.#droppedSinceCatchUp += dropped;
    this.#barrierAt = Math.max(this.#barrierAt, performance.now() + this.#journalLagMs);
    this.#catchUpNeeded = true;
    this.#needResync = true;
    return true;
  }

  #touch(sym: number): void {
    if (this.#tradeIdx[sym]! < 0 && this.#quoteIdx[sym]! < 0) this.#touched[this.#touchedCount++] = sym;
  }

  /** One HSET per symbol touched by the batch: its newest trade, and the bid/ask of a newer quote. */
  #endBuild(p: RespEncoder, v: SlotViews, _b: Batch): void {
    const f64 = v.f64, u32 = v.u32, u8 = v.u8;
    const A = this.#A;
    for (let k = 0; k < this.#touchedCount; k++) {
      const sym = this.#touched[k]!;
      const ti = this.#tradeIdx[sym]!, qi = this.#quoteIdx[sym]!;
      if (ti >= 0) {
        const b = this.#tradeByte[sym]!;
        const ts = f64[(b + 8) >> 3]!;
        const flags = u32[(b + 44) >> 2]!;
        const src = u8[b + 1]!;
        if (this.#srcArg[src] === undefined) this.#sourceName(src);
        p.begin(24);
        p.bytes(A.HSET); p.bytes(this.#latestKeyArg[sym]!);
        p.bytes(A.symbol); p.bytes(this.#symbolArg[sym]!);
        p.bytes(A.price); p.num(f64[(b + 16) >> 3]!);
        p.bytes(A.size); p.str(String(u32[(b + 40) >> 2]!));
        p.bytes(A.side); p.bytes((flags & TradeFlag.SIDE_BUY) !== 0 ? A.B : (flags & TradeFlag.SIDE_SELL) !== 0 ? A.S : A.none);
        p.bytes(A.bid); p.num(f64[(b + 24) >> 3]!);
        p.bytes(A.ask); p.num(f64[(b + 32) >> 3]!);
        p.bytes(A.seq); p.str(String(u32[(b + 4) >> 2]!));
        p.bytes(A.ts_us); p.str(String(ts));
        p.bytes(A.ts_ms); p.str(String(Math.floor(ts / 1000)));
        p.bytes(A.timestamp); p.str(this.#tw.iso(ts));
        p.bytes(A.source); p.bytes(this.#srcArg[src]!);
      }
      if (qi > ti) {
        const b = this.#quoteByte[sym]!;
        p.begin(8);
        p.bytes(A.HSET); p.bytes(this.#latestKeyArg[sym]!);
        p.bytes(A.bid); p.num(f64[(b + 24) >> 3]!);
        p.bytes(A.ask); p.num(f64[(b + 32) >> 3]!);
        p.bytes(A.quote_ts_us); p.str(String(f64[(b + 8) >> 3]!));
      }
      this.#tradeIdx[sym] = -1;
      this.#quoteIdx[sym] = -1;
    }
    this.#touchedCount = 0;
  }

  #sourceName(src: number): string {
    const name = this.#sourceNames[src] ?? `src${src}`;
    this.#srcArg[src] = encodeArg(name);
    this.#tw.addSource(src, name);
    return name;
  }

  // ---- symbols and last IDs -----------------------------------------------------------------------------

  /** Fetch `last-generated-id` of the streams of symbols from..to (pipelined XINFO STREAM). */
  async #fetchLastIds(from: number, to: number): Promise<void> {
    const redis = this.#redis!;
    for (let lo = from; lo <= to; lo += 512) {
      const hi = Math.min(to, lo + 511);
      const p = redis.pipeline();
      for (let id = lo; id <= hi; id++) {
        this.#ensureNames(id);
        p.xinfo('STREAM', this.#streamKey[id]!);
      }
      const res = await p.exec();
      if (res === null) throw engineError('ENGINE_ERR', 'Redis pipeline was discarded');
      for (let id = lo; id <= hi; id++) {
        const [err, info] = res[id - lo]!;
        if (err !== null) {
          if (/no such key/i.test(err.message)) { this.#lastMs[id] = 0; this.#lastN[id] = 0; continue; }
          throw err;
        }
        const arr = info as unknown[];
        const at = arr.indexOf('last-generated-id');
        const parsed = at >= 0 ? parseStreamId(arr[at + 1]) : null;
        if (parsed === null) throw engineError('ENGINE_ERR', `XINFO STREAM ${this.#streamKey[id]!} has no readable last-generated-id`);
        this.#lastMs[id] = parsed.ms;
        this.#lastN[id] = parsed.n;
      }
      this.#known = hi;
    }
  }

  #ensureNames(id: number): void {
    if (this.#streamKey[id] !== undefined) return;
    const sym = this.#registry.metaOf(id).symbol;
    this.#streamKey[id] = `${this.#prefix}ticks:${sym}`;
    this.#tw.addSymbol(id, sym);
    this.#latestKeyArg[id] = encodeArg(`${this.#prefix}latest:${sym}`);
    this.#symbolArg[id] = encodeArg(sym);
  }

  async #serverRunId(): Promise<string | null> {
    const info = await this.#redis!.info('server');
    return /run_id:([0-9a-f]+)/.exec(info)?.[1] ?? null;
  }

  // ---- re-sync and catch-up -----------------------------------------------------------------------------

  async #resync(): Promise<void> {
    this.#st.setState('catching-up');
    await this.#abandonPending();
    try {
      const runId = await this.#serverRunId();
      if (this.#runId !== null && runId !== this.#runId) this.#catchUpNeeded = true; // Redis restarted: it may have lost entries
      this.#runId = runId;
      this.#known = 0;
      await this.#fetchLastIds(1, this.#registry.size);
      if (this.#data === null || this.#data.closed) {
        const data = await RespConnection.open(this.target!, this.#connectTimeoutMs);
        data.onClose = (err) => {
          if (this.#data !== data) return;
          this.#error(engineError('ENGINE_ERR', `Redis data connection lost: ${err.message}`));
          this.#data = null;
          this.#needResync = true;
        };
        this.#data = data;
      }
      if (this.#wmAny) this.#catchUpNeeded = true;
      if (this.#catchUpNeeded) {
        if (this.#dataDir === null) {
          this.#c[C.lost] = this.#c[C.lost]! + this.#droppedSinceCatchUp;
          this.#clearWatermark();
        } else if (!(await this.#catchUp())) {
          return; // failed: #failAll set the retry; the next re-sync starts over
        }
        this.#catchUpNeeded = false;
      }
      this.#needResync = false;
      this.#backoffMs = 50;
    } catch (err) {
      this.#error(engineError('ENGINE_ERR', `Redis re-sync failed: ${errText(err)}`));
      this.#failAll();
    }
  }

  /** Replay the journal of the retention window until it has passed every discarded record. False when a batch failed. */
  async #catchUp(): Promise<boolean> {
    this.#c[C.catchUps] = this.#c[C.catchUps]! + 1;
    this.#seenMs.fill(0);
    this.#seenN.fill(0);
    const tail = new JournalTail({
      dataDir: this.#dataDir!, fromMicros: (this.#now() - this.#retentionMs) * 1000,
      onCorrupt: (e) => this.#error(e),
    });
    let lastProgress = performance.now();
    const epoch = this.#epoch;
    for (;;) {
      this.#ringToHold();
      if (!this.#ready) { this.#failAll(); return false; }
      if (this.#stopRequested) return false;
      const n = tail.next();
      if (n > 0) {
        // after next(): a block may hold a symbol registered since the last fetch (tail.views stays valid meanwhile)
        if (this.#registry.size > this.#known) await this.#fetchLastIds(this.#known + 1, this.#registry.size);
        lastProgress = performance.now();
        const v = tail.views;
        this.#noteSeen(v, tail.byteOffset, n);
        for (let done = 0; done < n;) {
          const k = Math.min(this.#batchRecords, n - done);
          this.#beginBuild();
          const b = this.#newBatch('journal', k);
          const p = this.#enc;
          p.reset();
          this.#appendRange(p, v, tail.byteOffset + done * RECORD_SLOT_BYTES, k, false, b);
          this.#endBuild(p, v, b);
          done += k;
          await this.#send(p, b);
          if (this.#epoch !== epoch) return false;
        }
        continue;
      }
      while (this.#pending.length > 0) await this.#settleOldest();
      if (this.#epoch !== epoch) return false;
      if (this.#covered()) break;
      if (performance.now() - lastProgress > this.#catchUpGiveUpMs) {
        this.#error(engineError('ENGINE_ERR_JOURNAL', `Redis catch-up gave up: the journal in ${this.#dataDir!} did not reach the records discarded while Redis was unavailable within ${this.#catchUpGiveUpMs} ms (at most ${this.#droppedSinceCatchUp} records are missing from the streams)`));
        this.#c[C.lost] = this.#c[C.lost]! + this.#droppedSinceCatchUp;
        break;
      }
      tail.rewind();
      await delay(20);
    }
    this.#clearWatermark();
    return true;
  }

  /** Journal progress per symbol (max ID seen), to know when the discarded records are covered. */
  #noteSeen(v: SlotViews, b0: number, count: number): void {
    if (!this.#wmAny) return;
    const u8 = v.u8, u16 = v.u16, u32 = v.u32, f64 = v.f64;
    for (let i = 0, b = b0; i < count; i++, b += RECORD_SLOT_BYTES) {
      if (u8[b] !== RecordKind.TRADE) continue;
      const sym = u16[(b + 2) >> 1]!;
      if (sym >= this.#seenMs.length) continue;
      const ts = f64[(b + 8) >> 3]!;
      const ms = Math.floor(ts / 1000);
      const n = Math.floor(ts - ms * 1000) * N_US_FACTOR + u8[b + 1]! * N_SOURCE_FACTOR + u32[(b + 4) >> 2]!;
      if (ms > this.#seenMs[sym]! || (ms === this.#seenMs[sym]! && n > this.#seenN[sym]!)) { this.#seenMs[sym] = ms; this.#seenN[sym] = n; }
    }
  }

  #covered(): boolean {
    if (performance.now() < this.#barrierAt) return false; // the journal may not show the dropped records yet
    if (!this.#wmAny) return true;
    for (let s = 1; s < this.#wmMs.length; s++) {
      const wm = this.#wmMs[s]!;
      if (wm === 0) continue;
      const seen = this.#seenMs[s]!;
      if (seen < wm || (seen === wm && this.#seenN[s]! < this.#wmN[s]!)) return false;
    }
    return true;
  }

  #clearWatermark(): void {
    this.#barrierAt = 0;
    if (this.#wmAny) { this.#wmMs.fill(0); this.#wmN.fill(0); }
    this.#wmAny = false;
    this.#droppedSinceCatchUp = 0;
  }

  // ---- ring → hold buffer ---------------------------------------------------------------------------------

  /** Move everything the ring holds (beyond batches in flight) into the hold buffer. */
  #ringToHold(): void {
    const r = this.#ring;
    const hold = this.#hold;
    const n = r.available() - this.#ringUnreleased;
    if (n <= 0) return;
    if (this.#ringUnreleased > 0) return; // batches from the ring are in flight: they must be released first
    const v = this.#rv;
    for (let i = 0; i < n; i++) {
      const b = r.slotByte(i);
      if (v.u8[b] === RecordKind.GAP && this.#overflowMarker(v, b)) continue; // consumed: the catch-up covers it
      if (hold.full) this.#discardHold();
      hold.push(v, b);
    }
    r.release(n);
    this.#c[C.held] = hold.size;
  }

  /** The hold buffer is full: its records are left to the journal catch-up; remember the newest per symbol. */
  #discardHold(): void {
    const hold = this.#hold;
    if (this.#holdUnacked > 0) this.#failAll(); // a flush of the hold buffer was in flight; it is void now
    const v = hold.views;
    const u8 = v.u8, u16 = v.u16, u32 = v.u32, f64 = v.f64;
    for (let i = 0; i < hold.size; i++) {
      const b = hold.byteOf(i);
      if (u8[b] !== RecordKind.TRADE) continue;
      const sym = u16[(b + 2) >> 1]!;
      if (sym === 0 || sym >= this.#wmMs.length) continue;
      const ts = f64[(b + 8) >> 3]!;
      const ms = Math.floor(ts / 1000);
      const n = Math.floor(ts - ms * 1000) * N_US_FACTOR + u8[b + 1]! * N_SOURCE_FACTOR + u32[(b + 4) >> 2]!;
      if (ms > this.#wmMs[sym]! || (ms === this.#wmMs[sym]! && n > this.#wmN[sym]!)) { this.#wmMs[sym] = ms; this.#wmN[sym] = n; }
      this.#wmAny = true;
    }
    this.#c[C.dropped] = this.#c[C.dropped]! + hold.size;
    this.#droppedSinceCatchUp += hold.size;
    hold.clear();
    this.#catchUpNeeded = true;
    this.#needResync = true;
  }

  // ---- status -------------------------------------------------------------------------------------------

  #updateLag(): void {
    const c = this.#c;
    c[C.held] = this.#hold.size;
    c[C.lagRecords] = Math.max(0, this.#ring.available() - this.#ringAcked) + this.#hold.size;
    c[C.lagMs] = this.#newestAckedTs > 0 ? Math.max(0, this.#now() - this.#newestAckedTs / 1000) : 0;
  }

  #error(err: EngineError): void {
    this.#c[C.errors] = this.#c[C.errors]! + 1;
    this.#st.setError(`${err.code}: ${err.message}`, this.#now());
    if (err.message === this.#lastErrorText) return;
    this.#lastErrorText = err.message;
    try {
      this.#onError?.(err);
    } catch (cbErr) {
      queueMicrotask(() => { throw cbErr; });
    }
  }
}
