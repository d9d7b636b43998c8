/**
 * A realistic simulated CME equity-index futures market (MNQ, NQ, MES, …) for tests, benchmarks and the
 * demo source of `npm start`. It produces what Sierra Chart records:
 *
 * - trades at the bid or the ask with the aggressor side, tick-aligned prices (tick 0.25), spreads of
 *   mostly one tick and sometimes two or three, sizes from a heavy-tailed distribution (mostly 1–3 lots);
 * - bursts: the arrival rate is self-exciting (each trade raises the intensity, which decays), so quiet
 *   stretches alternate with fast ones;
 * - bundled trades: a large aggressive order sweeping levels is recorded as several sub-trades in the same
 *   millisecond with Sierra's first/last sub-trade markers;
 * - same-millisecond counters: trades in one millisecond get µs parts …000, …001, …;
 * - now and then a print outside the quote (late or off-book prints);
 * - market depth: a book of ~40 levels a side around the quote, a full snapshot (CLEAR_BOOK, levels,
 *   end-of-batch) every 10 minutes and level updates in small batches between.
 *
 * Output goes to sinks (the Sierra writers, or anything else), so the model is independent of files.
 * Everything is driven by a seeded PRNG: the same seed gives the same market.
 */
import { DepthCommand } from '../../schemas/records.ts';
import { Prng } from './prng.ts';

export const SubTrade = { NONE: 0, FIRST: 1, MIDDLE: 2, LAST: 3 } as const;
export type SubTrade = (typeof SubTrade)[keyof typeof SubTrade];

export interface TickSink {
  /** side: 1 buy at the ask, 2 sell at the bid. */
  trade(tsMicros: number, price: number, bid: number, ask: number, size: number, side: number, subTrade: SubTrade): void;
}
export interface DepthSink {
  depth(tsMicros: number, command: number, flags: number, numOrders: number, price: number, quantity: number): void;
}

export interface SimSymbol {
  symbol: string;
  tickSize: number;
  startPrice: number;
  /** Mean trades per second at base intensity. */
  baseRate: number;
  /** Name of another simulated symbol whose price this one follows (NQ/MNQ share an index). */
  follows?: string;
  depthLevels?: number;
}

export const DEFAULT_SYMBOLS: SimSymbol[] = [
  { symbol: 'NQZ25', tickSize: 0.25, startPrice: 21000, baseRate: 60 },
  { symbol: 'MNQZ25', tickSize: 0.25, startPrice: 21000, baseRate: 120, follows: 'NQZ25' },
  { symbol: 'MESZ25', tickSize: 0.25, startPrice: 6000, baseRate: 80 },
];

export interface SimOptions {
  seed?: number;
  /** Probability that a trade prints outside the quote. */
  outsideQuoteRate?: number;
  /** Probability that a trade is a sweep recorded as sub-trades. */
  bundleRate?: number;
  /** Interval of full depth snapshots (µs), default 10 minutes. */
  snapshotEveryMicros?: number;
  /** Rate multiplier: scales every symbol's base rate (e.g. to reach 10,000 ticks/s in total). */
  rateScale?: number;
}

const SNAPSHOT_EVERY_US = 10 * 60 * 1_000_000;
const EOB = 0x01;

class SymState {
  readonly cfg: SimSymbol;
  /** Mid price in ticks (integer ticks keep prices exactly aligned). */
  bidTicks: number;
  spreadTicks = 1;
  intensity: number;
  nextEventUs = 0;
  lastMs = -1;
  counter = 0;
  lastTradeUs = 0;
  nextSnapshotUs = 0;
  readonly levels: number;
  /** Book sizes per level offset from the best (0 = best). */
  readonly bidSizes: Uint32Array;
  readonly askSizes: Uint32Array;
  bookBidTicks = 0;
  bookAskTicks = 0;
  trades = 0;
  depthRecords = 0;

  constructor(cfg: SimSymbol, rateScale: number) {
    this.cfg = cfg;
    this.bidTicks = Math.round(cfg.startPrice / cfg.tickSize);
    this.intensity = cfg.baseRate * rateScale;
    this.levels = cfg.depthLevels ?? 40;
    this.bidSizes = new Uint32Array(this.levels);
    this.askSizes = new Uint32Array(this.levels);
  }
}

export class MarketSim {
  readonly #rng: Prng;
  readonly #states: SymState[];
  readonly #bySymbol = new Map<string, SymState>();
  readonly #outsideRate: number;
  readonly #bundleRate: number;
  readonly #snapshotEvery: number;
  readonly #rateScale: number;
  #nowUs: number;

