/**
 * Body shared by the two Sierra worker entry points: attach to the ring and progress table, tail the
 * files until the supervisor drains the ring, report lifecycle and per-file errors to the supervisor.
 */
import { workerData } from 'node:worker_threads';
import { toWire } from '../../engine/errors.ts';
import { installFatalHandlers, post } from '../protocol.ts';
import { SierraIngest, type SierraIngestOptions } from './ingest.ts';

export type SierraWorkerData = SierraIngestOptions;

export function runSierraWorker(): void {
  const data = workerData as SierraWorkerData;
  const name = data.name;
  installFatalHandlers(name);
  const ingest = new SierraIngest(data, {
    sourceError: (err) => post({ code: 'SOURCE_ERROR', name, error: toWire(err) }),
    warn: (message, detail) => post({ code: 'WARN', name, message, ...(detail ? { detail } : {}) }),
  });
  post({ code: 'READY', name });
  ingest.run();
  post({ code: 'STOPPED', name, stats: ingest.stats });
}
