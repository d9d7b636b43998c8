/**
 * The simulated market written as real Sierra Chart files: `MarketSim` → `ScidWriter` / `DepthWriter`.
 * Used by `tickpipe gen`, the engine's demo source and tests, none of which need the CLI.
 *
 * Files (names as Sierra Chart writes them, under `outDir`):
 * - `<SYMBOL><suffix>.scid` per symbol, one file for all time (suffix `_FUT_CME` by default, e.g.
 *   `MNQZ25_FUT_CME.scid`). Created (truncated) at construction, so a symbol without trades still has a
 *   valid header-only file.
 * - `MarketDepthData/<SYMBOL><suffix>.<YYYY-MM-DD>.depth`, one file per UTC day of the simulated time,
 *   opened at the first depth record of that day. Rolling happens at a depth record whose time is at or
 *   after UTC midnight (a simulator batch shares one timestamp, so a batch never straddles two files).
 *   Each new day file starts with a full snapshot (CLEAR_BOOK, the levels, end-of-batch) of the book as
 *   it stood, rebuilt by a mirror `OrderBook` fed the same records, unless the rolling record is a
 *   CLEAR_BOOK itself: so every day file replays to a complete book on its own, as a file Sierra starts
 *   at connect does. (Sierra's own files may run past the date in their name; ours roll exactly.)
 * Existing files of the same names are overwritten.
 *
 * Rate: `ticksPerSecond` is the target of trade records per second summed over the symbols. The
 * simulator's self-exciting intensity settles at about twice each symbol's base rate and ~3 % of events
 * are 2..5-record sweeps, so it produces SIM_TRADES_PER_BASE_RATE (≈ 2.145, measured over 10⁶-record
 * runs at several scales and seeds) trade records per second per unit of base rate; `rateScale` is set
 * to target / (Σ baseRate × that). The simulator's bursts make short windows vary around the target.
 *
 * `maxTrades` stops the output after exactly that many trade records in total (all symbols). The
 * simulator emits a sweep in one go; when the limit falls inside a sweep the last record written is
 * re-marked so the file stays well formed (a cut FIRST becomes a single trade, a cut MIDDLE becomes the
 * LAST). Depth records after the last trade are not written (each depth batch precedes its event's
 * trade and ends with its end-of-batch record, so no batch is cut).
 *
 * Live (`runLive`): writes the history from `startMicros` up to now at once, then every `flushEveryMs`
 * (250 ms) advances the simulation to the wall clock and flushes the files (a tailer sees only flushed
 * bytes), driven by `setInterval` (no busy loop), until the AbortSignal fires or `maxTrades` is reached;
 * then closes the files and resolves with the stats.
 *
 * Per trade: one call through a small sink object (counting, first/last time) into the writer's
 * buffered encoder; no allocation per record.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { OrderBook } from '../../engine/book/order-book.ts';
import { engineError } from '../../engine/errors.ts';
import { parseFuturesContract } from '../../engine/symbols/contracts.ts';
import { rootDefaults } from '../../engine/symbols/defaults.ts';
import { DEPTH_FLAG_END_OF_BATCH, DepthCommand } from '../../schemas/records.ts';
import { DepthWriter } from '../sierra/depth-writer.ts';
import { MICROS_PER_DAY } from '../sierra/scid-format.ts';
import { ScidWriter } from '../sierra/scid-writer.ts';
import { DEFAULT_SYMBOLS, type DepthSink, MarketSim, type SimSymbol, SubTrade, type TickSink } from './market-sim.ts';

/** Trade records per second per unit of base rate the simulator produces (see the module comment). */
export const SIM_TRADES_PER_BASE_RATE = 2.145;
export const DEFAULT_FILE_SUFFIX = '_FUT_CME';
export const DEPTH_SUBDIR = 'MarketDepthData';
export const DEFAULT_FLUSH_EVERY_MS = 250;
/** Expected trades per simulation step when a trade limit is set (bounds the work done past the limit). */
const TRADES_PER_STEP = 1024;
const SYMBOL_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export interface SimFilesOptions {
  /** Directory of the `.scid` files; depth files go to `<outDir>/MarketDepthData`. Created if missing. */
  outDir: string;
  /** Simulated time of the first event (Unix µs). */
  startMicros: number;
  /** Symbol names (configs found by name or root in DEFAULT_SYMBOLS, else generic) or full configs. Default: the simulator's. */
  symbols?: ReadonlyArray<string | SimSymbol>;
  /** PRNG seed (default 1): same seed, start and symbols → the same bytes. */
  seed?: number;
  /** Target trade records per second over all symbols (sets the simulator's rateScale). */
  ticksPerSecond?: number;
  /** The simulator's rate multiplier, when `ticksPerSecond` is not given (default 1). */
  rateScale?: number;
  /** Write `.depth` files too (default true). */
  depth?: boolean;
  /** Stop after this many trade records in total (default: no limit). */
  maxTrades?: number;
  /** File name suffix after the symbol (default `_FUT_CME`). */
  fileSuffix?: string;
}

