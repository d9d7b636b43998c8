/**
 * Single-producer single-consumer ring over a SharedArrayBuffer.
 *
 * - Fixed-size slots (multiple of 8 bytes), power-of-two slot count.
 * - Sequences are wrapping int32 counters; occupancy is `(write - read) | 0`, correct across wrap
 *   because the slot count is below 2^31.
 * - Batch API: `claim(n)` / write slots / `publish(n)` costs one Atomics.store for the batch;
 *   `available()` / read slots / `release(n)` likewise.
 * - A full ring is back-pressure: `claim()` returns fewer slots than asked (a normal return value, never
 *   an exception and never an overwrite). The producer waits (`waitForSpace*`) and retries.
 * - Counters (published, released, full stalls, parks) live in the owners' lines and are readable from
 *   any thread with `ringStats()`.
 * - Shutdown: the supervisor sets DRAINING (the producer stops), then STOPPED once the producer is gone;
 *   the consumer finishes at STOPPED and empty (see `RingState` in layout.ts for why not at DRAINING).
 * - Counts passed to claim/publish/release/waitForSpace must be integers (0 .. slot count); anything else
 *   (NaN, fractions, negatives, strings) is ENGINE_ERR_RING_BATCH, because `(w + n) | 0` would silently
 *   corrupt the sequence.
 *
 * Slots are addressed by absolute byte offset in the SAB (`slotByte(i)`), and read or written through the
 * typed-array aliases in `views` (`f64[byte >> 3]`, `u32[byte >> 2]`, `u16[byte >> 1]`, `u8[byte]`),
 * created once per attach. Layouts of what goes in a slot are in `schemas/records.ts`.
 */
import { engineError } from '../errors.ts';
import {
  CTRL_BYTES, CTRL_I32, CONSUMER_PARKED_I32, CONSUMER_PARKS_I32, FULL_STALLS_I32, HEARTBEAT_I32, LAYOUT_VERSION_I32,
  MAGIC_I32, MAX_SLOT_BYTES, MAX_SLOT_COUNT, PRODUCER_PARKED_I32, PRODUCER_PARKS_I32, PUBLISHED_HI_I32,
  PUBLISHED_LO_I32, READ_SEQ_I32, RECORD_KIND_I32, RELEASED_HI_I32, RELEASED_LO_I32, RING_LAYOUT_VERSION, RING_MAGIC,
  RingState, SLOT_BYTES_I32, SLOT_COUNT_I32, STATE_I32, WRITE_SEQ_I32, ringBytes,
} from './layout.ts';
import { parkAsync, parkSync, wakeParked, type ParkResult } from './park.ts';

/**
 * layout.ts constants as a same-file `const enum`, which esbuild (tsx) inlines as literals: the hot
 * methods below then index with constants instead of loading module variables (each load carries a
 * TDZ hole check; measured 2.5-6x slower on record writers). Checked against layout.ts at load.
 */
const enum L {
  CTRL_BYTES = 512,
  CONSUMER_PARKED_I32 = 65,
  CONSUMER_PARKS_I32 = 68,
  FULL_STALLS_I32 = 36,
  HEARTBEAT_I32 = 97,
  LAYOUT_VERSION_I32 = 1,
  MAGIC_I32 = 0,
  PRODUCER_PARKED_I32 = 33,
  PRODUCER_PARKS_I32 = 37,
  PUBLISHED_HI_I32 = 35,
  PUBLISHED_LO_I32 = 34,
  READ_SEQ_I32 = 64,
  RECORD_KIND_I32 = 4,
  RELEASED_HI_I32 = 67,
  RELEASED_LO_I32 = 66,
  SLOT_BYTES_I32 = 2,
  SLOT_COUNT_I32 = 3,
  STATE_I32 = 96,
  WRITE_SEQ_I32 = 32,
}
if (L.CTRL_BYTES !== CTRL_BYTES || L.CONSUMER_PARKED_I32 !== CONSUMER_PARKED_I32 || L.CONSUMER_PARKS_I32 !== CONSUMER_PARKS_I32 || L.FULL_STALLS_I32 !== FULL_STALLS_I32 || L.HEARTBEAT_I32 !== HEARTBEAT_I32 || L.LAYOUT_VERSION_I32 !== LAYOUT_VERSION_I32 || L.MAGIC_I32 !== MAGIC_I32 || L.PRODUCER_PARKED_I32 !== PRODUCER_PARKED_I32 || L.PRODUCER_PARKS_I32 !== PRODUCER_PARKS_I32 || L.PUBLISHED_HI_I32 !== PUBLISHED_HI_I32 || L.PUBLISHED_LO_I32 !== PUBLISHED_LO_I32 || L.READ_SEQ_I32 !== READ_SEQ_I32 || L.RECORD_KIND_I32 !== RECORD_KIND_I32 || L.RELEASED_HI_I32 !== RELEASED_HI_I32 || L.RELEASED_LO_I32 !== RELEASED_LO_I32 || L.SLOT_BYTES_I32 !== SLOT_BYTES_I32 || L.SLOT_COUNT_I32 !== SLOT_COUNT_I32 || L.STATE_I32 !== STATE_I32 || L.WRITE_SEQ_I32 !== WRITE_SEQ_I32) {
  throw new Error('engine/ring/ring.ts: const enum L is out of date with layout.ts');
}

