/**
 * Interfaces between the engine and the front end (REST, WebSocket, webhooks, panel). Declared here once
 * so that the parts can be built and tested separately and wired together in engine/engine.ts.
 */
import type { SlotViews } from '../engine/ring/ring.ts';

/** API key scopes (issue 5). */
export type Scope = 'realtime' | 'historical' | 'stream' | 'ingest' | 'admin';
export const SCOPES: readonly Scope[] = ['realtime', 'historical', 'stream', 'ingest', 'admin'];

/** Who is calling: the result of a successful key check. */
export interface Principal {
  /** Stable key id (not the secret). */
  readonly keyId: string;
  readonly name: string;
  readonly scopes: ReadonlySet<Scope>;
  /** Contract symbols (e.g. MNQZ25) or roots (MNQ) the key may read; null = all. */
  readonly symbols: ReadonlySet<string> | null;
  /** Requests per second allowed (token bucket refill); 0 = unlimited. */
  readonly ratePerSec: number;
}

/** Checks a presented API key (raw secret) in constant time against the stored hashes. */
export interface Authenticator {
  /** The principal for a valid, unrevoked key; null for a missing, unknown or revoked one. */
  authenticate(token: string | undefined): Principal | null;
}

/**
 * Validated records as they leave the validator, delivered on the main thread in ring order.
 * `onRecord(views, b)` once per record: `b` is the byte offset of its 64-byte slot in `views` (layout:
 * schemas/records.ts; read with the helpers there). The views are only valid during the call: copy what you
 * keep, allocate nothing per record. `onBatchEnd()` after each batch (a good moment to flush/cork sends).
 */
export interface RecordListener {
  onRecord(views: SlotViews, b: number): void;
  onBatchEnd(): void;
}

/** A place the engine announces validated records to (the WebSocket hub, the bench harness...). */
export interface RecordFeed {
  subscribe(listener: RecordListener): () => void;
}
