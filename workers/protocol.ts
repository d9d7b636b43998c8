/**
 * Messages between worker threads and the supervisor. Hot data never travels here (it goes through the
 * rings); these are lifecycle and cold-path events. The supervisor switches on `code`; an unknown code is
 * a bug.
 */
import { parentPort } from 'node:worker_threads';
import { toWire, type WireError } from '../engine/errors.ts';
import { nameThisThread } from '../engine/thread-priority.ts';

export type WorkerMessage =
  | { code: 'READY'; name: string }
  /** A problem with one input (a bad file, a missing directory); the worker goes on with the rest. */
  | { code: 'SOURCE_ERROR'; name: string; error: WireError }
  | { code: 'WARN'; name: string; message: string; detail?: Record<string, string | number | boolean | null> }
  | { code: 'STATS'; name: string; stats: Record<string, number> }
  | { code: 'STOPPED'; name: string; stats: Record<string, number> }
  | { code: 'FATAL'; name: string; error: WireError }
  /** Answer to a supervisor `request()` ({code:'REQUEST', id, op, ...}). */
  | { code: 'REPLY'; name: string; id: number; ok: boolean; result?: unknown; error?: WireError };

export function isWorkerMessage(m: unknown): m is WorkerMessage {
  return typeof m === 'object' && m !== null && typeof (m as { code?: unknown }).code === 'string' && typeof (m as { name?: unknown }).name === 'string';
}

export function post(m: WorkerMessage): void {
  parentPort?.postMessage(m);
}

/**
 * Worker-side fatal handling (thread-stream style): report the error in wire form, then exit with 1 so
 * the supervisor sees both the reason and the exit.
 */
export function installFatalHandlers(name: string): void {
  nameThisThread(`tp:${name}`);
  const fatal = (err: unknown): void => {
    post({ code: 'FATAL', name, error: toWire(err) });
    process.exit(1);
  };
  process.on('uncaughtException', fatal);
  process.on('unhandledRejection', fatal);
}
