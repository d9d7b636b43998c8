/**
 * The running engine of `tickpipe start`: shared tables, source workers, the validator stage, ring
 * consumers and the API.
 *
 *   demo-market.worker (optional) ── writes Sierra files live
 *   sierra-scid.worker  ──ring──▶ validator.worker ─▶ journal (group commit), quarantine, gap store
 *                                                   ─▶ hot window (SAB), latest table (SAB, seqlock)
 *                                                   ──feed ring──▶ FeedDrain (main) ─▶ engine.feed listeners
 *                                                   ──redis ring──▶ (Redis sink worker, when REDIS_URL is set)
 *   sierra-depth.worker ──ring──▶ RingDrain (main) ─▶ order books
 *   uWS (main thread): /healthz /readyz /api/v1/status
 *
 * Exactly once into the journal across kill -9: see engine/validate/stage.ts (the scid source runs with
 * `durableConsumer`: its checkpoint follows what the validator released, i.e. what the journal holds).
 *
 * Start order: HTTP (503 on /readyz until ready), demo (its files exist before the tailers look), sources,
 * validator (it replays the journal's open hours into the hot window before READY). Stop order: HTTP,
 * demo, sources (rings DRAINING: they stop reading and publish what they hold), the validator (drains its
 * inputs, commits the journal), then the main-thread drains empty their rings.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { adminAttach } from '../api/admin.ts';
import { KeyStore } from '../api/auth/keystore.ts';
import type { ApiDeps, MetricFamily, RecordQuery } from '../api/deps.ts';
import { createApi, type Api } from '../api/server.ts';
import { panelAttach } from '../api/static.ts';
import { attachWebhooks, webhookOptionsFromEnv, type Webhooks } from '../api/webhooks/index.ts';
import { attachWebSocket, webhookMetricFamilies, wsMetricFamilies, type WsHub } from '../api/ws/index.ts';
import { createParquetHistory, type ParquetHistory } from '../api/ws/parquet-history.ts';
import { ringStats as ringStatsOf } from './ring/ring.ts';
import type { IngestFileSpec } from '../workers/sierra/ingest.ts';
import { DEPTH_SUBDIR, scidFileName } from '../workers/sim/sim-files.ts';
import type { OrderBook } from './book/order-book.ts';
import type { EngineConfig } from './config.ts';
import { engineError } from './errors.ts';
import { HotWindow } from './hot/hot-window.ts';
import { FeedDrain } from './ingest/feed.ts';
import { RingDrain } from './ingest/drain.ts';
import { IngestProgress } from './ingest/progress.ts';
import { JOURNAL_DIR_NAME } from './journal/format.ts';
import { LatestTable } from './latest/latest-table.ts';
import { createRing, ringStats } from './ring/ring.ts';
import { Supervisor } from './supervisor.ts';
import { registerWithRecordedIds, writeSymbolIds } from './symbols/ids-file.ts';
import { SymbolRegistry } from './symbols/registry.ts';
import type { ValidatorStageOptions } from './validate/stage.ts';
import { GapStore, QuarantineStore } from './validate/stores.ts';
import { RECORD_RING_KIND, RECORD_SLOT_BYTES } from '../schemas/records.ts';
import { CompactionService } from '../workers/compactor/service.ts';
import { SpotChecker } from './spotcheck/spot-checker.ts';
import { createRedisSinkStatus, readRedisSinkStatus } from '../workers/redis-sink/status.ts';

const SCID_SOURCE_ID = 1;
const DEPTH_SOURCE_ID = 2;
/** Stage name of the validator worker (supervisor requests, status). */
export const VALIDATOR_STAGE = 'validator';
/** Source ids of the built-in sources (record header SOURCE_ID). */
export const SOURCE_IDS: Readonly<Record<string, number>> = { 'sierra-scid': SCID_SOURCE_ID, 'sierra-depth': DEPTH_SOURCE_ID };

