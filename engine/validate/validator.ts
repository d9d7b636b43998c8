/**
 * The record validator: pure, synchronous, allocation-free after construction. Used by the validator
 * stage (workers/validator.worker.ts) on every record of the source rings and by `tickpipe backfill`.
 *
 * `check(views, b)` looks at one 64-byte slot (schemas/records.ts) and returns 0 (keep) or a
 * {@link RejectReason} (must not be stored; the caller quarantines it). Kept records may get validator
 * verdict bits (TradeFlag.V_*) OR-ed into their flags word. Rules, in order, for TRADE and QUOTE records:
 *
 * | rule | verdict |
 * |---|---|
 * | symbol id 0 / ≥ maxSymbols, source id ≥ maxSources | reject UNKNOWN_SYMBOL |
 * | timestamp not finite or outside [minTsMicros, maxTsMicros] | reject BAD_TIME |
 * | already stored before a restart (seq ≤ the primed floor, see {@link Validator.primeFloor}) | reject REPLAYED (do not quarantine: it is stored) |
 * | trade price not finite or ≤ 0; a quote with no finite positive bid or ask; a bid/ask ≤ 0 or infinite | reject BAD_PRICE |
 * | trade size 0 | reject BAD_SIZE |
 * | trade price not a multiple of the symbol's tick size (`offTick: 'reject'`, default) | reject OFF_TICK (`'flag'`: V_OFF_TICK) |
 * | same source, symbol, time, price, size, bid, ask and side as a recent kept record | reject DUPLICATE |
 * | older than the newest kept time of (source, symbol) by more than `reorderWindowMicros` | reject OUT_OF_ORDER |
 * | older, but inside the reorder window | keep, V_OUT_OF_ORDER |
 * | bid > ask | keep, V_CROSSED |
 * | trade price outside [bid, ask] (not for a sweep's later sub-trades or a merged bundle) | keep, V_OUTSIDE_QUOTE |
 * | trade price off the reference by more than `spikeBandFraction` | keep, V_SPIKE |
 * | bid/ask not on the tick grid | keep, V_OFF_TICK |
 * | first record after the lane was declared stale ({@link Validator.checkStale}) | keep, V_STALE |
 * | after a FILE_RESET (file replaced, read again from its start): older than the newest kept before it | reject REPLAYED (do not quarantine) |
 *
 * Duplicates: for a file source the header seq is the record index in the file, so a record repeated in
 * the file has another seq; the duplicate key is therefore the content (source, symbol, time, price,
 * size, bid, ask, side), which includes the (…, seq) duplicates of a replay. Sierra keeps
 * same-millisecond trades apart in the µs digits, so two distinct trades never share all of these. A
 * record newer than everything kept for its lane cannot be a duplicate (fast path); older or equal ones
 * are compared with the last `recentPerLane` kept records of the lane.
 *
 * Spike reference: the last kept non-spike trade price of the lane; after `spikeConfirm` consecutive
 * spikes on the same side the market has moved and the reference follows (those records stay flagged).
 *
 * Gaps (GAP records for the caller to store, fetched with {@link Validator.nextGap}):
 * - SEQUENCE: a lane's seq jumps past the expected next (seq + max(1, numTrades) of the previous record,
 *   rejected records included: they consumed their index). Sources without sequence numbers (seq 0) are
 *   not checked. A FILE_RESET gap record restarts the lane's sequence.
 * - TIME: the silence since the lane's previous record overlaps the trading session (calendar, default
 *   CME Globex) by more than `timeGapMicros`: the daily break and the weekend do not count.
 *
 * Stale feeds: {@link Validator.checkStale}(nowMicros) (called periodically by the stage with the wall
 * clock) marks lanes with no record for `staleAfterMicros` while the session is open; the next record of
 * such a lane gets V_STALE, and the count of currently stale lanes is reported.
 *
 * Per-lane state (a lane = one (source, symbol) pair, allocated on first use) lives in typed arrays.
 */
import { engineError } from '../errors.ts';
import { sessionCalendar, type CalendarInput, type SessionCalendar } from '../clock/session.ts';
import type { SlotViews } from '../ring/ring.ts';
import { GapKind, RecordKind, TradeFlag, writeGap } from '../../schemas/records.ts';