export interface RingOptions {
  /** Number of slots: a power of two, 2 .. 2^30. */
  slotCount: number;
  /** Bytes per slot: a multiple of 8, 8 .. 65536. */
  slotBytes: number;
  /** Optional tag naming the record family carried (checked on attach when given). */
  recordKind?: number;
}

/** Typed-array aliases over the whole ring buffer, indexed by absolute byte offset shifted. */
export interface SlotViews {
  readonly f64: Float64Array;
  readonly f32: Float32Array;
  readonly i32: Int32Array;
  readonly u32: Uint32Array;
  readonly u16: Uint16Array;
  readonly u8: Uint8Array;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function isPow2(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

/** An integer 0 .. max (max <= 2^30). `(n >>> 0) !== n` rejects NaN, fractions, negatives and non-numbers. */
function isCount(n: number, max: number): boolean {
  return (n >>> 0) === n && n <= max;
}

function checkTimeout(timeoutMs: number): void {
  if (!(timeoutMs >= 0)) throw engineError('ENGINE_ERR_INVALID_ARG', `park timeout must be a number of ms >= 0, got ${String(timeoutMs)}`);
}

/** Allocate a ring. Validates geometry; returns the SAB to pass to `RingWriter.attach` / `RingReader.attach`. */
export function createRing(opts: RingOptions): SharedArrayBuffer {
  const { slotCount, slotBytes, recordKind = 0 } = opts;
  if (!LITTLE_ENDIAN) throw engineError('ENGINE_ERR_RING_CONFIG', 'tickpipe rings need a little-endian host');
  if (!isPow2(slotCount) || slotCount < 2 || slotCount > MAX_SLOT_COUNT) {
    throw engineError('ENGINE_ERR_RING_CONFIG', `slot count must be a power of two between 2 and 2^30, got ${String(slotCount)}`, { slotCount: Number(slotCount) });
  }
  if (!Number.isInteger(slotBytes) || slotBytes < 8 || slotBytes > MAX_SLOT_BYTES || slotBytes % 8 !== 0) {
    throw engineError('ENGINE_ERR_RING_CONFIG', `slot size must be a multiple of 8 between 8 and 65536 bytes, got ${String(slotBytes)}`, { slotBytes: Number(slotBytes) });
  }
  if (!Number.isInteger(recordKind) || recordKind < 0 || recordKind > 0x7fffffff) {
    throw engineError('ENGINE_ERR_RING_CONFIG', `record kind must be a non-negative int32, got ${String(recordKind)}`);
  }
  let sab: SharedArrayBuffer;
  try {
    sab = new SharedArrayBuffer(ringBytes(slotCount, slotBytes));
  } catch (e) {
    throw engineError('ENGINE_ERR_RING_CONFIG', `cannot allocate a ring of ${slotCount} slots x ${slotBytes} bytes`, { slotCount, slotBytes }, e);
  }
  const ctrl = new Int32Array(sab, 0, CTRL_I32);
  ctrl[L.SLOT_BYTES_I32] = slotBytes;
  ctrl[L.SLOT_COUNT_I32] = slotCount;
  ctrl[L.RECORD_KIND_I32] = recordKind;
  ctrl[L.LAYOUT_VERSION_I32] = RING_LAYOUT_VERSION;
  Atomics.store(ctrl, L.STATE_I32, RingState.RUNNING);
  Atomics.store(ctrl, L.MAGIC_I32, RING_MAGIC); // last: a half-initialised ring never validates
  return sab;
}

interface Geometry { ctrl: Int32Array; slotCount: number; slotBytes: number; mask: number }

function validate(sab: unknown, recordKind?: number): Geometry {
  if (!(sab instanceof SharedArrayBuffer)) {
    throw engineError('ENGINE_ERR_RING_ATTACH', 'ring attach needs a SharedArrayBuffer', { got: Object.prototype.toString.call(sab) });
  }
  if (sab.byteLength < L.CTRL_BYTES) {
    throw engineError('ENGINE_ERR_RING_ATTACH', `buffer of ${sab.byteLength} bytes is shorter than a ring control block (${L.CTRL_BYTES})`, { byteLength: sab.byteLength });
  }
  const ctrl = new Int32Array(sab, 0, CTRL_I32);
  if (Atomics.load(ctrl, L.MAGIC_I32) !== RING_MAGIC) {
    throw engineError('ENGINE_ERR_RING_ATTACH', 'buffer is not a tickpipe ring (bad magic)', { magic: ctrl[L.MAGIC_I32] ?? 0 });
  }
  if (ctrl[L.LAYOUT_VERSION_I32] !== RING_LAYOUT_VERSION) {
    throw engineError('ENGINE_ERR_RING_ATTACH', `ring layout version ${String(ctrl[L.LAYOUT_VERSION_I32])} is not ${RING_LAYOUT_VERSION}`);
  }
  const slotCount = ctrl[L.SLOT_COUNT_I32] ?? 0;
  const slotBytes = ctrl[L.SLOT_BYTES_I32] ?? 0;
  if (!isPow2(slotCount) || slotCount < 2 || slotCount > MAX_SLOT_COUNT || slotBytes < 8 || slotBytes > MAX_SLOT_BYTES
    || slotBytes % 8 !== 0 || sab.byteLength !== ringBytes(slotCount, slotBytes)) {
    throw engineError('ENGINE_ERR_RING_ATTACH', `ring header (slots ${slotCount}, slot bytes ${slotBytes}) does not match a buffer of ${sab.byteLength} bytes`, { slotCount, slotBytes, byteLength: sab.byteLength });
  }
  if (recordKind !== undefined && recordKind !== 0 && ctrl[L.RECORD_KIND_I32] !== recordKind) {
    throw engineError('ENGINE_ERR_RING_ATTACH', `ring carries record kind ${String(ctrl[L.RECORD_KIND_I32])}, expected ${recordKind}`);
  }
  return { ctrl, slotCount, slotBytes, mask: slotCount - 1 };
}

function makeViews(sab: SharedArrayBuffer): SlotViews {
  return {
    f64: new Float64Array(sab), f32: new Float32Array(sab), i32: new Int32Array(sab),
    u32: new Uint32Array(sab), u16: new Uint16Array(sab), u8: new Uint8Array(sab),
  };
}

/** Called around every publish of a writer that has it installed (see `RingWriter.setPublishHook`). */
export interface PublishHook {
  beforePublish(n: number): void;
  afterPublish(n: number): void;
}

/** Producer side. Exactly one thread may own the writer of a ring. */
export class RingWriter {
  #hook: PublishHook | null = null;
  readonly buffer: SharedArrayBuffer;
  readonly views: SlotViews;
  readonly slotCount: number;
  readonly slotBytes: number;
  readonly #ctrl: Int32Array;
  readonly #mask: number;
  #w: number;
  #cachedRead: number;
  #claimed = 0;
  #publishedLo: number;
  #publishedHi: number;

  private constructor(sab: SharedArrayBuffer, g: Geometry) {
    this.buffer = sab;
    this.views = makeViews(sab);
    this.slotCount = g.slotCount;
    this.slotBytes = g.slotBytes;
    this.#ctrl = g.ctrl;
    this.#mask = g.mask;
    // Resume where a previous writer stopped (a restarted worker attaches to the same ring).
    this.#w = Atomics.load(g.ctrl, L.WRITE_SEQ_I32);
    this.#cachedRead = Atomics.load(g.ctrl, L.READ_SEQ_I32);
    const published = resumeCounter(g.ctrl, L.PUBLISHED_LO_I32, L.PUBLISHED_HI_I32);
    this.#publishedLo = published % 4294967296;
    this.#publishedHi = Math.floor(published / 4294967296);
  }

  static attach(sab: SharedArrayBuffer, recordKind?: number): RingWriter {
    return new RingWriter(sab, validate(sab, recordKind));
  }

  /**
   * Slots claimable right now, up to `want`. Re-reads the consumer's sequence only when the cached one
   * says there is not enough room. Returning less than `want` is back-pressure, not an error; it is
   * counted as a full stall. `want` above the slot count is a coded error (it could never succeed).
   */
  claim(want: number): number {
    if (!isCount(want, this.slotCount)) {
      throw engineError('ENGINE_ERR_RING_BATCH', `claim of ${String(want)} slots: must be an integer 0 .. ${this.slotCount} (the ring's size)`, { want: Number(want), slotCount: this.slotCount });
    }
    let free = this.slotCount - ((this.#w - this.#cachedRead) | 0);
    if (free < want) {
      this.#cachedRead = Atomics.load(this.#ctrl, L.READ_SEQ_I32);
      free = this.slotCount - ((this.#w - this.#cachedRead) | 0);
      if (free < want) Atomics.add(this.#ctrl, L.FULL_STALLS_I32, 1);
    }
    const n = free < want ? free : want;
    this.#claimed = n;
    return n;
  }

  /** Absolute byte offset of the i-th claimed slot. */
  slotByte(i: number): number {
    return L.CTRL_BYTES + ((this.#w + i) & this.#mask) * this.slotBytes;
  }

  /**
   * Make the first `n` claimed slots visible to the consumer: one Atomics.store for the batch. The rest of
   * the claim stays claimed (slot indices restart at 0 after a publish), so a batch may be published in parts.
   */
  publish(n: number): void {
    if (!isCount(n, this.#claimed)) {
      throw engineError('ENGINE_ERR_RING_BATCH', `publish of ${String(n)} slots but only ${this.#claimed} were claimed`, { n: Number(n), claimed: this.#claimed });
    }
    if (n === 0) return;
    const hook = this.#hook;
    if (hook !== null) hook.beforePublish(n);
    this.#claimed -= n;
    this.#w = (this.#w + n) | 0;
    const lo = this.#publishedLo + n;
    if (lo > 0xffffffff) {
      // why three stores: the carry protocol of 64-bit counters (see readCounter)
      Atomics.store(this.#ctrl, L.PUBLISHED_HI_I32, (this.#publishedHi * 2 + 1) | 0);
      this.#publishedLo = lo - 4294967296;
      Atomics.store(this.#ctrl, L.PUBLISHED_LO_I32, this.#publishedLo | 0);
      this.#publishedHi++;
      Atomics.store(this.#ctrl, L.PUBLISHED_HI_I32, (this.#publishedHi * 2) | 0);
    } else {
      this.#publishedLo = lo;
      Atomics.store(this.#ctrl, L.PUBLISHED_LO_I32, lo | 0);
    }
    Atomics.store(this.#ctrl, L.WRITE_SEQ_I32, this.#w);
    wakeParked(this.#ctrl, L.CONSUMER_PARKED_I32);
    if (hook !== null) hook.afterPublish(n);
  }

  /**
   * Install (or remove with null) a hook called around every non-empty publish: `beforePublish` after
   * the slots are written and before they become visible, `afterPublish` right after. Used by file
   * ingest to record exactly-once progress (engine/ingest/progress.ts). One method call per batch.
   */
  setPublishHook(hook: PublishHook | null): void {
    this.#hook = hook;
  }

  /** Free slots as last known (may be stale-low, never stale-high). */
  get freeSlots(): number {
    this.#cachedRead = Atomics.load(this.#ctrl, L.READ_SEQ_I32);
    return this.slotCount - ((this.#w - this.#cachedRead) | 0);
  }

  /** Current supervisor state (RingState). */
  get state(): RingState {
    return Atomics.load(this.#ctrl, L.STATE_I32) as RingState;
  }

  /**
   * Block (Atomics.wait) until at least `want` slots are free, the ring state changes from what it was
   * on entry (e.g. the supervisor sets DRAINING: check `state` and stop producing), the ring is STOPPED,
   * or the timeout. Called while already DRAINING it still waits for space, so a draining producer can
   * flush what it holds. A spurious 'changed' is possible: callers loop. Sync workers only.
   */
  waitForSpace(want: number, timeoutMs: number): ParkResult {
    this.#checkWant(want, timeoutMs);
    const deadline = performance.now() + timeoutMs;
    const entryState = Atomics.load(this.#ctrl, L.STATE_I32);
    for (;;) {
      const st = Atomics.load(this.#ctrl, L.STATE_I32);
      const read = Atomics.load(this.#ctrl, L.READ_SEQ_I32);
      if (this.slotCount - ((this.#w - read) | 0) >= want) return 'changed';
      if (st !== entryState || st === RingState.STOPPED) return 'changed';
      const left = deadline - performance.now();
      if (left <= 0) return 'timed-out';
      parkSync(this.#ctrl, L.READ_SEQ_I32, read, st, L.PRODUCER_PARKED_I32, L.PRODUCER_PARKS_I32, left);
    }
  }

  /** Like waitForSpace, without blocking the event loop. */
  async waitForSpaceAsync(want: number, timeoutMs: number): Promise<ParkResult> {
    this.#checkWant(want, timeoutMs);
    const deadline = performance.now() + timeoutMs;
    const entryState = Atomics.load(this.#ctrl, L.STATE_I32);
    for (;;) {
      const st = Atomics.load(this.#ctrl, L.STATE_I32);
      const read = Atomics.load(this.#ctrl, L.READ_SEQ_I32);
      if (this.slotCount - ((this.#w - read) | 0) >= want) return 'changed';
      if (st !== entryState || st === RingState.STOPPED) return 'changed';
      const left = deadline - performance.now();
      if (left <= 0) return 'timed-out';
      await parkAsync(this.#ctrl, L.READ_SEQ_I32, read, st, L.PRODUCER_PARKED_I32, L.PRODUCER_PARKS_I32, left);
    }
  }

  #checkWant(want: number, timeoutMs: number): void {
    if (!isCount(want, this.slotCount)) {
      throw engineError('ENGINE_ERR_RING_BATCH', `wait for ${String(want)} free slots: must be an integer 0 .. ${this.slotCount} (the ring's size)`, { want: Number(want), slotCount: this.slotCount });
    }
    checkTimeout(timeoutMs);
  }
}

/** Consumer side. Exactly one thread may own the reader of a ring. */
export class RingReader {
  readonly buffer: SharedArrayBuffer;
  readonly views: SlotViews;
  readonly slotCount: number;
  readonly slotBytes: number;
  readonly #ctrl: Int32Array;
  readonly #mask: number;
  #r: number;
  #cachedWrite: number;
  #available = 0;
  #releasedLo: number;
  #releasedHi: number;

  private constructor(sab: SharedArrayBuffer, g: Geometry) {
    this.buffer = sab;
    this.views = makeViews(sab);
    this.slotCount = g.slotCount;
    this.slotBytes = g.slotBytes;
    this.#ctrl = g.ctrl;
    this.#mask = g.mask;
    this.#r = Atomics.load(g.ctrl, L.READ_SEQ_I32);
    this.#cachedWrite = Atomics.load(g.ctrl, L.WRITE_SEQ_I32);
    const released = resumeCounter(g.ctrl, L.RELEASED_LO_I32, L.RELEASED_HI_I32);
    this.#releasedLo = released % 4294967296;
    this.#releasedHi = Math.floor(released / 4294967296);
  }

  static attach(sab: SharedArrayBuffer, recordKind?: number): RingReader {
    return new RingReader(sab, validate(sab, recordKind));
  }

  /** Number of published slots ready to read (one Atomics.load). */
  available(): number {
    this.#cachedWrite = Atomics.load(this.#ctrl, L.WRITE_SEQ_I32);
    const n = (this.#cachedWrite - this.#r) | 0;
    this.#available = n;
    return n;
  }

  /** Absolute byte offset of the i-th available slot. */
  slotByte(i: number): number {
    return L.CTRL_BYTES + ((this.#r + i) & this.#mask) * this.slotBytes;
  }

  /** Hand `n` read slots back to the producer: one Atomics.store for the batch. */
  release(n: number): void {
    if (!isCount(n, this.#available)) {
      throw engineError('ENGINE_ERR_RING_BATCH', `release of ${String(n)} slots but only ${this.#available} were available`, { n: Number(n), available: this.#available });
    }
    if (n === 0) return;
    this.#available -= n;
    this.#r = (this.#r + n) | 0;
    const lo = this.#releasedLo + n;
    if (lo > 0xffffffff) {
      // why three stores: the carry protocol of 64-bit counters (see readCounter)
      Atomics.store(this.#ctrl, L.RELEASED_HI_I32, (this.#releasedHi * 2 + 1) | 0);
      this.#releasedLo = lo - 4294967296;
      Atomics.store(this.#ctrl, L.RELEASED_LO_I32, this.#releasedLo | 0);
      this.#releasedHi++;
      Atomics.store(this.#ctrl, L.RELEASED_HI_I32, (this.#releasedHi * 2) | 0);
    } else {
      this.#releasedLo = lo;
      Atomics.store(this.#ctrl, L.RELEASED_LO_I32, lo | 0);
    }
    Atomics.store(this.#ctrl, L.READ_SEQ_I32, this.#r);
    wakeParked(this.#ctrl, L.PRODUCER_PARKED_I32);
  }

  /** The write sequence seen by the last `available()`; what a park compares against. */
  get lastSeenWrite(): number {
    return this.#cachedWrite;
  }

  get state(): RingState {
    return Atomics.load(this.#ctrl, L.STATE_I32) as RingState;
  }

  /**
   * True when the ring is STOPPED (the producer is gone) and nothing is left to read. Not at DRAINING: a
   * producer may still publish the batch it had claimed when DRAINING was set, and stopping on an empty
   * ring then would lose it. The state is loaded before the sequence, so a STOPPED seen here covers every
   * publish.
   */
  get finished(): boolean {
    return Atomics.load(this.#ctrl, L.STATE_I32) === RingState.STOPPED && this.available() === 0;
  }

  /**
   * Block (Atomics.wait) until data is published, the ring state changes (e.g. the supervisor sets
   * DRAINING or STOPPED), or the timeout. Returns at once when data is there or the ring is STOPPED.
   * A spurious 'changed' is possible: callers loop and re-check. Sync workers only.
   */
  waitForData(timeoutMs: number): ParkResult {
    checkTimeout(timeoutMs);
    const st = Atomics.load(this.#ctrl, L.STATE_I32);
    if (((Atomics.load(this.#ctrl, L.WRITE_SEQ_I32) - this.#r) | 0) !== 0) return 'changed';
    if (st === RingState.STOPPED) return 'changed';
    return parkSync(this.#ctrl, L.WRITE_SEQ_I32, this.#r, st, L.CONSUMER_PARKED_I32, L.CONSUMER_PARKS_I32, timeoutMs);
  }

  /** Like waitForData, without blocking the event loop (validator, compactor, uWS thread). */
  async waitForDataAsync(timeoutMs: number): Promise<ParkResult> {
    checkTimeout(timeoutMs);
    const st = Atomics.load(this.#ctrl, L.STATE_I32);
    if (((Atomics.load(this.#ctrl, L.WRITE_SEQ_I32) - this.#r) | 0) !== 0) return 'changed';
    if (st === RingState.STOPPED) return 'changed';
    return parkAsync(this.#ctrl, L.WRITE_SEQ_I32, this.#r, st, L.CONSUMER_PARKED_I32, L.CONSUMER_PARKS_I32, timeoutMs);
  }

  /**
   * `waitForDataAsync` for a consumer that has already looked at `ahead` published slots past its release
   * point without releasing them (it releases later, e.g. once they are durable): waits for data beyond those.
   */
  async waitForMoreDataAsync(ahead: number, timeoutMs: number): Promise<ParkResult> {
    checkTimeout(timeoutMs);
    const st = Atomics.load(this.#ctrl, L.STATE_I32);
    const seen = (this.#r + ahead) | 0;
    if (((Atomics.load(this.#ctrl, L.WRITE_SEQ_I32) - seen) | 0) !== 0) return 'changed';
    if (st === RingState.STOPPED) return 'changed';
    return parkAsync(this.#ctrl, L.WRITE_SEQ_I32, seen, st, L.CONSUMER_PARKED_I32, L.CONSUMER_PARKS_I32, timeoutMs);
  }
}

export interface RingStats {
  slotCount: number;
  slotBytes: number;
  occupancy: number;
  fill: number;
  published: number;
  released: number;
  fullStalls: number;
  producerParks: number;
  consumerParks: number;
  state: 'running' | 'draining' | 'stopped';
}

/**
 * 64-bit counters (published, released) as two int32 words with a single writer. The HI word holds
 * 2 x the high 32 bits and is odd while a carry is being written: on a carry the owner stores
 * HI = 2H+1, then the wrapped LO, then HI = 2H+2 (per batch otherwise only LO changes). A reader loads
 * HI, LO, HI and retries if HI moved. With HI even and unchanged, LO cannot be a wrapped value (its
 * store follows the odd HI in the total order of Atomics). With HI odd and unchanged, LO is either the
 * value before the carry (>= 2^32 - 2^30: a batch is at most 2^30) or after it (< 2^30), so the carry is
 * decided from LO. Why not simply "LO then HI": a reader could load the old HI, the wrapped LO and the
 * old HI again and come out 2^32 short.
 */
function decodeCounter(hiWord: number, loWord: number): number {
  const h = hiWord >>> 0;
  const lo = loWord >>> 0;
  const hi = (h >>> 1) + ((h & 1) === 1 && lo < 0x80000000 ? 1 : 0);
  return hi * 4294967296 + lo;
}

function readCounter(c: Int32Array, loI32: number, hiI32: number): number {
  for (;;) {
    const h = Atomics.load(c, hiI32);
    const lo = Atomics.load(c, loI32);
    if (Atomics.load(c, hiI32) === h) return decodeCounter(h, lo);
  }
}

/** Attach of the counter's owner: read it, and finish a carry a previous owner left half done. */
function resumeCounter(c: Int32Array, loI32: number, hiI32: number): number {
  const v = readCounter(c, loI32, hiI32);
  if ((Atomics.load(c, hiI32) & 1) === 1) Atomics.store(c, hiI32, (Math.floor(v / 4294967296) * 2) | 0);
  return v;
}

/** Counters of a ring, readable from any thread without messages (allocates; not for the hot path). */
export function ringStats(sab: SharedArrayBuffer): RingStats {
  const g = validate(sab);
  const c = g.ctrl;
  const occupancy = (Atomics.load(c, L.WRITE_SEQ_I32) - Atomics.load(c, L.READ_SEQ_I32)) | 0;
  const st = Atomics.load(c, L.STATE_I32);
  return {
    slotCount: g.slotCount,
    slotBytes: g.slotBytes,
    occupancy,
    fill: occupancy / g.slotCount,
    published: readCounter(c, L.PUBLISHED_LO_I32, L.PUBLISHED_HI_I32),
    released: readCounter(c, L.RELEASED_LO_I32, L.RELEASED_HI_I32),
    fullStalls: Atomics.load(c, L.FULL_STALLS_I32) >>> 0,
    producerParks: Atomics.load(c, L.PRODUCER_PARKS_I32) >>> 0,
    consumerParks: Atomics.load(c, L.CONSUMER_PARKS_I32) >>> 0,
    state: st === RingState.RUNNING ? 'running' : st === RingState.DRAINING ? 'draining' : 'stopped',
  };
}

/**
 * Supervisor: change a ring's state and wake both parties so they notice at once.
 * RUNNING -> DRAINING (producer stops, consumer drains) -> STOPPED.
 */
export function setRingState(sab: SharedArrayBuffer, state: RingState): void {
  const { ctrl } = validate(sab);
  if (state !== RingState.RUNNING && state !== RingState.DRAINING && state !== RingState.STOPPED) {
    throw engineError('ENGINE_ERR_INVALID_ARG', `ring state must be RUNNING, DRAINING or STOPPED (1..3), got ${String(state)}`);
  }
  Atomics.store(ctrl, L.STATE_I32, state);
  Atomics.add(ctrl, L.HEARTBEAT_I32, 1);
  // why: wake both parties so a state change is seen now rather than at the park timeout. Parks re-check
  // the state after raising their flag, and wakeParked clears the flag before notifying, so a change that
  // lands while a party is about to sleep is not lost (park.ts).
  wakeParked(ctrl, L.CONSUMER_PARKED_I32);
  wakeParked(ctrl, L.PRODUCER_PARKED_I32);
}

/**
 * Test hook: a fresh ring whose sequences start at `startSeq` (e.g. near 2^31 or 2^32) to exercise
 * wrap-around without pushing billions of records. Both sides must attach after this call.
 */
export function createRingAtSeq(opts: RingOptions, startSeq: number): SharedArrayBuffer {
  const sab = createRing(opts);
  const ctrl = new Int32Array(sab, 0, CTRL_I32);
  Atomics.store(ctrl, L.WRITE_SEQ_I32, startSeq | 0);
  Atomics.store(ctrl, L.READ_SEQ_I32, startSeq | 0);
  return sab;
}