/** Names of source ids as stored in Parquet's `source` column (backfill and spot checks use 'sierra'). */
export const SOURCE_NAMES: readonly string[] = ['', 'sierra', 'sierra-depth'];
export function sourceName(id: number): string { return SOURCE_NAMES[id] || `source${id}`; }

export interface EngineLog {
  info(msg: string): void;
  warn(msg: string): void;
}

export class Engine {
  readonly config: EngineConfig;
  readonly registry: SymbolRegistry;
  readonly latest: LatestTable;
  readonly supervisor = new Supervisor();
  /** Main-thread consumers of source rings that bypass the validator (market depth → order books). */
  readonly drains: RingDrain[] = [];
  readonly rings: Record<string, SharedArrayBuffer> = {};
  /** The last hour of validated trades per symbol (written by the validator worker; read anywhere). */
  readonly hot: HotWindow;
  /** Validated records on the main thread, in ring order (api/types.ts RecordFeed). */
  readonly feed: FeedDrain;
  /**
   * Ring of journaled records (64-byte slots, schemas/records.ts) for the Redis sink, created only when
   * REDIS_URL is set (else null). The validator is its only producer; one consumer (the sink worker)
   * attaches a RingReader. A full ring never stalls the validator: records are dropped for it and, once
   * space is back, a GAP record (kind SOURCE_STATUS, status OUTPUT_OVERFLOW_STATUS, start/end = event
   * times of the first/last dropped record, expectedSeq = how many) says what to re-read from the journal.
   */
  readonly redisRing: SharedArrayBuffer | null;
  /** Rejected and flagged records on disk (`<data-dir>/quarantine`), queryable. */
  readonly quarantine: QuarantineStore;
  /** Sequence/time gaps and source markers on disk (`<data-dir>/gaps`), queryable. */
  readonly gaps: GapStore;
  /** `<data-dir>/journal`: hour files `<YYYY-MM-DD>/<HH>.tpj` (engine/journal/format.ts). */
  readonly journalDir: string;
  /** Counters of the Redis sink worker (shared memory; workers/redis-sink/status.ts), null without REDIS_URL. */
  readonly redisStatus: SharedArrayBuffer | null;
  /** Hourly Parquet compaction of closed journal hours (piscina pool), created at start. */
  compaction: CompactionService | null = null;
  /** Random spot checks of stored ticks against their source. */
  spotCheck: SpotChecker | null = null;
  readonly startedAt = Date.now();
  readonly #log: EngineLog;
  #api: Api | null = null;
  #port = 0;
  /** API keys (`<data-dir>/keys.json`, hashed), re-read when `tickpipe keys` changes the file. */
  keys: KeyStore | null = null;
  /** The WebSocket hub (`/ws`), subscribed to the record feed. */
  hub: WsHub | null = null;
  webhooks: Webhooks | null = null;
  #history: ParquetHistory | null = null;
  #unsubscribeHub: (() => void) | null = null;
  #closing: Promise<void> | null = null;
  readonly #recentErrors: string[] = [];
  /** The registry holds symbols symbol-ids.json does not (written at start, then whenever the registry grows). */
  #symbolIdsChanged = false;
  #symbolIdsRecorded = 0;
  #symbolIdsTimer: NodeJS.Timeout | null = null;