export interface ValidatorOptions {
  /** Tick size of a symbol (price units); ≤ 0 or NaN: not checked. */
  tickSizeOf(symbolId: number): number;
  /** Late records within this many µs of the lane's newest time are kept and flagged (default 500 ms). */
  reorderWindowMicros?: number;
  /** Band around the reference price beyond which a trade is flagged V_SPIKE (default 0.05 = 5 %; 0 = off). */
  spikeBandFraction?: number;
  /** Consecutive same-side spikes after which the reference moves (default 3). */
  spikeConfirm?: number;
  /** Off-tick trade prices: rejected (default) or kept with V_OFF_TICK. */
  offTick?: 'reject' | 'flag';
  /** In-session silence of one lane reported as a TIME gap (default 300 s; 0 = off). */
  timeGapMicros?: number;
  /** Report sequence gaps (default true). */
  sequenceGaps?: boolean;
  /** No record for this long inside the session: the lane is stale (default 60 s; 0 = off). */
  staleAfterMicros?: number;
  /** Session calendar for time gaps and staleness (default 'cme-globex'). */
  calendar?: CalendarInput;
  /** Symbol ids accepted: 1 .. maxSymbols - 1 (default 65536: every u16 id; the lane map is maxSources × maxSymbols int32). */
  maxSymbols?: number;
  /** Source ids accepted: 0 .. maxSources - 1 (default 16). */
  maxSources?: number;
  /** (source, symbol) lanes tracked (default 4096). */
  maxLanes?: number;
  /** Kept records remembered per lane for the duplicate check (default 32). */
  recentPerLane?: number;
  /** Earliest / latest plausible event time, Unix µs (defaults 2000-01-01 / 2100-01-01). */
  minTsMicros?: number;
  maxTsMicros?: number;
}

export const RejectReason = {
  DUPLICATE: 1,
  BAD_PRICE: 2,
  OFF_TICK: 3,
  BAD_SIZE: 4,
  OUT_OF_ORDER: 5,
  BAD_TIME: 6,
  UNKNOWN_SYMBOL: 7,
  /** Already stored before a restart (seq at or below the lane's primed floor): drop, do not quarantine. */
  REPLAYED: 8,
  /** The record's hour was already compacted to Parquet and its journal deleted (set by the stage, not by `check`). */
  LATE_FOR_COMPACTED_HOUR: 9,
} as const;
export type RejectReason = (typeof RejectReason)[keyof typeof RejectReason];

const REASON_NAMES: readonly string[] = ['keep', 'duplicate', 'bad_price', 'off_tick', 'bad_size', 'out_of_order', 'bad_time', 'unknown_symbol', 'replayed', 'late_for_compacted_hour'];

/** Stable snake_case name of a reject reason (`keep` for 0, `unknown_<n>` otherwise). */
export function rejectReasonName(code: number): string {
  return REASON_NAMES[code] ?? `unknown_${String(code)}`;
}

/** Reject reason code from its name (as in {@link rejectReasonName}); 0 when unknown. */
export function rejectReasonCode(name: string): number {
  const i = REASON_NAMES.indexOf(name);
  return i > 0 ? i : 0;
}

/** Names of the verdict flags (TradeFlag.V_*), by bit. */
export const VERDICT_FLAGS: ReadonlyArray<readonly [string, number]> = [
  ['outside_quote', TradeFlag.V_OUTSIDE_QUOTE], ['crossed', TradeFlag.V_CROSSED], ['spike', TradeFlag.V_SPIKE],
  ['out_of_order', TradeFlag.V_OUT_OF_ORDER], ['off_tick', TradeFlag.V_OFF_TICK], ['stale', TradeFlag.V_STALE],
];
export const VERDICT_MASK = 0xffff0000;

/** Names of verdict bits set in `flags` (allocates; cold paths). */
export function verdictNames(flags: number): string[] {
  const out: string[] = [];
  for (const [n, bit] of VERDICT_FLAGS) if ((flags & bit) !== 0) out.push(n);
  return out;
}

/* eslint-disable @typescript-eslint/no-duplicate-enum-values -- byte offsets of different record kinds coincide */
const enum Off {
  SOURCE_ID = 1, SYMBOL_ID = 2, SEQ = 4, TS = 8, PRICE = 16, BID = 24, ASK = 32, SIZE = 40, FLAGS = 44, NUM_TRADES = 60,
  GAP_END_TS = 16, GAP_EXPECTED = 24, GAP_GOT = 28, GAP_KIND = 32,
}
/* eslint-enable @typescript-eslint/no-duplicate-enum-values */
const SIDE_BITS = TradeFlag.SIDE_BUY | TradeFlag.SIDE_SELL;
const SWEEP_BITS = TradeFlag.SUB_MIDDLE | TradeFlag.SUB_LAST | TradeFlag.MERGED_BUNDLE;