export interface SimFileStat {
  path: string;
  kind: 'scid' | 'depth';
  symbol: string;
  records: number;
  /** Unix µs of the first / last record written (NaN when none). */
  firstTsMicros: number;
  lastTsMicros: number;
}

export interface SimFilesStats {
  trades: number;
  depthRecords: number;
  /** Simulated time the run started at and has reached (Unix µs). */
  startMicros: number;
  nowMicros: number;
  /** First / last record written in any file (NaN when none). */
  firstTsMicros: number;
  lastTsMicros: number;
  /** The simulator's rateScale and the expected trades per second it gives. */
  rateScale: number;
  expectedTicksPerSecond: number;
  files: SimFileStat[];
}

/** `<SYMBOL><suffix>.scid`, e.g. `MNQZ25_FUT_CME.scid`. */
export function scidFileName(symbol: string, suffix = DEFAULT_FILE_SUFFIX): string {
  return `${symbol}${suffix}.scid`;
}

/** `<SYMBOL><suffix>.<YYYY-MM-DD>.depth` for the UTC day holding `tsMicros`. */
export function depthFileName(symbol: string, tsMicros: number, suffix = DEFAULT_FILE_SUFFIX): string {
  const dayMs = Math.floor(tsMicros / MICROS_PER_DAY) * 86_400_000;
  return `${symbol}${suffix}.${new Date(dayMs).toISOString().slice(0, 10)}.depth`;
}

/**
 * Simulator configs for symbol names: a name of DEFAULT_SYMBOLS as is; another contract of a default
 * root (MNQH26) gets that root's config under its own name; a full-size or micro contract whose pair is
 * a default root gets the pair's config (ESZ25 ← MESZ25, so it trades near 6000); anything else a
 * generic config (tick from the root's defaults or 0.01, start price 100, 50 trades/s base). A micro
 * contract (root M + another listed root) follows its full-size contract: MNQ follows NQ, MES follows ES.
 */
export function simSymbolsFor(names: readonly string[]): SimSymbol[] {
  const seen = new Set<string>();
  const rootOf = (s: string): string => parseFuturesContract(s)?.root ?? s;
  for (const n of names) {
    if (typeof n !== 'string' || !SYMBOL_RE.test(n)) throw engineError('ENGINE_ERR_INVALID_ARG', `not a usable symbol name: ${JSON.stringify(n)}`);
    if (seen.has(n)) throw engineError('ENGINE_ERR_INVALID_ARG', `symbol ${n} is listed twice`);
    seen.add(n);
  }
  const byRoot = (r: string): SimSymbol | undefined => DEFAULT_SYMBOLS.find((d) => rootOf(d.symbol) === r);
  return names.map((name) => {
    const root = rootOf(name);
    // Exact default, same root (MNQH26 ← MNQZ25), or the micro/full pair's price level (ES ← MES).
    const base = DEFAULT_SYMBOLS.find((d) => d.symbol === name) ?? byRoot(root) ?? byRoot(`M${root}`)
      ?? (root.startsWith('M') ? byRoot(root.slice(1)) : undefined);
    const s: SimSymbol = base
      ? { symbol: name, tickSize: base.tickSize, startPrice: base.startPrice, baseRate: base.baseRate }
      : { symbol: name, tickSize: rootDefaults(root)?.tickSize ?? 0.01, startPrice: 100, baseRate: 50 };
    if (base?.depthLevels !== undefined) s.depthLevels = base.depthLevels;
    // A micro contract follows its full-size contract when both are listed (MNQ → NQ, MES → ES).
    const leaderRoot = base?.follows !== undefined ? rootOf(base.follows) : root.startsWith('M') ? root.slice(1) : null;
    const leader = leaderRoot === null ? undefined : names.find((m) => m !== name && rootOf(m) === leaderRoot);
    if (leader !== undefined) s.follows = leader;
    return s;
  });
}