  private constructor(config: EngineConfig, log: EngineLog) {
    this.config = config;
    this.#log = log;
    this.registry = SymbolRegistry.create({ capacity: 1024 });
    this.latest = LatestTable.create(1024);
    // ids recorded in <data-dir>/symbol-ids.json first (stored records carry ids: a symbol keeps its id across
    // restarts and configuration changes), then the configured symbols that are new
    const configured = config.symbols.map((s) => ({ symbol: s, ...(config.priceMultipliers[s] ? { priceMultiplier: config.priceMultipliers[s] } : {}) }));
    this.#symbolIdsChanged = registerWithRecordedIds(this.registry, config.dataDir, configured).changed;
    const maxId = this.registry.size;
    // ids registered later (up to +4) still get a hot ring; the SAB's pages are committed as they fill
    // the configured symbols and up to 4 registered later can receive trades; recorded ids no longer configured keep
    // their (never written, never committed) place in the layout
    this.hot = HotWindow.create({ symbols: maxId + 4, activeSymbols: Math.min(maxId + 4, config.symbols.length + 4), capacityPerSymbol: config.hotCapacity, maxBytes: config.hotMaxBytes });
    const feedRing = createRing({ slotCount: config.ringSlots, slotBytes: RECORD_SLOT_BYTES, recordKind: RECORD_RING_KIND });
    this.rings.feed = feedRing;
    this.feed = new FeedDrain('feed', feedRing, (err) => this.#error(`a record listener failed and was unsubscribed: ${(err as Error)?.message ?? String(err)}`));
    this.redisRing = config.redisUrl ? createRing({ slotCount: Math.max(config.ringSlots, 1 << 16), slotBytes: RECORD_SLOT_BYTES, recordKind: RECORD_RING_KIND }) : null;
    if (this.redisRing) this.rings.redis = this.redisRing;
    this.redisStatus = this.redisRing ? createRedisSinkStatus() : null;
    const symbolOf = (id: number): string | null => { try { return this.registry.metaOf(id).symbol; } catch { return null; } };
    this.quarantine = new QuarantineStore(config.dataDir, symbolOf);
    this.gaps = new GapStore(config.dataDir, symbolOf);
    this.journalDir = join(config.dataDir, JOURNAL_DIR_NAME);
  }

  get port(): number { return this.#port; }

  /** Write symbol-ids.json when the registry holds symbols the file does not (or `force`). */
  #recordSymbolIds(force: boolean): void {
    const n = this.registry.size;
    if (!force && n === this.#symbolIdsRecorded) return;
    try {
      writeSymbolIds(this.config.dataDir, this.registry);
      this.#symbolIdsRecorded = n;
    } catch (err) {
      if (force) throw err;
      this.#error((err as Error).message); // retried at the next tick
    }
  }

  static async start(config: EngineConfig, log: EngineLog): Promise<Engine> {
    const e = new Engine(config, log);
    try {
      await e.#start();
    } catch (err) {
      await e.close().catch(() => undefined);
      throw err;
    }
    return e;
  }

  async #start(): Promise<void> {
    const c = this.config;
    try {
      mkdirSync(c.dataDir, { recursive: true });
    } catch (err) {
      throw engineError('ENGINE_ERR_FILE_IO', `cannot create data directory ${c.dataDir}: ${(err as Error).message}`, { file: c.dataDir }, err);
    }
    if (this.#symbolIdsChanged) this.#recordSymbolIds(true);
    else this.#symbolIdsRecorded = this.registry.size;
    // a symbol registered while running (a live feed's new contract) is recorded within a second
    this.#symbolIdsTimer = setInterval(() => { this.#recordSymbolIds(false); }, 1000);
    this.#symbolIdsTimer.unref();
    const sierraDir = c.demo ? join(c.dataDir, 'demo', 'sierra') : c.sierraDir!;
    const depthDir = c.demo ? join(sierraDir, DEPTH_SUBDIR) : c.depthDir!;
    const sup = this.supervisor;
    sup.on('source-error', (name: string, err: Error) => this.#error(`${name}: ${err.message}`));
    sup.on('stage-error', (name: string, err: Error) => this.#error(`${name} failed: ${err.message}`));
    sup.on('stage-failed', (name: string, why: string) => this.#error(`${name} gave up after repeated failures: ${why}`));
    sup.on('stage-restarted', (name: string, n: number) => this.#log.warn(`${name} restarted (${n})`));
    sup.on('warning', (err: Error) => this.#log.warn(err.message));

    if (c.demo) {
      const minutes = c.demoHistoryMinutes;
      sup.add({
        name: 'demo-market', entry: new URL('../workers/demo-market.worker.ts', import.meta.url),
        data: { name: 'demo-market', live: { outDir: sierraDir, startMicros: (Date.now() - minutes * 60_000) * 1000, symbols: c.symbols, ticksPerSecond: c.demoRate, seed: Date.now() % 1_000_000, fileSuffix: c.fileSuffix } },
      });
    }
    const scidFiles: IngestFileSpec[] = c.symbols.map((s) => ({
      kind: 'scid', symbol: s, symbolId: this.registry.requireId(s), sourceId: SCID_SOURCE_ID, path: join(sierraDir, scidFileName(s, c.fileSuffix)),
      priceMultiplier: c.priceMultipliers[s] ?? 1, mergeBundles: c.mergeBundles,
    }));
    const today = new Date().toISOString().slice(0, 10);
    const depthFiles: IngestFileSpec[] = c.symbols.map((s) => ({
      kind: 'depth', symbol: s, symbolId: this.registry.requireId(s), sourceId: DEPTH_SOURCE_ID, dir: depthDir, prefix: `${s}${c.fileSuffix}`,
      priceMultiplier: c.priceMultipliers[s] ?? 1, ...(c.demo ? { fromDate: today } : {}),
    }));
    const validated: SharedArrayBuffer[] = [];
    for (const [name, files, entry, viaValidator] of [
      ['sierra-scid', scidFiles, new URL('../workers/sierra-scid.worker.ts', import.meta.url), true],
      ['sierra-depth', depthFiles, new URL('../workers/sierra-depth.worker.ts', import.meta.url), false],
    ] as const) {
      const ring = createRing({ slotCount: c.ringSlots, slotBytes: RECORD_SLOT_BYTES, recordKind: RECORD_RING_KIND });
      this.rings[name] = ring;
      const progress = IngestProgress.create(files.length);
      sup.add({ name, entry, outputs: [ring], data: { name, ring, progress, files, dataDir: c.dataDir, pollMs: c.pollMs, pollMinMs: c.pollMinMs, follow: true, durableConsumer: viaValidator } });
      if (viaValidator) validated.push(ring);
      else this.drains.push(new RingDrain(name, ring, this.latest, (id) => this.registry.metaOf(id).tickSize));
    }
    const stage: ValidatorStageOptions & { statsEveryMs: number } = {
      name: VALIDATOR_STAGE, dataDir: c.dataDir, inputs: validated, feedRing: this.rings.feed!, redisRing: this.redisRing,
      hot: this.hot.buffer, latest: this.latest.buffer, registry: this.registry.buffer, commitIntervalMs: c.commitIntervalMs,
      quarantineFlagged: c.quarantineFlagged, statsEveryMs: 200,
      validator: {
        reorderWindowMicros: c.reorderWindowMs * 1000, spikeBandFraction: c.spikeBand, offTick: c.offTick, timeGapMicros: c.timeGapSec * 1e6,
        staleAfterMicros: c.staleAfterSec * 1e6, calendar: c.sessionCalendar, maxSymbols: 1025, // registry ids 1..1024
      },
    };
    sup.add({
      name: VALIDATOR_STAGE, entry: new URL('../workers/validator.worker.ts', import.meta.url), data: stage,
      outputs: this.redisRing ? [this.rings.feed!, this.redisRing] : [this.rings.feed!], readyTimeoutMs: 120_000,
    });
    if (this.redisRing && this.redisStatus && c.redisUrl) {
      sup.add({
        name: 'redis-sink', entry: new URL('../workers/redis-sink.worker.ts', import.meta.url),
        data: {
          name: 'redis-sink', ring: this.redisRing, registry: this.registry.buffer, status: this.redisStatus,
          redisUrl: c.redisUrl, dataDir: c.dataDir, sourceNames: { [SCID_SOURCE_ID]: 'sierra' }, nice: c.backgroundNice,
        },
      });
    }
    const symbolName = (id: number): string => this.registry.metaOf(id).symbol;
    this.spotCheck = new SpotChecker({
      dataDir: c.dataDir, journalDir: this.journalDir, sourceName, symbolName,
      scidPathOf: (sym, src) => (src === 'sierra' ? join(sierraDir, scidFileName(sym, c.fileSuffix)) : null),
      priceMultiplierOf: (sym) => this.registry.metaOf(this.registry.requireId(sym)).priceMultiplier,
    });
    if (c.compact) this.compaction = new CompactionService({
      dataDir: c.dataDir, journalDir: this.journalDir, sourceName, symbolName,
      deleteJournalHour: (h, n) => this.deleteJournalHour(h, n), retentionDays: c.retentionDays, threads: 1, nice: c.backgroundNice, spotChecker: this.spotCheck,
    });
    // Listen first: a taken port fails fast, and /readyz says 503 while the stages start.
    await this.#startApi();
    for (const d of this.drains) d.start();
    this.feed.start();
    await sup.start();
    this.compaction?.start();
    this.spotCheck.start();
  }

  async #startApi(): Promise<void> {
    const c = this.config;
    const webhookEnv = webhookOptionsFromEnv(process.env);
    this.keys = KeyStore.open(c.dataDir, { watch: true });
    const symbolIdOf = (q: RecordQuery): number | undefined => (q.symbol === null ? undefined : this.registry.idOf(q.symbol) || -1);
    const deps: ApiDeps = {
      registry: this.registry, latest: this.latest, hot: this.hot, dataDir: c.dataDir, sourceNames: SOURCE_NAMES,
      book: (id) => this.books(id),
      gaps: (q) => this.gaps.query({
        ...(symbolIdOf(q) !== undefined ? { symbolId: symbolIdOf(q)! } : {}),
        ...(q.fromMicros !== null ? { fromMicros: q.fromMicros } : {}), ...(q.toMicros !== null ? { toMicros: q.toMicros } : {}),
        limit: q.limit, order: 'desc',
      }),
      quarantine: (q) => this.quarantine.query({
        ...(symbolIdOf(q) !== undefined ? { symbolId: symbolIdOf(q)! } : {}),
        ...(q.fromMicros !== null ? { fromMicros: q.fromMicros } : {}), ...(q.toMicros !== null ? { toMicros: q.toMicros } : {}),
        limit: q.limit, order: 'desc',
      }),
      status: () => this.status(), ready: () => this.ready(), metrics: () => this.metrics(),
      auth: this.keys, retentionDays: c.retentionDays, now: () => Date.now(),
    };
    this.#history = createParquetHistory({ dataDir: c.dataDir, sourceNames: SOURCE_NAMES, registry: this.registry });
    let api: Api | null = null;
    const badKeys = {
      blockedFor: (a: string, n: number): number => api?.guard.badKeys.blockedFor(a, n) ?? 0,
      fail: (a: string, n: number): void => { api?.guard.badKeys.fail(a, n); },
    };
    api = await createApi(deps, { ...(webhookEnv.corsOrigins ? { corsOrigins: webhookEnv.corsOrigins } : {}) }, [
      (app) => {
        this.hub = attachWebSocket(app, {
          authenticator: this.keys!, registry: this.registry, hot: this.hot, history: this.#history!.reader,
          status: () => this.status(), ready: () => this.ready(), sourceNames: SOURCE_NAMES, badKeys,
        });
      },
      (app) => {
        this.webhooks = attachWebhooks(app, {
          authenticator: this.keys!, dataDir: c.dataDir, redisUrl: c.redisUrl ?? undefined, registry: this.registry,
          onGex: (g) => this.hub?.publishGex(g), ...webhookEnv, badKeys,
        });
      },
      adminAttach({ stageNames: () => this.supervisor.status().map((s) => s.name), restart: (n) => this.supervisor.restart(n) }),
      panelAttach(),
    ]);
    this.#api = api;
    this.#unsubscribeHub = this.feed.subscribe(this.hub!);
    for (const d of this.drains) d.listener = this.hub;
    this.#port = (await api.listen(c.host, c.port)).port;
  }

  #apiRate = { atMs: 0, requests: 0, perSec: 0 };
  #apiSummary(): Record<string, number> | null {
    if (!this.#api) return null;
    const { requests, p99Ms } = this.#api.metrics.summary();
    const now = Date.now();
    const r = this.#apiRate;
    if (now - r.atMs >= 1000) {
      if (r.atMs > 0) r.perSec = ((requests - r.requests) * 1000) / (now - r.atMs);
      r.atMs = now;
      r.requests = requests;
    }
    return { requests, requestsPerSec: Math.round(r.perSec * 10) / 10, p99Ms: Math.round(p99Ms * 1000) / 1000 };
  }

  /** Engine metric families for `/metrics` (the API adds its own HTTP figures). */
  metrics(): MetricFamily[] {
    const out: MetricFamily[] = [];
    const v = this.validatorStats();
    out.push({ name: 'tickpipe_validator_counter', help: 'validator counters (records, rejects and flags by rule, journal)', type: 'counter',
      samples: Object.entries(v).filter(([, x]) => typeof x === 'number').map(([k, x]) => ({ labels: { counter: k }, value: x })) });
    const rings = Object.entries(this.rings).map(([name, r]) => ({ name, st: ringStatsOf(r) }));
    out.push({ name: 'tickpipe_ring_occupancy', help: 'records waiting in each ring', type: 'gauge', samples: rings.map(({ name, st }) => ({ labels: { ring: name }, value: st.occupancy })) });
    out.push({ name: 'tickpipe_ring_published_total', help: 'records published into each ring', type: 'counter', samples: rings.map(({ name, st }) => ({ labels: { ring: name }, value: st.published })) });
    out.push({ name: 'tickpipe_ring_full_stalls_total', help: 'claims that found the ring full (back-pressure)', type: 'counter', samples: rings.map(({ name, st }) => ({ labels: { ring: name }, value: st.fullStalls })) });
    out.push({ name: 'tickpipe_trades_total', help: 'validated trades per symbol', type: 'counter',
      samples: this.registry.list().map((m) => ({ labels: { symbol: m.symbol }, value: this.feed.tradesBySymbol[m.id] ?? 0 })) });
    const comp = this.compaction?.status();
    if (comp) {
      out.push({ name: 'tickpipe_compaction_hours_total', help: 'symbol-hours compacted to Parquet', type: 'counter', samples: [{ value: comp.hoursCompacted }] });
      out.push({ name: 'tickpipe_compaction_failures_total', help: 'failed compaction cycles', type: 'counter', samples: [{ value: comp.failures }] });
      out.push({ name: 'tickpipe_compaction_last_hour_seconds', help: 'duration of the last symbol-hour compaction', type: 'gauge', samples: [{ value: (comp.durations.lastHourMs ?? 0) / 1000 }] });
    }
    const spot = this.spotCheck?.status();
    if (spot) out.push({ name: 'tickpipe_spot_check_accuracy', help: 'share of spot-checked ticks equal to their source', type: 'gauge', samples: [{ value: spot.accuracy ?? 1 }] });
    if (this.hub) out.push(...wsMetricFamilies(this.hub.stats()));
    if (this.webhooks) out.push(...webhookMetricFamilies(this.webhooks.stats()));
    return out;
  }

  /** The order book of a symbol (kept current on the main thread from the depth source), if any. */
  books(symbolId: number): OrderBook | undefined {
    for (const d of this.drains) {
      const b = d.book(symbolId);
      if (b) return b;
    }
    return undefined;
  }

  /**
   * Delete a compacted journal hour once its Parquet is verified (the journal lives in the validator
   * thread: this is a request to it). Refused (ENGINE_ERR_JOURNAL) when the hour now holds another
   * number of records than `expectedRecords` (late records arrived after compaction: compact again).
   */
  async deleteJournalHour(hourStartMicros: number, expectedRecords: number): Promise<void> {
    await this.supervisor.request(VALIDATOR_STAGE, 'deleteHour', { hourStartMicros, expectedRecords }, 60_000);
  }

  /** The validator's latest counters (rules, journal, quarantine, outputs); refreshed every 200 ms. */
  validatorStats(): Record<string, number> {
    return this.supervisor.status().find((s) => s.name === VALIDATOR_STAGE)?.lastStats ?? {};
  }

  #error(msg: string): void {
    this.#recentErrors.push(`${new Date().toISOString()} ${msg}`);
    if (this.#recentErrors.length > 50) this.#recentErrors.shift();
    this.#log.warn(msg);
  }

  ready(): boolean {
    return this.#closing === null && this.supervisor.status().every((s) => s.state === 'running');
  }

  status(): Record<string, unknown> {
    const symbols = this.registry.list().map((m) => {
      const latest = this.latest.readJson(m.id, m.symbol);
      const book = this.books(m.id);
      return {
        symbol: m.symbol, root: m.root, id: m.id, latest,
        trades: this.feed.tradesBySymbol[m.id] ?? 0,
        hot: m.id <= this.hot.symbols ? { held: this.hot.count(m.id), heldFromMicros: this.hot.heldFromMicros(m.id) } : null,
        book: book ? { bestBid: book.bestBid, bestAsk: book.bestAsk, bidLevels: book.bidLevels, askLevels: book.askLevels, crossed: book.crossed } : null,
      };
    });
    return {
      service: 'tickpipe', startedAt: new Date(this.startedAt).toISOString(), uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      mode: this.config.demo ? 'demo' : 'sierra',
      stages: this.supervisor.status(),
      rings: Object.fromEntries(Object.entries(this.rings).map(([k, r]) => [k, ringStats(r)])),
      consumers: [
        ...this.drains.map((d) => ({ name: d.name, ...d.counters, lastRecordAt: d.lastRecordAtMs ? new Date(d.lastRecordAtMs).toISOString() : null })),
        { name: this.feed.name, ...this.feed.counters, listeners: this.feed.listenerCount, lastRecordAt: this.feed.lastRecordAtMs ? new Date(this.feed.lastRecordAtMs).toISOString() : null },
      ],
      validator: this.validatorStats(),
      compaction: this.compaction?.status() ?? null,
      spotChecks: this.spotCheck?.status() ?? null,
      ws: this.hub?.stats() ?? null,
      api: this.#apiSummary(),
      webhooks: this.webhooks?.stats() ?? null,
      redis: this.redisStatus ? readRedisSinkStatus(this.redisStatus) : { state: 'disabled' },
      symbols,
      recentErrors: [...this.#recentErrors],
    };
  }

  /** Graceful stop: HTTP, then stages in order (sources drain into the rings), then the ring consumers. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#unsubscribeHub?.();
      for (const d of this.drains) d.listener = null;
      this.hub?.close();
      await this.#api?.close();
      await this.webhooks?.close();
      await this.#history?.close();
      this.keys?.close();
      await this.supervisor.close({ timeoutMs: 10_000 });
      await Promise.all([this.compaction?.close(), this.spotCheck?.close()]);
      await Promise.all([...this.drains.map((d) => d.stop()), this.feed.stop()]);
      if (this.#symbolIdsTimer !== null) {
        clearInterval(this.#symbolIdsTimer);
        this.#recordSymbolIds(false); // anything registered since the last tick
      }
    })();
    return this.#closing;
  }
}
