// Messages of engine/gex/parse.worker.ts.
import type { GexSnapshot } from './snapshot.ts';

export interface GexParseRequest {
  bytes: Uint8Array;
  ticker: string | null;
  category: string | null;
  maxDecompressedBytes: number;
}

export type GexParseResult =
  | { code: 'DONE'; gzip: boolean; snapshots: GexSnapshot[]; rejected: number; firstError: string | null }
  | { code: 'ERROR'; refusal: 'TOO_LARGE' | 'BAD_FILE'; message: string };
