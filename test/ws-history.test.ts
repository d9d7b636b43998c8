/**
 * WebSocket replay across real Parquet hour files (written by the compactor's writeHourParquet, read with
 * DuckDB through api/ws/parquet-history.ts), the hot window and the live feed: a replay that starts two
 * hour files back comes out contiguous (no gap, no duplicate even where Parquet and the hot window
 * overlap) and continues live.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Client, isContiguous, Producer, startServer, TestKeys, waitFor, type Server } from '../api/ws/fixtures/harness.ts';
import { createParquetHistory, type ParquetHistory } from '../api/ws/parquet-history.ts';
import { writeHourParquet } from '../workers/compactor/hour-writer.ts';
import { allocColumns } from '../workers/compactor/test-ticks.ts';
import { TradeFlag } from '../schemas/records.ts';

const HOUR = 3_600_000_000;
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

describe('ws replay from Parquet', () => {
  it('replays Parquet hours, then the hot window, then live, contiguous across both hour files and the overlap', async () => {
    dir = mkdtempSync(join(tmpdir(), 'tickpipe-wshist-'));
    const h1 = Math.floor(Date.now() * 1000 / HOUR) * HOUR - HOUR; // the previous full hour
    const t0 = h1 - 1000 * 1000; // seq s at t0 + s ms: seq 1..999 in the hour before h1, 1000.. in h1
    // a Producer gives the same ts/price for a seq as the Parquet rows below
    hist = createParquetHistory({ dataDir: dir, sourceNames: ['', 'sierra-scid'], pageRows: 300 });
    server = await startServer({ keys: new TestKeys().add('bot', ['stream']), deps: { history: hist.reader, options: { replayPageRows: 256 } } });
    const symbol = server.symbols.MES;
    const p = new Producer(server.hub, server.hot, server.ids.MES, t0);
    const write = async (fromSeq: number, toSeq: number, hourStart: number): Promise<void> => {
      const n = toSeq - fromSeq + 1;
      const c = allocColumns(n);
      for (let i = 0; i < n; i++) {
        const s = fromSeq + i;
        const price = p.priceOf(s);
        c.tsMicros[i] = p.tsOf(s); c.price[i] = price; c.bid[i] = price - 0.25; c.ask[i] = price + 0.25;
        c.size[i] = 1 + (s % 5); c.flags[i] = s % 2 === 0 ? TradeFlag.SIDE_BUY : TradeFlag.SIDE_SELL; c.seq[i] = s;
      }
      await writeHourParquet({ dataDir: dir, symbol, hourStartMicros: hourStart, columns: c, count: n, source: 'sierra-scid' });
    };
    await write(1, 999, h1 - HOUR);
    await write(1000, 2000, h1);
    // the hot window (and the feed) from seq 1501: it overlaps Parquet for 1501..2000
    p.seq = 1500; p.hotSeq = 1500; p.feedSeq = 1500;
    p.produce(1500);
    expect(server.hot.heldFromMicros(server.ids.MES)).toBe(p.tsOf(1501));

    const c = new Client(`${server.url}?format=binary&token=bot`);
    clients.push(c);
    await c.opened;
    c.send({ op: 'subscribe', symbols: ['MES'], fromMicros: p.tsOf(1) });
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
    // replayed rows carry the Parquet values
    const first = c.got.frames.find((f) => f.payload.type === 'tickBatch')!;
    expect(first.payload.type === 'tickBatch' && first.payload.ticks[0]).toMatchObject({ seq: 1, tsMicros: p.tsOf(1), price: p.priceOf(1), size: 2, side: 'sell' });
    expect(first.payload.type === 'tickBatch' && first.payload.source).toBe('sierra-scid');
  });

  it('a range with no Parquet files yields nothing', async () => {
    const h = createParquetHistory({ dataDir: mkdtempSync(join(tmpdir(), 'tickpipe-wshist-empty-')), sourceNames: [] });
    let n = 0;
    for await (const rows of h.reader('MESZ99', 0, Date.now() * 1000)) n += rows.length;
    expect(n).toBe(0);
    await h.close();
  });
});