// counter slots
const C_CHECKED = 0;
const C_KEPT = 1;
const C_REJECT0 = 1; // C_REJECT0 + reason (1..9) -> 2..10
const C_FLAG0 = 11; // + index in VERDICT_FLAGS -> 11..16
const C_GAP_SEQ = 17;
const C_GAP_TIME = 18;
const C_GAP_DROPPED = 19;
const C_STALE_EVENTS = 20;
const C_FILE_RESETS = 21;
const C_RESYNC_SKIPPED = 22;
const C_COUNT = 23;

const GAP_QUEUE = 256;
const DEFAULT_MIN_TS = 946_684_800_000_000; // 2000-01-01
const DEFAULT_MAX_TS = 4_102_444_800_000_000; // 2100-01-01

/** Tolerance of the tick-grid test: f32 source prices carry ~2^-24 relative error. */
function onGrid(price: number, tick: number): boolean {
  if (!(tick > 0)) return true;
  const r = price / tick;
  const err = Math.abs(r - Math.round(r)) * tick;
  return err <= Math.max(tick * 1e-6, Math.abs(price) * 1.2e-7);
}

export class Validator {
  readonly #tickSizeOf: (symbolId: number) => number;
  readonly #window: number;
  readonly #band: number;
  readonly #confirm: number;
  readonly #rejectOffTick: boolean;
  readonly #timeGap: number;
  readonly #seqGaps: boolean;
  readonly #staleAfter: number;
  readonly #cal: SessionCalendar;
  readonly #maxSymbols: number;
  readonly #maxSources: number;
  readonly #maxLanes: number;
  readonly #recentN: number;
  readonly #minTs: number;
  readonly #maxTs: number;
  readonly #counters = new Float64Array(C_COUNT);

  // lane map and state
  readonly #laneOf: Int32Array; // (source * maxSymbols + symbol) -> lane + 1 (0 = none)
  #lanes = 0;
  readonly #laneKey: Int32Array;
  readonly #lastTs: Float64Array; // newest kept time (-Infinity: none)
  readonly #lastSeenTs: Float64Array; // time of the last record seen (any verdict), for time gaps
  readonly #lastSeenWall: Float64Array; // wall µs of the last record seen (checkStale clock), NaN: none
  readonly #nextSeq: Float64Array; // expected next seq (-1: unknown)
  readonly #floor: Float64Array; // replay floor: seq <= floor is REPLAYED (-1: none)
  readonly #ref: Float64Array; // spike reference price (NaN: none)
  readonly #spikeRun: Int32Array; // + run of up-spikes, - run of down-spikes
  readonly #stale: Uint8Array;
  readonly #lastResetTs: Float64Array;
  readonly #lastResetExpected: Float64Array;
  readonly #resync: Float64Array; // after a live FILE_RESET: records older than this were kept already (NaN: none)
  // recent kept records per lane (circular)
  readonly #recTs: Float64Array;
  readonly #recPrice: Float64Array;
  readonly #recBid: Float64Array;
  readonly #recAsk: Float64Array;
  readonly #recSize: Uint32Array;
  readonly #recSide: Uint8Array;
  readonly #recHead: Int32Array;
  readonly #recLen: Int32Array;
  // gap queue (circular)
  readonly #gStart = new Float64Array(GAP_QUEUE);
  readonly #gEnd = new Float64Array(GAP_QUEUE);
  readonly #gExpected = new Float64Array(GAP_QUEUE);
  readonly #gGot = new Float64Array(GAP_QUEUE);
  readonly #gKind = new Uint8Array(GAP_QUEUE);
  readonly #gSource = new Uint8Array(GAP_QUEUE);
  readonly #gSymbol = new Uint16Array(GAP_QUEUE);
  #gHead = 0;
  #gLen = 0;
  #nowWall = NaN; // last wall clock given to checkStale
  #skip: Set<number> | null = null; // lane * 2^32 + seq of records quarantined by a previous run

