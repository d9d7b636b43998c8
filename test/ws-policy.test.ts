/**
 * WebSocket `/ws` policies with real `ws` clients against a real uWS server: a deliberately slow client
 * (stops reading) is closed with 4008 SLOW_CONSUMER for trades (counted, never a silent hole) while a fast
 * client keeps every tick; quotes to a slow client are conflated to the latest value; heartbeats close a
 * client that never answers pings; auth failures on upgrade and per channel; fuzzed client messages give
 * coded error frames and never crash or close the connection.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { BadKeyLimiter } from '../api/auth/limits.ts';
import { KeyStore } from '../api/auth/keystore.ts';
import { afterEach, describe, expect, it } from 'vitest';
import { Client, isContiguous, Producer, startServer, TestKeys, waitFor, type Server } from '../api/ws/fixtures/harness.ts';
import { WS_ERROR_CODES } from '../api/ws/protocol.ts';
import { wsMetricFamilies } from '../api/ws/metrics.ts';

let server: Server | null = null;
const clients: Client[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  server?.close();
  server = null;
});

function keys(): TestKeys {
  return new TestKeys()
    .add('bot', ['stream'])
    .add('nostream', ['realtime', 'historical'])
    .add('mnqonly', ['stream'], ['MNQ']);
}

async function connect(url: string, query = 'token=bot&format=json', opts = {}): Promise<Client> {
  const c = new Client(`${url}?${query}`, opts);
  clients.push(c);
  await c.opened;
  return c;
}

/** Stop reading from the socket: the kernel buffers fill, then the server's uWS buffer grows. */
function stopReading(c: Client): void {
  (c.ws as unknown as { _socket: { pause(): void } })._socket.pause();
}
function resumeReading(c: Client): void {
  (c.ws as unknown as { _socket: { resume(): void } })._socket.resume();
}

describe('ws slow consumers', () => {
  it('closes a client that stops reading trades with 4008 SLOW_CONSUMER; a fast client gets every tick', async () => {
    server = await startServer({ keys: keys(), deps: { options: { softBufferBytes: 64 * 1024, hardBufferBytes: 256 * 1024 } } });
    const fast = await connect(server.url, 'token=bot&format=binary');
    const slow = await connect(server.url, 'token=bot&format=json');
    for (const c of [fast, slow]) c.send({ op: 'subscribe', symbols: ['NQ'] });
    await waitFor(() => fast.got.control.some((m) => m.type === 'subscribed') && slow.got.control.some((m) => m.type === 'subscribed'), 'acks');
    stopReading(slow);
    const p = new Producer(server.hub, server.hot, server.ids.NQ);
    // keep producing until the slow client is closed (JSON trades are ~250 B: the kernel buffers fill in a few MB)
    const deadline = Date.now() + 15_000;
    while (server.hub.stats().drops.slowConsumerCloses === 0) {
      if (Date.now() > deadline) throw new Error('slow client never closed');
      p.produce(500);
      await new Promise((r) => setImmediate(r));
    }
    p.produce(500); // more after the close: the fast client must still get them
    resumeReading(slow);
    await waitFor(() => slow.got.closed !== null, 'slow client close event');
    expect(slow.got.closed!.code).toBe(4008);
    expect(slow.got.closed!.reason).toMatch(/^SLOW_CONSUMER/);
    // what the slow client got before the close is a contiguous prefix: no silent hole
    expect(isContiguous(slow.got.tradeSeqs, 1, slow.got.tradeSeqs.length)).toBeNull();
    await waitFor(() => fast.got.tradeSeqs.length === p.seq, 'fast client has everything');
    expect(isContiguous(fast.got.tradeSeqs, 1, p.seq)).toBeNull();
    const s = server.hub.stats();
    expect(s.drops.slowConsumerCloses).toBe(1);
    expect(s.drops.tradesNotDelivered).toBeGreaterThan(0);
    expect(s.clients).toBe(1);
    const fam = wsMetricFamilies(s).find((f) => f.name === 'tickpipe_ws_slow_consumer_drops_total')!;
    expect(fam.samples.find((x) => x.labels?.kind === 'closes')!.value).toBe(1);
  });

  it('conflates quotes for a client that stops reading, then delivers the latest value', async () => {
    server = await startServer({ keys: keys(), deps: { options: { softBufferBytes: 16 * 1024, hardBufferBytes: 256 * 1024 } } });
    const slow = await connect(server.url, 'token=bot&format=json');
    slow.send({ op: 'subscribe', symbols: ['MNQ'], channels: ['quotes'] });
    await waitFor(() => slow.got.control.some((m) => m.type === 'subscribed'), 'ack');
    stopReading(slow);
    const p = new Producer(server.hub, server.hot, server.ids.MNQ);
    let q = 0;
    const deadline = Date.now() + 15_000;
    while (server.hub.stats().drops.conflatedQuotes < 50) {
      if (Date.now() > deadline) throw new Error('quotes never conflated');
      for (let i = 0; i < 200; i++) p.quote(++q);
      server.hub.onBatchEnd();
      await new Promise((r) => setImmediate(r));
    }
    resumeReading(slow);
    const quoteSeqs = (): number[] => slow.got.frames.filter((f) => f.channel.startsWith('quotes/')).flatMap((f) => (f.payload.type === 'tickBatch' ? f.payload.ticks.map((t) => t.seq) : []));
    await waitFor(() => quoteSeqs().at(-1) === q, `latest quote ${q}`);
    const seqs = quoteSeqs();
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]!).toBeGreaterThan(seqs[i - 1]!); // in order, newest last
    expect(seqs.length).toBeLessThan(q); // some were conflated away
    expect(slow.got.closed).toBeNull(); // quotes never close a client
    expect(server.hub.stats().drops.slowConsumerCloses).toBe(0);
  });
});

