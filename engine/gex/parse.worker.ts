/**
 * Worker entry: decompress (gzip, by magic bytes) and parse one GEX history file off the main thread
 * (a day of snapshots is tens of MB of JSON; JSON.parse of that would stall the uWS thread).
 * Started per job with spawnWorker(); posts one message and exits.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { gunzipSync } from 'node:zlib';
import { parseGexFile } from './snapshot.ts';
import type { GexParseRequest, GexParseResult } from './parse-protocol.ts';

const d = workerData as GexParseRequest;
let out: GexParseResult;
try {
  const bytes = Buffer.from(d.bytes.buffer, d.bytes.byteOffset, d.bytes.byteLength);
  let text: string;
  const gz = bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
  if (gz) {
    try {
      text = gunzipSync(bytes, { maxOutputLength: d.maxDecompressedBytes }).toString('utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw Object.assign(new Error(code === 'ERR_BUFFER_TOO_LARGE' ? `decompressed size above ${d.maxDecompressedBytes} bytes` : `bad gzip data: ${(e as Error).message}`),
        { refusal: code === 'ERR_BUFFER_TOO_LARGE' ? 'TOO_LARGE' : 'BAD_FILE' });
    }
  } else {
    text = bytes.toString('utf8');
  }
  const r = parseGexFile(text, { ticker: d.ticker, category: d.category });
  out = { code: 'DONE', gzip: gz, snapshots: r.snapshots, rejected: r.rejected, firstError: r.firstError };
} catch (e) {
  out = { code: 'ERROR', refusal: (e as { refusal?: 'TOO_LARGE' | 'BAD_FILE' }).refusal ?? 'BAD_FILE', message: e instanceof Error ? e.message : String(e) };
}
parentPort!.postMessage(out);
