/**
 * The sink's status in a small SharedArrayBuffer: state and counters readable from any thread without
 * messages (the status API reads it), written only by the sink. Counters are f64 (exact to 2^53).
 *
 * Layout (bytes):
 *   0   i32 MAGIC 'RSNK'
 *   4   i32 STATE           SinkState code (written by the sink)
 *   8   i32 ERROR_VERSION   bumped to odd before the last-error text is written, to even after (seqlock)
 *   12  i32 ERROR_BYTES     length of the UTF-8 last-error text
 *   64  f64 × COUNTER_COUNT counters, in the order of COUNTER_NAMES
 *   384 u8 × 128            last error text (UTF-8, truncated)
 */
import { engineError } from '../../engine/errors.ts';

export const SINK_STATUS_MAGIC = 0x4b4e5352; // 'RSNK'
const STATE_I32 = 1;
const ERROR_VERSION_I32 = 2;
const ERROR_BYTES_I32 = 3;
const COUNTERS_F64 = 8; // byte 64
const ERROR_TEXT_BYTE = 384;
const ERROR_TEXT_MAX = 128;
export const SINK_STATUS_BYTES = 512;

export const SINK_STATES = ['disabled', 'connecting', 'catching-up', 'live', 'reconnecting', 'stopped'] as const;
export type SinkState = (typeof SINK_STATES)[number];
export const SinkStateCode: Readonly<Record<SinkState, number>> = {
  disabled: 0, connecting: 1, 'catching-up': 2, live: 3, reconnecting: 4, stopped: 5,
};

/**
 * Counters. "trades" are TRADE records; QUOTE records only update `latest:<SYM>`.
 * - sent: trades acknowledged by Redis into `ticks:<SYM>` (live, from the hold buffer, or from the journal)
 * - skippedDuplicate: trades not sent because their ID is not above the stream's last ID (already there)
 * - outOfOrder: trades the validator flagged V_OUT_OF_ORDER that are older than their stream's newest entry
 *   (a stream only appends; they are in the journal and Parquet)
 * - expired: trades older than the trim horizon (now − retention): they would be trimmed at once
 * - unknownSymbol: records whose symbol id is 0 or not in the registry (counted, never sent)
 * - ignored: records of other kinds (depth, book end, gap, payload refs, bars)
 * - quotes: QUOTE records applied to `latest:<SYM>`
 * - published: PUBLISH messages acknowledged
 * - held: records waiting in the hold buffer now (Redis not ready)
 * - dropped: records the hold buffer could not keep (left to the journal catch-up)
 * - upstreamDropped: records the validator could not put into the sink's ring (it was full) and announced
 *   with an output-overflow GAP marker; the sink catches them up from the journal
 * - lost: dropped records the journal catch-up could not find (no journal, or it gave up): an upper bound
 * - lagRecords: records waiting (ring + hold) at the last update
 * - lagMs: now − event time of the newest trade Redis acknowledged
 * - reconnects: connections re-established after a loss
 * - catchUps / catchUpRecords: journal catch-ups run and journal records read by them
 * - errors: Redis errors seen (command errors, failed batches, connection errors)
 * - batches: pipelines acknowledged
 * - lastErrorAtMs: wall time of the last error (0 = none)
 */
export const COUNTER_NAMES = [
  'sent', 'skippedDuplicate', 'outOfOrder', 'expired', 'unknownSymbol', 'ignored', 'quotes', 'published', 'held', 'dropped', 'upstreamDropped', 'lost',
  'lagRecords', 'lagMs', 'reconnects', 'catchUps', 'catchUpRecords', 'errors', 'batches', 'lastErrorAtMs',
] as const;
export type CounterName = (typeof COUNTER_NAMES)[number];
export const C: Readonly<Record<CounterName, number>> = Object.fromEntries(COUNTER_NAMES.map((n, i) => [n, i])) as Record<CounterName, number>;

export interface RedisSinkStatus extends Record<CounterName, number> {
  state: SinkState;
  lastError: string | null;
}

export function createRedisSinkStatus(): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(SINK_STATUS_BYTES);
  const i32 = new Int32Array(sab);
  Atomics.store(i32, STATE_I32, SinkStateCode.connecting);
  Atomics.store(i32, 0, SINK_STATUS_MAGIC);
  return sab;
}

function check(sab: unknown): SharedArrayBuffer {
  if (!(sab instanceof SharedArrayBuffer) || sab.byteLength !== SINK_STATUS_BYTES || new Int32Array(sab)[0] !== SINK_STATUS_MAGIC) {
    throw engineError('ENGINE_ERR_LAYOUT', 'not a Redis sink status buffer (use createRedisSinkStatus())');
  }
  return sab;
}

/** Writer side (the sink). */
export class SinkStatusWriter {
  readonly buffer: SharedArrayBuffer;
  readonly counters: Float64Array;
  readonly #i32: Int32Array;
  readonly #u8: Uint8Array;
  readonly #enc = new TextEncoder();

  constructor(sab: SharedArrayBuffer) {
    this.buffer = check(sab);
    this.#i32 = new Int32Array(sab);
    this.#u8 = new Uint8Array(sab);
    this.counters = new Float64Array(sab, COUNTERS_F64 * 8, COUNTER_NAMES.length);
  }

  setState(s: SinkState): void {
    Atomics.store(this.#i32, STATE_I32, SinkStateCode[s]);
  }

  get state(): SinkState {
    return SINK_STATES[Atomics.load(this.#i32, STATE_I32)] ?? 'stopped';
  }

  setError(message: string, nowMs: number): void {
    const bytes = this.#enc.encode(message.length > ERROR_TEXT_MAX ? message.slice(0, ERROR_TEXT_MAX) : message);
    const len = Math.min(bytes.length, ERROR_TEXT_MAX);
    Atomics.add(this.#i32, ERROR_VERSION_I32, 1); // odd: writing
    this.#u8.set(bytes.subarray(0, len), ERROR_TEXT_BYTE);
    Atomics.store(this.#i32, ERROR_BYTES_I32, len);
    Atomics.add(this.#i32, ERROR_VERSION_I32, 1); // even: done
    this.counters[C.lastErrorAtMs] = nowMs;
  }
}

/** Read the status from any thread (allocates; cold path). */
export function readRedisSinkStatus(sab: SharedArrayBuffer): RedisSinkStatus {
  check(sab);
  const i32 = new Int32Array(sab);
  const f64 = new Float64Array(sab, COUNTERS_F64 * 8, COUNTER_NAMES.length);
  const out = { state: SINK_STATES[Atomics.load(i32, STATE_I32)] ?? 'stopped', lastError: null } as RedisSinkStatus;
  for (let i = 0; i < COUNTER_NAMES.length; i++) out[COUNTER_NAMES[i]!] = f64[i]!;
  for (let tries = 0; tries < 100; tries++) {
    const v = Atomics.load(i32, ERROR_VERSION_I32);
    if ((v & 1) === 1) continue;
    const len = Atomics.load(i32, ERROR_BYTES_I32);
    const text = len > 0 ? new TextDecoder().decode(new Uint8Array(sab).slice(ERROR_TEXT_BYTE, ERROR_TEXT_BYTE + len)) : null;
    if (Atomics.load(i32, ERROR_VERSION_I32) === v) { out.lastError = text; break; }
  }
  return out;
}
