/**
 * The `bars` channel honours the client's format (issue 5 item 3): real `ws` clients against a real uWS
 * server on loopback. A binary client gets wire.fbs `Bar` frames (binary WebSocket messages) that decode to
 * the very values a JSON client gets in the same run, and the JSON text is the same frame's frameToJson.
 * A binary client subscribed to every channel gets every data frame (trades, quotes, book, bars, gex,
 * status, errors) as binary; only the documented control messages are text. A bar frame with an unknown
 * union member or cut short decodes to a coded ENGINE_ERR_SCHEMA.
 */
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Client, Producer, slotViews, startServer, TestKeys, waitFor, type Server } from '../api/ws/fixtures/harness.ts';
import { isEngineError } from '../engine/errors.ts';
import { DEPTH_FLAG_END_OF_BATCH, DepthCommand, writeBar, writeDepth, writeGap } from '../schemas/records.ts';
import { frameToJson, Payload, WireDecoder, type WireBar, type WireFrame } from '../schemas/wire.ts';

let server: Server | null = null;
const clients: Client[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  server?.close();
  server = null;
});

interface Raw { data: Buffer; isBinary: boolean }

/** A harness client that also keeps every raw message with its WebSocket opcode (text or binary). */
async function connect(url: string, fmt: 'json' | 'binary'): Promise<{ c: Client; raw: Raw[] }> {
  const c = new Client(`${url}?format=${fmt}&token=bot`);
  clients.push(c);
  const raw: Raw[] = [];
  c.ws.on('message', (data: Buffer, isBinary: boolean) => raw.push({ data: Buffer.from(data), isBinary }));
  await c.opened;
  return { c, raw };
}

const dec = new WireDecoder();
const decode = (r: Raw): WireFrame => dec.decodeFrame(new Uint8Array(r.data.buffer, r.data.byteOffset, r.data.byteLength));

function barsOf(raw: readonly Raw[], binary: boolean): Raw[] {
  return raw.filter((r) => r.isBinary === binary && (binary ? decode(r).payload.type === 'bar' : r.data.toString().includes('"type":"bar"')));
}

function schemaReason(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (!isEngineError(e, 'ENGINE_ERR_SCHEMA')) throw new Error(`expected ENGINE_ERR_SCHEMA, got ${String(e)}`, { cause: e });
    return String((e as unknown as { detail: { reason: unknown } }).detail.reason);
  }
  throw new Error('expected ENGINE_ERR_SCHEMA, decoding succeeded');
}

/** Byte position of the Frame's payload_type (vtable slot 0) in a frame. */
function payloadTypeAt(bytes: Uint8Array): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const root = view.getInt32(0, true);
  const vt = root - view.getInt32(root, true);
  return root + view.getUint16(vt + 4, true);
}

