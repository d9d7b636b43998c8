import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBConnection, DuckDBInstance, type DuckDBValue } from '@duckdb/node-api';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { isEngineError } from '../../engine/errors.ts';
import { TradeFlag } from '../../schemas/records.ts';
import { CompactorDb } from './duck.ts';
import { CHECKSUM_PRICE_LIMIT, PRICE_SCALE, type TickColumns } from './figures.ts';
import { writeHourBars, writeHourParquet } from './hour-writer.ts';
import { encodeSymbolSegment, isTmpName, TICK_COLUMN_NAMES } from './layout.ts';
import { allocColumns, makeTape } from './test-ticks.ts';

const H0 = Date.UTC(2025, 10, 11, 14) * 1000; // 2025-11-11 14:00 UTC
let root: string;
let db: CompactorDb;
let reader: DuckDBConnection;
let readerInstance: DuckDBInstance;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'tickpipe-compact-'));
  db = await CompactorDb.open({ threads: 2 });
  readerInstance = await DuckDBInstance.create(':memory:', { autoinstall_known_extensions: 'false' });
  reader = await readerInstance.connect();
  await reader.run(`SET TimeZone = 'UTC'`);
});

afterAll(async () => {
  await db.close();
  reader.closeSync();
  readerInstance.closeSync();
  rmSync(root, { recursive: true, force: true });
});

let dirCounter = 0;
const freshDir = (): string => {
  const d = join(root, `d${dirCounter++}`);
  mkdirSync(d);
  return d;
};

async function rows(sql: string): Promise<DuckDBValue[][]> {
  return (await reader.runAndReadAll(sql)).getRows();
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    return isEngineError(e) ? e.code : `uncoded: ${String(e)}`;
  }
  return 'resolved';
}

/** Every file name under `dir`, recursively. */
function listAll(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => e.name);
}

const FILE_ROW_SQL = (path: string): string =>
  `SELECT epoch_us(ts)::DOUBLE, ts_ms::DOUBLE, price, size, bid, ask, side, source, seq, flags FROM read_parquet('${path}')`;

/** Expected file rows: stable-sorted by (ts, seq), NaN → null, side from flags. */
function expectedRows(c: TickColumns, n: number, names: readonly string[]): unknown[][] {
  const idx = Array.from({ length: n }, (_, i) => i);
  idx.sort((a, b) => ((c.tsMicros[a] as number) - (c.tsMicros[b] as number)) || ((c.seq[a] as number) - (c.seq[b] as number)));
  const nn = (x: number): number | null => (Number.isNaN(x) ? null : x);
  return idx.map((i) => {
    const t = c.tsMicros[i] as number;
    const f = c.flags[i] as number;
    const side = (f & 3) === TradeFlag.SIDE_BUY ? 'B' : (f & 3) === TradeFlag.SIDE_SELL ? 'S' : '';
    return [t, Math.floor(t / 1000), nn(c.price[i] as number), c.size[i], nn(c.bid[i] as number), nn(c.ask[i] as number), side,
      names[c.sourceId === undefined ? 0 : (c.sourceId[i] as number)], c.seq[i], f];
  });
}

function refChecksum(c: TickColumns, n: number): string {
  let s = 0n;
  for (let i = 0; i < n; i++) {
    const px = c.price[i] as number;
    if (Math.abs(px) < CHECKSUM_PRICE_LIMIT) s += BigInt(Math.floor(px * PRICE_SCALE + 0.5)) * BigInt(c.size[i] as number);
  }
  return s.toString();
}

