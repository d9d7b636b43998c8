/**
 * WebSocket wire format: encode and decode `Frame`s of `schemas/wire.fbs` (file identifier "TPW1").
 *
 * Edges only (STYLE 3.11): the rings carry our own fixed slots (`schemas/records.ts`); FlatBuffers are
 * built here, once per outgoing frame, and read by clients and tests.
 *
 * - {@link WireEncoder} keeps ONE `flatbuffers.Builder` per instance (one per thread) and `clear()`s it
 *   for every frame. Every `encode*` returns a view INTO the builder's buffer: send or copy it before the
 *   next `encode*` on the same encoder (uWS `publish`/`send` copy synchronously, so
 *   `app.publish(topic, enc.encodeTickBatch(...), true)` is fine; keeping the array for later is not).
 *   Ticks are written from columns ({@link TickColumns}, typed arrays, e.g. filled from ring slots): no
 *   per-tick object, closure or callback.
 * - {@link WireDecoder} verifies a frame before reading it (bounds of every offset, vtable, string and
 *   vector, the file identifier, required fields, union type), because the FlatBuffers JS reader does
 *   no checking: on corrupt input it reads `undefined` bytes as 0, returns garbage, or loops over a
 *   garbage vector length. Any failure is an `ENGINE_ERR_SCHEMA` EngineError, never a crash, a hang or
 *   another error type. It then reads through reused flyweights (`getRootAsFrame(bb, reused)`) and
 *   returns plain JS objects ({@link decodeFrame}, for tests and clients), or fills {@link TickColumns}
 *   without per-tick objects ({@link WireDecoder.readTickBatchInto}).
 * - {@link frameToJson} is the JSON form of the same messages for WebSocket clients that ask for JSON.
 *
 * Numbers: timestamps are doubles of Unix µs (exact below 2^53; see wire.fbs for why not int64), no
 * BigInt anywhere. Scalars in tables are always written (`forceDefaults`), so -0 and 0 round-trip
 * bit-exactly and an optional GEX level of 0 is not lost (flatc 2.0.8 bug, see wire.fbs).
 */
import * as flatbuffers from 'flatbuffers';
import { engineError, isEngineError, type EngineError } from '../engine/errors.ts';
import {
  Bar, BookLevel, BookUpdate, Error as ErrorTable, Frame, GexSnapshot, GexStrike, Metric, Payload, ServiceState, Side,
  Status, Tick, TickBatch,
} from './generated/wire.ts';

export { Payload, ServiceState, Side } from './generated/wire.ts';

/** The frame's file identifier (bytes 4..7 of every frame). */
export const WIRE_FILE_IDENTIFIER = 'TPW1';
/** Bytes of one Tick struct in a TickBatch vector. */
export const TICK_STRUCT_BYTES = 56;

// ---- plain message shapes (decode output, encode input, JSON form) -------------------------------

export type SideName = 'unknown' | 'buy' | 'sell';
export type ServiceStateName = 'unknown' | 'starting' | 'running' | 'degraded' | 'reconnecting' | 'down' | 'disabled';

export interface WireTick {
  symbolId: number; // u16
  seq: number; // u32
  tsMicros: number; // Unix µs
  price: number; // NaN when there is no trade (a quote)
  bid: number;
  ask: number;
  size: number; // u32
  bidSize: number; // u32
  askSize: number; // u32
  side: SideName;
  flags: number; // u32 TradeFlag bits (schemas/records.ts)
}

export interface WireTickBatch {
  symbol: string;
  source: string;
  firstSeq: number;
  ticks: WireTick[];
}

export interface WireBookLevel {
  price: number;
  size: number; // u32
  orders: number; // u16
}

export interface WireBookUpdate {
  symbol: string;
  tsMicros: number;
  seq: number;
  bids: WireBookLevel[];
  asks: WireBookLevel[];
  isSnapshot: boolean;
}

export interface WireGexStrike {
  strike: number;
  callGamma: number;
  putGamma: number;
  netGamma: number;
}

export interface WireGexSnapshot {
  ticker: string;
  tsMicros: number;
  spot: number | null;
  zeroGamma: number | null;
  callWall: number | null;
  putWall: number | null;
  strikes: WireGexStrike[];
  rawJson: string | null;
}

export interface WireMetric {
  name: string;
  value: number;
}

export interface WireStatus {
  service: string;
  state: ServiceStateName;
  tsMicros: number;
  message: string | null;
  metrics: WireMetric[];
}

export interface WireErrorMessage {
  code: string;
  message: string;
  requestId: string | null;
}

/**
 * One OHLCV bar (wire.fbs `Bar`). The JSON form lists the fields in this order (frameToJson writes the
 * decoded object as is, and the hub's JSON bar frames use the same order).
 */
export interface WireBar {
  symbol: string;
  /** '1m' for bars the hub builds from trades, 'source' for a bar source's records. */
  interval: string;
  startMicros: number; // Unix µs
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number; // double on the wire: a sum of sizes may pass 2^32
  trades: number; // u32
  buyVolume: number;
  sellVolume: number;
}

export type WirePayload =
  | ({ type: 'tickBatch' } & WireTickBatch)
  | ({ type: 'bookUpdate' } & WireBookUpdate)
  | ({ type: 'gexSnapshot' } & WireGexSnapshot)
  | ({ type: 'status' } & WireStatus)
  | ({ type: 'error' } & WireErrorMessage)
  | ({ type: 'bar' } & WireBar);

