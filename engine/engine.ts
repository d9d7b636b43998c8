/**
 * The running engine of `tickpipe start`: shared tables, source workers, ring consumers and the API.
 *
 *   demo-market.worker (optional) ── writes Sierra files live
 *   sierra-scid.worker  ──ring──▶ RingDrain ─▶ latest table (SAB, seqlock)
 *   sierra-depth.worker ──ring──▶ RingDrain ─▶ order books
 *   uWS (main thread): /healthz /readyz /api/v1/status
 *
 * Start order: HTTP (503 on /readyz until ready), demo (its files exist before the tailers look), sources. Stop order:
 * HTTP, demo, sources (rings DRAINING: they stop reading and publish what they hold), then the drains
 * empty the rings; checkpoints are saved by the sources as they stop.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { buildApp, listen, type ApiServer } from '../api/server.ts';
import type { IngestFileSpec } from '../workers/sierra/ingest.ts';
import { DEPTH_SUBDIR, scidFileName } from '../workers/sim/sim-files.ts';
import type { EngineConfig } from './config.ts';
import { engineError } from './errors.ts';
import { RingDrain } from './ingest/drain.ts';
import { IngestProgress } from './ingest/progress.ts';
import { LatestTable } from './latest/latest-table.ts';
import { createRing, ringStats } from './ring/ring.ts';
import { Supervisor } from './supervisor.ts';
import { SymbolRegistry } from './symbols/registry.ts';
import { RECORD_RING_KIND, RECORD_SLOT_BYTES } from '../schemas/records.ts';

const SCID_SOURCE_ID = 1;
const DEPTH_SOURCE_ID = 2;

export interface EngineLog {
  info(msg: string): void;
  warn(msg: string): void;
}

export class Engine {
  readonly config: EngineConfig;
  readonly registry: SymbolRegistry;
  readonly latest: LatestTable;
  readonly supervisor = new Supervisor();
  readonly drains: RingDrain[] = [];
  readonly rings: Record<string, SharedArrayBuffer> = {};
  readonly startedAt = Date.now();
  readonly #log: EngineLog;
  #api: ApiServer | null = null;
  #closing: Promise<void> | null = null;
  readonly #recentErrors: string[] = [];

  private constructor(config: EngineConfig, log: EngineLog) {
    this.config = config;
    this.#log = log;
    this.registry = SymbolRegistry.create({ capacity: 1024 });
    this.latest = LatestTable.create(1024);
    for (const s of config.symbols) {
      this.registry.register({ symbol: s, ...(config.priceMultipliers[s] ? { priceMultiplier: config.priceMultipliers[s] } : {}) });
    }
  }

  get port(): number { return this.#api?.port ?? 0; }

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
    for (const [name, files, entry] of [
      ['sierra-scid', scidFiles, new URL('../workers/sierra-scid.worker.ts', import.meta.url)],
      ['sierra-depth', depthFiles, new URL('../workers/sierra-depth.worker.ts', import.meta.url)],
    ] as const) {
      const ring = createRing({ slotCount: c.ringSlots, slotBytes: RECORD_SLOT_BYTES, recordKind: RECORD_RING_KIND });
      this.rings[name] = ring;
      const progress = IngestProgress.create(files.length);
      sup.add({ name, entry, outputs: [ring], data: { name, ring, progress, files, dataDir: c.dataDir, pollMs: c.pollMs, follow: true } });
      this.drains.push(new RingDrain(name, ring, this.latest, (id) => this.registry.metaOf(id).tickSize));
    }
    // Listen first: a taken port fails fast, and /readyz says 503 while the stages start.
    this.#api = await listen(buildApp({ status: () => this.status(), ready: () => this.ready() }), c.host, c.port);
    for (const d of this.drains) d.start();
    await sup.start();
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
      const book = this.drains.find((d) => d.book(m.id))?.book(m.id);
      return {
        symbol: m.symbol, root: m.root, id: m.id, latest,
        trades: this.drains.reduce((a, d) => a + (d.tradesBySymbol[m.id] ?? 0), 0),
        book: book ? { bestBid: book.bestBid, bestAsk: book.bestAsk, bidLevels: book.bidLevels, askLevels: book.askLevels, crossed: book.crossed } : null,
      };
    });
    return {
      service: 'tickpipe', startedAt: new Date(this.startedAt).toISOString(), uptimeSeconds: Math.round((Date.now() - this.startedAt) / 1000),
      mode: this.config.demo ? 'demo' : 'sierra',
      stages: this.supervisor.status(),
      rings: Object.fromEntries(Object.entries(this.rings).map(([k, r]) => [k, ringStats(r)])),
      consumers: this.drains.map((d) => ({ name: d.name, ...d.counters, lastRecordAt: d.lastRecordAtMs ? new Date(d.lastRecordAtMs).toISOString() : null })),
      symbols,
      recentErrors: [...this.#recentErrors],
    };
  }

  /** Graceful stop: HTTP, then stages in order (sources drain into the rings), then the ring consumers. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#api?.close();
      await this.supervisor.close({ timeoutMs: 10_000 });
      await Promise.all(this.drains.map((d) => d.stop()));
    })();
    return this.#closing;
  }
}