/** Shared trade budget of all symbols (maxTrades). */
class Budget {
  remaining: number;
  constructor(max: number) { this.remaining = max; }
}

/** A symbol's `.scid` file as the simulator's TickSink: counts, keeps first/last time, applies the budget. */
class TickFile implements TickSink {
  readonly symbol: string;
  readonly writer: ScidWriter;
  readonly #budget: Budget;
  records = 0;
  firstTsMicros = Number.NaN;
  lastTsMicros = Number.NaN;

  constructor(symbol: string, path: string, budget: Budget) {
    this.symbol = symbol;
    this.writer = ScidWriter.open(path, { bufferRecords: 8192 });
    this.#budget = budget;
  }

  trade(tsMicros: number, price: number, bid: number, ask: number, size: number, side: number, subTrade: SubTrade): void {
    const b = this.#budget;
    if (b.remaining <= 0) return;
    b.remaining--;
    let sub: number = subTrade;
    if (b.remaining === 0) {
      // The limit cuts a sweep: keep the file well formed.
      if (sub === SubTrade.FIRST) sub = SubTrade.NONE;
      else if (sub === SubTrade.MIDDLE) sub = SubTrade.LAST;
    }
    this.writer.trade(tsMicros, price, bid, ask, size, side, sub, 1);
    if (this.records === 0) this.firstTsMicros = tsMicros;
    this.lastTsMicros = tsMicros;
    this.records++;
  }
}

/** A symbol's `.depth` files as the simulator's DepthSink: one file per UTC day, a snapshot at each roll. */
class DepthDays implements DepthSink {
  readonly symbol: string;
  readonly #dir: string;
  readonly #suffix: string;
  readonly #budget: Budget;
  /** Mirror of the book written so far (for the snapshot that opens a new day file). */
  readonly #mirror = new OrderBook();
  #writer: DepthWriter | null = null;
  #dayEndMicros = Number.NEGATIVE_INFINITY;
  #current: SimFileStat | null = null;
  readonly closed: SimFileStat[] = [];
  records = 0;

  constructor(symbol: string, dir: string, suffix: string, budget: Budget) {
    this.symbol = symbol;
    this.#dir = dir;
    this.#suffix = suffix;
    this.#budget = budget;
  }

