/**
 * The WebSocket hub: `/ws` for trading bots on the uWS (main) thread (issue 5 item 3).
 *
 * Data path. The engine subscribes the hub to its RecordFeed: `onRecord(views, b)` per validated 64-byte
 * record (schemas/records.ts), `onBatchEnd()` after each batch. Per record the hub copies fields into
 * per-symbol typed-array columns (no per-tick object, closure or JSON); at batch end it encodes ONE frame
 * per symbol and channel (binary FlatBuffers once, JSON once, each only if someone wants that format)
 * and sends the same bytes to every live subscriber.
 *
 * Replay (`from`, trades only): sources in order, each deduplicated by the per-symbol `seq` (modular u32
 * compare) and filtered to ts ≥ from:
 *   1. the history reader (optional dep: Parquet/journal), for [from, hot window heldFromMicros);
 *   2. the hot window (`since`, in pages, pausing while the client's buffer is above the soft limit);
 *   3. the hub's own tail of the trades it already sent live (a small per-symbol ring of raw slots),
 *      for trades the feed delivered that the hot window did not yet hold;
 *   then, in the same synchronous step (so no live batch can slip in between), the client joins the live
 *   subscribers. If the hot window was AHEAD of the feed (it held trades the feed has not delivered yet),
 *   the client waits in a "catching up" list with its last replayed seq as a floor and receives live
 *   frames only from the first trade after that floor (a sub-batch for the straddling batch). So: no gap
 *   and no duplicate, whichever of hot window and feed is ahead. Assumption: one trade source per symbol
 *   (seq is per source and symbol).
 *
 * Slow consumers (per connection): above `softBufferBytes` of uWS backpressure, quotes and book are
 * conflated (the latest value per symbol is kept and sent on drain), status ticks are skipped and replay
 * pauses; when a trades frame is due while the buffer is above `hardBufferBytes` (or uWS drops a send),
 * the connection is closed with code 4008 and reason SLOW_CONSUMER: a bot never sees a silent hole in
 * trades. Every drop is counted in `stats()`.
 *
 * Heartbeats: the hub pings every `heartbeatIntervalMs` and closes (4000 HEARTBEAT_TIMEOUT) a connection
 * that sent nothing (no pong, no message) for `heartbeatTimeoutMs`. Clients may also send {"op":"ping"}.
 */
import * as hdr from 'hdr-histogram-js';
import type { TemplatedApp, WebSocket, HttpResponse, HttpRequest, us_socket_context_t } from 'uWebSockets.js';
import { createSnapshotBuffers, OrderBook, type BookSnapshotBuffers } from '../../engine/book/order-book.ts';
import { parseTimeToMicros } from '../../engine/clock/iso.ts';
import { isEngineError } from '../../engine/errors.ts';
import type { HotColumns } from '../../engine/hot/hot-columns.ts';
import { createHotColumns } from '../../engine/hot/hot-columns.ts';
import { HOT_BUSY, type HotWindow } from '../../engine/hot/hot-window.ts';
import type { SlotViews } from '../../engine/ring/ring.ts';
import type { SymbolRegistry } from '../../engine/symbols/registry.ts';
import {
  BAR_ASK_VOLUME_BYTE, BAR_BID_VOLUME_BYTE, BAR_CLOSE_BYTE, BAR_HIGH_BYTE, BAR_LOW_BYTE, BAR_NUM_TRADES_BYTE, BAR_OPEN_BYTE,
  BAR_VOLUME_BYTE, GAP_END_TS_MICROS_BYTE, GAP_EXPECTED_SEQ_BYTE, GAP_GOT_SEQ_BYTE, GAP_KIND_BYTE, RECORD_SLOT_BYTES, RecordKind,
  SEQ_BYTE, SIDE_MASK, SOURCE_ID_BYTE, SYMBOL_ID_BYTE, TRADE_ASK_BYTE, TRADE_ASK_SIZE_BYTE, TRADE_BID_BYTE, TRADE_BID_SIZE_BYTE,
  TRADE_FLAGS_BYTE, TRADE_PRICE_BYTE, TRADE_SIZE_BYTE, TradeFlag, TS_MICROS_BYTE,
} from '../../schemas/records.ts';
import { createTickColumns, Side, WireDecoder, WireEncoder, type TickColumns, type WireGexSnapshot, type WireStatus } from '../../schemas/wire.ts';
import type { Authenticator, Principal, RecordListener } from '../types.ts';
import { barJson, bookLevels, errorJson, gexJson, TickBatchJsonWriter, type BarMessage } from './frames.ts';
import {
  CH_BARS, CH_BOOK, CH_GEX, CH_QUOTES, CH_TRADES, CHANNEL_INDEX, CHANNELS, parseClientMessage, ProtocolError,
  WS_CLOSE, type Channel, type SubscribeMsg, type UnsubscribeMsg, type WsErrorCode,
} from './protocol.ts';
import { gexKeysForSymbol, gexKeysForTicker } from '../../engine/gex/tickers.ts';

/** Rows of trades as columns, oldest first: what a history reader yields (HotColumns satisfies it). */
export interface TickRows {
  length: number;
  readonly tsMicros: Float64Array;
  readonly price: Float64Array;
  readonly bid: Float64Array;
  readonly ask: Float64Array;
  readonly size: Uint32Array;
  readonly flags: Uint32Array;
  readonly seq: Uint32Array;
  readonly sourceId: Uint8Array;
}

/**
 * Trades of `symbol` with fromMicros ≤ ts < toMicros (toMicros exclusive), oldest first, in batches. The
 * hub consumes one batch at a time and may stop early (it calls `return()` on the iterator). Optional:
 * without it, a replay starting before the hot window's first held trade reports WS_REPLAY_GAP for the
 * part it cannot serve.
 */
export type HistoryReader = (symbol: string, fromMicros: number, toMicros: number) => AsyncIterable<TickRows>;

export interface WsOptions {
  /** Route of the WebSocket (default '/ws'). */
  path: string;
  /** Connections allowed at once (default 1000); more: the upgrade answers 503. */
  maxClients: number;
  /** Allow connections without a key (status channel only). Default true (the public status panel). */
  allowAnonymous: boolean;
  /** (symbol, channel) subscriptions per connection (default 2048). */
  maxSubscriptions: number;
  /** Above this many buffered bytes: quotes/book conflated, status skipped, replay paused (default 256 KiB). */
  softBufferBytes: number;
  /** Trades due while above this many buffered bytes: close 4008 SLOW_CONSUMER (default 4 MiB). */
  hardBufferBytes: number;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  statusIntervalMs: number;
  /** Client messages per second per connection before WS_RATE_LIMITED (default 50, burst 2×). */
  maxMessagesPerSecond: number;
  /** Largest client message in bytes (uWS closes the connection with 1009 above it; default 16 KiB). */
  maxPayloadLength: number;
  /** Trades per replay page and per replay frame (default 1024). */
  replayPageRows: number;
  /** Trades kept per symbol in the hub's own tail for the replay switch-over (power of two, default 8192). */
  tailRecords: number;
  /** Book levels per side in book frames (default 10). */
  bookDepth: number;
}

export const DEFAULT_WS_OPTIONS: WsOptions = {
  path: '/ws', maxClients: 1000, allowAnonymous: true, maxSubscriptions: 2048, softBufferBytes: 256 * 1024, hardBufferBytes: 4 * 1024 * 1024,
  heartbeatIntervalMs: 15_000, heartbeatTimeoutMs: 45_000, statusIntervalMs: 1000, maxMessagesPerSecond: 50, maxPayloadLength: 16 * 1024,
  replayPageRows: 1024, tailRecords: 8192, bookDepth: 10,
};

/**
 * Per-address budget of bad API keys (api/auth/limits.ts BadKeyLimiter has this shape): an address that
 * presented too many unknown keys gets 429 with Retry-After instead of another key check.
 */
export interface BadKeyBudget {
  /** 0 when `addr` may try a key now, else seconds until it may. */
  blockedFor(addr: string, nowMs: number): number;
  fail(addr: string, nowMs: number): void;
}

export interface WsDeps {
  authenticator: Authenticator;
  /** Optional bad-key budget per remote address (pass the REST guard's `badKeys` to share one budget). */
  badKeys?: BadKeyBudget;
  registry: SymbolRegistry;
  /** Hot window for replay; null when the engine runs without one (replay then uses history + the hub's tail). */
  hot: HotWindow | null;
  /** Optional reader of older trades (see HistoryReader). */
  history?: HistoryReader;
  /** Engine status JSON pushed on the `status` channel about once a second (allocates; called only with subscribers). */
  status: () => Record<string, unknown>;
  /** Engine readiness for the status frame's state (running / degraded); default: running. */
  ready?: () => boolean;
  /** Wall clock in Unix µs (default Date.now() * 1000). */
  now?: () => number;
  /** Source names by source id (TickBatch.source); missing ids are `source-<id>`. */
  sourceNames?: readonly string[];
  options?: Partial<WsOptions>;
}

