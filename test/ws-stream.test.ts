/**
 * WebSocket `/ws` with real `ws` clients against a real uWS server on loopback: every tick in order
 * (JSON and binary), replay-then-live with no gap or duplicate while records keep arriving (hot window
 * ahead of the feed, feed ahead of the hot window, window overwritten with a history reader), book, bars,
 * gex and status channels.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createHotColumns } from '../engine/hot/hot-columns.ts';
import { writeDepth, DepthCommand, DEPTH_FLAG_END_OF_BATCH } from '../schemas/records.ts';
import { Client, isContiguous, Producer, slotViews, startServer, TestKeys, waitFor, type Server } from '../api/ws/fixtures/harness.ts';
import type { TickRows } from '../api/ws/hub.ts';

let server: Server | null = null;
const clients: Client[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  server?.close();
  server = null;
});

function keys(): TestKeys {
  return new TestKeys().add('bot', ['stream', 'realtime']);
}

async function connect(url: string, fmt: 'json' | 'binary' = 'json', token = 'bot'): Promise<Client> {
  const c = new Client(`${url}?format=${fmt}&token=${token}`);
  clients.push(c);
  await c.opened;
  return c;
}

describe('ws stream', () => {
  it('subscribes by root and receives every trade in order, JSON and binary alike', async () => {
    server = await startServer({ keys: keys() });
    const jsonC = await connect(server.url, 'json');
    const binC = await connect(server.url, 'binary');
    for (const c of [jsonC, binC]) c.send({ op: 'subscribe', symbols: ['mnq'], channels: ['trades'], id: 's1' });
    await waitFor(() => jsonC.got.control.some((m) => m.type === 'subscribed') && binC.got.control.some((m) => m.type === 'subscribed'), 'acks');
    const ack = jsonC.got.control.find((m) => m.type === 'subscribed')!;
    expect(ack.id).toBe('s1');
    expect((ack.symbols as { symbol: string }[])[0]!.symbol).toBe(server.symbols.MNQ);
    const p = new Producer(server.hub, server.hot, server.ids.MNQ);
    const other = new Producer(server.hub, server.hot, server.ids.NQ);
    for (let i = 0; i < 50; i++) { p.produce(40); other.produce(7); } // 2000 trades in 50 batches, NQ interleaved
    await waitFor(() => jsonC.got.tradeSeqs.length >= 2000 && binC.got.tradeSeqs.length >= 2000, 'all trades');
    expect(isContiguous(jsonC.got.tradeSeqs, 1, 2000)).toBeNull();
    expect(isContiguous(binC.got.tradeSeqs, 1, 2000)).toBeNull();
    // every field round-trips: compare one tick with what the producer wrote
    const f = binC.got.frames.find((x) => x.payload.type === 'tickBatch')!;
    expect(f.channel).toBe(`trades/${server.symbols.MNQ}`);
    const t = f.payload.type === 'tickBatch' ? f.payload.ticks[0]! : null;
    expect(t).toMatchObject({ seq: 1, tsMicros: p.tsOf(1), price: p.priceOf(1), bid: p.priceOf(1) - 0.25, ask: p.priceOf(1) + 0.25, size: 2, side: 'sell', bidSize: 3, askSize: 4 });
    const jt = jsonC.got.frames.find((x) => x.payload.type === 'tickBatch')!;
    expect(jt.payload.type === 'tickBatch' && jt.payload.source).toBe('sierra-scid');
    // only MNQ was subscribed
    expect(jsonC.got.frames.every((x) => x.channel === `trades/${server!.symbols.MNQ}`)).toBe(true);
    expect(server.hub.stats().ticksOut).toBe(4000);
  });

  it('never throws into the feed: unknown symbol ids, unknown kinds and corrupt depth records are skipped and counted', async () => {
    server = await startServer({ keys: keys() });
    const v = slotViews(4);
    v.u8.fill(0xff); // kind 255, symbol id 65535, garbage body
    expect(() => { server!.hub.onRecord(v, 0); server!.hub.onBatchEnd(); }).not.toThrow();
    v.u8.fill(0);
    v.u8[0] = 99; // unknown kind for a known symbol
    v.u16[1] = server.ids.MNQ;
    expect(() => { server!.hub.onRecord(v, 0); server!.hub.onBatchEnd(); }).not.toThrow();
    writeDepth(v, 64, 2, server.ids.MNQ, 1, NaN, 200, 0xff, 0, NaN, 0, 0); // unknown depth command, NaN price
    expect(() => { server!.hub.onRecord(v, 64); server!.hub.onBatchEnd(); }).not.toThrow();
    expect(server.hub.stats().records.unknownSymbol).toBe(1);
    // and it still works
    const c = await connect(server.url);
    c.send({ op: 'subscribe', symbols: ['MNQ'] });
    await waitFor(() => c.got.control.some((m) => m.type === 'subscribed'), 'ack');
    new Producer(server.hub, server.hot, server.ids.MNQ).produce(3);
    await waitFor(() => c.got.tradeSeqs.length === 3, 'trades after garbage');
  });

  it('unsubscribe stops the stream', async () => {
    server = await startServer({ keys: keys() });
    const c = await connect(server.url);
    c.send({ op: 'subscribe', symbols: [server.symbols.NQ], id: 'a' });
    await waitFor(() => c.got.control.some((m) => m.type === 'subscribed'), 'ack');
    const p = new Producer(server.hub, server.hot, server.ids.NQ);
    p.produce(10);
    await waitFor(() => c.got.tradeSeqs.length === 10, '10 trades');
    c.send({ op: 'unsubscribe', symbols: ['NQ'], channels: ['trades'], id: 'b' });
    await waitFor(() => c.got.control.some((m) => m.type === 'unsubscribed' && m.id === 'b'), 'unsub ack');
    p.produce(10);
    c.send({ op: 'ping', id: 'after' });
    await waitFor(() => c.got.control.some((m) => m.type === 'pong' && m.id === 'after'), 'pong');
    expect(c.got.tradeSeqs.length).toBe(10);
  });

  for (const [name, lead] of [['hot window and feed in step', 0], ['hot window ahead of the feed', 300], ['feed ahead of the hot window', -300]] as const) {
    it(`replays from a time then continues live with no gap or duplicate while trades keep arriving (${name})`, async () => {
      server = await startServer({ keys: keys(), deps: { options: { replayPageRows: 128, softBufferBytes: 16 * 1024, hardBufferBytes: 64 * 1024 * 1024 } } });
      const p = new Producer(server.hub, server.hot, server.ids.MNQ);
      p.produce(5000, lead);
      const c = await connect(server.url, 'binary');
      const live = await connect(server.url, 'json');
      live.send({ op: 'subscribe', symbols: ['MNQ'] });
      await waitFor(() => live.got.control.some((m) => m.type === 'subscribed'), 'live ack');
      // a producer that keeps going while the replay runs
      const timer = setInterval(() => p.produce(25, lead), 1);
      try {
        c.send({ op: 'subscribe', symbols: ['MNQ'], channels: ['trades'], from: new Date(Math.floor(p.tsOf(101) / 1000)).toISOString(), id: 'r' });
        await waitFor(() => c.got.control.some((m) => m.type === 'replay' && m.phase === 'live'), 'switch to live');
        await new Promise((r) => setTimeout(r, 150)); // more live batches after the switch
      } finally {
        clearInterval(timer);
      }
      p.flush();
      const last = p.seq;
      await waitFor(() => c.got.tradeSeqs.at(-1) === last, `last seq ${last}`);
      expect(isContiguous(c.got.tradeSeqs, 101, last)).toBeNull();
      expect(c.got.errors).toEqual([]);
      const liveMsg = c.got.control.find((m) => m.type === 'replay' && m.phase === 'live')!;
      expect(liveMsg.replayed).toBeGreaterThan(4000);
      // the live-only client saw everything the feed delivered after it subscribed
      expect(live.got.tradeSeqs.length).toBeGreaterThan(0);
      const s = server.hub.stats();
      expect(s.replays.completed).toBe(1);
      expect(s.replays.gaps).toBe(0);
    });
  }

  it('replays through a history reader when the hot window no longer holds the start', async () => {
    // history: an in-memory copy of every trade (what Parquet would hold); the window keeps only 1024
    const all: { ts: number; seq: number; price: number }[] = [];
    let historyCalls = 0;
    const history = async function* (_symbol: string, from: number, to: number): AsyncIterable<TickRows> {
      historyCalls++;
      const cols = createHotColumns(300);
      let k = 0;
      for (const r of all) {
        if (r.ts < from || r.ts >= to) continue;
        cols.tsMicros[k] = r.ts; cols.seq[k] = r.seq; cols.price[k] = r.price; cols.bid[k] = NaN; cols.ask[k] = NaN; cols.size[k] = 1; cols.flags[k] = 0; cols.sourceId[k] = 1;
        if (++k === 300) { cols.length = k; yield cols; k = 0; await new Promise((r2) => setImmediate(r2)); }
      }
      cols.length = k;
      if (k > 0) yield cols;
    };
    server = await startServer({ keys: keys(), hotCapacity: 1024, deps: { history, options: { replayPageRows: 100 } } });
    const p = new Producer(server.hub, server.hot, server.ids.MES);
    const record = (): void => { while (all.length < p.seq) { const s = all.length + 1; all.push({ ts: p.tsOf(s), seq: s, price: p.priceOf(s) }); } };
    p.produce(4000); record();
    const c = await connect(server.url, 'json');
    const timer = setInterval(() => { p.produce(10); record(); }, 1);
    try {
      c.send({ op: 'subscribe', symbols: ['MES'], fromMicros: p.tsOf(1) });
      await waitFor(() => c.got.control.some((m) => m.type === 'replay' && m.phase === 'live'), 'live');
    } finally {
      clearInterval(timer);
    }
    p.flush(); record();
    await waitFor(() => c.got.tradeSeqs.at(-1) === p.seq, 'last trade');
    expect(isContiguous(c.got.tradeSeqs, 1, p.seq)).toBeNull();
    expect(historyCalls).toBeGreaterThan(0);
    expect(c.got.errors).toEqual([]);
  });

  it('without a history reader, a replay older than the hot window says so with WS_REPLAY_GAP and continues', async () => {
    server = await startServer({ keys: keys(), hotCapacity: 1024 });
    const p = new Producer(server.hub, server.hot, server.ids.MES);
    p.produce(3000);
    const c = await connect(server.url, 'json');
    c.send({ op: 'subscribe', symbols: ['MES'], fromMicros: p.tsOf(1) });
    await waitFor(() => c.got.control.some((m) => m.type === 'replay' && m.phase === 'live'), 'live');
    expect(c.got.errors.map((e) => e.code)).toEqual(['WS_REPLAY_GAP']);
    const first = c.got.tradeSeqs[0]!;
    expect(first).toBeGreaterThan(1);
    p.produce(50);
    await waitFor(() => c.got.tradeSeqs.at(-1) === p.seq, 'live trades');
    expect(isContiguous(c.got.tradeSeqs, first, p.seq)).toBeNull();
  });

  it('book, bars, gex and status channels', async () => {
    server = await startServer({ keys: keys() });
    const c = await connect(server.url, 'json');
    const b = await connect(server.url, 'binary');
    for (const x of [c, b]) x.send({ op: 'subscribe', symbols: ['MNQ'], channels: ['book', 'bars', 'gex', 'status'] });
    await waitFor(() => c.got.control.some((m) => m.type === 'subscribed') && b.got.control.some((m) => m.type === 'subscribed'), 'acks');
    // status pushed at once on subscribe
    await waitFor(() => c.got.frames.some((f) => f.channel === 'status') && b.got.frames.some((f) => f.channel === 'status'), 'status');
    const st = c.got.frames.find((f) => f.channel === 'status') as unknown as { engine: { service: string } };
    expect(st.engine.service).toBe('test');
    const bst = b.got.frames.find((f) => f.channel === 'status')!;
    expect(bst.payload.type === 'status' && JSON.parse(bst.payload.message!)).toEqual({ service: 'test', ok: true });
    // a depth batch: two bids, one ask, end of batch
    const v = slotViews(4);
    const id = server.ids.MNQ;
    const ts = Date.now() * 1000;
    writeDepth(v, 0, 2, id, 1, ts, DepthCommand.CLEAR_BOOK, 0, 0, 0, 0, 0);
    writeDepth(v, 64, 2, id, 2, ts, DepthCommand.ADD_BID_LEVEL, 0, 3, 20000, 5, 1);
    writeDepth(v, 128, 2, id, 3, ts, DepthCommand.ADD_BID_LEVEL, 0, 1, 19999.75, 7, 2);
    writeDepth(v, 192, 2, id, 4, ts, DepthCommand.ADD_ASK_LEVEL, DEPTH_FLAG_END_OF_BATCH, 2, 20000.25, 9, 3);
    for (let i = 0; i < 4; i++) server.hub.onRecord(v, i * 64);
    server.hub.onBatchEnd();
    for (const x of [c, b]) {
      await waitFor(() => x.got.frames.some((f) => f.payload.type === 'bookUpdate'), 'book');
      const f = x.got.frames.find((y) => y.payload.type === 'bookUpdate')!;
      expect(f.payload).toMatchObject({ type: 'bookUpdate', symbol: server.symbols.MNQ, isSnapshot: true,
        bids: [{ price: 20000, size: 5, orders: 3 }, { price: 19999.75, size: 7, orders: 1 }], asks: [{ price: 20000.25, size: 9, orders: 2 }] });
    }
    // bars: trades in two minutes close the first bar
    const p = new Producer(server.hub, server.hot, server.ids.MNQ, Math.floor(Date.now() / 60_000) * 60_000_000 - 120_000_000);
    p.produce(120); // 120 trades 1 ms apart: all in the first minute
    const p2 = new Producer(server.hub, server.hot, server.ids.MNQ, p.t0 + 60_000_000);
    p2.seq = 200; p2.hotSeq = 200; p2.feedSeq = 200;
    p2.produce(1);
    await waitFor(() => c.got.frames.some((f) => (f.payload as { type: string }).type === 'bar'), 'bar');
    const bar = c.got.frames.find((f) => (f.payload as { type: string }).type === 'bar')!.payload as unknown as Record<string, number | string>;
    let vol = 0, hi = -Infinity, lo = Infinity;
    for (let s = 1; s <= 120; s++) { vol += 1 + (s % 5); hi = Math.max(hi, p.priceOf(s)); lo = Math.min(lo, p.priceOf(s)); }
    expect(bar).toMatchObject({ interval: '1m', startMicros: p.t0, open: p.priceOf(1), close: p.priceOf(120), high: hi, low: lo, volume: vol, trades: 120 });
    // gex: a snapshot of NQ_NDX reaches MNQ subscribers
    const sent = server.hub.publishGex({ ticker: 'NQ_NDX', tsMicros: ts, spot: 20100, zeroGamma: 20000, callWall: 20500, putWall: 19500, strikes: [{ strike: 20000, callGamma: 1, putGamma: -2, netGamma: -1 }], rawJson: null });
    expect(sent).toBe(2);
    for (const x of [c, b]) {
      await waitFor(() => x.got.frames.some((f) => f.payload.type === 'gexSnapshot'), 'gex');
      expect(x.got.frames.find((f) => f.payload.type === 'gexSnapshot')!).toMatchObject({ channel: 'gex/NQ_NDX', payload: { ticker: 'NQ_NDX', spot: 20100, zeroGamma: 20000 } });
    }
    expect(server.hub.publishGex({ ticker: 'ES_SPX', tsMicros: ts, spot: 1, zeroGamma: null, callWall: null, putWall: null, strikes: [], rawJson: null })).toBe(0);
  });

  it('status ticks arrive about once a second for an anonymous (no key) connection', async () => {
    server = await startServer({ keys: keys(), deps: { options: { statusIntervalMs: 100 } } });
    const c = new Client(server.url);
    clients.push(c);
    await c.opened;
    c.send({ op: 'subscribe', channels: ['status'] });
    await waitFor(() => c.got.frames.filter((f) => f.channel === 'status').length >= 3, 'three status frames');
    expect(server.hub.stats().anonymousClients).toBe(1);
  });
});
