/**
 * WebSocket replay (`from`) over hours in every stored state, through api/ws/parquet-history.ts (the source
 * shared with the REST route): a Parquet-only hour (compacted, journal deleted), a mid-compaction hour
 * (Parquet of the first two thirds, the journal holding all of it), a journal-only hour, then the hot window
 * and live. Journal files are written by the project's Journal, Parquet by the compactor's pool task.
 * The reader's rows are compared exactly with the source trades; the replay comes out contiguous by seq.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Client, isContiguous, Producer, startServer, TestKeys, waitFor, type Server } from '../api/ws/fixtures/harness.ts';
import { createParquetHistory, type ParquetHistory } from '../api/ws/parquet-history.ts';
import { hourFilePath, slotViewsOf } from '../engine/journal/format.ts';
import { Journal } from '../engine/journal/journal.ts';
import { RecordKind, TradeFlag, writeTrade } from '../schemas/records.ts';
import handle from '../workers/compactor/tasks.ts';

const HOUR = 3_600_000_000;
const PER_HOUR = 900;
let dir = '';
let server: Server | null = null;
let hist: ParquetHistory | null = null;
const clients: Client[] = [];

afterAll(async () => {
  for (const c of clients) c.close();
  server?.close();
  await hist?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Trade { seq: number; ts: number; price: number; size: number; flags: number }

describe('ws replay across Parquet, mid-compaction and journal-only hours', () => {
  it('the history reader yields every trade once in order, and a replay from the first one is contiguous into live', async () => {
    dir = mkdtempSync(join(tmpdir(), 'tickpipe-wsjh-'));
    server = await startServer({ keys: new TestKeys().add('bot', ['stream']), deps: { history: (s, a, b) => hist!.reader(s, a, b), options: { replayPageRows: 256 } } });
    hist = createParquetHistory({ dataDir: dir, sourceNames: ['', 'sierra-scid', 'sierra-depth'], pageRows: 300, registry: server.registry });
    const mes = server.ids.MES;
    const symbol = server.symbols.MES;
    const hNow = Math.floor((Date.now() * 1000) / HOUR) * HOUR;
    const [hA, hB, hC] = [hNow - 3 * HOUR, hNow - 2 * HOUR, hNow - HOUR];
    // the source: trades seq 1..2700, 900 per hour, 4 s apart
    const trades: Trade[] = [];
    for (const [k, h] of [hA, hB, hC].entries()) {
      for (let i = 0; i < PER_HOUR; i++) {
        const seq = k * PER_HOUR + i + 1;
        trades.push({ seq, ts: h + 1000 + i * 4_000_000, price: 5000 + (seq % 77) * 0.25, size: 1 + (seq % 7), flags: seq % 3 === 0 ? TradeFlag.SIDE_BUY : TradeFlag.SIDE_SELL });
      }
    }
    const v = slotViewsOf(new ArrayBuffer(64));
    const j = Journal.open({ dataDir: dir, commitIntervalMs: 0 });
    const put = (list: Trade[]): void => {
      for (const t of list) {
        writeTrade(v, 0, RecordKind.TRADE, 1, mes, t.seq, t.ts, t.price, t.price - 0.25, t.price + 0.25, t.size, t.flags, 1, 1, t.seq, 1);
        if (j.append(v, 0) <= 0) throw new Error('journal refused');
        // a quote of the same symbol and a trade of another symbol beside every trade: not replayed
        writeTrade(v, 0, RecordKind.QUOTE, 1, mes, 0, t.ts + 1, NaN, t.price - 0.5, t.price + 0.5, 0, 0, 1, 1, 0, 0);
        if (j.append(v, 0) <= 0) throw new Error('journal refused');
        writeTrade(v, 0, RecordKind.TRADE, 1, server!.ids.MNQ, t.seq, t.ts + 2, 21000, 20999.75, 21000.25, 1, 0, 1, 1, t.seq, 1);
        if (j.append(v, 0) <= 0) throw new Error('journal refused');
      }
      j.flushSync();
    };
    const compact = async (h: number): Promise<number> => {
      const r = await handle({
        kind: 'compact-hour', dataDir: dir, journalPath: hourFilePath(join(dir, 'journal'), h), hourStartMicros: h,
        symbolNames: { [mes]: symbol, [server!.ids.MNQ]: server!.symbols.MNQ }, sourceNames: { 1: 'sierra-scid' },
      });
      if (r.kind !== 'compacted') throw new Error(JSON.stringify(r));
      return r.records;
    };
    put(trades.slice(0, PER_HOUR));
    await j.deleteHour(hA, { expectedRecords: await compact(hA) }); // hA: Parquet only
    put(trades.slice(PER_HOUR, PER_HOUR + 600));
    await compact(hB); // hB: Parquet of 600 trades, journal not deleted ...
    put(trades.slice(PER_HOUR + 600)); // ... and the rest of hB (late) plus hC: journal only
    await j.close();

    // 1. the reader itself: every trade once, in order, with the source's values
    const got: Trade[] = [];
    const src = new Set<number>();
    for await (const rows of hist.reader(symbol, hA, hNow)) {
      for (let i = 0; i < rows.length; i++) {
        got.push({ seq: rows.seq[i]!, ts: rows.tsMicros[i]!, price: rows.price[i]!, size: rows.size[i]!, flags: rows.flags[i]! });
        src.add(rows.sourceId[i]!);
      }
    }
    expect(got).toEqual(trades);
    expect([...src]).toEqual([1]);
    // a window inside the mid-compaction hour and across hour boundaries
    for (const [a, b] of [[hB + 30 * 60_000_000, hB + 50 * 60_000_000], [hB - 60_000_000, hB + 60_000_000], [hC - 60_000_000, hC + 60_000_000]] as const) {
      const part: number[] = [];
      for await (const rows of hist.reader(symbol, a, b)) for (let i = 0; i < rows.length; i++) part.push(rows.seq[i]!);
      expect(part).toEqual(trades.filter((t) => t.ts >= a && t.ts < b).map((t) => t.seq));
    }
    // without the registry the reader cannot map journal records: Parquet only (the old behaviour)
    const pq = createParquetHistory({ dataDir: dir, sourceNames: ['', 'sierra-scid'] });
    let n = 0;
    for await (const rows of pq.reader(symbol, hA, hNow)) n += rows.length;
    await pq.close();
    expect(n).toBe(PER_HOUR + 600);

    // 2. replay from seq 1 through the hot window (from the current hour) into live
    const p = new Producer(server.hub, server.hot, mes, hNow - 2700 * 1000);
    p.seq = 2700; p.hotSeq = 2700; p.feedSeq = 2700;
    p.produce(300);
    expect(server.hot.heldFromMicros(mes)).toBe(p.tsOf(2701));
    const c = new Client(`${server.url}?format=binary&token=bot`);
    clients.push(c);
    await c.opened;
    c.send({ op: 'subscribe', symbols: ['MES'], fromMicros: trades[0]!.ts });
    const timer = setInterval(() => p.produce(20), 2);
    try {
      await waitFor(() => c.got.control.some((m) => m.type === 'replay' && m.phase === 'live'), 'live', 20_000);
    } finally {
      clearInterval(timer);
    }
    p.produce(100);
    await waitFor(() => c.got.tradeSeqs.at(-1) === p.seq, `last seq ${p.seq}`);
    expect(isContiguous(c.got.tradeSeqs, 1, p.seq)).toBeNull();
    expect(c.got.errors).toEqual([]);
  }, 60_000);
});