export interface WsStats {
  clients: number;
  anonymousClients: number;
  connectionsTotal: number;
  upgradesRefused: { unauthorized: number; badRequest: number; full: number };
  messagesIn: number;
  framesOut: number;
  bytesOut: number;
  ticksOut: number;
  errorsSent: number;
  drops: {
    /** Connections closed with 4008 SLOW_CONSUMER. */
    slowConsumerCloses: number;
    /** Trades that were due to a connection closed as a slow consumer (delivered to nobody on it). */
    tradesNotDelivered: number;
    /** Quote frames replaced by a newer value for a slow connection. */
    conflatedQuotes: number;
    /** Book frames replaced by a newer snapshot for a slow connection. */
    conflatedBooks: number;
    /** Status ticks skipped for a slow connection. */
    skippedStatus: number;
    /** uWS refused a send (status 2); the connection was closed or the value conflated. */
    sendDropped: number;
  };
  heartbeatCloses: number;
  replays: { active: number; completed: number; rows: number; gaps: number; catchingUp: number };
  /** onBatchEnd fan-out time per batch, µs (encode + send to every subscriber). */
  fanoutMicros: { count: number; p50: number; p99: number; max: number };
  records: { trades: number; quotes: number; depth: number; bars: number; gaps: number; unknownSymbol: number; internalErrors: number };
}

// ---- per-connection and per-symbol state ---------------------------------------------------------------

interface Replay {
  conn: Conn;
  sym: SymState;
  fromMicros: number;
  cursorTs: number;
  lastSeq: number;
  hasLast: boolean;
  rows: number;
  cancelled: boolean;
  historyTo: number;
  /** replay gaps already reported up to this time */
  gapTo: number;
}

class Conn {
  readonly id: number;
  readonly principal: Principal | null;
  readonly binary: boolean;
  ws: WebSocket<ConnRef> | null = null;
  closed = false;
  /** a slow-consumer close is under way */
  closing = false;
  /** symbol id -> channel bit mask (trades/quotes/book/bars) */
  readonly subs = new Map<number, number>();
  readonly gexKeys = new Set<string>();
  status = false;
  subCount = 0;
  readonly replays = new Map<number, Replay>();
  readonly conflQuotes = new Map<number, TickColumns>();
  readonly conflQuoteDirty = new Set<number>();
  readonly conflBook = new Set<number>();
  drainWaiters: (() => void)[] = [];
  lastSeenMs: number;
  tokens: number;
  tokensAtMs: number;
  constructor(id: number, principal: Principal | null, binary: boolean, nowMs: number, burst: number) {
    this.id = id;
    this.principal = principal;
    this.binary = binary;
    this.lastSeenMs = nowMs;
    this.tokens = burst;
    this.tokensAtMs = nowMs;
  }
}

/** uWS user data: a holder, because the Conn is built before the socket exists. */
interface ConnRef { conn: Conn }

interface CatchUp { conn: Conn; floor: number }

const BATCH_COLS = 1024;

class SymState {
  readonly id: number;
  readonly symbol: string;
  readonly root: string;
  readonly tradesChannel: string;
  readonly quotesChannel: string;
  readonly bookChannel: string;
  readonly barsChannel: string;
  /** uWS topics of the live trades, per format */
  readonly topicBin: string;
  readonly topicJson: string;
  /** live subscribers per channel index (trades, quotes, book, bars) */
  readonly live: Conn[][] = [[], [], [], []];
  readonly catching: CatchUp[] = [];
  readonly trades = createTickColumns(BATCH_COLS);
  tradeN = 0;
  tradeSource = 0;
  readonly quotes = createTickColumns(BATCH_COLS);
  quoteN = 0;
  quoteSource = 0;
  // tail of raw trade slots (replay switch-over)
  readonly tail: Uint8Array;
  readonly tailF64: Float64Array;
  readonly tailViews: SlotViews;
  readonly tailMask: number;
  tailCount = 0;
  /** tail entries [0, flushed) have been sent to the live subscribers */
  flushed = 0;
  lastFlushedSeq = 0;
  hasFlushed = false;
  book: OrderBook | null = null;
  bookDirty = false;
  // 1-minute bar from trades
  barStart = NaN;
  barO = 0; barH = 0; barL = 0; barC = 0; barV = 0; barN = 0; barBuy = 0; barSell = 0;
  dirty = false;
  constructor(id: number, symbol: string, root: string, tailRecords: number) {
    this.id = id;
    this.symbol = symbol;
    this.root = root;
    this.tradesChannel = `trades/${symbol}`;
    this.quotesChannel = `quotes/${symbol}`;
    this.bookChannel = `book/${symbol}`;
    this.barsChannel = `bars/${symbol}`;
    this.topicBin = `t/${id}/b`;
    this.topicJson = `t/${id}/j`;
    const buf = new ArrayBuffer(tailRecords * RECORD_SLOT_BYTES);
    this.tail = new Uint8Array(buf);
    this.tailF64 = new Float64Array(buf);
    this.tailViews = { f64: this.tailF64, f32: new Float32Array(buf), i32: new Int32Array(buf), u32: new Uint32Array(buf), u16: new Uint16Array(buf), u8: this.tail };
    this.tailMask = tailRecords - 1;
  }
}

/** a is after b in u32 modular order */
function seqAfter(a: number, b: number): boolean {
  return ((a - b) | 0) > 0;
}

function sideOfFlags(flags: number): number {
  const s = flags & SIDE_MASK;
  return s === TradeFlag.SIDE_BUY ? Side.Buy : s === TradeFlag.SIDE_SELL ? Side.Sell : Side.Unknown;
}

function removeConn(arr: Conn[], c: Conn): void {
  const i = arr.indexOf(c);
  if (i < 0) return;
  arr[i] = arr[arr.length - 1]!;
  arr.pop();
}

const textDecoder = new TextDecoder('utf-8', { fatal: true });

function histogram(): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
}