export type WirePayloadType = WirePayload['type'];

export interface WireFrame {
  channel: string;
  tsMicros: number;
  payload: WirePayload;
}

/**
 * Ticks as columns (structure of arrays), the callback-free source for {@link WireEncoder.encodeTickBatch}
 * and the target of {@link WireDecoder.readTickBatchInto}. `side` holds {@link Side} values.
 */
export interface TickColumns {
  readonly symbolId: Uint16Array;
  readonly seq: Uint32Array;
  readonly tsMicros: Float64Array;
  readonly price: Float64Array;
  readonly bid: Float64Array;
  readonly ask: Float64Array;
  readonly size: Uint32Array;
  readonly bidSize: Uint32Array;
  readonly askSize: Uint32Array;
  readonly side: Uint8Array;
  readonly flags: Uint32Array;
}

/** Allocate columns for `capacity` ticks (allocates; once per consumer, not per batch). */
export function createTickColumns(capacity: number): TickColumns {
  if (!Number.isInteger(capacity) || capacity < 0) {
    throw engineError('ENGINE_ERR_INVALID_ARG', `tick column capacity must be a non-negative integer, got ${String(capacity)}`);
  }
  return {
    symbolId: new Uint16Array(capacity), seq: new Uint32Array(capacity), tsMicros: new Float64Array(capacity),
    price: new Float64Array(capacity), bid: new Float64Array(capacity), ask: new Float64Array(capacity),
    size: new Uint32Array(capacity), bidSize: new Uint32Array(capacity), askSize: new Uint32Array(capacity),
    side: new Uint8Array(capacity), flags: new Uint32Array(capacity),
  };
}

function columnsCapacity(c: TickColumns): number {
  return Math.min(
    c.symbolId.length, c.seq.length, c.tsMicros.length, c.price.length, c.bid.length, c.ask.length,
    c.size.length, c.bidSize.length, c.askSize.length, c.side.length, c.flags.length,
  );
}

// ---- enum names ----------------------------------------------------------------------------------

const SIDE_NAMES: readonly SideName[] = ['unknown', 'buy', 'sell'];
const STATE_NAMES: readonly ServiceStateName[] = ['unknown', 'starting', 'running', 'degraded', 'reconnecting', 'down', 'disabled'];

/** Side value -> name; a value this schema does not know (newer writer, corrupt byte) reads as 'unknown'. */
export function sideName(side: number): SideName {
  return SIDE_NAMES[side] ?? 'unknown';
}

export function sideCode(name: SideName): Side {
  switch (name) {
    case 'unknown': return Side.Unknown;
    case 'buy': return Side.Buy;
    case 'sell': return Side.Sell;
    default: throw engineError('ENGINE_ERR_INVALID_ARG', `unknown side ${JSON.stringify(name)}`);
  }
}

export function serviceStateName(state: number): ServiceStateName {
  return STATE_NAMES[state] ?? 'unknown';
}

export function serviceStateCode(name: ServiceStateName): ServiceState {
  const i = STATE_NAMES.indexOf(name);
  if (i < 0) throw engineError('ENGINE_ERR_INVALID_ARG', `unknown service state ${JSON.stringify(name)}`);
  return i as ServiceState;
}

// ---- encoder -------------------------------------------------------------------------------------

const NAME_CACHE_MAX = 4096;

function requireString(s: unknown, what: string): string {
  if (typeof s !== 'string') throw engineError('ENGINE_ERR_INVALID_ARG', `${what} must be a string, got ${typeof s}`);
  return s;
}

/**
 * Builds frames. One instance per thread; not re-entrant. Each `encode*` returns a Uint8Array VIEW into
 * the builder: it is valid until the next `encode*` call on this encoder, so send or copy it first.
 */
export class WireEncoder {
  readonly #b: flatbuffers.Builder;
  /** UTF-8 of names that repeat on every frame (channel, symbol, source, ...): encoded once, copied after. */
  readonly #names = new Map<string, Uint8Array>();
  readonly #utf8 = new TextEncoder();

  /** `initialBytes`: starting builder size; it grows (and stays grown) when a frame needs more. */
  constructor(initialBytes = 8192) {
    this.#b = new flatbuffers.Builder(initialBytes);
  }

