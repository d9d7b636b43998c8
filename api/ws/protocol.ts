/**
 * WebSocket `/ws` client protocol: what a client may send, the control messages the server answers with,
 * error and close codes. Data frames (trades and quotes as TickBatch, book, bars, gex, status, and error
 * frames) are `schemas/wire.fbs` Frames (binary messages) or their JSON form (`schemas/wire.ts`
 * frameToJson, text), the client's choice at connect time (`?format=binary|json`). Control messages
 * (`hello`, `subscribed`, `unsubscribed`, `pong`, `replay`, `gap`) are text JSON with a `type` for every client.
 *
 * Client → server: one JSON object per TEXT message (binary messages from a client are refused):
 *
 *   { "op": "subscribe",   "symbols": ["MNQ", "NQZ25"], "channels": ["trades", "quotes"], "from": "2025-11-20T14:30:00Z", "id": "r1" }
 *   { "op": "unsubscribe", "symbols": ["MNQ"], "channels": ["quotes"], "id": "r2" }
 *   { "op": "ping", "id": "r3" }
 *
 * - `symbols`: contract names or futures roots (a root resolves to its front month at subscribe time; the
 *   ack says which contract). May be omitted for the `status` channel only. For `gex`, a GEX ticker
 *   (`NQ_NDX`, `SPX`) is accepted too.
 * - `channels`: any of trades, quotes, book, bars, gex, status (default: trades).
 * - `from` (optional, trades only): an ISO 8601 time or an epoch number (engine/clock/iso.ts rules), or
 *   `fromMicros` (Unix µs). The server replays the trades since then (history reader, then the hot
 *   window) and continues live with no gap and no duplicate; per-symbol `seq` lets the client check.
 * - `id` (optional, ≤ 64 chars): echoed in the ack and in any error caused by this message.
 */
import { z } from 'zod';

export const CHANNELS = ['trades', 'quotes', 'book', 'bars', 'gex', 'status'] as const;
export type Channel = (typeof CHANNELS)[number];

/** Channel indices used in per-symbol subscriber tables. */
export const CH_TRADES = 0;
export const CH_QUOTES = 1;
export const CH_BOOK = 2;
export const CH_BARS = 3;
export const CH_GEX = 4;
export const CH_STATUS = 5;
export const CHANNEL_INDEX: Readonly<Record<Channel, number>> = { trades: 0, quotes: 1, book: 2, bars: 3, gex: 4, status: 5 };

/** Error codes sent in error frames (never reused with another meaning). */
export const WS_ERROR_CODES = {
  WS_BAD_JSON: 'the message is not valid JSON',
  WS_BAD_MESSAGE: 'the message does not match the protocol (the text names the field)',
  WS_BINARY_NOT_ACCEPTED: 'client messages must be text JSON, not binary',
  WS_UNKNOWN_SYMBOL: 'a symbol or root is not known to the engine',
  WS_AUTH_REQUIRED: 'this connection has no API key: only the status channel is available',
  WS_FORBIDDEN: 'the API key lacks the stream scope or the symbol',
  WS_TOO_MANY_SUBSCRIPTIONS: 'the per-connection subscription limit was reached',
  WS_BAD_FROM: 'the from time cannot be parsed or is out of range',
  WS_RATE_LIMITED: 'too many client messages per second',
  WS_REPLAY_GAP: 'part of the requested replay range is not available (older than the hot window and no history)',
  WS_INTERNAL: 'an unexpected server error while handling the message (the connection stays open)',
} as const;
export type WsErrorCode = keyof typeof WS_ERROR_CODES;

/** Close codes (4000-4999 are application codes in RFC 6455). */
export const WS_CLOSE = {
  /** Outgoing buffer above the hard limit while trades were due: closed instead of dropping trades. */
  SLOW_CONSUMER: 4008,
  /** No pong (or any message) within the heartbeat timeout. */
  HEARTBEAT_TIMEOUT: 4000,
  /** The server is shutting down. */
  GOING_AWAY: 1001,
} as const;

const symbolText = z.string().min(1).max(31);

const timeInput = z.union([z.string().min(1).max(64), z.number().finite()]);

export const subscribeSchema = z.object({
  op: z.literal('subscribe'),
  symbols: z.array(symbolText).max(256).optional(),
  channels: z.array(z.enum(CHANNELS)).min(1).max(CHANNELS.length).optional(),
  from: timeInput.optional(),
  fromMicros: z.number().finite().optional(),
  id: z.string().max(64).optional(),
}).strict();

export const unsubscribeSchema = z.object({
  op: z.literal('unsubscribe'),
  symbols: z.array(symbolText).max(256).optional(),
  channels: z.array(z.enum(CHANNELS)).min(1).max(CHANNELS.length).optional(),
  id: z.string().max(64).optional(),
}).strict();

export const pingSchema = z.object({ op: z.literal('ping'), id: z.string().max(64).optional() }).strict();

export type SubscribeMsg = z.infer<typeof subscribeSchema>;
export type UnsubscribeMsg = z.infer<typeof unsubscribeSchema>;
export type PingMsg = z.infer<typeof pingSchema>;
export type ClientMsg = SubscribeMsg | UnsubscribeMsg | PingMsg;

export class ProtocolError extends Error {
  readonly code: WsErrorCode;
  readonly requestId: string | null;
  constructor(code: WsErrorCode, message: string, requestId: string | null = null) {
    super(message);
    this.code = code;
    this.requestId = requestId;
  }
}

function describeIssues(err: z.ZodError): string {
  return err.issues.slice(0, 3).map((i) => `${i.path.length > 0 ? i.path.join('.') : '(message)'}: ${i.message}`).join('; ');
}

/**
 * Parse one client text message. Throws ProtocolError (WS_BAD_JSON, WS_BAD_MESSAGE) naming the problem;
 * never anything else.
 */
export function parseClientMessage(text: string): ClientMsg {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ProtocolError('WS_BAD_JSON', `message is not valid JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ProtocolError('WS_BAD_MESSAGE', `message must be a JSON object, got ${raw === null ? 'null' : Array.isArray(raw) ? 'an array' : typeof raw}`);
  }
  const obj = raw as Record<string, unknown>;
  const id = typeof obj.id === 'string' && obj.id.length <= 64 ? obj.id : null;
  let r;
  switch (obj.op) {
    case 'subscribe': r = subscribeSchema.safeParse(obj); break;
    case 'unsubscribe': r = unsubscribeSchema.safeParse(obj); break;
    case 'ping': r = pingSchema.safeParse(obj); break;
    default:
      throw new ProtocolError('WS_BAD_MESSAGE', `op must be "subscribe", "unsubscribe" or "ping", got ${typeof obj.op === 'string' ? JSON.stringify(obj.op.slice(0, 40)) : typeof obj.op}`, id);
  }
  if (!r.success) throw new ProtocolError('WS_BAD_MESSAGE', describeIssues(r.error), id);
  return r.data;
}