describe('ws bars channel, binary and JSON', () => {
  it('a binary client gets binary Bar frames that decode to the values a JSON client gets in the same run', async () => {
    server = await startServer({ keys: new TestKeys().add('bot', ['stream']) });
    const json = await connect(server.url, 'json');
    const bin = await connect(server.url, 'binary');
    for (const x of [json, bin]) x.c.send({ op: 'subscribe', symbols: ['MNQ'], channels: ['bars'], id: 'b1' });
    await waitFor(() => json.c.got.control.some((m) => m.type === 'subscribed') && bin.c.got.control.some((m) => m.type === 'subscribed'), 'acks');

    // 1-minute bar built from trades: 120 trades in one minute, then one trade of the next minute closes it
    const p = new Producer(server.hub, server.hot, server.ids.MNQ, Math.floor(Date.now() / 60_000) * 60_000_000 - 120_000_000);
    p.produce(120);
    const p2 = new Producer(server.hub, server.hot, server.ids.MNQ, p.t0 + 60_000_000);
    p2.seq = 200; p2.hotSeq = 200; p2.feedSeq = 200;
    p2.produce(1);
    // a bar source's record passed through (interval "source"), with a NaN high: null in JSON, NaN in binary
    const v = slotViews(1);
    writeBar(v, 0, 1, server.ids.MNQ, 7, p.t0 + 120_000_000, 21_000.5, NaN, 20_990.25, 21_001.75, 4_000_000_000, 321, 1_500, 2_500);
    server.hub.onRecord(v, 0);
    server.hub.onBatchEnd();

    await waitFor(() => barsOf(json.raw, false).length >= 2 && barsOf(bin.raw, true).length >= 2, 'two bars on each client');
    const jsonBars = barsOf(json.raw, false);
    const binBars = barsOf(bin.raw, true);
    expect(jsonBars).toHaveLength(2);
    expect(binBars).toHaveLength(2);
    // nothing bar-shaped reached the binary client as text
    expect(bin.raw.filter((r) => !r.isBinary && r.data.toString().includes('"bar"'))).toEqual([]);

    let vol = 0, buy = 0, sell = 0, hi = -Infinity, lo = Infinity;
    for (let s = 1; s <= 120; s++) {
      const size = 1 + (s % 5);
      vol += size;
      if (s % 2 === 0) buy += size; else sell += size; // the producer's side: even seq buys
      hi = Math.max(hi, p.priceOf(s)); lo = Math.min(lo, p.priceOf(s));
    }
    const built: WireBar = {
      symbol: server.symbols.MNQ, interval: '1m', startMicros: p.t0, open: p.priceOf(1), high: hi, low: lo, close: p.priceOf(120),
      volume: vol, trades: 120, buyVolume: buy, sellVolume: sell,
    };
    const passed: WireBar = {
      symbol: server.symbols.MNQ, interval: 'source', startMicros: p.t0 + 120_000_000, open: 21_000.5, high: NaN, low: 20_990.25, close: 21_001.75,
      volume: 4_000_000_000, trades: 321, buyVolume: 2_500, sellVolume: 1_500, // buy = the record's ask volume, sell = its bid volume
    };
    const channel = `bars/${server.symbols.MNQ}`;
    for (const [i, want] of [built, passed].entries()) {
      const f = decode(binBars[i]!);
      expect(f.channel).toBe(channel);
      expect(f.payload).toEqual({ type: 'bar', ...want });
      const text = jsonBars[i]!.data.toString();
      // the JSON client's text is exactly the JSON form of the binary client's frame (same frame time, same values)
      expect(text).toBe(frameToJson(f));
      const parsed = JSON.parse(text) as { channel: string; tsMicros: number; payload: Record<string, unknown> };
      expect(parsed.tsMicros).toBe(f.tsMicros);
      expect(parsed.payload).toEqual({ type: 'bar', ...want, high: Number.isNaN(want.high) ? null : want.high });
    }
    // the harness client (which decodes binary with the wire decoder) saw them too, and no error frames
    expect(bin.c.got.frames.filter((f) => f.payload.type === 'bar')).toHaveLength(2);
    expect(bin.c.got.errors).toEqual([]);
    expect(server.hub.stats().drops.sendDropped).toBe(0);
  });

  it('a binary client gets every data frame as binary; only documented control messages are text', async () => {
    server = await startServer({ keys: new TestKeys().add('bot', ['stream']) });
    const bin = await connect(server.url, 'binary');
    const json = await connect(server.url, 'json');
    const all = ['trades', 'quotes', 'book', 'bars', 'gex', 'status'];
    for (const x of [bin, json]) x.c.send({ op: 'subscribe', symbols: ['MNQ'], channels: all, id: 's' });
    await waitFor(() => bin.c.got.control.some((m) => m.type === 'subscribed') && json.c.got.control.some((m) => m.type === 'subscribed'), 'acks');
    const id = server.ids.MNQ;
    const p = new Producer(server.hub, server.hot, id, Math.floor(Date.now() / 60_000) * 60_000_000 - 120_000_000);
    p.produce(30); // trades
    p.quote(1); // a quote
    server.hub.onBatchEnd();
    const v = slotViews(3);
    const ts = Date.now() * 1000;
    writeDepth(v, 0, 2, id, 1, ts, DepthCommand.CLEAR_BOOK, 0, 0, 0, 0, 0);
    writeDepth(v, 64, 2, id, 2, ts, DepthCommand.ADD_BID_LEVEL, 0, 3, 20000, 5, 1);
    writeDepth(v, 128, 2, id, 3, ts, DepthCommand.ADD_ASK_LEVEL, DEPTH_FLAG_END_OF_BATCH, 2, 20000.25, 9, 2);
    for (let i = 0; i < 3; i++) server.hub.onRecord(v, i * 64); // a book
    server.hub.onBatchEnd();
    const p2 = new Producer(server.hub, server.hot, id, p.t0 + 60_000_000);
    p2.seq = 100; p2.hotSeq = 100; p2.feedSeq = 100;
    p2.produce(1); // closes the first minute: a bar
    writeGap(v, 0, 1, id, 102, ts, ts + 1, 1, 102, 105, 0); // a gap notice (a control message)
    server.hub.onRecord(v, 0);
    server.hub.onBatchEnd();
    server.hub.publishGex({ ticker: 'NQ_NDX', tsMicros: ts, spot: 20100, zeroGamma: null, callWall: null, putWall: null, strikes: [], rawJson: null });
    for (const x of [bin, json]) {
      x.c.send({ op: 'ping', id: 'p' }); // pong: control
      x.c.send({ op: 'subscribe', symbols: ['NOPE'], channels: ['bars'], id: 'bad' }); // an error frame
    }
    const types = ['tickBatch', 'bookUpdate', 'bar', 'gexSnapshot', 'status', 'error'];
    const seen = (c: Client): Set<string> => new Set(c.got.frames.map((f) => (f.channel.startsWith('quotes/') ? 'quote' : f.payload.type)));
    await waitFor(() => [bin, json].every((x) => [...types, 'quote'].every((t) => seen(x.c).has(t)) && x.c.got.control.some((m) => m.type === 'pong')), 'every kind of frame');
    await waitFor(() => [bin, json].every((x) => x.c.got.control.some((m) => m.type === 'gap')), 'gap notices');

    // binary client: every data frame binary, every text message a documented control message
    const CONTROL = new Set(['hello', 'subscribed', 'unsubscribed', 'pong', 'replay', 'gap']);
    const text = bin.raw.filter((r) => !r.isBinary).map((r) => JSON.parse(r.data.toString()) as Record<string, unknown>);
    for (const m of text) {
      expect(CONTROL.has(m.type as string), `text message to a binary client: ${JSON.stringify(m).slice(0, 120)}`).toBe(true);
      expect(m).not.toHaveProperty('payload');
    }
    expect(new Set(text.map((m) => m.type))).toEqual(new Set(['hello', 'subscribed', 'pong', 'gap']));
    const binTypes = new Set(bin.raw.filter((r) => r.isBinary).map((r) => decode(r).payload.type));
    expect([...binTypes].sort()).toEqual([...types].sort());
    expect(bin.c.got.errors.map((e) => [e.code, e.requestId])).toEqual([['WS_UNKNOWN_SYMBOL', 'bad']]);
    // JSON client: everything is text (and the same kinds of data frames arrived)
    expect(json.raw.every((r) => !r.isBinary)).toBe(true);
    expect(json.c.got.errors.map((e) => [e.code, e.requestId])).toEqual([['WS_UNKNOWN_SYMBOL', 'bad']]);
  });

  it('a received bar frame with an unknown union member, no member, or cut short decodes to ENGINE_ERR_SCHEMA', async () => {
    server = await startServer({ keys: new TestKeys().add('bot', ['stream']) });
    const bin = await connect(server.url, 'binary');
    bin.c.send({ op: 'subscribe', symbols: ['MNQ'], channels: ['bars'] });
    await waitFor(() => bin.c.got.control.some((m) => m.type === 'subscribed'), 'ack');
    const v = slotViews(1);
    writeBar(v, 0, 1, server.ids.MNQ, 1, Date.now() * 1000, 1, 2, 0.5, 1.5, 10, 3, 4, 6);
    server.hub.onRecord(v, 0);
    server.hub.onBatchEnd();
    await waitFor(() => barsOf(bin.raw, true).length === 1, 'a binary bar');
    const good = new Uint8Array(barsOf(bin.raw, true)[0]!.data);
    const at = payloadTypeAt(good);
    expect(good[at]).toBe(Payload.Bar);
    expect(Payload.Bar).toBe(6);

    const unknown = good.slice();
    unknown[at] = 7; // a member a newer schema might append
    expect(schemaReason(() => dec.decodeFrame(unknown))).toBe('Frame.payload: unknown union type 7');
    expect(schemaReason(() => dec.payloadType(unknown))).toBe('Frame.payload: unknown union type 7');
    const none = good.slice();
    none[at] = Payload.NONE;
    expect(schemaReason(() => dec.decodeFrame(none))).toBe('Frame.payload: unknown union type 0');
    for (const n of [0, 7, 12, Math.floor(good.length / 2), good.length - 9]) {
      expect(schemaReason(() => dec.decodeFrame(good.subarray(0, n)))).not.toBe('');
    }
    // the intact frame still decodes (the edits were on copies)
    expect(dec.decodeFrame(good).payload).toMatchObject({ type: 'bar', interval: 'source', open: 1, high: 2, low: 0.5, close: 1.5, volume: 10, trades: 3, buyVolume: 6, sellVolume: 4 });

    // the server does not take frames from clients: a binary bar sent back is refused with a coded error, connection open
    bin.c.ws.send(good, { binary: true });
    await waitFor(() => bin.c.got.errors.length === 1, 'error frame');
    expect(bin.c.got.errors[0]!.code).toBe('WS_BINARY_NOT_ACCEPTED');
    expect(bin.c.ws.readyState).toBe(WebSocket.OPEN);
  });
});