describe('writeHourParquet', () => {
  test('round trip: every column of every row reads back (random ticks, sorted and unsorted input, 1-3 sources)', async () => {
    const doubleArb = fc.oneof(
      { weight: 3, arbitrary: fc.integer({ min: 1, max: 400_000 }).map((t) => t * 0.25) },
      { weight: 2, arbitrary: fc.double({ noNaN: false, noDefaultInfinity: true }) },
      { weight: 1, arbitrary: fc.constant(Number.NaN) },
    );
    const tickArb = fc.record({
      dt: fc.integer({ min: 0, max: 3_599_999_999 }),
      price: doubleArb, bid: doubleArb, ask: doubleArb,
      size: fc.oneof(fc.nat(100), fc.nat({ max: 0xffffffff })),
      flags: fc.oneof(fc.nat(3), fc.nat({ max: 0xffffffff })),
      src: fc.nat(2),
    });
    await fc.assert(fc.asyncProperty(
      fc.array(tickArb, { minLength: 0, maxLength: 3000 }), fc.boolean(), fc.integer({ min: 1, max: 3 }), fc.nat({ max: 0xffffffff }),
      async (ticks, sortFirst, sourceCount, seqBase) => {
        const n = ticks.length;
        if (sortFirst) ticks.sort((a, b) => a.dt - b.dt);
        const names = ['sierra', 'dxlink', "o'brien feed"].slice(0, sourceCount);
        const c = allocColumns(n, sourceCount > 1);
        for (let i = 0; i < n; i++) {
          const t = ticks[i] as (typeof ticks)[number];
          c.tsMicros[i] = H0 + t.dt;
          c.price[i] = t.price; c.bid[i] = t.bid; c.ask[i] = t.ask;
          c.size[i] = t.size; c.flags[i] = t.flags;
          c.seq[i] = (seqBase + i * 2_654_435_761) >>> 0; // unique per row: (ts, seq) has no ties
          if (c.sourceId) c.sourceId[i] = t.src % sourceCount;
        }
        const dataDir = freshDir();
        const res = await writeHourParquet({ dataDir, symbol: 'MNQZ25', hourStartMicros: H0, columns: c, count: n, source: sourceCount > 1 ? names : 'sierra', db });
        const got = await rows(FILE_ROW_SQL(res.path));
        expect(got).toEqual(expectedRows(c, n, names));
        expect(res.rows).toBe(n);
        expect(res.checksum).toBe(refChecksum(c, n));
        if (n > 0) {
          expect(res.minTsMicros).toBe(Math.min(...c.tsMicros));
          expect(res.maxTsMicros).toBe(Math.max(...c.tsMicros));
        }
        expect(listAll(dataDir).filter(isTmpName)).toEqual([]);
      },
    ), { numRuns: 8 });
  });

  test('layout: Hive path, column types, UTC-adjusted timestamp, ZSTD everywhere, sorted by (ts, seq)', async () => {
    const dataDir = freshDir();
    const n = 20_000;
    const c = makeTape(n, H0, 11);
    // shuffle a window so the writer has to sort
    for (let i = 100; i < 200; i++) {
      const j = 300 + ((i * 7) % 100);
      for (const k of ['tsMicros', 'price', 'bid', 'ask', 'size', 'flags', 'seq'] as const) {
        const a = c[k];
        const t = a[i] as number; a[i] = a[j] as number; a[j] = t;
      }
    }
    const res = await writeHourParquet({ dataDir, symbol: 'MNQZ25', hourStartMicros: H0, columns: c, count: n, source: 'sierra', db });
    expect(res.sorted).toBe(false);
    expect(res.path).toBe(join(dataDir, 'ticks', 'symbol=MNQZ25', 'date=2025-11-11', 'hour=14.parquet'));
    expect(res.bytes).toBe(statSync(res.path).size);

    const desc = await rows(`DESCRIBE SELECT * FROM read_parquet('${res.path}', hive_partitioning = false)`);
    expect(desc.map((r) => [r[0], r[1]])).toEqual([
      ['ts', 'TIMESTAMP WITH TIME ZONE'], ['ts_ms', 'BIGINT'], ['price', 'DOUBLE'], ['size', 'UINTEGER'], ['bid', 'DOUBLE'],
      ['ask', 'DOUBLE'], ['side', 'VARCHAR'], ['source', 'VARCHAR'], ['seq', 'UINTEGER'], ['flags', 'UINTEGER'], ['src_index', 'UINTEGER'],
    ]);
    expect(desc.map((r) => r[0])).toEqual([...TICK_COLUMN_NAMES]);
    const schema = await rows(`SELECT name, type, logical_type FROM parquet_schema('${res.path}') WHERE name = 'ts'`);
    expect(schema[0]?.[1]).toBe('INT64');
    expect(String(schema[0]?.[2])).toContain('isAdjustedToUTC=1');
    expect(String(schema[0]?.[2])).toContain('MICROS=MicroSeconds()');
    const codecs = await rows(`SELECT DISTINCT compression FROM parquet_metadata('${res.path}')`);
    expect(codecs).toEqual([['ZSTD']]);
    // Parquet V2 encodings (layout.ts PARQUET_VERSION): delta-packed timestamps
    const tsEnc = await rows(`SELECT DISTINCT encodings FROM parquet_metadata('${res.path}') WHERE path_in_schema = 'ts'`);
    expect(String(tsEnc[0]?.[0])).toContain('DELTA_BINARY_PACKED');

    // Hive keys from the directories: a glob over the tree yields symbol and date columns.
    const hive = await rows(`SELECT DISTINCT symbol, date::VARCHAR FROM read_parquet('${dataDir}/ticks/*/*/*.parquet', hive_partitioning = true)`);
    expect(hive).toEqual([['MNQZ25', '2025-11-11']]);
    const barHive = await rows(`SELECT DISTINCT interval, symbol, date::VARCHAR FROM read_parquet('${dataDir}/bars/*/*/*/*.parquet', hive_partitioning = true)`);
    expect(barHive).toEqual([['1m', 'MNQZ25', '2025-11-11']]);

    // file order is (ts, seq) order
    const bad = await rows(`SELECT count(*) FROM (SELECT ts, seq, lag(ts) OVER w AS pts, lag(seq) OVER w AS pseq, rn FROM ` +
      `(SELECT *, row_number() OVER () AS rn FROM read_parquet('${res.path}')) WINDOW w AS (ORDER BY rn)) ` +
      `WHERE ts < pts OR (ts = pts AND seq < pseq)`);
    expect(Number(bad[0]?.[0])).toBe(0);
    expect(await rows(FILE_ROW_SQL(res.path))).toEqual(expectedRows(c, n, ['sierra']));
  });

  test('sorted input keeps input order for equal timestamps (seq breaks ties) and needs no sort', async () => {
    const dataDir = freshDir();
    const n = 5000;
    const c = allocColumns(n);
    for (let i = 0; i < n; i++) {
      c.tsMicros[i] = H0 + Math.floor(i / 10) * 1000; // 10 ticks per millisecond
      c.price[i] = 100 + i * 0.01; c.bid[i] = Number.NaN; c.ask[i] = Number.NaN; c.size[i] = 1; c.seq[i] = i;
    }
    const res = await writeHourParquet({ dataDir, symbol: 'ESZ25', hourStartMicros: H0, columns: c, count: n, source: 'sierra', db });
    expect(res.sorted).toBe(true);
    const seqs = (await rows(`SELECT seq FROM read_parquet('${res.path}')`)).map((r) => r[0]);
    expect(seqs).toEqual(Array.from({ length: n }, (_, i) => i));
  });

  test('src_index: the source record index of each row when given (sorted or not), NULL when not; a short column is refused', async () => {
    const dataDir = freshDir();
    const n = 5000;
    const c = makeTape(n, H0, 31);
    c.srcIndex = new Uint32Array(n);
    for (let i = 0; i < n; i++) c.srcIndex[i] = 1_000_000 + i * 3;
    const t = c.tsMicros[10] as number; c.tsMicros[10] = c.tsMicros[11] as number; c.tsMicros[11] = t; // unsorted: DuckDB sorts
    const s = c.srcIndex[10] as number; c.srcIndex[10] = c.srcIndex[11] as number; c.srcIndex[11] = s;
    const q = c.seq[10] as number; c.seq[10] = c.seq[11] as number; c.seq[11] = q;
    const res = await writeHourParquet({ dataDir, symbol: 'MNQZ25', hourStartMicros: H0, columns: c, count: n, source: 'sierra', db });
    expect(res.sorted).toBe(false);
    const got = await rows(`SELECT seq::DOUBLE, src_index::DOUBLE FROM read_parquet('${res.path}') ORDER BY seq`);
    expect(got).toEqual(Array.from({ length: n }, (_, i) => [i + 1, 1_000_000 + i * 3]));
    const plain = makeTape(100, H0, 32);
    const res2 = await writeHourParquet({ dataDir: freshDir(), symbol: 'MNQZ25', hourStartMicros: H0, columns: plain, count: 100, source: 'sierra', db });
    expect(await rows(`SELECT count(src_index)::DOUBLE, count(*)::DOUBLE FROM read_parquet('${res2.path}')`)).toEqual([[0, 100]]);
    const short = makeTape(100, H0, 33);
    short.srcIndex = new Uint32Array(50);
    expect(await codeOf(writeHourParquet({ dataDir: freshDir(), symbol: 'MNQZ25', hourStartMicros: H0, columns: short, count: 100, source: 'sierra', db }))).toBe('ENGINE_ERR_INVALID_ARG');
  });

  test('SharedArrayBuffer-backed columns are accepted', async () => {
    const n = 4100; // two full chunks and a partial one
    const src = makeTape(n, H0, 5);
    const sab = <T extends Float64Array | Uint32Array>(a: T, Ctor: new (b: SharedArrayBuffer) => T): T => {
      const out = new Ctor(new SharedArrayBuffer(a.byteLength));
      out.set(a);
      return out;
    };
    const c: TickColumns = {
      tsMicros: sab(src.tsMicros, Float64Array), price: sab(src.price, Float64Array), bid: sab(src.bid, Float64Array), ask: sab(src.ask, Float64Array),
      size: sab(src.size, Uint32Array), flags: sab(src.flags, Uint32Array), seq: sab(src.seq, Uint32Array),
    };
    const res = await writeHourParquet({ dataDir: freshDir(), symbol: 'MNQZ25', hourStartMicros: H0, columns: c, count: n, source: 'dxlink', db });
    expect(await rows(FILE_ROW_SQL(res.path))).toEqual(expectedRows(src, n, ['dxlink']));
  });

  test('idempotent: writing the same hour again replaces the file and its bars, never adds rows', async () => {
    const dataDir = freshDir();
    const a = makeTape(3000, H0, 1);
    const r1 = await writeHourParquet({ dataDir, symbol: 'MNQZ25', hourStartMicros: H0, columns: a, count: 3000, source: 'sierra', db });
    const r2 = await writeHourParquet({ dataDir, symbol: 'MNQZ25', hourStartMicros: H0, columns: a, count: 3000, source: 'sierra', db });
    expect(r2.path).toBe(r1.path);
    const glob = `${dataDir}/ticks/symbol=*/date=*/*.parquet`;
    expect(Number((await rows(`SELECT count(*) FROM read_parquet('${glob}')`))[0]?.[0])).toBe(3000);
    // a replay with fewer rows (e.g. the journal was re-read after a partial earlier run) replaces, too
    const r3 = await writeHourParquet({ dataDir, symbol: 'MNQZ25', hourStartMicros: H0, columns: a, count: 1200, source: 'sierra', db });
    expect(r3.rows).toBe(1200);
    expect(Number((await rows(`SELECT count(*) FROM read_parquet('${glob}')`))[0]?.[0])).toBe(1200);
    expect(Number((await rows(`SELECT sum(trades) FROM read_parquet('${dataDir}/bars/interval=1m/symbol=*/date=*/*.parquet')`))[0]?.[0])).toBe(r3.bars.trades);
    expect(listAll(dataDir).sort()).toEqual(['hour=14.parquet', 'hour=14.parquet']);
  });

  test('an empty hour writes a valid 0-row file and 0 bars', async () => {
    const res = await writeHourParquet({ dataDir: freshDir(), symbol: 'MNQZ25', hourStartMicros: H0, columns: allocColumns(0), count: 0, source: 'sierra', db });
    expect(res).toMatchObject({ rows: 0, minTsMicros: null, maxTsMicros: null, checksum: '0', volume: '0' });
    expect(res.bars.rows).toBe(0);
    expect(Number((await rows(`SELECT count(*) FROM read_parquet('${res.path}')`))[0]?.[0])).toBe(0);
  });

  test('concurrent calls on one session are serialised and all land', async () => {
    const dataDir = freshDir();
    const hours = [0, 1, 2, 3];
    const results = await Promise.all(hours.map((h) => {
      const start = H0 + h * 3_600_000_000;
      return writeHourParquet({ dataDir, symbol: 'NQZ25', hourStartMicros: start, columns: makeTape(2500, start, 100 + h), count: 2500, source: 'sierra', db });
    }));
    expect(results.map((r) => r.path.slice(-15))).toEqual(['hour=14.parquet', 'hour=15.parquet', 'hour=16.parquet', 'hour=17.parquet']);
    expect(Number((await rows(`SELECT count(*) FROM read_parquet('${dataDir}/ticks/*/*/*.parquet')`))[0]?.[0])).toBe(10_000);
  });

  test('symbols with path characters are percent-encoded into one directory', async () => {
    expect(encodeSymbolSegment('ES/MES')).toBe('ES%2FMES');
    expect(encodeSymbolSegment('..')).toBe('%2E.');
    expect(encodeSymbolSegment('$SPX')).toBe('$SPX');
    const dataDir = freshDir();
    const res = await writeHourParquet({ dataDir, symbol: 'ES/MES', hourStartMicros: H0, columns: makeTape(10, H0, 3), count: 10, source: 'sierra', db });
    expect(res.path).toBe(join(dataDir, 'ticks', 'symbol=ES%2FMES', 'date=2025-11-11', 'hour=14.parquet'));
  });
});

