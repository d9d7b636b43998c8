/**
 * WebSocket wire format: a 64-tick TickBatch frame, FlatBuffers (schemas/wire.ts) against the naive
 * baseline a JSON client would get, JSON.stringify / JSON.parse of the same batch, measured in the same run.
 *
 * - encode: WireEncoder.encodeTickBatch from tick columns (what the broadcaster has after reading ring
 *   slots) vs JSON.stringify of the batch as plain objects (the objects are prebuilt, which flatters JSON:
 *   a real JSON path would also have to build them).
 * - decode: WireDecoder.decodeFrame to plain objects (verification included) vs JSON.parse, and
 *   readTickBatchInto columns (no per-tick objects) vs JSON.parse.
 * - round trip: encode + decodeFrame vs stringify + parse, in frames/s and ticks/s, plus latency
 *   percentiles and the frame sizes.
 */
import { Bench, type Task } from 'tinybench';
import { TickBatchJsonWriter, tickBatchJsonReference } from '../api/ws/frames.ts';
import { WireDecoder, WireEncoder, createTickColumns, Side, sideName, type TickColumns, type WireFrame, type WireTick } from '../schemas/wire.ts';
import { sig, type BenchResult, type BenchSuite } from './lib.ts';

const TICKS = 64;

/** A JSON number as JSON.stringify writes it (NaN and ±Infinity: null). */
function num(x: number): string {
  return Number.isFinite(x) ? String(x) : 'null';
}

/**
 * Baseline of the hub's JSON tick batch: the template-string form the hub used before TickBatchJsonWriter
 * (one string per frame, no WireTick objects; checked against tickBatchJsonReference below).
 */
function tickBatchJsonString(channel: string, frameTsMicros: number, symbol: string, source: string, cols: TickColumns, start: number, count: number): string {
  let out = `{"channel":${JSON.stringify(channel)},"tsMicros":${num(frameTsMicros)},"payload":{"type":"tickBatch","symbol":${JSON.stringify(symbol)},"source":${JSON.stringify(source)},"firstSeq":${count > 0 ? cols.seq[start]! : 0},"ticks":[`;
  for (let k = 0; k < count; k++) {
    const i = start + k;
    out += `${k === 0 ? '' : ','}{"symbolId":${cols.symbolId[i]!},"seq":${cols.seq[i]!},"tsMicros":${num(cols.tsMicros[i]!)},"price":${num(cols.price[i]!)},"bid":${num(cols.bid[i]!)},"ask":${num(cols.ask[i]!)},"size":${cols.size[i]!},"bidSize":${cols.bidSize[i]!},"askSize":${cols.askSize[i]!},"side":"${sideName(cols.side[i]!)}","flags":${cols.flags[i]!}}`;
  }
  return `${out}]}}`;
}

function fixture(): { frame: WireFrame; cols: ReturnType<typeof createTickColumns> } {
  const cols = createTickColumns(TICKS);
  const ticks: WireTick[] = [];
  for (let i = 0; i < TICKS; i++) {
    const side = i % 3 === 0 ? Side.Sell : i % 3 === 1 ? Side.Buy : Side.Unknown;
    const t: WireTick = {
      symbolId: 7, seq: 1_000_000 + i, tsMicros: 1_731_283_200_000_000 + i * 137, price: 21_000 + (i % 8) * 0.25,
      bid: 20_999.75 + (i % 8) * 0.25, ask: 21_000.25 + (i % 8) * 0.25, size: 1 + (i % 5), bidSize: 10 + i, askSize: 12 + i,
      side: side === Side.Buy ? 'buy' : side === Side.Sell ? 'sell' : 'unknown', flags: i % 16 === 0 ? 1 << 2 : 0,
    };
    ticks.push(t);
    cols.symbolId[i] = t.symbolId; cols.seq[i] = t.seq; cols.tsMicros[i] = t.tsMicros; cols.price[i] = t.price;
    cols.bid[i] = t.bid; cols.ask[i] = t.ask; cols.size[i] = t.size; cols.bidSize[i] = t.bidSize; cols.askSize[i] = t.askSize;
    cols.side[i] = side; cols.flags[i] = t.flags;
  }
  const frame: WireFrame = {
    channel: 'ticks/MNQZ25', tsMicros: 1_731_283_200_010_000,
    payload: { type: 'tickBatch', symbol: 'MNQZ25', source: 'sierra-scid', firstSeq: 1_000_000, ticks },
  };
  return { frame, cols };
}