  constructor(opts: ValidatorOptions) {
    if (typeof opts?.tickSizeOf !== 'function') throw engineError('ENGINE_ERR_INVALID_ARG', 'ValidatorOptions.tickSizeOf must be a function');
    this.#tickSizeOf = opts.tickSizeOf;
    this.#window = nonNeg(opts.reorderWindowMicros, 500_000, 'reorderWindowMicros');
    this.#band = nonNeg(opts.spikeBandFraction, 0.05, 'spikeBandFraction');
    this.#confirm = Math.max(1, Math.floor(nonNeg(opts.spikeConfirm, 3, 'spikeConfirm')));
    this.#rejectOffTick = (opts.offTick ?? 'reject') === 'reject';
    this.#timeGap = nonNeg(opts.timeGapMicros, 300_000_000, 'timeGapMicros');
    this.#seqGaps = opts.sequenceGaps ?? true;
    this.#staleAfter = nonNeg(opts.staleAfterMicros, 60_000_000, 'staleAfterMicros');
    this.#cal = sessionCalendar(opts.calendar ?? 'cme-globex');
    this.#maxSymbols = intIn(opts.maxSymbols, 65536, 2, 65536, 'maxSymbols');
    this.#maxSources = intIn(opts.maxSources, 16, 1, 256, 'maxSources');
    this.#maxLanes = intIn(opts.maxLanes, 4096, 1, 1 << 20, 'maxLanes');
    this.#recentN = intIn(opts.recentPerLane, 32, 1, 4096, 'recentPerLane');
    this.#minTs = opts.minTsMicros ?? DEFAULT_MIN_TS;
    this.#maxTs = opts.maxTsMicros ?? DEFAULT_MAX_TS;
    const L = this.#maxLanes;
    this.#laneOf = new Int32Array(this.#maxSources * this.#maxSymbols);
    this.#laneKey = new Int32Array(L);
    this.#lastTs = new Float64Array(L).fill(-Infinity);
    this.#lastSeenTs = new Float64Array(L).fill(NaN);
    this.#lastSeenWall = new Float64Array(L).fill(NaN);
    this.#nextSeq = new Float64Array(L).fill(-1);
    this.#floor = new Float64Array(L).fill(-1);
    this.#ref = new Float64Array(L).fill(NaN);
    this.#spikeRun = new Int32Array(L);
    this.#stale = new Uint8Array(L);
    this.#lastResetTs = new Float64Array(L).fill(NaN);
    this.#lastResetExpected = new Float64Array(L).fill(NaN);
    this.#resync = new Float64Array(L).fill(NaN);
    const R = L * this.#recentN;
    this.#recTs = new Float64Array(R);
    this.#recPrice = new Float64Array(R);
    this.#recBid = new Float64Array(R);
    this.#recAsk = new Float64Array(R);
    this.#recSize = new Uint32Array(R);
    this.#recSide = new Uint8Array(R);
    this.#recHead = new Int32Array(L);
    this.#recLen = new Int32Array(L);
  }