  get current(): SimFileStat | null { return this.#current; }

  depth(tsMicros: number, command: number, flags: number, numOrders: number, price: number, quantity: number): void {
    if (this.#budget.remaining <= 0) return;
    if (tsMicros >= this.#dayEndMicros) this.#roll(tsMicros, command);
    this.#put(tsMicros, command, flags, numOrders, price, quantity);
    this.#mirror.apply(tsMicros, command, flags, numOrders, price, quantity);
  }

  #put(tsMicros: number, command: number, flags: number, numOrders: number, price: number, quantity: number): void {
    this.#writer!.record(tsMicros, command, flags, numOrders, price, quantity);
    const s = this.#current!;
    if (s.records === 0) s.firstTsMicros = tsMicros;
    s.lastTsMicros = tsMicros;
    s.records++;
    this.records++;
  }

  #roll(tsMicros: number, command: number): void {
    this.#closeCurrent();
    const day = Math.floor(tsMicros / MICROS_PER_DAY);
    this.#dayEndMicros = (day + 1) * MICROS_PER_DAY;
    const path = join(this.#dir, depthFileName(this.symbol, tsMicros, this.#suffix));
    this.#writer = DepthWriter.toFile(path);
    this.#current = { path, kind: 'depth', symbol: this.symbol, records: 0, firstTsMicros: Number.NaN, lastTsMicros: Number.NaN };
    const m = this.#mirror;
    if (command !== DepthCommand.CLEAR_BOOK && m.version > 0) {
      // Open the day with the book as it stands (best first on each side, end-of-batch on the last).
      const snap = m.snapshot();
      const total = 1 + snap.bids.length + snap.asks.length;
      let k = 1;
      this.#put(tsMicros, DepthCommand.CLEAR_BOOK, total === 1 ? DEPTH_FLAG_END_OF_BATCH : 0, 0, 0, 0);
      for (const l of snap.bids) { k++; this.#put(tsMicros, DepthCommand.ADD_BID_LEVEL, k === total ? DEPTH_FLAG_END_OF_BATCH : 0, l.orders, l.price, l.quantity); }
      for (const l of snap.asks) { k++; this.#put(tsMicros, DepthCommand.ADD_ASK_LEVEL, k === total ? DEPTH_FLAG_END_OF_BATCH : 0, l.orders, l.price, l.quantity); }
    }
  }

  #closeCurrent(): void {
    if (this.#writer !== null) {
      this.#writer.close();
      this.#writer = null;
    }
    if (this.#current !== null) {
      this.closed.push(this.#current);
      this.#current = null;
    }
  }

  flush(): void { this.#writer?.flush(); }

  close(): void {
    this.#closeCurrent();
    this.#dayEndMicros = Number.NEGATIVE_INFINITY;
  }
}

/**
 * Trade records per second (all symbols) that options would produce: `ticksPerSecond` when given, else
 * Σ baseRate × rateScale × SIM_TRADES_PER_BASE_RATE. Validates the symbol names.
 */
export function expectedTicksPerSecond(opts: Pick<SimFilesOptions, 'symbols' | 'ticksPerSecond' | 'rateScale'>): number {
  if (opts.ticksPerSecond !== undefined) return opts.ticksPerSecond;
  const given = opts.symbols ?? DEFAULT_SYMBOLS;
  const byName = simSymbolsFor(given.map((s) => (typeof s === 'string' ? s : s.symbol)));
  let base = 0;
  for (let i = 0; i < given.length; i++) {
    const g = given[i]!;
    base += typeof g === 'string' ? byName[i]!.baseRate : g.baseRate;
  }
  return base * (opts.rateScale ?? 1) * SIM_TRADES_PER_BASE_RATE;
}

function positive(name: string, v: number | undefined): void {
  if (v !== undefined && !(Number.isFinite(v) && v > 0)) throw engineError('ENGINE_ERR_INVALID_ARG', `${name} must be a positive number, got ${String(v)}`);
}

export class SimFiles {
  readonly outDir: string;
  readonly depthDir: string;
  readonly rateScale: number;
  /** Trades per second the rate scale is expected to give (all symbols). */
  readonly expectedTicksPerSecond: number;
  readonly #startMicros: number;
  readonly #sim: MarketSim;
  readonly #budget: Budget;
  readonly #limited: boolean;
  readonly #ticks: TickFile[] = [];
  readonly #depth: DepthDays[] = [];
  readonly #tickSinks: Record<string, TickSink> = {};
  readonly #depthSinks: Record<string, DepthSink> = {};
  readonly #stepMicros: number;
  #trades = 0;
  #closed = false;

  constructor(opts: SimFilesOptions) {
    if (typeof opts.outDir !== 'string' || opts.outDir.length === 0) throw engineError('ENGINE_ERR_INVALID_ARG', 'SimFiles needs an outDir');
    if (!Number.isSafeInteger(opts.startMicros)) throw engineError('ENGINE_ERR_INVALID_ARG', `startMicros must be an integer (Unix µs), got ${String(opts.startMicros)}`);
    positive('ticksPerSecond', opts.ticksPerSecond);
    positive('rateScale', opts.rateScale);
    if (opts.maxTrades !== undefined && !(Number.isSafeInteger(opts.maxTrades) && opts.maxTrades >= 0)) {
      throw engineError('ENGINE_ERR_INVALID_ARG', `maxTrades must be a non-negative integer, got ${String(opts.maxTrades)}`);
    }
    const suffix = opts.fileSuffix ?? DEFAULT_FILE_SUFFIX;
    if (!/^[A-Za-z0-9._-]*$/.test(suffix)) throw engineError('ENGINE_ERR_INVALID_ARG', `file suffix ${JSON.stringify(suffix)} is not usable in a file name`);
    const given = opts.symbols ?? DEFAULT_SYMBOLS;
    if (given.length === 0) throw engineError('ENGINE_ERR_INVALID_ARG', 'SimFiles needs at least one symbol');
    // Names are validated (usable in file names, no duplicates) and resolved; full configs are kept as given.
    const byName = simSymbolsFor(given.map((s) => (typeof s === 'string' ? s : s.symbol)));
    const configs = given.map((s, i) => (typeof s === 'string' ? byName[i]! : { ...s }));
    for (const c of configs) positive(`baseRate of ${c.symbol}`, c.baseRate);
    const baseSum = configs.reduce((s, c) => s + c.baseRate, 0);
    this.rateScale = opts.ticksPerSecond !== undefined ? opts.ticksPerSecond / (baseSum * SIM_TRADES_PER_BASE_RATE) : (opts.rateScale ?? 1);
    this.expectedTicksPerSecond = baseSum * this.rateScale * SIM_TRADES_PER_BASE_RATE;
    this.#stepMicros = Math.max(1000, Math.round((TRADES_PER_STEP / this.expectedTicksPerSecond) * 1e6));
    this.outDir = opts.outDir;
    this.depthDir = join(opts.outDir, DEPTH_SUBDIR);
    this.#startMicros = opts.startMicros;
    this.#limited = opts.maxTrades !== undefined;
    this.#budget = new Budget(opts.maxTrades ?? Number.POSITIVE_INFINITY);
    const depth = opts.depth !== false;
    try {
      mkdirSync(this.outDir, { recursive: true });
      if (depth) mkdirSync(this.depthDir, { recursive: true });
    } catch (err) {
      throw engineError('ENGINE_ERR_FILE_IO', `cannot create ${depth ? this.depthDir : this.outDir}: ${(err as Error).message}`, { file: this.outDir }, err);
    }
    try {
      for (const c of configs) {
        const t = new TickFile(c.symbol, join(this.outDir, scidFileName(c.symbol, suffix)), this.#budget);
        this.#ticks.push(t);
        this.#tickSinks[c.symbol] = t;
        if (depth) {
          const d = new DepthDays(c.symbol, this.depthDir, suffix, this.#budget);
          this.#depth.push(d);
          this.#depthSinks[c.symbol] = d;
        }
      }
    } catch (err) {
      this.close();
      throw err;
    }
    this.#sim = new MarketSim(opts.startMicros, configs, { seed: opts.seed ?? 1, rateScale: this.rateScale });
  }

  /** Simulated time reached (Unix µs). */
  get nowMicros(): number { return this.#sim.nowMicros; }
  /** Trade records written so far. */
  get trades(): number { return this.#trades; }
  /** The trade limit has been reached (never true without `maxTrades`). */
  get done(): boolean { return this.#limited && this.#budget.remaining <= 0; }

  /**
   * Advance the simulation to `untilMicros` (exclusive), writing what happens; stops early once
   * `maxTrades` is reached. `Infinity` runs until the limit (needs `maxTrades`). Returns the trades
   * written by this call. Output stays buffered until `flush()` / `close()` (or a full buffer).
   */
  runUntil(untilMicros: number): number {
    if (this.#closed) throw engineError('ENGINE_ERR_INVALID_ARG', 'SimFiles is closed');
    if (Number.isNaN(untilMicros)) throw engineError('ENGINE_ERR_INVALID_ARG', 'untilMicros is NaN');
    if (untilMicros === Number.POSITIVE_INFINITY && !this.#limited) {
      throw engineError('ENGINE_ERR_INVALID_ARG', 'runUntil(Infinity) needs maxTrades');
    }
    const before = this.#countTrades();
    const sim = this.#sim;
    if (!this.#limited) {
      if (untilMicros > sim.nowMicros) sim.run(untilMicros, this.#tickSinks, this.#depthSinks);
    } else {
      // Small steps, so that little is simulated (and thrown away) past the limit.
      while (!this.done && sim.nowMicros < untilMicros) {
        const next = Math.min(untilMicros, sim.nowMicros + this.#stepMicros);
        sim.run(next, this.#tickSinks, this.#depthSinks);
      }
    }
    this.#trades = this.#countTrades();
    return this.#trades - before;
  }

  #countTrades(): number {
    let n = 0;
    for (const t of this.#ticks) n += t.records;
    return n;
  }

  /** Write everything buffered to the files (sync), so a tailer sees it. */
  flush(): void {
    for (const t of this.#ticks) t.writer.flushSync();
    for (const d of this.#depth) d.flush();
  }

  /** Flush and close every file. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    let first: unknown = null;
    for (const t of this.#ticks) { try { t.writer.closeSync(); } catch (err) { first ??= err; } }
    for (const d of this.#depth) { try { d.close(); } catch (err) { first ??= err; } }
    if (first !== null) throw first;
  }

  /** Files written and their record counts and time ranges (allocates). */
  get stats(): SimFilesStats {
    const files: SimFileStat[] = [];
    let trades = 0;
    let depthRecords = 0;
    let lo = Number.NaN;
    let hi = Number.NaN;
    const take = (f: SimFileStat): void => {
      files.push({ ...f });
      if (f.records > 0) {
        if (!(lo <= f.firstTsMicros)) lo = f.firstTsMicros;
        if (!(hi >= f.lastTsMicros)) hi = f.lastTsMicros;
      }
    };
    for (const t of this.#ticks) {
      trades += t.records;
      take({ path: t.writer.path, kind: 'scid', symbol: t.symbol, records: t.records, firstTsMicros: t.firstTsMicros, lastTsMicros: t.lastTsMicros });
    }
    for (const d of this.#depth) {
      depthRecords += d.records;
      for (const f of d.closed) take(f);
      if (d.current !== null) take(d.current);
    }
    return {
      trades, depthRecords, startMicros: this.#startMicros, nowMicros: this.#sim.nowMicros, firstTsMicros: lo, lastTsMicros: hi,
      rateScale: this.rateScale, expectedTicksPerSecond: this.expectedTicksPerSecond, files,
    };
  }
}

export interface LiveOptions extends SimFilesOptions {
  /** Flush cadence (default 250 ms). */
  flushEveryMs?: number;
  /** Wall clock in Unix µs (default `Date.now() * 1000`); tests may pass their own. */
  nowMicros?: () => number;
  /** Called after each flush with the running totals (cheap: trades and depth records only). */
  onFlush?: (trades: number, nowMicros: number) => void;
}

/**
 * Write the simulated market in real time: the history from `startMicros` to now at once, then every
 * `flushEveryMs` the events up to the wall clock, flushed. Stops when `signal` aborts (or `maxTrades` is
 * reached), closes the files and resolves with the stats. Rejects (files closed) on a write error.
 */
export function runLive(opts: LiveOptions, signal: AbortSignal): Promise<SimFilesStats> {
  const every = opts.flushEveryMs ?? DEFAULT_FLUSH_EVERY_MS;
  const clock = opts.nowMicros ?? ((): number => Date.now() * 1000);
  let files: SimFiles;
  try {
    positive('flushEveryMs', every);
    files = new SimFiles(opts);
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
  return new Promise<SimFilesStats>((resolve, reject) => {
    let timer: ReturnType<typeof setInterval> | null = null;
    let settled = false;
    const finish = (err: unknown): void => {
      if (settled) return;
      settled = true;
      if (timer !== null) clearInterval(timer);
      signal.removeEventListener('abort', onAbort);
      try {
        // Whatever is due up to this instant is written before closing (not when failing).
        if (err === null && !files.done) files.runUntil(clock());
        files.close();
      } catch (closeErr) {
        err ??= closeErr;
      }
      if (err !== null) reject(err instanceof Error ? err : new Error(String(err)));
      else resolve(files.stats);
    };
    const onAbort = (): void => finish(null);
    const step = (): void => {
      try {
        files.runUntil(clock());
        files.flush();
        opts.onFlush?.(files.trades, files.nowMicros);
        if (files.done) finish(null);
      } catch (err) {
        finish(err);
      }
    };
    if (signal.aborted) { finish(null); return; }
    signal.addEventListener('abort', onAbort, { once: true });
    step();
    if (!settled) timer = setInterval(step, every);
  });
}