function hz(t: Task | undefined): number {
  const r = t?.result;
  if (!r || !('throughput' in r)) throw new Error(`bench task ${t?.name ?? '?'} has no result`);
  return r.throughput.mean;
}

export const run: BenchSuite = async ({ quick }) => {
  const { frame, cols } = fixture();
  const enc = new WireEncoder();
  const dec = new WireDecoder();
  const out = createTickColumns(TICKS);
  const { channel, tsMicros } = frame;
  const { symbol, source } = frame.payload as { symbol: string; source: string };

  // Check the measured paths are correct before timing them.
  const bytes = enc.encodeTickBatch(channel, tsMicros, symbol, source, cols, 0, TICKS).slice();
  const json = JSON.stringify(frame);
  if (JSON.stringify(dec.decodeFrame(bytes)) !== json) throw new Error('wire bench: decodeFrame does not give the fixture back');
  if (dec.readTickBatchInto(bytes, out).count !== TICKS || out.tsMicros[TICKS - 1] !== cols.tsMicros[TICKS - 1]) {
    throw new Error('wire bench: readTickBatchInto does not give the fixture back');
  }

  let sink = 0;
  const jsonWriter = new TickBatchJsonWriter();
  const utf8 = new TextEncoder();
  const utf8Scratch = new Uint8Array(64 * 1024);
  const bench = new Bench(quick ? { time: 150, warmupTime: 30 } : { time: 1_500, warmupTime: 300 });
  bench
    .add('wire encode', () => { sink += enc.encodeTickBatch(channel, tsMicros, symbol, source, cols, 0, TICKS).length; })
    .add('json stringify', () => { sink += JSON.stringify(frame).length; })
    .add('wire decode objects', () => { sink += dec.decodeFrame(bytes).tsMicros; })
    .add('wire decode columns', () => { sink += dec.readTickBatchInto(bytes, out).count; })
    .add('json parse', () => { sink += (JSON.parse(json) as WireFrame).tsMicros; })
    .add('wire round trip', () => { sink += dec.decodeFrame(enc.encodeTickBatch(channel, tsMicros, symbol, source, cols, 0, TICKS)).tsMicros; })
    .add('json round trip', () => { sink += (JSON.parse(JSON.stringify(frame)) as WireFrame).tsMicros; })
    // the hub's JSON clients: the batch text from columns, as one string vs WireTick objects + frameToJson
    .add('hub json from columns', () => { sink += tickBatchJsonString(channel, tsMicros, symbol, source, cols, 0, 10).length; })
    .add('hub json via objects', () => { sink += tickBatchJsonReference(channel, tsMicros, symbol, source, cols, 0, 10).length; })
    // what the hub sends now: the same text as UTF-8 bytes in a reused buffer; the baseline is the string form
    // plus its UTF-8 conversion into a reused buffer (uWS converted every string it was given, with a malloc)
    .add('hub json bytes writer', () => { sink += jsonWriter.write(channel, tsMicros, symbol, source, cols, 0, 10).length; })
    .add('hub json string + utf8', () => { sink += utf8.encodeInto(tickBatchJsonString(channel, tsMicros, symbol, source, cols, 0, 10), utf8Scratch).written; });
  const reference = tickBatchJsonReference(channel, tsMicros, symbol, source, cols, 0, 10);
  if (new TextDecoder().decode(jsonWriter.write(channel, tsMicros, symbol, source, cols, 0, 10)) !== reference) {
    throw new Error('wire bench: TickBatchJsonWriter differs from its reference');
  }
  if (tickBatchJsonString(channel, tsMicros, symbol, source, cols, 0, 10) !== reference) {
    throw new Error('wire bench: the string baseline differs from the reference');
  }
  await bench.run();
  if (sink === 42) console.log(''); // keep `sink` observable

  const t = (name: string): number => hz(bench.getTask(name));
  const encodeHz = t('wire encode'), stringifyHz = t('json stringify');
  const decodeHz = t('wire decode objects'), columnsHz = t('wire decode columns'), parseHz = t('json parse');
  const rtHz = t('wire round trip'), jsonRtHz = t('json round trip');
  const rtLatency = bench.getTask('wire round trip')?.result;
  const jsonLatency = bench.getTask('json round trip')?.result;
  const us = (ms: number | undefined): number | undefined => (ms === undefined ? undefined : sig(ms * 1000));

  const results: BenchResult[] = [
    { name: 'wire.tickBatch64.encode', unit: 'frames/s', value: sig(encodeHz), baseline: 'JSON.stringify', baselineValue: sig(stringifyHz), ratio: sig(encodeHz / stringifyHz, 3) },
    { name: 'wire.tickBatch64.decode.objects', unit: 'frames/s', value: sig(decodeHz), baseline: 'JSON.parse', baselineValue: sig(parseHz), ratio: sig(decodeHz / parseHz, 3) },
    { name: 'wire.tickBatch64.decode.columns', unit: 'frames/s', value: sig(columnsHz), baseline: 'JSON.parse', baselineValue: sig(parseHz), ratio: sig(columnsHz / parseHz, 3) },
    { name: 'wire.tickBatch64.roundTrip', unit: 'frames/s', value: sig(rtHz), baseline: 'JSON stringify+parse', baselineValue: sig(jsonRtHz), ratio: sig(rtHz / jsonRtHz, 3) },
    { name: 'wire.tickBatch64.roundTrip.ticks', unit: 'ticks/s', value: sig(rtHz * TICKS), baseline: 'JSON stringify+parse', baselineValue: sig(jsonRtHz * TICKS), ratio: sig(rtHz / jsonRtHz, 3) },
    { name: 'wire.tickBatch64.encode.ticks', unit: 'ticks/s', value: sig(encodeHz * TICKS), baseline: 'JSON.stringify', baselineValue: sig(stringifyHz * TICKS), ratio: sig(encodeHz / stringifyHz, 3) },
    { name: 'wire.tickBatch64.decode.objects.ticks', unit: 'ticks/s', value: sig(decodeHz * TICKS), baseline: 'JSON.parse', baselineValue: sig(parseHz * TICKS), ratio: sig(decodeHz / parseHz, 3) },
    {
      name: 'wire.tickBatch64.roundTrip.latency', unit: 'µs', value: sig(1e6 / rtHz),
      baseline: 'JSON stringify+parse', baselineValue: sig(1e6 / jsonRtHz), ratio: sig(jsonRtHz / rtHz, 3),
      ...(rtLatency && 'latency' in rtLatency ? { p50: us(rtLatency.latency.p50), p99: us(rtLatency.latency.p99), p999: us(rtLatency.latency.p999), max: us(rtLatency.latency.max) } : {}),
    },
    {
      name: 'hub JSON tick batch (10 ticks) from columns, one string (the form the hub used before TickBatchJsonWriter; bench baseline)', unit: 'frames/s', value: sig(t('hub json from columns')),
      baseline: 'WireTick objects + frameToJson', baselineValue: sig(t('hub json via objects')), ratio: sig(t('hub json from columns') / t('hub json via objects'), 3),
    },
    {
      name: 'hub JSON tick batch (10 ticks) as UTF-8 bytes in a reused buffer (TickBatchJsonWriter, what the hub sends; ~0 garbage per tick)', unit: 'frames/s', value: sig(t('hub json bytes writer')),
      baseline: 'one string + its UTF-8 conversion (~1 KB garbage per tick)', baselineValue: sig(t('hub json string + utf8')), ratio: sig(t('hub json bytes writer') / t('hub json string + utf8'), 3),
    },
    { name: 'wire.tickBatch64.bytes', unit: 'bytes', value: bytes.length, baseline: 'JSON', baselineValue: Buffer.byteLength(json), ratio: sig(bytes.length / Buffer.byteLength(json), 3) },
  ];
  if (jsonLatency && 'latency' in jsonLatency && jsonLatency.latency.p99 !== undefined) {
    results.push({ name: 'wire.tickBatch64.roundTrip.latency.json', unit: 'µs', value: sig(1e6 / jsonRtHz), p50: us(jsonLatency.latency.p50), p99: us(jsonLatency.latency.p99) });
  }
  return results;
};