describe('verification and errors', () => {
  test('a tampered file fails verification (ENGINE_ERR_COMPACT), is removed, and the previous file stays', async () => {
    const dataDir = freshDir();
    const c = makeTape(4000, H0, 21);
    const good = await writeHourParquet({ dataDir, symbol: 'MNQZ25', hourStartMicros: H0, columns: c, count: 4000, source: 'sierra', db });
    const goodBytes = statSync(good.path).size;

    for (const tamper of [
      // one price moved by one tick: checksum differs, count and times do not
      `SELECT * REPLACE (CASE WHEN seq = 2000 THEN price + 0.25 ELSE price END AS price)`,
      // one row lost: rows, checksum and volume differ
      `SELECT * EXCLUDE (rn) FROM (SELECT *, row_number() OVER () AS rn`,
    ]) {
      let caught: unknown;
      try {
        await writeHourParquet({
          dataDir, symbol: 'MNQZ25', hourStartMicros: H0, columns: c, count: 4000, source: 'sierra', db,
          testHooks: {
            beforeVerify: async (tmp) => {
              const other = `${tmp}.other`;
              const sql = tamper.startsWith('SELECT * EXCLUDE')
                ? `${tamper} FROM read_parquet('${tmp}')) WHERE rn <> 17`
                : `${tamper} FROM read_parquet('${tmp}')`;
              await reader.run(`COPY (${sql}) TO '${other}' (FORMAT parquet, COMPRESSION zstd)`);
              rmSync(tmp);
              await reader.run(`COPY (SELECT * FROM read_parquet('${other}')) TO '${tmp}' (FORMAT parquet)`);
              rmSync(other);
            },
          },
        });
      } catch (e) {
        caught = e;
      }
      expect(isEngineError(caught, 'ENGINE_ERR_COMPACT')).toBe(true);
      const detail = (caught as { detail: Record<string, unknown> }).detail;
      expect(String(detail.mismatch)).toContain('checksum');
      if (tamper.includes('EXCLUDE')) expect(String(detail.mismatch)).toContain('rows');
      expect(listAll(dataDir).filter(isTmpName)).toEqual([]);
      expect(statSync(good.path).size).toBe(goodBytes);
      expect(Number((await rows(`SELECT count(*) FROM read_parquet('${good.path}')`))[0]?.[0])).toBe(4000);
    }
  });

  test('a DuckDB failure while writing is ENGINE_ERR_COMPACT and leaves no file in place', async () => {
    const dataDir = freshDir();
    const c = makeTape(1000, H0, 2);
    const code = await codeOf(writeHourParquet({
      dataDir, symbol: 'MNQZ25', hourStartMicros: H0, columns: c, count: 1000, source: 'sierra', db,
      testHooks: { beforeCopy: (tmp) => { mkdirSync(tmp); } }, // DuckDB cannot open a directory as its output file
    }));
    expect(code).toBe('ENGINE_ERR_COMPACT');
    const dir = join(dataDir, 'ticks', 'symbol=MNQZ25', 'date=2025-11-11');
    expect(readdirSync(dir)).toEqual([]);
    // the session is still usable afterwards
    const ok = await writeHourParquet({ dataDir, symbol: 'MNQZ25', hourStartMicros: H0, columns: c, count: 1000, source: 'sierra', db });
    expect(ok.rows).toBe(1000);
  });

  test('a column detached (transferred away) while DuckDB reads it fails cleanly instead of reading freed memory', async () => {
    const dataDir = freshDir();
    const c = makeTape(5000, H0, 4);
    let caught: unknown;
    try {
      await writeHourParquet({
        dataDir, symbol: 'MNQZ25', hourStartMicros: H0, columns: c, count: 5000, source: 'sierra', db,
        testHooks: { beforeCopy: () => { const buf = c.price.buffer as ArrayBuffer; structuredClone(buf, { transfer: [buf] }); } },
      });
    } catch (e) {
      caught = e;
    }
    expect(isEngineError(caught, 'ENGINE_ERR_COMPACT')).toBe(true);
    expect((caught as Error).message).toContain('detached');
    expect(c.price.length).toBe(0); // really detached
    expect(readdirSync(join(dataDir, 'ticks', 'symbol=MNQZ25', 'date=2025-11-11'))).toEqual([]);
  });

  test('an unwritable data dir (parent is a regular file) is ENGINE_ERR_FILE_IO naming ENOTDIR', async () => {
    const file = join(freshDir(), 'not-a-dir');
    writeFileSync(file, 'x');
    let caught: unknown;
    try {
      await writeHourParquet({ dataDir: join(file, 'data'), symbol: 'MNQZ25', hourStartMicros: H0, columns: makeTape(10, H0, 1), count: 10, source: 'sierra', db });
    } catch (e) {
      caught = e;
    }
    expect(isEngineError(caught, 'ENGINE_ERR_FILE_IO')).toBe(true);
    expect((caught as { detail: Record<string, unknown> }).detail.errno).toBe('ENOTDIR');
    expect((caught as Error).message).toContain('not-a-dir');
  });

  test('bad arguments are ENGINE_ERR_INVALID_ARG before anything is written', async () => {
    const dataDir = freshDir();
    const c = makeTape(10, H0, 1);
    const base = { dataDir, symbol: 'MNQZ25', hourStartMicros: H0, columns: c, count: 10, source: 'sierra', db };
    expect(await codeOf(writeHourParquet({ ...base, hourStartMicros: H0 + 1 }))).toBe('ENGINE_ERR_INVALID_ARG');
    expect(await codeOf(writeHourParquet({ ...base, hourStartMicros: H0 + 3_600_000_000 }))).toBe('ENGINE_ERR_INVALID_ARG'); // ticks not in that hour
    expect(await codeOf(writeHourParquet({ ...base, source: ['a', 'b'] }))).toBe('ENGINE_ERR_INVALID_ARG'); // several names, no ids
    expect(await codeOf(writeHourParquet({ ...base, source: '' }))).toBe('ENGINE_ERR_INVALID_ARG');
    expect(await codeOf(writeHourParquet({ ...base, symbol: '' }))).toBe('ENGINE_ERR_INVALID_ARG');
    expect(await codeOf(writeHourParquet({ ...base, dataDir: join(dataDir, 'a*b') }))).toBe('ENGINE_ERR_INVALID_ARG');
    expect(readdirSync(dataDir)).toEqual([]);
  });

  test('writing an hour of an already consolidated date is refused (it would duplicate rows)', async () => {
    const dataDir = freshDir();
    const dir = join(dataDir, 'ticks', 'symbol=MNQZ25', 'date=2025-11-11');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'day.parquet'), 'placeholder');
    let caught: unknown;
    try {
      await writeHourParquet({ dataDir, symbol: 'MNQZ25', hourStartMicros: H0, columns: makeTape(10, H0, 1), count: 10, source: 'sierra', db });
    } catch (e) {
      caught = e;
    }
    expect(isEngineError(caught, 'ENGINE_ERR_COMPACT')).toBe(true);
    expect((caught as { detail: Record<string, unknown> }).detail.reason).toBe('day-consolidated');
    expect(readdirSync(dir)).toEqual(['day.parquet']);
  });
});