  #begin(): flatbuffers.Builder {
    const b = this.#b;
    b.clear();
    // clear() resets this flag. Always write scalars, even at their default: exact -0, and the flatc 2.0.8
    // optional-scalar bug (GexSnapshot levels of 0) cannot drop a value.
    b.forceDefaults(true);
    return b;
  }

  /** A name's UTF-8 bytes, cached (bounded: cleared when it reaches NAME_CACHE_MAX entries). */
  #name(s: unknown, what: string): Uint8Array {
    let u = this.#names.get(s as string);
    if (u === undefined) {
      u = this.#utf8.encode(requireString(s, what));
      if (this.#names.size >= NAME_CACHE_MAX) this.#names.clear();
      this.#names.set(s as string, u);
    }
    return u;
  }

  #finish(b: flatbuffers.Builder, channel: string, frameTsMicros: number, type: Payload, payload: flatbuffers.Offset): Uint8Array {
    // Strings of a table must be created before startObject (no nesting): channel is built after the payload.
    const channelOff = b.createString(this.#name(channel, 'channel'));
    Frame.startFrame(b);
    Frame.addPayloadType(b, type);
    Frame.addPayload(b, payload);
    Frame.addTsMicros(b, frameTsMicros);
    Frame.addChannel(b, channelOff);
    Frame.finishFrameBuffer(b, Frame.endFrame(b));
    return b.asUint8Array();
  }

  /**
   * A TickBatch of `count` ticks taken from `cols` at indices `start .. start+count-1`. `firstSeq` is
   * written as `cols.seq[start]` (0 for an empty batch). No per-tick allocation.
   */
  encodeTickBatch(channel: string, frameTsMicros: number, symbol: string, source: string, cols: TickColumns, start: number, count: number): Uint8Array {
    if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 0 || start + count > columnsCapacity(cols)) {
      throw engineError('ENGINE_ERR_INVALID_ARG', `tick range ${String(start)}+${String(count)} is outside the columns (capacity ${columnsCapacity(cols)})`);
    }
    const b = this.#begin();
    const symbolOff = b.createString(this.#name(symbol, 'symbol'));
    const sourceOff = b.createString(this.#name(source, 'source'));
    const { tsMicros, price, bid, ask, seq, size, bidSize, askSize, flags, symbolId, side } = cols;
    TickBatch.startTicksVector(b, count);
    for (let i = start + count - 1; i >= start; i--) { // FlatBuffers vectors are built back to front
      Tick.createTick(b, tsMicros[i]!, price[i]!, bid[i]!, ask[i]!, seq[i]!, size[i]!, bidSize[i]!, askSize[i]!, flags[i]!, symbolId[i]!, side[i]!);
    }
    const ticksOff = b.endVector();
    TickBatch.startTickBatch(b);
    TickBatch.addSymbol(b, symbolOff);
    TickBatch.addSource(b, sourceOff);
    TickBatch.addTicks(b, ticksOff);
    TickBatch.addFirstSeq(b, count > 0 ? seq[start]! : 0);
    return this.#finish(b, channel, frameTsMicros, Payload.TickBatch, TickBatch.endTickBatch(b));
  }

  /** A TickBatch from tick objects (tests, JSON-to-binary bridges): the same bytes as the columns path, slower. */
  encodeTickBatchObjects(channel: string, frameTsMicros: number, batch: WireTickBatch): Uint8Array {
    const b = this.#begin();
    const symbolOff = b.createString(this.#name(batch.symbol, 'symbol'));
    const sourceOff = b.createString(this.#name(batch.source, 'source'));
    const ticks = batch.ticks;
    TickBatch.startTicksVector(b, ticks.length);
    for (let i = ticks.length - 1; i >= 0; i--) {
      const t = ticks[i]!;
      Tick.createTick(b, t.tsMicros, t.price, t.bid, t.ask, t.seq, t.size, t.bidSize, t.askSize, t.flags, t.symbolId, sideCode(t.side));
    }
    const ticksOff = b.endVector();
    TickBatch.startTickBatch(b);
    TickBatch.addSymbol(b, symbolOff);
    TickBatch.addSource(b, sourceOff);
    TickBatch.addTicks(b, ticksOff);
    TickBatch.addFirstSeq(b, batch.firstSeq);
    return this.#finish(b, channel, frameTsMicros, Payload.TickBatch, TickBatch.endTickBatch(b));
  }

  encodeBookUpdate(channel: string, frameTsMicros: number, u: WireBookUpdate): Uint8Array {
    const b = this.#begin();
    const symbolOff = b.createString(this.#name(u.symbol, 'symbol'));
    const bidsOff = levelsVector(b, u.bids);
    const asksOff = levelsVector(b, u.asks);
    BookUpdate.startBookUpdate(b);
    BookUpdate.addSymbol(b, symbolOff);
    BookUpdate.addTsMicros(b, u.tsMicros);
    BookUpdate.addSeq(b, u.seq);
    BookUpdate.addBids(b, bidsOff);
    BookUpdate.addAsks(b, asksOff);
    BookUpdate.addIsSnapshot(b, u.isSnapshot);
    return this.#finish(b, channel, frameTsMicros, Payload.BookUpdate, BookUpdate.endBookUpdate(b));
  }

  encodeGexSnapshot(channel: string, frameTsMicros: number, g: WireGexSnapshot): Uint8Array {
    const b = this.#begin();
    const tickerOff = b.createString(this.#name(g.ticker, 'ticker'));
    const rawOff = g.rawJson === null ? 0 : b.createString(requireString(g.rawJson, 'rawJson'));
    const strikes = g.strikes;
    GexSnapshot.startStrikesVector(b, strikes.length);
    for (let i = strikes.length - 1; i >= 0; i--) {
      const s = strikes[i]!;
      GexStrike.createGexStrike(b, s.strike, s.callGamma, s.putGamma, s.netGamma);
    }
    const strikesOff = b.endVector();
    GexSnapshot.startGexSnapshot(b);
    GexSnapshot.addTicker(b, tickerOff);
    GexSnapshot.addTsMicros(b, g.tsMicros);
    if (g.spot !== null) GexSnapshot.addSpot(b, g.spot);
    if (g.zeroGamma !== null) GexSnapshot.addZeroGamma(b, g.zeroGamma);
    if (g.callWall !== null) GexSnapshot.addCallWall(b, g.callWall);
    if (g.putWall !== null) GexSnapshot.addPutWall(b, g.putWall);
    GexSnapshot.addStrikes(b, strikesOff);
    if (rawOff !== 0) GexSnapshot.addRawJson(b, rawOff);
    return this.#finish(b, channel, frameTsMicros, Payload.GexSnapshot, GexSnapshot.endGexSnapshot(b));
  }

  encodeStatus(channel: string, frameTsMicros: number, s: WireStatus): Uint8Array {
    const b = this.#begin();
    const serviceOff = b.createString(this.#name(s.service, 'service'));
    const messageOff = s.message === null ? 0 : b.createString(requireString(s.message, 'message'));
    const metrics = s.metrics;
    // Tables of a vector are built first, their offsets collected, then the vector of offsets. The
    // offsets array is the one allocation here; status frames are not on a hot path.
    const offs = new Array<number>(metrics.length);
    for (let i = 0; i < metrics.length; i++) {
      const m = metrics[i]!;
      const nameOff = b.createString(this.#name(m.name, 'metric name'));
      Metric.startMetric(b);
      Metric.addName(b, nameOff);
      Metric.addValue(b, m.value);
      offs[i] = Metric.endMetric(b);
    }
    const metricsOff = Status.createMetricsVector(b, offs);
    const state = serviceStateCode(s.state);
    Status.startStatus(b);
    Status.addService(b, serviceOff);
    Status.addState(b, state);
    Status.addTsMicros(b, s.tsMicros);
    if (messageOff !== 0) Status.addMessage(b, messageOff);
    Status.addMetrics(b, metricsOff);
    return this.#finish(b, channel, frameTsMicros, Payload.Status, Status.endStatus(b));
  }

  encodeError(channel: string, frameTsMicros: number, e: WireErrorMessage): Uint8Array {
    const b = this.#begin();
    const codeOff = b.createString(this.#name(e.code, 'code'));
    const messageOff = b.createString(requireString(e.message, 'message'));
    const requestIdOff = e.requestId === null ? 0 : b.createString(requireString(e.requestId, 'requestId'));
    ErrorTable.startError(b);
    ErrorTable.addCode(b, codeOff);
    ErrorTable.addMessage(b, messageOff);
    if (requestIdOff !== 0) ErrorTable.addRequestId(b, requestIdOff);
    return this.#finish(b, channel, frameTsMicros, Payload.Error, ErrorTable.endError(b));
  }

  /**
   * A Bar. `trades` must be a u32 integer (ENGINE_ERR_INVALID_ARG otherwise: the builder would wrap it
   * silently); every other number is a double and round-trips bit for bit (NaN included).
   */
  encodeBar(channel: string, frameTsMicros: number, bar: WireBar): Uint8Array {
    const trades = bar.trades;
    if (typeof trades !== 'number' || (trades >>> 0) !== trades) {
      throw engineError('ENGINE_ERR_INVALID_ARG', `bar trades must be an integer in [0, 2^32), got ${String(trades)}`);
    }
    const b = this.#begin();
    const symbolOff = b.createString(this.#name(bar.symbol, 'symbol'));
    const intervalOff = b.createString(this.#name(bar.interval, 'interval'));
    Bar.startBar(b);
    Bar.addSymbol(b, symbolOff);
    Bar.addInterval(b, intervalOff);
    Bar.addStartMicros(b, bar.startMicros);
    Bar.addOpen(b, bar.open);
    Bar.addHigh(b, bar.high);
    Bar.addLow(b, bar.low);
    Bar.addClose(b, bar.close);
    Bar.addVolume(b, bar.volume);
    Bar.addTrades(b, trades);
    Bar.addBuyVolume(b, bar.buyVolume);
    Bar.addSellVolume(b, bar.sellVolume);
    return this.#finish(b, channel, frameTsMicros, Payload.Bar, Bar.endBar(b));
  }

  /** Encode any frame from its plain form (the inverse of `decodeFrame`). */
  encode(frame: WireFrame): Uint8Array {
    const p = frame.payload;
    switch (p.type) {
      case 'tickBatch': return this.encodeTickBatchObjects(frame.channel, frame.tsMicros, p);
      case 'bookUpdate': return this.encodeBookUpdate(frame.channel, frame.tsMicros, p);
      case 'gexSnapshot': return this.encodeGexSnapshot(frame.channel, frame.tsMicros, p);
      case 'status': return this.encodeStatus(frame.channel, frame.tsMicros, p);
      case 'error': return this.encodeError(frame.channel, frame.tsMicros, p);
      case 'bar': return this.encodeBar(frame.channel, frame.tsMicros, p);
      default: throw engineError('ENGINE_ERR_INVALID_ARG', `unknown payload type ${JSON.stringify((p as { type?: unknown }).type)}`);
    }
  }
}

function levelsVector(b: flatbuffers.Builder, levels: readonly WireBookLevel[]): flatbuffers.Offset {
  BookUpdate.startBidsVector(b, levels.length); // same element size and alignment as asks
  for (let i = levels.length - 1; i >= 0; i--) {
    const l = levels[i]!;
    BookLevel.createBookLevel(b, l.price, l.size, l.orders);
  }
  return b.endVector();
}

// ---- verifier ------------------------------------------------------------------------------------
// A table-driven bounds verifier for this schema, after the C++ flatbuffers::Verifier: every offset the
// generated readers will follow is checked to land inside the buffer before any reader runs. Work is
// linear in the frame size (each table, string and vector is checked once per reference; vector lengths
// are checked against the remaining bytes before anything iterates over them).

const K_SCALAR = 0;
const K_STRING = 1;
const K_STRUCTS = 2; // vector of structs: `bytes` per element
const K_TABLES = 3; // vector of tables of `table`
const K_UNION_TYPE = 4; // u8 union type; the next field is the value
const K_UNION = 5; // union value, `union[type]` is the table spec

export interface WireFieldSpec {
  readonly name: string;
  readonly kind: number;
  /** Bytes of the field inside the table: the scalar size, or 4 (a uoffset) for strings, vectors, unions. */
  readonly bytes: number;
  /** K_STRUCTS: bytes of one struct element. */
  readonly elemBytes?: number;
  readonly required: boolean;
  readonly table?: WireTableSpec;
  readonly union?: readonly (WireTableSpec | null)[];
}

export interface WireTableSpec {
  readonly name: string;
  /** In schema order: field i is vtable slot i. */
  readonly fields: readonly WireFieldSpec[];
}

const scalarField = (name: string, bytes: number): WireFieldSpec => ({ name, kind: K_SCALAR, bytes, required: false });
const strField = (name: string, required: boolean): WireFieldSpec => ({ name, kind: K_STRING, bytes: 4, required });
const structsField = (name: string, elemBytes: number, required: boolean): WireFieldSpec => ({ name, kind: K_STRUCTS, bytes: 4, elemBytes, required });

const METRIC_SPEC: WireTableSpec = { name: 'Metric', fields: [strField('name', true), scalarField('value', 8)] };
const TICK_BATCH_SPEC: WireTableSpec = {
  name: 'TickBatch',
  fields: [strField('symbol', true), strField('source', true), structsField('ticks', TICK_STRUCT_BYTES, true), scalarField('first_seq', 4)],
};
const BOOK_UPDATE_SPEC: WireTableSpec = {
  name: 'BookUpdate',
  fields: [strField('symbol', true), scalarField('ts_micros', 8), scalarField('seq', 4), structsField('bids', 16, false), structsField('asks', 16, false), scalarField('is_snapshot', 1)],
};
const GEX_SNAPSHOT_SPEC: WireTableSpec = {
  name: 'GexSnapshot',
  fields: [
    strField('ticker', true), scalarField('ts_micros', 8), scalarField('spot', 8), scalarField('zero_gamma', 8), scalarField('call_wall', 8),
    scalarField('put_wall', 8), structsField('strikes', 32, false), strField('raw_json', false),
  ],
};
const STATUS_SPEC: WireTableSpec = {
  name: 'Status',
  fields: [
    strField('service', true), scalarField('state', 1), scalarField('ts_micros', 8), strField('message', false),
    { name: 'metrics', kind: K_TABLES, bytes: 4, required: false, table: METRIC_SPEC },
  ],
};
const ERROR_SPEC: WireTableSpec = { name: 'Error', fields: [strField('code', true), strField('message', true), strField('request_id', false)] };
const BAR_SPEC: WireTableSpec = {
  name: 'Bar',
  fields: [
    strField('symbol', true), strField('interval', true), scalarField('start_micros', 8), scalarField('open', 8), scalarField('high', 8),
    scalarField('low', 8), scalarField('close', 8), scalarField('volume', 8), scalarField('trades', 4), scalarField('buy_volume', 8),
    scalarField('sell_volume', 8),
  ],
};
const FRAME_SPEC: WireTableSpec = {
  name: 'Frame',
  fields: [
    { name: 'payload_type', kind: K_UNION_TYPE, bytes: 1, required: true },
    // index = Payload enum value (append-only: deployed clients decode by it)
    { name: 'payload', kind: K_UNION, bytes: 4, required: true, union: [null, TICK_BATCH_SPEC, BOOK_UPDATE_SPEC, GEX_SNAPSHOT_SPEC, STATUS_SPEC, ERROR_SPEC, BAR_SPEC] },
    scalarField('ts_micros', 8),
    strField('channel', true),
  ],
};

/** The table layouts the verifier enforces, by table name (the layout test checks them against the generated code). */
export const WIRE_TABLE_SPECS: Readonly<Record<string, WireTableSpec>> = {
  Frame: FRAME_SPEC, TickBatch: TICK_BATCH_SPEC, BookUpdate: BOOK_UPDATE_SPEC, GexSnapshot: GEX_SNAPSHOT_SPEC,
  Status: STATUS_SPEC, Metric: METRIC_SPEC, Error: ERROR_SPEC, Bar: BAR_SPEC,
};

function schemaError(reason: string, byteOffset: number, cause?: unknown): EngineError {
  return engineError('ENGINE_ERR_SCHEMA', `wire frame: ${reason}`, { reason, byteOffset }, cause);
}

function rdI32(u8: Uint8Array, p: number): number {
  return u8[p]! | (u8[p + 1]! << 8) | (u8[p + 2]! << 16) | (u8[p + 3]! << 24);
}
function rdU16(u8: Uint8Array, p: number): number {
  return u8[p]! | (u8[p + 1]! << 8);
}

/** Follow the uoffset stored at `p` (4 bytes, already bounds-checked); returns the target, checked to leave 4 bytes. */
function follow(u8: Uint8Array, p: number, what: string): number {
  const rel = rdI32(u8, p); // the generated readers read it signed: a value >= 2^31 must not pass
  if (rel <= 0) throw schemaError(`${what}: bad offset ${rel}`, p);
  const target = p + rel;
  if (target + 4 > u8.length) throw schemaError(`${what}: offset points past the end`, p);
  return target;
}

function verifyTable(u8: Uint8Array, pos: number, spec: WireTableSpec): void {
  const n = u8.length;
  if (pos < 0 || pos + 4 > n) throw schemaError(`${spec.name}: table out of bounds`, pos);
  const vt = pos - rdI32(u8, pos);
  if (vt < 0 || vt + 4 > n) throw schemaError(`${spec.name}: vtable out of bounds`, pos);
  const vtBytes = rdU16(u8, vt);
  const tableBytes = rdU16(u8, vt + 2);
  if (vtBytes < 4 || (vtBytes & 1) !== 0 || vtBytes >= 0x8000 || vt + vtBytes > n) throw schemaError(`${spec.name}: bad vtable size ${vtBytes}`, vt);
  if (tableBytes < 4 || tableBytes >= 0x8000 || pos + tableBytes > n) throw schemaError(`${spec.name}: bad table size ${tableBytes}`, vt);
  const present = (vtBytes - 4) >> 1;
  let unionType = 0;
  const fields = spec.fields;
  for (let i = 0; i < fields.length; i++) {
    const f = fields[i]!;
    const fo = i < present ? rdU16(u8, vt + 4 + 2 * i) : 0;
    if (fo === 0) {
      if (f.required) throw schemaError(`${spec.name}.${f.name}: required field missing`, pos);
      if (f.kind === K_UNION_TYPE) unionType = 0;
      continue;
    }
    if (fo < 4 || fo + f.bytes > tableBytes) throw schemaError(`${spec.name}.${f.name}: field outside its table`, vt + 4 + 2 * i);
    const p = pos + fo;
    switch (f.kind) {
      case K_SCALAR:
        break;
      case K_UNION_TYPE:
        unionType = u8[p]!;
        break;
      case K_STRING: {
        const s = follow(u8, p, `${spec.name}.${f.name}`);
        const len = rdI32(u8, s);
        if (len < 0 || s + 4 + len + 1 > n) throw schemaError(`${spec.name}.${f.name}: string past the end`, s);
        if (u8[s + 4 + len] !== 0) throw schemaError(`${spec.name}.${f.name}: string not terminated`, s + 4 + len);
        break;
      }
      case K_STRUCTS: {
        const v = follow(u8, p, `${spec.name}.${f.name}`);
        const len = rdI32(u8, v);
        if (len < 0 || v + 4 + len * f.elemBytes! > n) throw schemaError(`${spec.name}.${f.name}: vector of ${len} past the end`, v);
        break;
      }
      case K_TABLES: {
        const v = follow(u8, p, `${spec.name}.${f.name}`);
        const len = rdI32(u8, v);
        if (len < 0 || v + 4 + len * 4 > n) throw schemaError(`${spec.name}.${f.name}: vector of ${len} past the end`, v);
        for (let j = 0; j < len; j++) {
          const e = v + 4 + 4 * j;
          verifyTable(u8, follow(u8, e, `${spec.name}.${f.name}[${j}]`), f.table!);
        }
        break;
      }
      case K_UNION: {
        const target = f.union![unionType];
        if (unionType === 0 || target === undefined || target === null) {
          throw schemaError(`${spec.name}.${f.name}: unknown union type ${unionType}`, p);
        }
        verifyTable(u8, follow(u8, p, `${spec.name}.${f.name}`), target);
        break;
      }
      default:
        throw schemaError(`${spec.name}.${f.name}: verifier has no kind ${f.kind}`, p);
    }
  }
}

/**
 * Check that `bytes` is a complete, well-formed Frame (identifier "TPW1", every offset in bounds, required
 * fields present, a known payload type). Throws ENGINE_ERR_SCHEMA; never anything else.
 */
export function verifyFrame(bytes: Uint8Array): void {
  try {
    const n = bytes.length;
    if (n < 12) throw schemaError(`frame of ${n} bytes is too short`, 0);
    if (!hasFrameIdentifier(bytes)) throw schemaError('file identifier is not "TPW1"', 4);
    const root = rdI32(bytes, 0);
    if (root < 8 || root + 4 > n) throw schemaError(`bad root offset ${root}`, 0);
    verifyTable(bytes, root, FRAME_SPEC);
  } catch (e) {
    throw asSchemaError(e); // defence in depth: a verifier bug must still surface as a coded error
  }
}

/** True when bytes 4..7 are the frame identifier "TPW1" (a cheap sniff, not a verification). */
export function hasFrameIdentifier(bytes: Uint8Array): boolean {
  return bytes.length >= 8 && bytes[4] === 0x54 && bytes[5] === 0x50 && bytes[6] === 0x57 && bytes[7] === 0x31;
}

// ---- decoder -------------------------------------------------------------------------------------

/** Header of the last `readTickBatchInto` (one object per decoder, overwritten by each call). */
export interface TickBatchHeader {
  channel: string;
  frameTsMicros: number;
  symbol: string;
  source: string;
  firstSeq: number;
  count: number;
}

function asBytes(bytes: Uint8Array | ArrayBuffer): Uint8Array {
  if (bytes instanceof Uint8Array) return bytes;
  if (bytes instanceof ArrayBuffer) return new Uint8Array(bytes);
  throw engineError('ENGINE_ERR_INVALID_ARG', `a wire frame must be a Uint8Array or ArrayBuffer, got ${Object.prototype.toString.call(bytes)}`);
}

function asSchemaError(e: unknown): EngineError {
  if (isEngineError(e, 'ENGINE_ERR_SCHEMA')) return e;
  return schemaError(`unreadable: ${e instanceof globalThis.Error ? e.message : String(e)}`, -1, e);
}

/**
 * Reads frames. Verifies each frame first (see {@link verifyFrame}), then reads through flyweights
 * reused across calls. One instance per thread; not re-entrant.
 */
export class WireDecoder {
  #bb: flatbuffers.ByteBuffer | null = null;
  readonly #frame = new Frame();
  readonly #tickBatch = new TickBatch();
  readonly #tick = new Tick();
  readonly #book = new BookUpdate();
  readonly #level = new BookLevel();
  readonly #gex = new GexSnapshot();
  readonly #strike = new GexStrike();
  readonly #status = new Status();
  readonly #metric = new Metric();
  readonly #error = new ErrorTable();
  readonly #bar = new Bar();
  readonly #header: TickBatchHeader = { channel: '', frameTsMicros: 0, symbol: '', source: '', firstSeq: 0, count: 0 };

  /**
   * A ByteBuffer over `u8`. flatbuffers' ByteBuffer has no public way to point it at new bytes, and its
   * constructor builds a TextDecoder (~170 ns), so the private `bytes_` field is re-pointed when this
   * runtime has it; the result is checked through the public `bytes()` and a new ByteBuffer is made
   * otherwise, so a runtime that renames the field costs speed, not correctness.
   */
  #bind(u8: Uint8Array): flatbuffers.ByteBuffer {
    let bb = this.#bb;
    if (bb !== null) {
      (bb as unknown as { bytes_: Uint8Array }).bytes_ = u8;
      if (bb.bytes() !== u8) bb = null;
    }
    if (bb === null) {
      bb = new flatbuffers.ByteBuffer(u8);
      this.#bb = bb;
    }
    bb.setPosition(0);
    return bb;
  }

  #root(bytes: Uint8Array | ArrayBuffer): Frame {
    const u8 = asBytes(bytes);
    verifyFrame(u8);
    return Frame.getRootAsFrame(this.#bind(u8), this.#frame);
  }

  /** Verify and decode a frame into plain JS objects (allocates; for tests and clients). */
  decodeFrame(bytes: Uint8Array | ArrayBuffer): WireFrame {
    const frame = this.#root(bytes);
    try {
      return { channel: frame.channel() ?? '', tsMicros: frame.tsMicros(), payload: this.#payload(frame) };
    } catch (e) {
      throw asSchemaError(e);
    }
  }

  /** The payload type of a frame, after verification. */
  payloadType(bytes: Uint8Array | ArrayBuffer): WirePayloadType {
    const t = this.#root(bytes).payloadType();
    const name = PAYLOAD_NAMES[t];
    if (name === undefined) throw schemaError(`unknown payload type ${t}`, -1);
    return name;
  }

  /**
   * Verify a TickBatch frame and copy its ticks into `out` from index 0 (no per-tick objects). Returns
   * this decoder's header object, overwritten by the next call. ENGINE_ERR_SCHEMA if the frame is bad or
   * not a TickBatch; ENGINE_ERR_INVALID_ARG if `out` is too small.
   */
  readTickBatchInto(bytes: Uint8Array | ArrayBuffer, out: TickColumns): TickBatchHeader {
    const frame = this.#root(bytes);
    if (frame.payloadType() !== Payload.TickBatch) throw schemaError(`expected a TickBatch, got payload type ${frame.payloadType()}`, -1);
    const tb = frame.payload(this.#tickBatch) as TickBatch;
    const n = tb.ticksLength();
    if (n > columnsCapacity(out)) {
      throw engineError('ENGINE_ERR_INVALID_ARG', `tick columns hold ${columnsCapacity(out)} ticks, the batch has ${n}`, { count: n });
    }
    try {
      const t = this.#tick;
      for (let i = 0; i < n; i++) {
        tb.ticks(i, t);
        out.tsMicros[i] = t.tsMicros();
        out.price[i] = t.price();
        out.bid[i] = t.bid();
        out.ask[i] = t.ask();
        out.seq[i] = t.seq();
        out.size[i] = t.size();
        out.bidSize[i] = t.bidSize();
        out.askSize[i] = t.askSize();
        out.flags[i] = t.flags();
        out.symbolId[i] = t.symbolId();
        out.side[i] = t.side();
      }
      const h = this.#header;
      h.channel = frame.channel() ?? '';
      h.frameTsMicros = frame.tsMicros();
      h.symbol = tb.symbol() ?? '';
      h.source = tb.source() ?? '';
      h.firstSeq = tb.firstSeq();
      h.count = n;
      return h;
    } catch (e) {
      throw asSchemaError(e);
    }
  }

  #payload(frame: Frame): WirePayload {
    switch (frame.payloadType()) {
      case Payload.TickBatch: {
        const tb = frame.payload(this.#tickBatch) as TickBatch;
        const n = tb.ticksLength();
        const ticks = new Array<WireTick>(n);
        const t = this.#tick;
        for (let i = 0; i < n; i++) {
          tb.ticks(i, t);
          ticks[i] = {
            symbolId: t.symbolId(), seq: t.seq(), tsMicros: t.tsMicros(), price: t.price(), bid: t.bid(), ask: t.ask(),
            size: t.size(), bidSize: t.bidSize(), askSize: t.askSize(), side: sideName(t.side()), flags: t.flags(),
          };
        }
        return { type: 'tickBatch', symbol: tb.symbol() ?? '', source: tb.source() ?? '', firstSeq: tb.firstSeq(), ticks };
      }
      case Payload.BookUpdate: {
        const u = frame.payload(this.#book) as BookUpdate;
        const l = this.#level;
        const bids = new Array<WireBookLevel>(u.bidsLength());
        for (let i = 0; i < bids.length; i++) {
          u.bids(i, l);
          bids[i] = { price: l.price(), size: l.size(), orders: l.orders() };
        }
        const asks = new Array<WireBookLevel>(u.asksLength());
        for (let i = 0; i < asks.length; i++) {
          u.asks(i, l);
          asks[i] = { price: l.price(), size: l.size(), orders: l.orders() };
        }
        return { type: 'bookUpdate', symbol: u.symbol() ?? '', tsMicros: u.tsMicros(), seq: u.seq(), bids, asks, isSnapshot: u.isSnapshot() };
      }
      case Payload.GexSnapshot: {
        const g = frame.payload(this.#gex) as GexSnapshot;
        const s = this.#strike;
        const strikes = new Array<WireGexStrike>(g.strikesLength());
        for (let i = 0; i < strikes.length; i++) {
          g.strikes(i, s);
          strikes[i] = { strike: s.strike(), callGamma: s.callGamma(), putGamma: s.putGamma(), netGamma: s.netGamma() };
        }
        return {
          type: 'gexSnapshot', ticker: g.ticker() ?? '', tsMicros: g.tsMicros(), spot: g.spot(), zeroGamma: g.zeroGamma(),
          callWall: g.callWall(), putWall: g.putWall(), strikes, rawJson: g.rawJson(),
        };
      }
      case Payload.Status: {
        const st = frame.payload(this.#status) as Status;
        const m = this.#metric;
        const metrics = new Array<WireMetric>(st.metricsLength());
        for (let i = 0; i < metrics.length; i++) {
          st.metrics(i, m);
          metrics[i] = { name: m.name() ?? '', value: m.value() };
        }
        return {
          type: 'status', service: st.service() ?? '', state: serviceStateName(st.state()), tsMicros: st.tsMicros(),
          message: st.message(), metrics,
        };
      }
      case Payload.Error: {
        const e = frame.payload(this.#error) as ErrorTable;
        return { type: 'error', code: e.code() ?? '', message: e.message() ?? '', requestId: e.requestId() };
      }
      case Payload.Bar: {
        const r = frame.payload(this.#bar) as Bar;
        // key order = WireBar = the JSON form clients already get (frameToJson writes this object as is)
        return {
          type: 'bar', symbol: r.symbol() ?? '', interval: r.interval() ?? '', startMicros: r.startMicros(), open: r.open(), high: r.high(),
          low: r.low(), close: r.close(), volume: r.volume(), trades: r.trades(), buyVolume: r.buyVolume(), sellVolume: r.sellVolume(),
        };
      }
      default:
        throw schemaError(`unknown payload type ${frame.payloadType()}`, -1);
    }
  }
}

const PAYLOAD_NAMES: readonly (WirePayloadType | undefined)[] = [undefined, 'tickBatch', 'bookUpdate', 'gexSnapshot', 'status', 'error', 'bar'];

// ---- JSON form -----------------------------------------------------------------------------------

/**
 * The JSON form of a frame, for WebSocket clients that ask for JSON: the same field names and shapes as
 * {@link WireFrame} (camelCase, `payload.type` discriminator, sides and states as names, timestamps as
 * Unix µs numbers). JSON has no NaN or Infinity: those numbers (e.g. the price of a quote) become null.
 * Allocates; not for the binary hot path.
 */
export function frameToJson(frame: WireFrame): string {
  // JSON.stringify itself writes NaN and ±Infinity as null (ECMA-262 SerializeJSONProperty); a replacer
  // function to do the same was called for every key and made this 2-3x slower.
  return JSON.stringify(frame);
}

/**
 * The JSON form of a Bar frame with the payload keys in {@link WireBar} order whatever the order of `bar`'s
 * own keys: the exact text the hub has always sent JSON clients for bars (a test pins it byte for byte).
 */
export function barFrameJson(channel: string, frameTsMicros: number, bar: WireBar): string {
  return frameToJson({
    channel, tsMicros: frameTsMicros,
    payload: {
      type: 'bar', symbol: bar.symbol, interval: bar.interval, startMicros: bar.startMicros, open: bar.open, high: bar.high, low: bar.low,
      close: bar.close, volume: bar.volume, trades: bar.trades, buyVolume: bar.buyVolume, sellVolume: bar.sellVolume,
    },
  });
}