function isPow2(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

export class WsHub implements RecordListener {
  readonly options: WsOptions;
  readonly #deps: WsDeps;
  readonly #now: () => number;
  readonly #enc = new WireEncoder(64 * 1024);
  /** JSON tick batches as bytes in one reused buffer (TickBatchJsonWriter): the JSON fan-out makes no garbage per tick. */
  readonly #json = new TickBatchJsonWriter();
  readonly #syms: (SymState | null | undefined)[] = [];
  readonly #dirty: SymState[] = [];
  readonly #conns = new Set<Conn>();
  readonly #statusSubs = new Set<Conn>();
  readonly #gexSubs = new Map<string, Set<Conn>>();
  readonly #sourceNames: string[] = [];
  readonly #replayCols: TickColumns;
  readonly #hotCols: HotColumns;
  readonly #bookBuf: BookSnapshotBuffers;
  readonly #fanout = histogram();
  #nextId = 1;
  #closed = false;
  #app: TemplatedApp | null = null;
  readonly #pendingSlow: Conn[] = [];
  #pendingSlowTicks = 0;
  #pendingSlowScheduled = false;
  readonly #dec = new WireDecoder();
  #heartbeatTimer: NodeJS.Timeout | null = null;
  #statusTimer: NodeJS.Timeout | null = null;
  #connectionsTotal = 0;
  #refused = { unauthorized: 0, badRequest: 0, full: 0 };
  #messagesIn = 0;
  #framesOut = 0;
  #bytesOut = 0;
  #ticksOut = 0;
  #errorsSent = 0;
  #drops = { slowConsumerCloses: 0, tradesNotDelivered: 0, conflatedQuotes: 0, conflatedBooks: 0, skippedStatus: 0, sendDropped: 0 };
  #heartbeatCloses = 0;
  #replayStats = { active: 0, completed: 0, rows: 0, gaps: 0 };
  #records = { trades: 0, quotes: 0, depth: 0, bars: 0, gaps: 0, unknownSymbol: 0, internalErrors: 0 };

  constructor(deps: WsDeps) {
    const o: WsOptions = { ...DEFAULT_WS_OPTIONS, ...(deps.options ?? {}) };
    if (!isPow2(o.tailRecords)) throw new RangeError(`tailRecords must be a power of two, got ${o.tailRecords}`);
    if (!(o.softBufferBytes > 0 && o.hardBufferBytes > o.softBufferBytes)) throw new RangeError('need 0 < softBufferBytes < hardBufferBytes');
    if (!(o.replayPageRows >= 1 && o.replayPageRows <= 65536)) throw new RangeError('replayPageRows must be 1..65536');
    this.options = o;
    this.#deps = deps;
    this.#now = deps.now ?? (() => Date.now() * 1000);
    for (const n of deps.sourceNames ?? []) this.#sourceNames.push(n);
    this.#replayCols = createTickColumns(o.replayPageRows);
    this.#hotCols = createHotColumns(o.replayPageRows);
    this.#bookBuf = createSnapshotBuffers(o.bookDepth);
  }

  // ---- uWS wiring -----------------------------------------------------------------------------------

  /** Register the `/ws` route on `app` and start the timers (attachWebSocket calls this). */
  attach(app: TemplatedApp): this {
    const o = this.options;
    app.ws<ConnRef>(o.path, {
      compression: 0,
      maxPayloadLength: o.maxPayloadLength,
      // uWS skips a send above this (status 2): set well above our own hard limit so the hub decides first.
      // The hub closes a trades subscriber above hardBufferBytes itself (4008, with room left for the close
      // frame). Above this larger bound uWS would drop a frame and call `dropped`, which also closes for
      // trades: a safety net, so a trade is never silently missing.
      maxBackpressure: o.hardBufferBytes + 16 * 1024 * 1024,
      closeOnBackpressureLimit: false,
      idleTimeout: 0, // the hub's own heartbeat (ping + timeout) decides
      sendPingsAutomatically: false,
      upgrade: (res, req, ctx) => this.#upgrade(res, req, ctx),
      open: (ws) => this.#open(ws),
      message: (ws, msg, isBinary) => this.#message(ws, msg, isBinary),
      drain: (ws) => this.#drain(ws.getUserData().conn),
      dropped: (ws, msg, isBinary) => this.#dropped(ws.getUserData().conn, msg, isBinary),
      close: (ws) => this.#close(ws.getUserData().conn),
      pong: (ws) => { ws.getUserData().conn.lastSeenMs = Date.now(); },
      ping: (ws) => { ws.getUserData().conn.lastSeenMs = Date.now(); },
    });
    this.#app = app;
    this.#heartbeatTimer = setInterval(() => this.#heartbeat(), o.heartbeatIntervalMs);
    this.#heartbeatTimer.unref();
    this.#statusTimer = setInterval(() => this.#pushStatus(), o.statusIntervalMs);
    this.#statusTimer.unref();
    return this;
  }

  #upgrade(res: HttpResponse, req: HttpRequest, ctx: us_socket_context_t): void {
    const key = req.getHeader('sec-websocket-key');
    const proto = req.getHeader('sec-websocket-protocol');
    const ext = req.getHeader('sec-websocket-extensions');
    const auth = req.getHeader('authorization');
    let token: string | undefined;
    if (auth !== '') {
      const m = /^bearer\s+(\S+)\s*$/i.exec(auth);
      token = m ? m[1] : '';
    } else {
      let q: string | undefined;
      try { q = req.getQuery('token'); } catch { q = undefined; }
      token = q;
    }
    let fmt: string | undefined;
    try { fmt = req.getQuery('format'); } catch { fmt = undefined; }
    const reject = (status: string, code: string, message: string): void => {
      res.cork(() => {
        res.writeStatus(status).writeHeader('content-type', 'application/json').end(JSON.stringify({ error: { code, message } }), true);
      });
    };
    if (this.#closed) { this.#refused.full++; reject('503 Service Unavailable', 'WS_SHUTTING_DOWN', 'the server is shutting down'); return; }
    let principal: Principal | null = null;
    if (token !== undefined) {
      const budget = this.#deps.badKeys;
      const addr = budget ? Buffer.from(res.getRemoteAddressAsText()).toString() : '';
      const nowMs = Date.now();
      const wait = budget ? budget.blockedFor(addr, nowMs) : 0;
      if (wait > 0) {
        this.#refused.unauthorized++;
        res.cork(() => {
          res.writeStatus('429 Too Many Requests').writeHeader('content-type', 'application/json').writeHeader('retry-after', String(wait))
            .end(JSON.stringify({ error: { code: 'TOO_MANY_BAD_KEYS', message: `too many bad API keys from this address; retry in ${wait} s` } }), true);
        });
        return;
      }
      principal = token === '' ? null : this.#deps.authenticator.authenticate(token);
      if (principal === null) {
        budget?.fail(addr, nowMs);
        this.#refused.unauthorized++; reject('401 Unauthorized', 'UNAUTHORIZED', 'missing or unknown API key'); return;
      }
    } else if (!this.options.allowAnonymous) {
      this.#refused.unauthorized++; reject('401 Unauthorized', 'UNAUTHORIZED', 'an API key is required (Authorization: Bearer or ?token=)'); return;
    }
    if (fmt !== undefined && fmt !== 'json' && fmt !== 'binary') {
      this.#refused.badRequest++; reject('400 Bad Request', 'BAD_REQUEST', 'format must be "json" or "binary"'); return;
    }
    if (this.#conns.size >= this.options.maxClients) {
      this.#refused.full++; reject('503 Service Unavailable', 'WS_FULL', `the server has ${this.options.maxClients} WebSocket clients already`); return;
    }
    if (key === '') { this.#refused.badRequest++; reject('400 Bad Request', 'BAD_REQUEST', 'not a WebSocket upgrade (no Sec-WebSocket-Key)'); return; }
    const conn = new Conn(this.#nextId++, principal, fmt === 'binary', Date.now(), this.options.maxMessagesPerSecond * 2);
    res.upgrade<ConnRef>({ conn }, key, proto, ext, ctx);
  }

  #open(ws: WebSocket<ConnRef>): void {
    const c = ws.getUserData().conn;
    c.ws = ws;
    this.#conns.add(c);
    this.#connectionsTotal++;
    this.#sendControl(c, { type: 'hello', connection: c.id, format: c.binary ? 'binary' : 'json', authenticated: c.principal !== null, channels: c.principal === null ? ['status'] : [...CHANNELS] });
  }

  #close(c: Conn): void {
    if (c.closed) return;
    c.closed = true;
    this.#conns.delete(c);
    this.#statusSubs.delete(c);
    for (const k of c.gexKeys) this.#gexSubs.get(k)?.delete(c);
    for (const [id, mask] of c.subs) {
      const s = this.#syms[id];
      if (!s) continue;
      for (let ch = 0; ch < 4; ch++) if ((mask & (1 << ch)) !== 0) removeConn(s.live[ch]!, c);
      for (let i = s.catching.length - 1; i >= 0; i--) if (s.catching[i]!.conn === c) s.catching.splice(i, 1);
    }
    for (const r of c.replays.values()) { r.cancelled = true; }
    c.replays.clear();
    const w = c.drainWaiters;
    c.drainWaiters = [];
    for (const f of w) f();
    c.ws = null;
  }

  #drain(c: Conn): void {
    const ws = c.ws;
    if (ws === null || c.closed) return;
    if (ws.getBufferedAmount() > this.options.softBufferBytes) return;
    if (c.conflQuoteDirty.size > 0 || c.conflBook.size > 0) this.#flushConflated(c);
    if (c.drainWaiters.length > 0) {
      const w = c.drainWaiters;
      c.drainWaiters = [];
      for (const f of w) f();
    }
  }

  // ---- client messages ------------------------------------------------------------------------------

  #message(ws: WebSocket<ConnRef>, msg: ArrayBuffer, isBinary: boolean): void {
    const c = ws.getUserData().conn;
    const nowMs = Date.now();
    c.lastSeenMs = nowMs;
    this.#messagesIn++;
    // token bucket
    const rate = this.options.maxMessagesPerSecond;
    c.tokens = Math.min(rate * 2, c.tokens + ((nowMs - c.tokensAtMs) * rate) / 1000);
    c.tokensAtMs = nowMs;
    if (c.tokens < 1) { this.#sendError(c, 'WS_RATE_LIMITED', `more than ${rate} messages per second; message ignored`, null); return; }
    c.tokens -= 1;
    if (isBinary) { this.#sendError(c, 'WS_BINARY_NOT_ACCEPTED', 'send subscribe/unsubscribe/ping as text JSON', null); return; }
    let text: string;
    try {
      text = textDecoder.decode(msg);
    } catch {
      this.#sendError(c, 'WS_BAD_JSON', 'message is not valid UTF-8', null);
      return;
    }
    try {
      const m = parseClientMessage(text);
      if (m.op === 'ping') this.#sendControl(c, { type: 'pong', id: m.id ?? null, tsMicros: this.#now() });
      else if (m.op === 'subscribe') this.#subscribe(c, m);
      else this.#unsubscribe(c, m);
    } catch (e) {
      if (e instanceof ProtocolError) this.#sendError(c, e.code, e.message, e.requestId);
      else this.#sendError(c, 'WS_INTERNAL', 'the message could not be handled', null);
    }
  }

  /** Resolve the symbols of a message; throws ProtocolError naming the first bad one. */
  #resolve(c: Conn, queries: readonly string[], channels: readonly Channel[], id: string | null): { query: string; symId: number; gexKeys: string[] }[] {
    const now = this.#now();
    const out: { query: string; symId: number; gexKeys: string[] }[] = [];
    const market = channels.some((ch) => ch !== 'gex' && ch !== 'status');
    for (const q of queries) {
      const symId = this.#deps.registry.resolve(q, now);
      let gexKeys: string[] = [];
      if (symId === 0) {
        if (market) throw new ProtocolError('WS_UNKNOWN_SYMBOL', `unknown symbol or root ${JSON.stringify(q)}`, id);
        const t = q.trim().toUpperCase();
        if (!/^[A-Z0-9_]{1,15}$/.test(t)) throw new ProtocolError('WS_UNKNOWN_SYMBOL', `unknown symbol, root or GEX ticker ${JSON.stringify(q)}`, id);
        gexKeys = [t];
      } else {
        const meta = this.#deps.registry.metaOf(symId);
        gexKeys = gexKeysForSymbol(meta.symbol, meta.root);
        const p = c.principal;
        if (p !== null && p.symbols !== null && !p.symbols.has(meta.symbol) && !p.symbols.has(meta.root)) {
          throw new ProtocolError('WS_FORBIDDEN', `the API key is not granted ${meta.symbol}`, id);
        }
      }
      if (symId === 0 && c.principal !== null && c.principal.symbols !== null && !gexKeys.some((k) => c.principal!.symbols!.has(k))) {
        throw new ProtocolError('WS_FORBIDDEN', `the API key is not granted ${q}`, id);
      }
      out.push({ query: q, symId, gexKeys });
    }
    return out;
  }

  #subscribe(c: Conn, m: SubscribeMsg): void {
    const id = m.id ?? null;
    const channels: Channel[] = m.channels ? [...new Set(m.channels)] : ['trades'];
    const market = channels.filter((ch) => ch !== 'status');
    if (c.principal === null && market.length > 0) {
      throw new ProtocolError('WS_AUTH_REQUIRED', `channel ${market[0]} needs an API key with the stream scope; this connection has none (only status is available)`, id);
    }
    if (c.principal !== null && market.length > 0 && !c.principal.scopes.has('stream') && !c.principal.scopes.has('admin')) {
      throw new ProtocolError('WS_FORBIDDEN', 'the API key lacks the stream scope', id);
    }
    const queries = m.symbols ?? [];
    if (market.length > 0 && queries.length === 0) throw new ProtocolError('WS_BAD_MESSAGE', `symbols: required for channel ${market[0]}`, id);
    let fromMicros: number | null = null;
    if (m.fromMicros !== undefined || m.from !== undefined) {
      if (!channels.includes('trades')) throw new ProtocolError('WS_BAD_MESSAGE', 'from: replay is available for the trades channel only', id);
      try {
        fromMicros = m.fromMicros !== undefined ? Math.floor(m.fromMicros) : parseTimeToMicros(m.from!);
      } catch (e) {
        throw new ProtocolError('WS_BAD_FROM', isEngineError(e) ? e.message : 'from cannot be parsed', id);
      }
      if (!Number.isSafeInteger(fromMicros)) throw new ProtocolError('WS_BAD_FROM', 'fromMicros must be a Unix µs time within ±2^53', id);
    }
    const resolved = this.#resolve(c, queries, channels, id);
    // count new subscriptions first: all or nothing
    let added = 0;
    for (const r of resolved) {
      for (const ch of market) {
        const ci = CHANNEL_INDEX[ch];
        if (ci === CH_GEX) { for (const k of r.gexKeys) if (!c.gexKeys.has(k)) added++; }
        else if (r.symId !== 0 && ((c.subs.get(r.symId) ?? 0) & (1 << ci)) === 0) added++;
      }
    }
    if (c.subCount + added > this.options.maxSubscriptions) {
      throw new ProtocolError('WS_TOO_MANY_SUBSCRIPTIONS', `this would make ${c.subCount + added} subscriptions; the limit is ${this.options.maxSubscriptions}`, id);
    }
    const replaying: string[] = [];
    for (const r of resolved) {
      for (const ch of market) {
        const ci = CHANNEL_INDEX[ch];
        if (ci === CH_GEX) {
          for (const k of r.gexKeys) {
            if (c.gexKeys.has(k)) continue;
            c.gexKeys.add(k);
            c.subCount++;
            let set = this.#gexSubs.get(k);
            if (!set) { set = new Set(); this.#gexSubs.set(k, set); }
            set.add(c);
          }
          continue;
        }
        const s = this.#sym(r.symId);
        if (s === null) throw new ProtocolError('WS_UNKNOWN_SYMBOL', `unknown symbol ${JSON.stringify(r.query)}`, id);
        const mask = c.subs.get(r.symId) ?? 0;
        if ((mask & (1 << ci)) !== 0) continue;
        c.subs.set(r.symId, mask | (1 << ci));
        c.subCount++;
        if (ci === CH_TRADES && fromMicros !== null) {
          replaying.push(s.symbol);
          this.#startReplay(c, s, fromMicros);
        } else {
          if (ci === CH_TRADES) this.#liveTrades(c, s);
          else s.live[ci]!.push(c);
          if (ci === CH_BOOK && s.book !== null && s.book.version > 0) this.#sendBook(c, s);
        }
      }
    }
    if (channels.includes('status') && !c.status) {
      c.status = true;
      c.subCount++;
      this.#statusSubs.add(c);
    }
    const symbols = resolved.map((r) => ({ query: r.query, symbol: r.symId !== 0 ? this.#deps.registry.metaOf(r.symId).symbol : null, gex: r.gexKeys }));
    this.#sendControl(c, { type: 'subscribed', id, channels, symbols, replay: replaying.length > 0 ? { symbols: replaying, fromMicros } : null });
    if (channels.includes('status')) this.#sendStatusTo(c, this.#statusPayload());
  }

  #unsubscribe(c: Conn, m: UnsubscribeMsg): void {
    const id = m.id ?? null;
    const channels: Channel[] = m.channels ? [...new Set(m.channels)] : [...CHANNELS];
    const queries = m.symbols ?? [];
    const resolved = queries.length > 0 ? this.#resolve(c, queries, channels, id) : null;
    const market = channels.filter((ch) => ch !== 'status');
    const targets = resolved ?? [...c.subs.keys()].map((symId) => ({ query: '', symId, gexKeys: [] as string[] }));
    for (const r of targets) {
      for (const ch of market) {
        const ci = CHANNEL_INDEX[ch];
        if (ci === CH_GEX) continue;
        if (r.symId === 0) continue;
        const mask = c.subs.get(r.symId) ?? 0;
        if ((mask & (1 << ci)) === 0) continue;
        const s = this.#syms[r.symId];
        if (s) {
          removeConn(s.live[ci]!, c);
          if (ci === CH_TRADES) {
            if (!c.closed && c.ws !== null) c.ws.unsubscribe(c.binary ? s.topicBin : s.topicJson);
            for (let i = s.catching.length - 1; i >= 0; i--) if (s.catching[i]!.conn === c) s.catching.splice(i, 1);
            const rep = c.replays.get(r.symId);
            if (rep) { rep.cancelled = true; c.replays.delete(r.symId); }
          }
          if (ci === CH_QUOTES) { c.conflQuoteDirty.delete(r.symId); }
          if (ci === CH_BOOK) c.conflBook.delete(r.symId);
        }
        const nm = mask & ~(1 << ci);
        if (nm === 0) c.subs.delete(r.symId); else c.subs.set(r.symId, nm);
        c.subCount--;
      }
    }
    if (market.includes('gex')) {
      const keys = resolved ? resolved.flatMap((r) => r.gexKeys) : [...c.gexKeys];
      for (const k of keys) {
        if (!c.gexKeys.delete(k)) continue;
        c.subCount--;
        this.#gexSubs.get(k)?.delete(c);
      }
    }
    if (channels.includes('status') && c.status && (resolved === null || queries.length === 0)) {
      c.status = false;
      c.subCount--;
      this.#statusSubs.delete(c);
    }
    this.#sendControl(c, { type: 'unsubscribed', id, channels, symbols: resolved ? resolved.map((r) => r.query) : null });
  }

  // ---- sending ---------------------------------------------------------------------------------------

  #count(bytes: number): void {
    this.#framesOut++;
    this.#bytesOut += bytes;
  }

  #sendControl(c: Conn, obj: Record<string, unknown>): void {
    const ws = c.ws;
    if (ws === null || c.closed) return;
    const text = JSON.stringify(obj);
    ws.send(text, false);
    this.#count(text.length);
  }

  #sendError(c: Conn, code: WsErrorCode, message: string, requestId: string | null): void {
    const ws = c.ws;
    if (ws === null || c.closed) return;
    this.#errorsSent++;
    if (c.binary) {
      const bytes = this.#enc.encodeError('error', this.#now(), { code, message, requestId });
      ws.send(bytes, true);
      this.#count(bytes.length);
    } else {
      const text = errorJson(this.#now(), code, message, requestId);
      ws.send(text, false);
      this.#count(text.length);
    }
  }

  /** A trades frame: never conflated, never dropped silently. */
  #sendTrades(c: Conn, msg: Uint8Array | string, isBinary: boolean, ticks: number): void {
    const ws = c.ws;
    if (ws === null || c.closed) return;
    if (ws.getBufferedAmount() > this.options.hardBufferBytes) { this.#slowClose(c, ticks); return; }
    const r = ws.send(msg, isBinary);
    if (r === 2) { this.#slowClose(c, ticks); return; }
    this.#count(msg.length);
    this.#ticksOut += ticks;
  }

  /** Join the live trades of `s`: the topic (uWS fans the frame out in C++) and the hub's list. */
  #liveTrades(c: Conn, s: SymState): void {
    const ws = c.ws;
    if (ws === null || c.closed) return;
    s.live[CH_TRADES]!.push(c);
    ws.subscribe(c.binary ? s.topicBin : s.topicJson);
  }

  /** uWS dropped a message above maxBackpressure: for trades that is a slow consumer (close, never a hole). */
  #dropped(c: Conn, msg: ArrayBuffer, isBinary: boolean): void {
    this.#drops.sendDropped++;
    if (c.closed || c.closing) return;
    let trades = false;
    let ticks = 0;
    try {
      if (isBinary) {
        const f = this.#dec.decodeFrame(new Uint8Array(msg));
        trades = f.channel.startsWith('trades/');
        if (f.payload.type === 'tickBatch') ticks = f.payload.ticks.length;
      } else {
        const text = Buffer.from(msg).toString('utf8');
        trades = text.startsWith('{"channel":"trades/') || text.startsWith('{"type":"gap"');
        if (trades) ticks = ((JSON.parse(text) as { payload?: { ticks?: unknown[] } }).payload?.ticks ?? []).length;
      }
    } catch {
      trades = true; // unknown frame: be safe, never leave a possible hole
    }
    if (!trades) return;
    // Not here: this runs inside uWS's own fan-out loop, where closing the socket is unsafe. Closed right
    // after the publish/send that dropped it returns (and before any later frame), or on the next turn.
    this.#pendingSlow.push(c);
    this.#pendingSlowTicks += ticks;
    if (!this.#pendingSlowScheduled) {
      this.#pendingSlowScheduled = true;
      setImmediate(() => this.#closePendingSlow());
    }
  }

  #closePendingSlow(): void {
    this.#pendingSlowScheduled = false;
    if (this.#pendingSlow.length === 0) return;
    const list = this.#pendingSlow.splice(0);
    let ticks = this.#pendingSlowTicks;
    this.#pendingSlowTicks = 0;
    for (const c of list) { this.#slowClose(c, ticks); ticks = 0; }
  }

  #slowClose(c: Conn, ticks: number): void {
    if (c.closing) { this.#drops.tradesNotDelivered += ticks; return; }
    c.closing = true;
    this.#drops.slowConsumerCloses++;
    this.#drops.tradesNotDelivered += ticks;
    const ws = c.ws;
    if (ws === null) return;
    ws.end(WS_CLOSE.SLOW_CONSUMER, `SLOW_CONSUMER: more than ${this.options.hardBufferBytes} bytes unread while trades were due`);
  }

  // ---- the record feed ------------------------------------------------------------------------------

  #sym(id: number): SymState | null {
    const s = this.#syms[id];
    if (s !== undefined) return s;
    let st: SymState | null = null;
    try {
      const meta = this.#deps.registry.metaOf(id);
      st = new SymState(id, meta.symbol, meta.root, this.options.tailRecords);
      st.book = new OrderBook({ tickSize: meta.tickSize });
    } catch {
      st = null;
    }
    this.#syms[id] = st;
    return st;
  }

  #markDirty(s: SymState): void {
    if (!s.dirty) { s.dirty = true; this.#dirty.push(s); }
  }

  /**
   * One record of the feed. Never throws: the engine unsubscribes a listener that throws, which would stop
   * every client; a failure here is counted (`stats().records.internalErrors`) and the record skipped.
   */
  onRecord(v: SlotViews, b: number): void {
    try {
      this.#onRecord(v, b);
    } catch {
      this.#records.internalErrors++;
    }
  }

  #onRecord(v: SlotViews, b: number): void {
    const id = v.u16[(b + SYMBOL_ID_BYTE) >> 1]!;
    let s = this.#syms[id];
    if (s === undefined) s = this.#sym(id);
    if (s === null) { this.#records.unknownSymbol++; return; }
    const kind = v.u8[b]!;
    if (kind === RecordKind.TRADE) {
      this.#records.trades++;
      // raw copy into the tail (8 f64 words, no subarray allocation)
      const t = (s.tailCount & s.tailMask) << 3;
      const src = b >> 3;
      const tf = s.tailF64, vf = v.f64;
      tf[t] = vf[src]!; tf[t + 1] = vf[src + 1]!; tf[t + 2] = vf[src + 2]!; tf[t + 3] = vf[src + 3]!;
      tf[t + 4] = vf[src + 4]!; tf[t + 5] = vf[src + 5]!; tf[t + 6] = vf[src + 6]!; tf[t + 7] = vf[src + 7]!;
      s.tailCount++;
      if (s.tradeN === BATCH_COLS) this.#flushTrades(s);
      const i = s.tradeN++;
      const cols = s.trades;
      if (i === 0) s.tradeSource = v.u8[b + SOURCE_ID_BYTE]!;
      const ts = v.f64[(b + TS_MICROS_BYTE) >> 3]!;
      const price = v.f64[(b + TRADE_PRICE_BYTE) >> 3]!;
      const size = v.u32[(b + TRADE_SIZE_BYTE) >> 2]!;
      const flags = v.u32[(b + TRADE_FLAGS_BYTE) >> 2]!;
      cols.symbolId[i] = id;
      cols.seq[i] = v.u32[(b + SEQ_BYTE) >> 2]!;
      cols.tsMicros[i] = ts;
      cols.price[i] = price;
      cols.bid[i] = v.f64[(b + TRADE_BID_BYTE) >> 3]!;
      cols.ask[i] = v.f64[(b + TRADE_ASK_BYTE) >> 3]!;
      cols.size[i] = size;
      cols.bidSize[i] = v.u32[(b + TRADE_BID_SIZE_BYTE) >> 2]!;
      cols.askSize[i] = v.u32[(b + TRADE_ASK_SIZE_BYTE) >> 2]!;
      cols.flags[i] = flags;
      cols.side[i] = sideOfFlags(flags);
      this.#bar(s, ts, price, size, flags);
      this.#markDirty(s);
    } else if (kind === RecordKind.QUOTE) {
      this.#records.quotes++;
      if (s.live[CH_QUOTES]!.length === 0) return;
      if (s.quoteN === BATCH_COLS) this.#flushQuotes(s);
      const i = s.quoteN++;
      const cols = s.quotes;
      if (i === 0) s.quoteSource = v.u8[b + SOURCE_ID_BYTE]!;
      const flags = v.u32[(b + TRADE_FLAGS_BYTE) >> 2]!;
      cols.symbolId[i] = id;
      cols.seq[i] = v.u32[(b + SEQ_BYTE) >> 2]!;
      cols.tsMicros[i] = v.f64[(b + TS_MICROS_BYTE) >> 3]!;
      cols.price[i] = v.f64[(b + TRADE_PRICE_BYTE) >> 3]!;
      cols.bid[i] = v.f64[(b + TRADE_BID_BYTE) >> 3]!;
      cols.ask[i] = v.f64[(b + TRADE_ASK_BYTE) >> 3]!;
      cols.size[i] = v.u32[(b + TRADE_SIZE_BYTE) >> 2]!;
      cols.bidSize[i] = v.u32[(b + TRADE_BID_SIZE_BYTE) >> 2]!;
      cols.askSize[i] = v.u32[(b + TRADE_ASK_SIZE_BYTE) >> 2]!;
      cols.flags[i] = flags;
      cols.side[i] = sideOfFlags(flags);
      this.#markDirty(s);
    } else if (kind === RecordKind.DEPTH || kind === RecordKind.BOOK_END) {
      this.#records.depth++;
      if (s.book!.applyFromSlot(v, b)) { s.bookDirty = true; this.#markDirty(s); }
    } else if (kind === RecordKind.BAR) {
      this.#records.bars++;
      if (s.live[CH_BARS]!.length > 0) {
        this.#sendBar(s, {
          symbol: s.symbol, interval: 'source', startMicros: v.f64[(b + TS_MICROS_BYTE) >> 3]!, open: v.f64[(b + BAR_OPEN_BYTE) >> 3]!,
          high: v.f64[(b + BAR_HIGH_BYTE) >> 3]!, low: v.f64[(b + BAR_LOW_BYTE) >> 3]!, close: v.f64[(b + BAR_CLOSE_BYTE) >> 3]!,
          volume: v.u32[(b + BAR_VOLUME_BYTE) >> 2]!, trades: v.u32[(b + BAR_NUM_TRADES_BYTE) >> 2]!, buyVolume: v.u32[(b + BAR_ASK_VOLUME_BYTE) >> 2]!,
          sellVolume: v.u32[(b + BAR_BID_VOLUME_BYTE) >> 2]!,
        });
      }
    } else if (kind === RecordKind.GAP) {
      this.#records.gaps++;
      this.#flushTrades(s); // keep order: trades before the gap notice
      const subs = s.live[CH_TRADES]!;
      if (subs.length > 0) {
        const text = JSON.stringify({
          type: 'gap', channel: s.tradesChannel, symbol: s.symbol, startMicros: v.f64[(b + TS_MICROS_BYTE) >> 3]!,
          endMicros: v.f64[(b + GAP_END_TS_MICROS_BYTE) >> 3]!, gapKind: v.u32[(b + GAP_KIND_BYTE) >> 2]!,
          expectedSeq: v.u32[(b + GAP_EXPECTED_SEQ_BYTE) >> 2]!, gotSeq: v.u32[(b + GAP_GOT_SEQ_BYTE) >> 2]!,
        });
        for (let k = subs.length - 1; k >= 0; k--) this.#sendTrades(subs[k]!, text, false, 0);
      }
    }
  }

  onBatchEnd(): void {
    const n = this.#dirty.length;
    if (n === 0) return;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const s = this.#dirty[i]!;
      s.dirty = false;
      try {
        if (s.tradeN > 0) this.#flushTrades(s);
        if (s.quoteN > 0) this.#flushQuotes(s);
        if (s.bookDirty) this.#flushBook(s);
      } catch {
        // never throw into the feed (see onRecord); the batch state is reset so the next batch is clean
        this.#records.internalErrors++;
        s.tradeN = 0; s.quoteN = 0; s.bookDirty = false; s.flushed = s.tailCount;
      }
    }
    this.#dirty.length = 0;
    const us = Math.round((performance.now() - t0) * 1000);
    this.#fanout.recordValue(us < 1 ? 1 : us);
  }

  #sourceName(id: number): string {
    let name = this.#sourceNames[id];
    if (name === undefined || name === '') { name = `source-${id}`; this.#sourceNames[id] = name; }
    return name;
  }

  #flushTrades(s: SymState): void {
    const n = s.tradeN;
    if (n === 0) return;
    const cols = s.trades;
    const app = this.#app;
    const live = s.live[CH_TRADES]!;
    if (app !== null && live.length > 0) {
      // slow consumers first: a trades subscriber above the hard limit is closed before it can miss this batch
      const hard = this.options.hardBufferBytes;
      for (let k = live.length - 1; k >= 0; k--) {
        const c = live[k]!;
        if (c.ws !== null && !c.closed && c.ws.getBufferedAmount() > hard) this.#slowClose(c, n);
      }
      const now = this.#now();
      const nb = app.numSubscribers(s.topicBin);
      if (nb > 0) {
        const bin = this.#enc.encodeTickBatch(s.tradesChannel, now, s.symbol, this.#sourceName(s.tradeSource), cols, 0, n);
        app.publish(s.topicBin, bin, true, false);
        if (this.#pendingSlow.length > 0) this.#closePendingSlow();
        this.#framesOut += nb; this.#bytesOut += bin.length * nb; this.#ticksOut += n * nb;
      }
      const nj = app.numSubscribers(s.topicJson);
      if (nj > 0) {
        const json = this.#json.write(s.tradesChannel, now, s.symbol, this.#sourceName(s.tradeSource), cols, 0, n);
        app.publish(s.topicJson, json, false, false);
        if (this.#pendingSlow.length > 0) this.#closePendingSlow();
        this.#framesOut += nj; this.#bytesOut += json.length * nj; this.#ticksOut += n * nj;
      }
    }
    if (s.catching.length > 0) this.#promoteCatching(s, n);
    s.flushed = s.tailCount;
    s.lastFlushedSeq = cols.seq[n - 1]!;
    s.hasFlushed = true;
    s.tradeN = 0;
  }

  /** Connections whose replay ran ahead of the feed: send them the part of this batch after their floor. */
  #promoteCatching(s: SymState, n: number): void {
    const cols = s.trades;
    for (let k = s.catching.length - 1; k >= 0; k--) {
      const cu = s.catching[k]!;
      let i = 0;
      while (i < n && !seqAfter(cols.seq[i]!, cu.floor)) i++;
      if (i === n) continue; // still behind the replayed floor
      s.catching.splice(k, 1);
      const c = cu.conn;
      if (c.closed) continue;
      const now = this.#now();
      const msg = c.binary
        ? this.#enc.encodeTickBatch(s.tradesChannel, now, s.symbol, this.#sourceName(s.tradeSource), cols, i, n - i)
        : this.#json.write(s.tradesChannel, now, s.symbol, this.#sourceName(s.tradeSource), cols, i, n - i);
      this.#sendTrades(c, msg, c.binary, n - i);
      if (!c.closed) this.#liveTrades(c, s);
    }
  }

  #flushQuotes(s: SymState): void {
    const n = s.quoteN;
    s.quoteN = 0;
    if (n === 0) return;
    const subs = s.live[CH_QUOTES]!;
    const soft = this.options.softBufferBytes;
    let bin: Uint8Array | null = null;
    let json: Uint8Array | null = null;
    for (let k = subs.length - 1; k >= 0; k--) {
      const c = subs[k]!;
      const ws = c.ws;
      if (ws === null || c.closed) continue;
      if (ws.getBufferedAmount() > soft) { this.#conflateQuote(c, s, n - 1); continue; }
      let r: number;
      if (c.binary) {
        bin ??= this.#enc.encodeTickBatch(s.quotesChannel, this.#now(), s.symbol, this.#sourceName(s.quoteSource), s.quotes, 0, n);
        r = ws.send(bin, true);
        this.#count(bin.length);
      } else {
        json ??= this.#json.write(s.quotesChannel, this.#now(), s.symbol, this.#sourceName(s.quoteSource), s.quotes, 0, n);
        r = ws.send(json, false);
        this.#count(json.length);
      }
      if (r === 2) { this.#drops.sendDropped++; this.#conflateQuote(c, s, n - 1); continue; }
      c.conflQuoteDirty.delete(s.id); // superseded by what was just sent
    }
  }

  #conflateQuote(c: Conn, s: SymState, i: number): void {
    let q = c.conflQuotes.get(s.id);
    if (q === undefined) { q = createTickColumns(1); c.conflQuotes.set(s.id, q); }
    const src = s.quotes;
    q.symbolId[0] = src.symbolId[i]!; q.seq[0] = src.seq[i]!; q.tsMicros[0] = src.tsMicros[i]!; q.price[0] = src.price[i]!;
    q.bid[0] = src.bid[i]!; q.ask[0] = src.ask[i]!; q.size[0] = src.size[i]!; q.bidSize[0] = src.bidSize[i]!; q.askSize[0] = src.askSize[i]!;
    q.flags[0] = src.flags[i]!; q.side[0] = src.side[i]!;
    c.conflQuoteDirty.add(s.id);
    this.#drops.conflatedQuotes++;
  }

  #flushBook(s: SymState): void {
    s.bookDirty = false;
    const subs = s.live[CH_BOOK]!;
    for (let k = subs.length - 1; k >= 0; k--) this.#sendBook(subs[k]!, s);
  }

  #sendBook(c: Conn, s: SymState): void {
    const ws = c.ws;
    if (ws === null || c.closed || s.book === null) return;
    if (ws.getBufferedAmount() > this.options.softBufferBytes) {
      c.conflBook.add(s.id);
      this.#drops.conflatedBooks++;
      return;
    }
    const buf = this.#bookBuf;
    s.book.snapshotInto(this.options.bookDepth, buf);
    const { bids, asks } = bookLevels(buf);
    const u = { symbol: s.symbol, tsMicros: buf.tsMicros, seq: buf.version >>> 0, bids, asks, isSnapshot: true };
    let r: number;
    if (c.binary) {
      const bytes = this.#enc.encodeBookUpdate(s.bookChannel, this.#now(), u);
      r = ws.send(bytes, true);
      this.#count(bytes.length);
    } else {
      const text = JSON.stringify({ channel: s.bookChannel, tsMicros: this.#now(), payload: { type: 'bookUpdate', ...u, tsMicros: Number.isFinite(u.tsMicros) ? u.tsMicros : null } });
      r = ws.send(text, false);
      this.#count(text.length);
    }
    if (r === 2) { this.#drops.sendDropped++; c.conflBook.add(s.id); return; }
    c.conflBook.delete(s.id);
  }

  #flushConflated(c: Conn): void {
    const ws = c.ws;
    if (ws === null || c.closed) return;
    for (const id of [...c.conflQuoteDirty]) {
      const s = this.#syms[id];
      const q = c.conflQuotes.get(id);
      c.conflQuoteDirty.delete(id);
      if (!s || !q) continue;
      const msg = c.binary
        ? this.#enc.encodeTickBatch(s.quotesChannel, this.#now(), s.symbol, this.#sourceName(s.quoteSource), q, 0, 1)
        : this.#json.write(s.quotesChannel, this.#now(), s.symbol, this.#sourceName(s.quoteSource), q, 0, 1);
      ws.send(msg, c.binary);
      this.#count(msg.length);
    }
    for (const id of [...c.conflBook]) {
      const s = this.#syms[id];
      c.conflBook.delete(id);
      if (s) this.#sendBook(c, s);
    }
  }

  #bar(s: SymState, ts: number, price: number, size: number, flags: number): void {
    const minute = Math.floor(ts / 60_000_000) * 60_000_000;
    if (minute !== s.barStart) {
      if (s.barN > 0 && minute > s.barStart && s.live[CH_BARS]!.length > 0) {
        this.#sendBar(s, {
          symbol: s.symbol, interval: '1m', startMicros: s.barStart, open: s.barO, high: s.barH, low: s.barL, close: s.barC,
          volume: s.barV, trades: s.barN, buyVolume: s.barBuy, sellVolume: s.barSell,
        });
      }
      if (!(minute < s.barStart)) { // an out-of-order trade of an earlier minute does not reopen it
        s.barStart = minute; s.barO = price; s.barH = price; s.barL = price; s.barC = price;
        s.barV = 0; s.barN = 0; s.barBuy = 0; s.barSell = 0;
      }
    }
    if (price > s.barH) s.barH = price;
    if (price < s.barL) s.barL = price;
    s.barC = price;
    s.barV += size;
    s.barN++;
    if ((flags & TradeFlag.SIDE_BUY) !== 0) s.barBuy += size;
    else if ((flags & TradeFlag.SIDE_SELL) !== 0) s.barSell += size;
  }

  /**
   * A bar to its subscribers in each one's format: a wire.fbs Bar frame to binary clients, its JSON form to
   * JSON clients, each encoded at most once per bar (same frame time in both).
   */
  #sendBar(s: SymState, bar: BarMessage): void {
    const subs = s.live[CH_BARS]!;
    const now = this.#now();
    let bin: Uint8Array | null = null;
    let json: string | null = null;
    for (let k = subs.length - 1; k >= 0; k--) {
      const c = subs[k]!;
      const ws = c.ws;
      if (ws === null || c.closed) continue;
      let r: number;
      let bytes: number;
      if (c.binary) {
        // a view into the encoder: nothing else encodes before this loop ends (uWS send copies synchronously)
        bin ??= this.#enc.encodeBar(s.barsChannel, now, bar);
        r = ws.send(bin, true);
        bytes = bin.length;
      } else {
        json ??= barJson(s.barsChannel, now, bar);
        r = ws.send(json, false);
        bytes = json.length;
      }
      if (r === 2) this.#drops.sendDropped++;
      else this.#count(bytes);
    }
  }

  /** Push a GEX snapshot to the subscribers of its ticker and of the roots it maps to (NQ_NDX -> NQ, MNQ). */
  publishGex(g: WireGexSnapshot): number {
    const keys = gexKeysForTicker(g.ticker);
    const targets = new Set<Conn>();
    for (const k of keys) for (const c of this.#gexSubs.get(k) ?? []) targets.add(c);
    if (targets.size === 0) return 0;
    const channel = `gex/${g.ticker}`;
    let bin: Uint8Array | null = null;
    let json: string | null = null;
    let sent = 0;
    for (const c of targets) {
      const ws = c.ws;
      if (ws === null || c.closed) continue;
      let r: number;
      if (c.binary) {
        bin ??= this.#enc.encodeGexSnapshot(channel, this.#now(), g).slice();
        r = ws.send(bin, true);
        this.#count(bin.length);
      } else {
        json ??= gexJson(channel, this.#now(), g);
        r = ws.send(json, false);
        this.#count(json.length);
      }
      if (r === 2) this.#drops.sendDropped++; else sent++;
    }
    return sent;
  }

  // ---- status and heartbeats ------------------------------------------------------------------------

  #statusPayload(): { wire: WireStatus; engine: Record<string, unknown> } {
    let engine: Record<string, unknown>;
    let state: WireStatus['state'] = 'running';
    try {
      engine = this.#deps.status();
      if (this.#deps.ready && !this.#deps.ready()) state = 'degraded';
    } catch {
      engine = { error: 'status unavailable' };
      state = 'unknown';
    }
    const st = this.stats();
    const wire: WireStatus = {
      service: 'tickpipe', state, tsMicros: this.#now(), message: null,
      metrics: [
        { name: 'ws.clients', value: st.clients }, { name: 'ws.framesOut', value: st.framesOut }, { name: 'ws.ticksOut', value: st.ticksOut },
        { name: 'ws.slowConsumerCloses', value: st.drops.slowConsumerCloses }, { name: 'ws.conflated', value: st.drops.conflatedQuotes + st.drops.conflatedBooks },
      ],
    };
    return { wire, engine };
  }

  #sendStatusTo(c: Conn, p: { wire: WireStatus; engine: Record<string, unknown> }, json?: string, bin?: Uint8Array): void {
    const ws = c.ws;
    if (ws === null || c.closed) return;
    if (ws.getBufferedAmount() > this.options.softBufferBytes) { this.#drops.skippedStatus++; return; }
    if (c.binary) {
      const bytes = bin ?? this.#enc.encodeStatus('status', p.wire.tsMicros, { ...p.wire, message: JSON.stringify(p.engine) });
      ws.send(bytes, true);
      this.#count(bytes.length);
    } else {
      const text = json ?? JSON.stringify({ channel: 'status', tsMicros: p.wire.tsMicros, payload: { type: 'status', ...p.wire }, engine: p.engine });
      ws.send(text, false);
      this.#count(text.length);
    }
  }

  #pushStatus(): void {
    if (this.#statusSubs.size === 0) return;
    const p = this.#statusPayload();
    const json = JSON.stringify({ channel: 'status', tsMicros: p.wire.tsMicros, payload: { type: 'status', ...p.wire }, engine: p.engine });
    let bin: Uint8Array | undefined;
    for (const c of this.#statusSubs) {
      if (c.binary) bin ??= this.#enc.encodeStatus('status', p.wire.tsMicros, { ...p.wire, message: JSON.stringify(p.engine) }).slice();
      this.#sendStatusTo(c, p, json, bin);
    }
  }

  #heartbeat(): void {
    const nowMs = Date.now();
    const timeout = this.options.heartbeatTimeoutMs;
    for (const c of [...this.#conns]) {
      const ws = c.ws;
      if (ws === null || c.closed) continue;
      if (nowMs - c.lastSeenMs > timeout) {
        this.#heartbeatCloses++;
        ws.end(WS_CLOSE.HEARTBEAT_TIMEOUT, `HEARTBEAT_TIMEOUT: nothing received for ${timeout} ms`);
        continue;
      }
      ws.ping();
    }
  }

  // ---- replay ---------------------------------------------------------------------------------------

  #startReplay(c: Conn, s: SymState, fromMicros: number): void {
    const rep: Replay = { conn: c, sym: s, fromMicros, cursorTs: fromMicros, lastSeq: 0, hasLast: false, rows: 0, cancelled: false, historyTo: fromMicros, gapTo: -Infinity };
    c.replays.set(s.id, rep);
    this.#replayStats.active++;
    this.#sendControl(c, { type: 'replay', phase: 'start', symbol: s.symbol, channel: s.tradesChannel, fromMicros });
    this.#runReplay(rep).then(
      () => undefined,
      () => {
        if (!rep.cancelled && !c.closed) this.#sendError(c, 'WS_INTERNAL', `replay of ${s.symbol} failed`, null);
      },
    ).finally(() => {
      this.#replayStats.active--;
    });
  }

  #alive(rep: Replay): boolean {
    return !rep.cancelled && !rep.conn.closed && !this.#closed;
  }

  #writable(c: Conn): Promise<void> {
    const ws = c.ws;
    if (ws === null || c.closed || ws.getBufferedAmount() <= this.options.softBufferBytes) return new Promise((r) => setImmediate(r));
    return new Promise((r) => { c.drainWaiters.push(r); });
  }

  /** Copy rows [start, end) of `rows` that pass the replay filter into the replay columns and send them. */
  #sendRows(rep: Replay, rows: TickRows, start: number, end: number): void {
    const out = this.#replayCols;
    const cap = out.seq.length;
    const s = rep.sym;
    let k = 0;
    let src = -1;
    for (let i = start; i < end; i++) {
      const seq = rows.seq[i]!;
      const ts = rows.tsMicros[i]!;
      if (ts < rep.fromMicros) continue;
      if (rep.hasLast && !seqAfter(seq, rep.lastSeq)) continue;
      if (src < 0) src = rows.sourceId[i]!;
      const flags = rows.flags[i]!;
      out.symbolId[k] = s.id; out.seq[k] = seq; out.tsMicros[k] = ts; out.price[k] = rows.price[i]!; out.bid[k] = rows.bid[i]!;
      out.ask[k] = rows.ask[i]!; out.size[k] = rows.size[i]!; out.bidSize[k] = 0; out.askSize[k] = 0; out.flags[k] = flags;
      out.side[k] = sideOfFlags(flags);
      rep.lastSeq = seq;
      rep.hasLast = true;
      if (ts > rep.cursorTs) rep.cursorTs = ts;
      k++;
      if (k === cap) { this.#sendReplayChunk(rep, k, src); k = 0; src = -1; }
    }
    if (k > 0) this.#sendReplayChunk(rep, k, src);
  }

  #sendReplayChunk(rep: Replay, k: number, src: number): void {
    const c = rep.conn;
    const s = rep.sym;
    const now = this.#now();
    const name = this.#sourceName(src < 0 ? 0 : src);
    const msg = c.binary
      ? this.#enc.encodeTickBatch(s.tradesChannel, now, s.symbol, name, this.#replayCols, 0, k)
      : this.#json.write(s.tradesChannel, now, s.symbol, name, this.#replayCols, 0, k);
    this.#sendTrades(c, msg, c.binary, k);
    rep.rows += k;
    this.#replayStats.rows += k;
  }

  async #replayHistory(rep: Replay, toMicros: number): Promise<void> {
    const h = this.#deps.history;
    if (h === undefined || !(toMicros > rep.historyTo)) return;
    const from = rep.historyTo;
    for await (const rows of h(rep.sym.symbol, from, toMicros)) {
      if (!this.#alive(rep)) return;
      this.#sendRows(rep, rows, 0, rows.length);
      await this.#writable(rep.conn);
      if (!this.#alive(rep)) return;
    }
    rep.historyTo = toMicros;
  }

  #gap(rep: Replay, fromMicros: number, toMicros: number): void {
    this.#replayStats.gaps++;
    this.#sendError(rep.conn, 'WS_REPLAY_GAP',
      `${rep.sym.symbol}: trades from ${fromMicros} to ${toMicros} (Unix µs) are older than the hot window and no history reader is configured; the replay continues from ${toMicros}`, null);
  }

  async #runReplay(rep: Replay): Promise<void> {
    const s = rep.sym;
    const hot = this.#deps.hot !== null && s.id <= this.#deps.hot.symbols ? this.#deps.hot : null;
    const history = this.#deps.history;
    const cols = this.#hotCols;
    let tries = 0;
    for (let pass = 0; ; pass++) {
      if (pass > 0) await new Promise((r) => setImmediate(r)); // never a synchronous loop on the uWS thread
      if (!this.#alive(rep)) return;
      // 1. history, for what the hot window does not hold
      const hasHot = hot !== null && hot.appended(s.id) > 0;
      const heldFrom = hasHot ? hot.heldFromMicros(s.id) : Infinity;
      if (rep.cursorTs < heldFrom) {
        if (history !== undefined) {
          if (rep.historyTo < rep.cursorTs) rep.historyTo = rep.cursorTs;
          await this.#replayHistory(rep, heldFrom === Infinity ? this.#now() + 1 : heldFrom);
          if (!this.#alive(rep)) return;
        } else if (hasHot && heldFrom !== Infinity && !(rep.gapTo >= heldFrom)) {
          this.#gap(rep, rep.cursorTs, heldFrom);
          rep.gapTo = heldFrom;
        }
      }
      // 2. the hot window, in pages, pausing while the client's buffer is above the soft limit
      if (hasHot) {
        let back = false;
        for (;;) {
          if (!this.#alive(rep)) return;
          const n = hot.since(s.id, rep.cursorTs, cols.capacity, cols);
          if (n === HOT_BUSY) { await new Promise((r) => setTimeout(r, 1)); continue; }
          if (n > 0 && rep.hasLast && cols.heldFromMicros > rep.cursorTs) {
            // The window may have moved past our cursor while we paused (its oldest entries overwritten):
            // if the next trade it holds is not the one after our last, the ones between are not here.
            let i = 0;
            while (i < n && !seqAfter(cols.seq[i]!, rep.lastSeq)) i++;
            if (i < n && cols.seq[i] !== ((rep.lastSeq + 1) >>> 0)) {
              if (history !== undefined && cols.heldFromMicros > rep.historyTo) { back = true; break; }
              if (history === undefined && !(rep.gapTo >= cols.heldFromMicros)) { this.#gap(rep, rep.cursorTs, cols.heldFromMicros); rep.gapTo = cols.heldFromMicros; }
            }
          }
          if (n > 0) this.#sendRows(rep, cols, 0, n);
          if (!cols.more) break;
          await this.#writable(rep.conn);
        }
        if (back) continue;
      }
      // 3. switch to live, synchronously (no live batch can run between the last read and the join)
      if (this.#goLive(rep)) return;
      // The hub's tail does not reach back to our last replayed seq: the hot window lags the feed by more
      // than the tail holds. Give it a moment, then read the hot window again.
      if (++tries > 200) {
        this.#gap(rep, rep.cursorTs, this.#now());
        this.#join(rep, false);
        return;
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** Returns false when the tail cannot bridge from the last replayed seq to the live stream (retry later). */
  #goLive(rep: Replay): boolean {
    const s = rep.sym;
    const c = rep.conn;
    if (!this.#alive(rep)) return true;
    if (rep.hasLast && (!s.hasFlushed || seqAfter(rep.lastSeq, s.lastFlushedSeq) || rep.lastSeq === s.lastFlushedSeq)) {
      // replay reached (or passed) what the feed has delivered: live from after our floor
      if (rep.lastSeq === s.lastFlushedSeq) this.#join(rep, false);
      else this.#join(rep, true);
      return true;
    }
    // the feed is ahead of what we replayed: bridge from the tail [oldest kept, flushed)
    const lo = s.flushed > s.tailMask + 1 ? s.flushed - (s.tailMask + 1) : 0;
    let i = lo;
    const tv = s.tailViews;
    if (rep.hasLast) {
      // find the first tail entry after lastSeq; the entry at lastSeq (or before) must still be in the tail
      let found = false;
      for (; i < s.flushed; i++) {
        const b = (i & s.tailMask) * RECORD_SLOT_BYTES;
        const seq = tv.u32[(b + SEQ_BYTE) >> 2]!;
        if (seqAfter(seq, rep.lastSeq)) { found = i > lo || seq === ((rep.lastSeq + 1) >>> 0); break; }
      }
      if (i < s.flushed && !found) return false;
    }
    // send tail entries [i, flushed) with ts >= from, in chunks
    const out = this.#replayCols;
    const cap = out.seq.length;
    let k = 0;
    let src = -1;
    for (; i < s.flushed; i++) {
      const b = (i & s.tailMask) * RECORD_SLOT_BYTES;
      const ts = tv.f64[(b + TS_MICROS_BYTE) >> 3]!;
      const seq = tv.u32[(b + SEQ_BYTE) >> 2]!;
      if (ts < rep.fromMicros) continue;
      if (rep.hasLast && !seqAfter(seq, rep.lastSeq)) continue;
      if (src < 0) src = tv.u8[b + SOURCE_ID_BYTE]!;
      const flags = tv.u32[(b + TRADE_FLAGS_BYTE) >> 2]!;
      out.symbolId[k] = s.id; out.seq[k] = seq; out.tsMicros[k] = ts; out.price[k] = tv.f64[(b + TRADE_PRICE_BYTE) >> 3]!;
      out.bid[k] = tv.f64[(b + TRADE_BID_BYTE) >> 3]!; out.ask[k] = tv.f64[(b + TRADE_ASK_BYTE) >> 3]!; out.size[k] = tv.u32[(b + TRADE_SIZE_BYTE) >> 2]!;
      out.bidSize[k] = tv.u32[(b + TRADE_BID_SIZE_BYTE) >> 2]!; out.askSize[k] = tv.u32[(b + TRADE_ASK_SIZE_BYTE) >> 2]!; out.flags[k] = flags;
      out.side[k] = sideOfFlags(flags);
      rep.lastSeq = seq;
      rep.hasLast = true;
      k++;
      if (k === cap) { this.#sendReplayChunk(rep, k, src); k = 0; src = -1; if (c.closed) return true; }
    }
    if (k > 0) this.#sendReplayChunk(rep, k, src);
    this.#join(rep, false);
    return true;
  }

  #join(rep: Replay, catching: boolean): void {
    const s = rep.sym;
    const c = rep.conn;
    if (!this.#alive(rep)) return;
    c.replays.delete(s.id);
    this.#replayStats.completed++;
    this.#sendControl(c, { type: 'replay', phase: 'live', symbol: s.symbol, channel: s.tradesChannel, replayed: rep.rows, lastSeq: rep.hasLast ? rep.lastSeq : null });
    if (c.closed) return;
    if (catching) s.catching.push({ conn: c, floor: rep.lastSeq });
    else this.#liveTrades(c, s);
  }

  // ---- lifecycle and metrics ------------------------------------------------------------------------

  stats(): WsStats {
    let anonymous = 0;
    for (const c of this.#conns) if (c.principal === null) anonymous++;
    let catchingUp = 0;
    for (const s of this.#syms) if (s) catchingUp += s.catching.length;
    const h = this.#fanout;
    return {
      clients: this.#conns.size, anonymousClients: anonymous, connectionsTotal: this.#connectionsTotal, upgradesRefused: { ...this.#refused },
      messagesIn: this.#messagesIn, framesOut: this.#framesOut, bytesOut: this.#bytesOut, ticksOut: this.#ticksOut, errorsSent: this.#errorsSent,
      drops: { ...this.#drops }, heartbeatCloses: this.#heartbeatCloses,
      replays: { ...this.#replayStats, catchingUp },
      fanoutMicros: { count: h.totalCount, p50: h.totalCount ? h.getValueAtPercentile(50) : 0, p99: h.totalCount ? h.getValueAtPercentile(99) : 0, max: h.totalCount ? h.maxValue : 0 },
      records: { ...this.#records },
    };
  }

  /** Stop the timers and close every connection (1001 going away). Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#heartbeatTimer) clearInterval(this.#heartbeatTimer);
    if (this.#statusTimer) clearInterval(this.#statusTimer);
    for (const c of [...this.#conns]) c.ws?.end(WS_CLOSE.GOING_AWAY, 'server shutting down');
  }
}

/** Attach `/ws` to a uWS app and return the hub (subscribe it to the engine's RecordFeed). */
export function attachWebSocket(app: TemplatedApp, deps: WsDeps): WsHub {
  return new WsHub(deps).attach(app);
}