describe('ws heartbeats', () => {
  it('pings clients; closes one that never answers with 4000 HEARTBEAT_TIMEOUT, keeps one that does', async () => {
    server = await startServer({ keys: keys(), deps: { options: { heartbeatIntervalMs: 100, heartbeatTimeoutMs: 600 } } });
    const alive = await connect(server.url);
    let pings = 0;
    alive.ws.on('ping', () => { pings++; });
    const dead = await connect(server.url, 'token=bot', { autoPong: false });
    await waitFor(() => dead.got.closed !== null, 'dead client closed', 10_000);
    expect(dead.got.closed!.code).toBe(4000);
    expect(dead.got.closed!.reason).toMatch(/^HEARTBEAT_TIMEOUT/);
    expect(alive.got.closed).toBeNull();
    expect(pings).toBeGreaterThan(3);
    expect(server.hub.stats().heartbeatCloses).toBe(1);
    alive.send({ op: 'ping', id: 'p1' });
    await waitFor(() => alive.got.control.some((m) => m.type === 'pong' && m.id === 'p1'), 'app pong');
  });
});

describe('ws auth', () => {
  it('refuses an unknown key on upgrade with 401 (header or query), a bad format with 400', async () => {
    server = await startServer({ keys: keys() });
    const bad = new Client(`${server.url}?token=nope`);
    await expect(bad.opened).rejects.toMatchObject({ status: 401 });
    const badHeader = new Client(server.url, { headers: { Authorization: 'Bearer nope' } });
    await expect(badHeader.opened).rejects.toMatchObject({ status: 401 });
    const malformed = new Client(server.url, { headers: { Authorization: 'Basic abc' } });
    await expect(malformed.opened).rejects.toMatchObject({ status: 401 });
    const fmt = new Client(`${server.url}?token=bot&format=xml`);
    await expect(fmt.opened).rejects.toMatchObject({ status: 400 });
    const good = new Client(server.url, { headers: { Authorization: 'Bearer bot' } });
    clients.push(good);
    await good.opened;
    expect(good.got.closed).toBeNull();
    expect(server.hub.stats().upgradesRefused).toMatchObject({ unauthorized: 3, badRequest: 1 });
  });

  it('real KeyStore keys (stored hashed) work; repeated bad keys from one address get 429 with Retry-After', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tickpipe-wskeys-'));
    try {
      const ks = KeyStore.open(dir);
      const { key } = ks.createSync({ name: 'ws-bot', scopes: ['stream'], symbols: ['MNQ'] });
      server = await startServer({ keys: ks, deps: { badKeys: new BadKeyLimiter(3) } });
      const good = await connect(server.url, `token=${encodeURIComponent(key)}`);
      good.send({ op: 'subscribe', symbols: ['MNQ'] });
      await waitFor(() => good.got.control.some((m) => m.type === 'subscribed'), 'ack with a real key');
      const statuses: number[] = [];
      for (let i = 0; i < 5; i++) {
        const bad = new Client(server.url, { headers: { Authorization: `Bearer tpk_000000000000_${'A'.repeat(43)}` } });
        statuses.push(await bad.opened.then(() => 101, (e: { status?: number }) => e.status ?? 0));
      }
      expect(statuses).toEqual([401, 401, 401, 429, 429]);
      // the address is blocked for a while, even with a good key
      const blocked = new Client(`${server.url}?token=${encodeURIComponent(key)}`);
      await expect(blocked.opened).rejects.toMatchObject({ status: 429 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('an anonymous connection may only use the status channel; scopes and symbols are enforced', async () => {
    server = await startServer({ keys: keys() });
    const anon = await connect(server.url, 'format=json');
    anon.send({ op: 'subscribe', symbols: ['MNQ'], channels: ['trades'], id: 'a1' });
    await waitFor(() => anon.got.errors.length === 1, 'error');
    expect(anon.got.errors[0]).toMatchObject({ code: 'WS_AUTH_REQUIRED', requestId: 'a1' });
    const nostream = await connect(server.url, 'token=nostream');
    nostream.send({ op: 'subscribe', symbols: ['MNQ'], id: 'n1' });
    await waitFor(() => nostream.got.errors.length === 1, 'error');
    expect(nostream.got.errors[0]).toMatchObject({ code: 'WS_FORBIDDEN', requestId: 'n1' });
    const mnq = await connect(server.url, 'token=mnqonly&format=binary');
    mnq.send({ op: 'subscribe', symbols: ['NQ'], id: 'm1' });
    mnq.send({ op: 'subscribe', symbols: ['MNQ'], id: 'm2' });
    await waitFor(() => mnq.got.errors.length === 1 && mnq.got.control.some((m) => m.type === 'subscribed'), 'error + ack');
    expect(mnq.got.errors[0]).toMatchObject({ code: 'WS_FORBIDDEN', requestId: 'm1' });
    expect(mnq.got.control.find((m) => m.type === 'subscribed')!.id).toBe('m2');
    const p = new Producer(server.hub, server.hot, server.ids.MNQ);
    p.produce(5);
    await waitFor(() => mnq.got.tradeSeqs.length === 5, 'trades for the granted symbol');
    expect(anon.got.tradeSeqs).toEqual([]);
  });
});

describe('ws malformed messages', () => {
  it('answers every bad message with a coded error and stays open', async () => {
    server = await startServer({ keys: keys() });
    const c = await connect(server.url);
    const cases: [unknown, string][] = [
      ['{not json', 'WS_BAD_JSON'],
      ['[1,2]', 'WS_BAD_MESSAGE'],
      ['null', 'WS_BAD_MESSAGE'],
      [{ op: 'dance' }, 'WS_BAD_MESSAGE'],
      [{ op: 'subscribe', symbols: 'MNQ' }, 'WS_BAD_MESSAGE'],
      [{ op: 'subscribe', symbols: ['MNQ'], channels: ['telepathy'] }, 'WS_BAD_MESSAGE'],
      [{ op: 'subscribe', symbols: ['MNQ'], extra: 1 }, 'WS_BAD_MESSAGE'],
      [{ op: 'subscribe', symbols: ['ZZZZ9'] }, 'WS_UNKNOWN_SYMBOL'],
      [{ op: 'subscribe', symbols: ['MNQ'], from: 'yesterday-ish' }, 'WS_BAD_FROM'],
      [{ op: 'subscribe', symbols: ['MNQ'], channels: ['quotes'], fromMicros: 1 }, 'WS_BAD_MESSAGE'],
      [{ op: 'subscribe', channels: ['trades'] }, 'WS_BAD_MESSAGE'],
    ];
    for (const [msg, code] of cases) {
      const before = c.got.errors.length;
      c.send(msg);
      await waitFor(() => c.got.errors.length === before + 1, `error for ${JSON.stringify(msg)}`);
      expect(c.got.errors.at(-1)!.code, JSON.stringify(msg)).toBe(code);
      expect(c.got.errors.at(-1)!.message.length).toBeGreaterThan(5);
    }
    c.ws.send(Buffer.from([1, 2, 3])); // binary from a client
    await waitFor(() => c.got.errors.at(-1)?.code === 'WS_BINARY_NOT_ACCEPTED', 'binary refused');
    expect(c.got.closed).toBeNull();
  });

  it('rate-limits a client that floods messages', async () => {
    server = await startServer({ keys: keys(), deps: { options: { maxMessagesPerSecond: 10 } } });
    const c = await connect(server.url);
    for (let i = 0; i < 60; i++) c.send({ op: 'ping', id: String(i) });
    await waitFor(() => c.got.control.filter((m) => m.type === 'pong').length + c.got.errors.length === 60, 'all answered');
    expect(c.got.errors.some((e) => e.code === 'WS_RATE_LIMITED')).toBe(true);
    expect(c.got.closed).toBeNull();
  });

  it('fuzzed messages (fast-check) give an ack, a pong or a coded error, never a crash', async () => {
    server = await startServer({ keys: keys(), deps: { options: { maxMessagesPerSecond: 100_000 } } });
    const c = await connect(server.url);
    const known = new Set(Object.keys(WS_ERROR_CODES));
    const field = fc.oneof(fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 4 }),
      fc.array(fc.constantFrom('trades', 'quotes', 'book', 'bars', 'gex', 'status', 'x'), { maxLength: 7 }));
    const msg = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.json({ maxDepth: 3 }),
      fc.record({ op: fc.constantFrom('subscribe', 'unsubscribe', 'ping', 'other'), symbols: field, channels: field, from: field, fromMicros: field, id: field }, { requiredKeys: ['op'] })
        .map((o) => JSON.stringify(o)),
    );
    let answered = 0;
    await fc.assert(fc.asyncProperty(msg, async (m) => {
      const before = c.got.control.length + c.got.errors.length;
      c.send(m);
      await waitFor(() => c.got.control.length + c.got.errors.length > before || c.got.closed !== null, 'an answer', 5000);
      expect(c.got.closed).toBeNull();
      for (const e of c.got.errors) expect(known.has(e.code), e.code).toBe(true);
      answered++;
    }), { numRuns: 300, seed: 42 });
    expect(answered).toBe(300);
    // still serving
    c.send({ op: 'ping', id: 'end' });
    await waitFor(() => c.got.control.some((m) => m.type === 'pong' && m.id === 'end'), 'pong');
  });
});