describe('1-minute bars', () => {
  interface Bar { ts: number; open: number; high: number; low: number; close: number; volume: number; trades: number; buy: number; sell: number; vwap: number | null }

  function jsBars(c: TickColumns, n: number): Bar[] {
    const idx = Array.from({ length: n }, (_, i) => i).filter((i) => !Number.isNaN(c.price[i]));
    idx.sort((a, b) => ((c.tsMicros[a] as number) - (c.tsMicros[b] as number)) || ((c.seq[a] as number) - (c.seq[b] as number)));
    const out: Bar[] = [];
    let cur: (Bar & { pv: number }) | null = null;
    for (const i of idx) {
      const m = Math.floor((c.tsMicros[i] as number) / 60e6) * 60e6;
      const p = c.price[i] as number;
      const s = c.size[i] as number;
      if (cur === null || cur.ts !== m) {
        if (cur) out.push(cur);
        cur = { ts: m, open: p, high: p, low: p, close: p, volume: 0, trades: 0, buy: 0, sell: 0, vwap: null, pv: 0 };
      }
      cur.high = Math.max(cur.high, p); cur.low = Math.min(cur.low, p); cur.close = p;
      cur.volume += s; cur.trades++; cur.pv += p * s;
      const side = (c.flags[i] as number) & 3;
      if (side === TradeFlag.SIDE_BUY) cur.buy += s;
      else if (side === TradeFlag.SIDE_SELL) cur.sell += s;
    }
    if (cur) out.push(cur);
    for (const b of out as (Bar & { pv: number })[]) b.vwap = b.volume > 0 ? b.pv / b.volume : null;
    return out;
  }

  test('bars equal a JS computation (OHLC by (ts, seq), volumes by side, VWAP), quotes excluded', async () => {
    const dataDir = freshDir();
    const n = 30_000;
    const c = makeTape(n, H0, 77);
    c.flags[10] = 0; // a trade with unknown side
    const res = await writeHourParquet({ dataDir, symbol: 'MNQZ25', hourStartMicros: H0, columns: c, count: n, source: 'sierra', db });
    expect(res.bars.path).toBe(join(dataDir, 'bars', 'interval=1m', 'symbol=MNQZ25', 'date=2025-11-11', 'hour=14.parquet'));
    const got = await rows(`SELECT epoch_us(ts)::DOUBLE, ts_ms::DOUBLE, open, high, low, close, volume::DOUBLE, trades::DOUBLE, ` +
      `buy_volume::DOUBLE, sell_volume::DOUBLE, vwap FROM read_parquet('${res.bars.path}')`);
    const want = jsBars(c, n);
    expect(got.length).toBe(want.length);
    expect(res.bars.rows).toBe(want.length);
    for (let k = 0; k < want.length; k++) {
      const g = got[k] as DuckDBValue[];
      const w = want[k] as Bar;
      expect(g.slice(0, 10)).toEqual([w.ts, w.ts / 1000, w.open, w.high, w.low, w.close, w.volume, w.trades, w.buy, w.sell]);
      // VWAP is a float sum: summation order may differ, so compare to 1e-12 relative
      expect(Math.abs((g[10] as number) - (w.vwap as number))).toBeLessThanOrEqual(Math.abs(w.vwap as number) * 1e-12);
    }
    const types = await rows(`DESCRIBE SELECT * FROM read_parquet('${res.bars.path}', hive_partitioning = false)`);
    expect(types.map((r) => `${String(r[0])}:${String(r[1])}`)).toEqual([
      'ts:TIMESTAMP WITH TIME ZONE', 'ts_ms:BIGINT', 'open:DOUBLE', 'high:DOUBLE', 'low:DOUBLE', 'close:DOUBLE', 'volume:BIGINT',
      'trades:BIGINT', 'buy_volume:BIGINT', 'sell_volume:BIGINT', 'vwap:DOUBLE',
    ]);
  });

  test('writeHourBars rebuilds missing bars from the tick file', async () => {
    const dataDir = freshDir();
    const c = makeTape(5000, H0, 8);
    const res = await writeHourParquet({ dataDir, symbol: 'MNQZ25', hourStartMicros: H0, columns: c, count: 5000, source: 'sierra', db });
    const before = await rows(`SELECT * FROM read_parquet('${res.bars.path}')`);
    rmSync(res.bars.path);
    const again = await writeHourBars({ dataDir, symbol: 'MNQZ25', date: '2025-11-11', hour: '14', db });
    expect(again).toEqual(res.bars);
    expect(await rows(`SELECT * FROM read_parquet('${res.bars.path}')`)).toEqual(before);
    expect(await codeOf(writeHourBars({ dataDir, symbol: 'MNQZ25', date: '2025-11-11', hour: '15', db }))).toBe('ENGINE_ERR_FILE_IO');
  });
});