  constructor(startMicros: number, symbols: SimSymbol[] = DEFAULT_SYMBOLS, opts: SimOptions = {}) {
    this.#rng = new Prng(opts.seed ?? 1);
    this.#outsideRate = opts.outsideQuoteRate ?? 0.002;
    this.#bundleRate = opts.bundleRate ?? 0.03;
    this.#snapshotEvery = opts.snapshotEveryMicros ?? SNAPSHOT_EVERY_US;
    this.#rateScale = opts.rateScale ?? 1;
    this.#nowUs = startMicros;
    this.#states = symbols.map((s) => new SymState(s, this.#rateScale));
    for (const st of this.#states) {
      this.#bySymbol.set(st.cfg.symbol, st);
      st.nextEventUs = startMicros + this.#rng.exp(1_000_000 / st.intensity);
      st.nextSnapshotUs = startMicros; // a snapshot first, like Sierra at connect
      this.#seedBook(st);
    }
  }

  get nowMicros(): number { return this.#nowUs; }
  get symbols(): string[] { return this.#states.map((s) => s.cfg.symbol); }
  trades(symbol: string): number { return this.#bySymbol.get(symbol)?.trades ?? 0; }
  depthRecords(symbol: string): number { return this.#bySymbol.get(symbol)?.depthRecords ?? 0; }

  /**
   * Advance the market to `untilMicros`, emitting trades to `ticks[symbol]` and depth records to
   * `depth[symbol]` (either may be absent for a symbol). Returns the number of trade records emitted.
   */
  run(untilMicros: number, ticks: Record<string, TickSink | undefined>, depth: Record<string, DepthSink | undefined> = {}): number {
    let emitted = 0;
    for (;;) {
      // next event across symbols (few symbols: a linear scan beats a heap)
      let st: SymState | undefined;
      for (const s of this.#states) if (st === undefined || s.nextEventUs < st.nextEventUs) st = s;
      if (st === undefined || st.nextEventUs >= untilMicros) break;
      const t = Math.floor(st.nextEventUs);
      this.#nowUs = t;
      const ds = depth[st.cfg.symbol];
      if (ds && t >= st.nextSnapshotUs) {
        this.#snapshot(st, t, ds);
        st.nextSnapshotUs = t + this.#snapshotEvery;
      }
      emitted += this.#event(st, t, ticks[st.cfg.symbol], ds);
      // self-exciting arrivals: intensity decays to base, each event adds a kick
      const base = st.cfg.baseRate * this.#rateScale;
      st.intensity = base + (st.intensity - base) * 0.97 + base * 0.06 * this.#rng.next();
      st.nextEventUs = t + Math.max(1, this.#rng.exp(1_000_000 / st.intensity));
    }
    this.#nowUs = untilMicros;
    return emitted;
  }

  /** A unique timestamp for a trade at `t`: the µs digits are Sierra's same-millisecond counter. */
  #stamp(st: SymState, t: number): number {
    const ms = Math.floor(t / 1000);
    if (ms === st.lastMs) st.counter++;
    else { st.lastMs = ms; st.counter = 0; }
    if (st.counter > 999) { st.lastMs = ms + 1; st.counter = 0; return (ms + 1) * 1000; }
    return ms * 1000 + st.counter;
  }

  #event(st: SymState, t: number, sink: TickSink | undefined, ds: DepthSink | undefined): number {
    const r = this.#rng;
    const tick = st.cfg.tickSize;
    // price process: follow a leader, or a random walk with small steps
    if (st.cfg.follows) {
      const lead = this.#bySymbol.get(st.cfg.follows);
      if (lead) { st.bidTicks = lead.bidTicks; st.spreadTicks = lead.spreadTicks; }
    } else if (r.chance(0.3)) {
      st.bidTicks += r.chance(0.5) ? 1 : -1;
      st.spreadTicks = r.chance(0.9) ? 1 : r.chance(0.7) ? 2 : 3;
    }
    if (ds) this.#moveBook(st, t, ds);
    if (!sink) return 0;
    const bid = st.bidTicks * tick;
    const ask = (st.bidTicks + st.spreadTicks) * tick;
    const side = r.chance(0.5) ? 1 : 2;
    let price = side === 1 ? ask : bid;
    if (r.chance(this.#outsideRate)) price = side === 1 ? ask + tick * r.int(1, 3) : bid - tick * r.int(1, 3);
    if (r.chance(this.#bundleRate)) {
      // a sweep: 2..5 sub-trades in one millisecond, walking the book on the aggressor's side
      const n = r.int(2, 5);
      for (let i = 0; i < n; i++) {
        const lvl = Math.min(i, 2);
        const p = side === 1 ? price + lvl * tick : price - lvl * tick;
        const marker = i === 0 ? SubTrade.FIRST : i === n - 1 ? SubTrade.LAST : SubTrade.MIDDLE;
        sink.trade(this.#stamp(st, t), p, bid, ask, this.#size(), side, marker);
      }
      st.trades += n;
      return n;
    }
    sink.trade(this.#stamp(st, t), price, bid, ask, this.#size(), side, SubTrade.NONE);
    st.trades++;
    return 1;
  }

  /** Heavy-tailed lot sizes: mostly 1–3, sometimes tens, rarely hundreds. */
  #size(): number {
    const u = this.#rng.next();
    if (u < 0.55) return 1;
    if (u < 0.8) return this.#rng.int(2, 3);
    if (u < 0.97) return this.#rng.int(4, 20);
    return Math.min(500, Math.floor(20 / Math.pow(1 - this.#rng.next(), 0.8)));
  }

  #seedBook(st: SymState): void {
    for (let i = 0; i < st.levels; i++) {
      st.bidSizes[i] = 5 + this.#rng.int(0, 40) + i;
      st.askSizes[i] = 5 + this.#rng.int(0, 40) + i;
    }
  }

  #snapshot(st: SymState, t: number, ds: DepthSink): void {
    const tick = st.cfg.tickSize;
    st.bookBidTicks = st.bidTicks;
    st.bookAskTicks = st.bidTicks + st.spreadTicks;
    ds.depth(t, DepthCommand.CLEAR_BOOK, 0, 0, 0, 0);
    for (let i = 0; i < st.levels; i++) {
      ds.depth(t, DepthCommand.ADD_BID_LEVEL, 0, 1 + (st.bidSizes[i]! >> 3), (st.bookBidTicks - i) * tick, st.bidSizes[i]!);
    }
    for (let i = 0; i < st.levels; i++) {
      const last = i === st.levels - 1;
      ds.depth(t, DepthCommand.ADD_ASK_LEVEL, last ? EOB : 0, 1 + (st.askSizes[i]! >> 3), (st.bookAskTicks + i) * tick, st.askSizes[i]!);
    }
    st.depthRecords += 1 + 2 * st.levels;
  }

  /** Level updates: follow the quote (delete/add at the edges when it moves), modify sizes near the top. */
  #moveBook(st: SymState, t: number, ds: DepthSink): void {
    const r = this.#rng;
    const tick = st.cfg.tickSize;
    let n = 0;
    const emit = (cmd: number, price: number, qty: number): void => { ds.depth(t, cmd, 0, 1 + (qty >> 3), price, qty); n++; };
    // The book follows the quote with a fixed number of levels a side: a new best level is added and the
    // deepest one deleted when the quote moves towards that side, and the reverse when it moves away.
    const L = st.levels;
    while (st.bookBidTicks < st.bidTicks) {
      emit(DepthCommand.DELETE_BID_LEVEL, (st.bookBidTicks - (L - 1)) * tick, 0);
      st.bookBidTicks++; shiftDown(st.bidSizes); st.bidSizes[0] = 1 + r.int(0, 20);
      emit(DepthCommand.ADD_BID_LEVEL, st.bookBidTicks * tick, st.bidSizes[0]);
    }
    while (st.bookBidTicks > st.bidTicks) {
      emit(DepthCommand.DELETE_BID_LEVEL, st.bookBidTicks * tick, 0);
      st.bookBidTicks--; shiftUp(st.bidSizes, 5 + r.int(0, 40));
      emit(DepthCommand.ADD_BID_LEVEL, (st.bookBidTicks - (L - 1)) * tick, st.bidSizes[L - 1]!);
    }
    const askTicks = st.bidTicks + st.spreadTicks;
    while (st.bookAskTicks > askTicks) {
      emit(DepthCommand.DELETE_ASK_LEVEL, (st.bookAskTicks + (L - 1)) * tick, 0);
      st.bookAskTicks--; shiftDown(st.askSizes); st.askSizes[0] = 1 + r.int(0, 20);
      emit(DepthCommand.ADD_ASK_LEVEL, st.bookAskTicks * tick, st.askSizes[0]);
    }
    while (st.bookAskTicks < askTicks) {
      emit(DepthCommand.DELETE_ASK_LEVEL, st.bookAskTicks * tick, 0);
      st.bookAskTicks++; shiftUp(st.askSizes, 5 + r.int(0, 40));
      emit(DepthCommand.ADD_ASK_LEVEL, (st.bookAskTicks + (L - 1)) * tick, st.askSizes[L - 1]!);
    }
    // size changes near the top
    const k = r.int(1, 3);
    for (let i = 0; i < k; i++) {
      const lvl = Math.min(st.levels - 1, Math.floor(r.exp(2)));
      if (r.chance(0.5)) { st.bidSizes[lvl] = 1 + r.int(0, 60); emit(DepthCommand.MODIFY_BID_LEVEL, (st.bookBidTicks - lvl) * tick, st.bidSizes[lvl]!); }
      else { st.askSizes[lvl] = 1 + r.int(0, 60); emit(DepthCommand.MODIFY_ASK_LEVEL, (st.bookAskTicks + lvl) * tick, st.askSizes[lvl]!); }
    }
    // close the batch: repeat the last modify with the end-of-batch flag (Sierra flags the last record)
    const lvl0 = st.bidSizes[0]!;
    ds.depth(t, DepthCommand.MODIFY_BID_LEVEL, EOB, 1 + (lvl0 >> 3), st.bookBidTicks * tick, lvl0);
    st.depthRecords += n + 1;
  }
}

function shiftDown(a: Uint32Array): void { a.copyWithin(1, 0, a.length - 1); }
function shiftUp(a: Uint32Array, fill: number): void { a.copyWithin(0, 1); a[a.length - 1] = fill; }