  /**
   * Check the record at slot byte offset `b`. TRADE/QUOTE: returns 0 (keep; verdict bits may have been
   * set in its flags word) or a RejectReason. GAP FILE_RESET records restart their lane's sequence (0).
   * Other kinds: 0.
   */
  check(v: SlotViews, b: number): number {
    const kind = v.u8[b] ?? 0;
    if (kind !== RecordKind.TRADE && kind !== RecordKind.QUOTE) {
      if (kind === RecordKind.GAP) return this.#onGapRecord(v, b);
      return 0;
    }
    const c = this.#counters;
    c[C_CHECKED]!++;
    const src = v.u8[b + Off.SOURCE_ID] ?? 0;
    const sym = v.u16[(b + Off.SYMBOL_ID) >> 1] ?? 0;
    const lane = this.#lane(src, sym);
    if (lane < 0) return this.#reject(RejectReason.UNKNOWN_SYMBOL);
    const ts = v.f64[(b + Off.TS) >> 3] ?? NaN;
    const seq = v.u32[(b + Off.SEQ) >> 2] ?? 0;
    if (!(ts >= this.#minTs && ts <= this.#maxTs)) return this.#reject(RejectReason.BAD_TIME);

    // replay after a restart: stored already (the journal primed the floor)
    const floor = this.#floor[lane]!;
    if (floor >= 0) {
      if (seq <= floor) return this.#reject(RejectReason.REPLAYED);
      this.#floor[lane] = -1;
    }
    if (this.#skip !== null && this.#skip.has(lane * 4294967296 + seq)) return this.#reject(RejectReason.REPLAYED);
    // a replaced file read again from its start: what is older than the newest kept before the reset was seen
    const rs = this.#resync[lane]!;
    if (rs === rs) {
      if (ts < rs) { this.#counters[C_RESYNC_SKIPPED]!++; return this.#reject(RejectReason.REPLAYED); }
      this.#resync[lane] = NaN;
    }

    // sequence and time gaps: every record consumed its index, whatever its verdict
    this.#trackGaps(lane, src, sym, seq, ts, (v.u32[(b + Off.NUM_TRADES) >> 2] ?? 1) || 1);
    if (this.#stale[lane] === 1) this.#stale[lane] = 2; // flag this record (below, if kept)
    this.#lastSeenWall[lane] = this.#nowWall;

    const price = v.f64[(b + Off.PRICE) >> 3] ?? NaN;
    const bid = v.f64[(b + Off.BID) >> 3] ?? NaN;
    const ask = v.f64[(b + Off.ASK) >> 3] ?? NaN;
    const size = v.u32[(b + Off.SIZE) >> 2] ?? 0;
    const fi = (b + Off.FLAGS) >> 2;
    const flags0 = v.u32[fi] ?? 0;
    const isTrade = kind === RecordKind.TRADE;
    // bid / ask: NaN means unknown; anything else must be a finite positive price
    if (bid === bid && !(bid > 0 && bid < Infinity)) return this.#reject(RejectReason.BAD_PRICE);
    if (ask === ask && !(ask > 0 && ask < Infinity)) return this.#reject(RejectReason.BAD_PRICE);
    const tick = this.#tickSizeOf(sym);
    let verdict = 0;
    if (isTrade) {
      if (!(price > 0 && price < Infinity)) return this.#reject(RejectReason.BAD_PRICE);
      if (size === 0) return this.#reject(RejectReason.BAD_SIZE);
      if (!onGrid(price, tick)) {
        if (this.#rejectOffTick) return this.#reject(RejectReason.OFF_TICK);
        verdict |= TradeFlag.V_OFF_TICK;
      }
    } else if (bid !== bid && ask !== ask) {
      return this.#reject(RejectReason.BAD_PRICE);
    }

    const last = this.#lastTs[lane]!;
    if (ts <= last) {
      if (this.#isDuplicate(lane, ts, price, size, bid, ask, flags0 & SIDE_BITS)) return this.#reject(RejectReason.DUPLICATE);
      if (ts < last) {
        if (last - ts > this.#window) return this.#reject(RejectReason.OUT_OF_ORDER);
        verdict |= TradeFlag.V_OUT_OF_ORDER;
      }
    }

    if (bid === bid && ask === ask) {
      if (bid > ask) verdict |= TradeFlag.V_CROSSED;
      // sub-trades after the first of a sweep walk the book past the quote recorded with them: expected
      else if (isTrade && (price < bid || price > ask) && (flags0 & SWEEP_BITS) === 0) verdict |= TradeFlag.V_OUTSIDE_QUOTE;
    }
    if ((bid === bid && !onGrid(bid, tick)) || (ask === ask && !onGrid(ask, tick))) verdict |= TradeFlag.V_OFF_TICK;
    if (isTrade && this.#band > 0) verdict |= this.#spike(lane, price);
    if (this.#stale[lane] === 2) { verdict |= TradeFlag.V_STALE; this.#stale[lane] = 0; }

    // keep
    if (ts > last) this.#lastTs[lane] = ts;
    this.#remember(lane, ts, price, size, bid, ask, flags0 & SIDE_BITS);
    if (verdict !== 0) {
      v.u32[fi] = (flags0 | verdict) >>> 0;
      for (let i = 0; i < VERDICT_FLAGS.length; i++) if ((verdict & VERDICT_FLAGS[i]![1]) !== 0) c[C_FLAG0 + i]!++;
    }
    c[C_KEPT]!++;
    return 0;
  }

  /**
   * Seed lane state from a record already stored (journal replay on restart): newest time, duplicate
   * memory, spike reference, sequence; and raise the lane's replay floor to its seq, so that a source
   * re-sending it after a restart is answered REPLAYED. Does not count or flag.
   */
  prime(v: SlotViews, b: number): void {
    const kind = v.u8[b] ?? 0;
    const src = v.u8[b + Off.SOURCE_ID] ?? 0;
    const sym = v.u16[(b + Off.SYMBOL_ID) >> 1] ?? 0;
    const lane = this.#lane(src, sym);
    if (lane < 0) return;
    const seq = v.u32[(b + Off.SEQ) >> 2] ?? 0;
    const ts = v.f64[(b + Off.TS) >> 3] ?? NaN;
    if (kind === RecordKind.GAP) {
      if ((v.u32[(b + Off.GAP_KIND) >> 2] ?? 0) === GapKind.FILE_RESET) {
        this.#floor[lane] = -1;
        this.#nextSeq[lane] = -1;
        this.#lastResetTs[lane] = ts;
        this.#lastResetExpected[lane] = v.u32[(b + Off.GAP_EXPECTED) >> 2] ?? 0;
      }
      return;
    }
    if (kind !== RecordKind.TRADE && kind !== RecordKind.QUOTE) return;
    if (seq > this.#floor[lane]!) this.#floor[lane] = seq;
    this.#nextSeq[lane] = seq + ((v.u32[(b + Off.NUM_TRADES) >> 2] ?? 1) || 1);
    if (ts === ts) {
      if (ts > this.#lastTs[lane]!) this.#lastTs[lane] = ts;
      this.#lastSeenTs[lane] = ts;
    }
    const price = v.f64[(b + Off.PRICE) >> 3] ?? NaN;
    const bid = v.f64[(b + Off.BID) >> 3] ?? NaN;
    const ask = v.f64[(b + Off.ASK) >> 3] ?? NaN;
    const flags = v.u32[(b + Off.FLAGS) >> 2] ?? 0;
    this.#remember(lane, ts, price, v.u32[(b + Off.SIZE) >> 2] ?? 0, bid, ask, flags & SIDE_BITS);
    if (kind === RecordKind.TRADE && (flags & TradeFlag.V_SPIKE) === 0 && price > 0) this.#ref[lane] = price;
  }

  /**
   * A record quarantined by a previous run (read back from the quarantine at start): when the source sends
   * it again it is answered REPLAYED (already quarantined). Only this seq is skipped, not those below it:
   * the quarantine may be written ahead of the journal's commit, and the records before it may be missing
   * from the journal. Cold path (start-up); the set is checked only while it is non-empty.
   */
  primeQuarantined(sourceId: number, symbolId: number, seq: number): void {
    const lane = this.#lane(sourceId, symbolId);
    if (lane < 0 || seq <= this.#floor[lane]! || this.#lastResetTs[lane] === this.#lastResetTs[lane]) return;
    (this.#skip ??= new Set<number>()).add(lane * 4294967296 + seq);
  }

  /** Raise a lane's replay floor (records of it with seq ≤ `seq` are REPLAYED). */
  primeFloor(sourceId: number, symbolId: number, seq: number): void {
    const lane = this.#lane(sourceId, symbolId);
    // after a FILE_RESET the seq numbers of the old file mean nothing for the new one
    if (lane >= 0 && this.#lastResetTs[lane] !== this.#lastResetTs[lane] && seq > this.#floor[lane]!) this.#floor[lane] = seq;
  }

  /** Pending GAP records produced by `check` (sequence and time gaps). */
  get pendingGaps(): number { return this.#gLen; }

  /** Write the oldest pending gap as a GAP record into the slot at `b` (seq = 0); false when none. */
  nextGap(v: SlotViews, b: number): boolean {
    if (this.#gLen === 0) return false;
    const i = this.#gHead;
    writeGap(v, b, this.#gSource[i]!, this.#gSymbol[i]!, 0, this.#gStart[i]!, this.#gEnd[i]!, this.#gKind[i]!, this.#gExpected[i]!, this.#gGot[i]!, 0);
    this.#gHead = (i + 1) % GAP_QUEUE;
    this.#gLen--;
    return true;
  }

  /**
   * Stale-feed check with the wall clock `nowMicros` (Unix µs): a lane with no record for
   * `staleAfterMicros` while the session is open becomes stale (its next record gets V_STALE). Returns
   * the number of lanes currently stale.
   */
  checkStale(nowMicros: number): number {
    this.#nowWall = nowMicros;
    if (this.#staleAfter <= 0) return 0;
    this.#cal.locate(nowMicros);
    const open = nowMicros >= this.#cal.startMicros;
    let n = 0;
    for (let l = 0; l < this.#lanes; l++) {
      const seen = this.#lastSeenWall[l]!;
      if (seen !== seen) { this.#lastSeenWall[l] = nowMicros; continue; } // first sight: start the clock
      if (this.#stale[l] !== 0) { n++; continue; }
      if (open && nowMicros - seen > this.#staleAfter && nowMicros - this.#cal.startMicros > this.#staleAfter) {
        this.#stale[l] = 1;
        this.#counters[C_STALE_EVENTS]!++;
        n++;
      }
    }
    return n;
  }

  /** Lanes currently stale, as `source:symbol` ids (allocates; cold path). */
  staleLanes(): Array<{ sourceId: number; symbolId: number }> {
    const out: Array<{ sourceId: number; symbolId: number }> = [];
    for (let l = 0; l < this.#lanes; l++) {
      if (this.#stale[l] !== 0) {
        const k = this.#laneKey[l]!;
        out.push({ sourceId: Math.floor(k / this.#maxSymbols), symbolId: k % this.#maxSymbols });
      }
    }
    return out;
  }

  /** Counters by rule: `checked`, `kept`, `reject_<reason>`, `flag_<verdict>`, `gap_sequence`, `gap_time`, `stale_events`, `file_resets`, `gaps_dropped`. */
  counters(): Record<string, number> {
    const c = this.#counters;
    const o: Record<string, number> = { checked: c[C_CHECKED]!, kept: c[C_KEPT]! };
    for (let r = 1; r < REASON_NAMES.length; r++) o[`reject_${REASON_NAMES[r]!}`] = c[C_REJECT0 + r]!;
    for (let i = 0; i < VERDICT_FLAGS.length; i++) o[`flag_${VERDICT_FLAGS[i]![0]}`] = c[C_FLAG0 + i]!;
    o.gap_sequence = c[C_GAP_SEQ]!;
    o.gap_time = c[C_GAP_TIME]!;
    o.gaps_dropped = c[C_GAP_DROPPED]!;
    o.stale_events = c[C_STALE_EVENTS]!;
    o.file_resets = c[C_FILE_RESETS]!;
    o.file_reset_skipped = c[C_RESYNC_SKIPPED]!;
    return o;
  }

  // ---- internals -------------------------------------------------------------------------------------

  #reject(reason: number): number {
    this.#counters[C_REJECT0 + reason]!++;
    return reason;
  }

  #lane(src: number, sym: number): number {
    if (sym === 0 || sym >= this.#maxSymbols || src >= this.#maxSources) return -1;
    const k = src * this.#maxSymbols + sym;
    const l = this.#laneOf[k]!;
    if (l !== 0) return l - 1;
    if (this.#lanes >= this.#maxLanes) return -1;
    const lane = this.#lanes++;
    this.#laneOf[k] = lane + 1;
    this.#laneKey[lane] = k;
    return lane;
  }

  #onGapRecord(v: SlotViews, b: number): number {
    if ((v.u32[(b + Off.GAP_KIND) >> 2] ?? 0) !== GapKind.FILE_RESET) return 0;
    const lane = this.#lane(v.u8[b + Off.SOURCE_ID] ?? 0, v.u16[(b + Off.SYMBOL_ID) >> 1] ?? 0);
    if (lane < 0) return 0;
    this.#counters[C_FILE_RESETS]!++;
    // After a restart (floor set, nothing new yet) the source may announce again a reset the journal
    // holds already, from an older checkpoint: the floor (the new file's position) stays.
    if (this.#floor[lane]! >= 0) return 0;
    this.#nextSeq[lane] = -1;
    // A replaced file is read again from its start (Sierra rewrote it, e.g. after a re-download): its
    // records older than the newest kept one were kept already; they are answered REPLAYED (not
    // quarantined as out of order) until the file reaches that time. Records at that very time go
    // through the duplicate check.
    const last = this.#lastTs[lane]!;
    if (last > -Infinity) this.#resync[lane] = last;
    return 0;
  }

  #trackGaps(lane: number, src: number, sym: number, seq: number, ts: number, advance: number): void {
    if (this.#seqGaps) {
      const exp = this.#nextSeq[lane]!;
      if (exp >= 0 && seq > exp) {
        this.#pushGap(src, sym, GapKind.SEQUENCE, this.#lastSeenTs[lane]!, ts, exp, seq);
        this.#counters[C_GAP_SEQ]!++;
      }
      if (seq + advance > exp) this.#nextSeq[lane] = seq + advance;
    }
    const prev = this.#lastSeenTs[lane]!;
    if (this.#timeGap > 0 && prev === prev && ts - prev > this.#timeGap && this.#sessionOverlap(prev, ts) > this.#timeGap) {
      this.#pushGap(src, sym, GapKind.TIME, prev, ts, 0, 0);
      this.#counters[C_GAP_TIME]!++;
    }
    if (!(ts <= prev)) this.#lastSeenTs[lane] = ts;
  }

  /** µs of [a, b) inside sessions (allocation-free walk of the calendar). */
  #sessionOverlap(a: number, b: number): number {
    const cal = this.#cal;
    let total = 0;
    let t = a;
    for (let guard = 0; t < b && guard < 1000; guard++) {
      cal.locate(Math.floor(t));
      const s = cal.startMicros;
      const e = cal.endMicros;
      if (s >= b) break;
      total += Math.min(e, b) - Math.max(s, t);
      t = e;
    }
    return total;
  }

  #pushGap(src: number, sym: number, kind: number, start: number, end: number, expected: number, got: number): void {
    if (this.#gLen === GAP_QUEUE) { // full: drop the oldest (counted)
      this.#gHead = (this.#gHead + 1) % GAP_QUEUE;
      this.#gLen--;
      this.#counters[C_GAP_DROPPED]!++;
    }
    const i = (this.#gHead + this.#gLen) % GAP_QUEUE;
    this.#gSource[i] = src; this.#gSymbol[i] = sym; this.#gKind[i] = kind;
    this.#gStart[i] = start === start ? start : end; this.#gEnd[i] = end;
    this.#gExpected[i] = expected >>> 0; this.#gGot[i] = got >>> 0;
    this.#gLen++;
  }

  #isDuplicate(lane: number, ts: number, price: number, size: number, bid: number, ask: number, side: number): boolean {
    const n = this.#recentN;
    const base = lane * n;
    const len = this.#recLen[lane]!;
    let i = this.#recHead[lane]!;
    for (let k = 0; k < len; k++) {
      i = i === 0 ? n - 1 : i - 1;
      const j = base + i;
      const t = this.#recTs[j]!;
      if (t === ts && this.#recSize[j] === size && this.#recSide[j] === side && sameNum(this.#recPrice[j]!, price) &&
        sameNum(this.#recBid[j]!, bid) && sameNum(this.#recAsk[j]!, ask)) return true;
    }
    return false;
  }

  #remember(lane: number, ts: number, price: number, size: number, bid: number, ask: number, side: number): void {
    const n = this.#recentN;
    const h = this.#recHead[lane]!;
    const j = lane * n + h;
    this.#recTs[j] = ts; this.#recPrice[j] = price; this.#recBid[j] = bid; this.#recAsk[j] = ask;
    this.#recSize[j] = size; this.#recSide[j] = side;
    this.#recHead[lane] = h + 1 === n ? 0 : h + 1;
    if (this.#recLen[lane]! < n) this.#recLen[lane]!++;
  }

  #spike(lane: number, price: number): number {
    const ref = this.#ref[lane]!;
    if (ref !== ref) { this.#ref[lane] = price; return 0; }
    const d = (price - ref) / ref;
    if (d <= this.#band && d >= -this.#band) {
      this.#ref[lane] = price;
      this.#spikeRun[lane] = 0;
      return 0;
    }
    const run = this.#spikeRun[lane]!;
    const next = d > 0 ? (run > 0 ? run + 1 : 1) : (run < 0 ? run - 1 : -1);
    this.#spikeRun[lane] = next;
    if (next >= this.#confirm || -next >= this.#confirm) { this.#ref[lane] = price; this.#spikeRun[lane] = 0; }
    return TradeFlag.V_SPIKE;
  }
}

function sameNum(a: number, b: number): boolean {
  return a === b || (a !== a && b !== b);
}

function nonNeg(x: number | undefined, dflt: number, name: string): number {
  if (x === undefined) return dflt;
  if (typeof x !== 'number' || !(x >= 0) || x === Infinity) throw engineError('ENGINE_ERR_INVALID_ARG', `ValidatorOptions.${name} must be a finite number >= 0, got ${String(x)}`);
  return x;
}

function intIn(x: number | undefined, dflt: number, min: number, max: number, name: string): number {
  if (x === undefined) return dflt;
  if (!Number.isInteger(x) || x < min || x > max) throw engineError('ENGINE_ERR_INVALID_ARG', `ValidatorOptions.${name} must be an integer ${min}..${max}, got ${String(x)}`);
  return x;
}
