// Worker entry: the validator stage (engine/validate/stage.ts): source rings → rules → journal, hot window,
// latest table, quarantine, gap store → feed ring (main thread) and Redis ring. Stops once its inputs are
// drained after the supervisor's {code:'STOP'}; answers {code:'REQUEST', id, op:'deleteHour'} with a REPLY.
import { parentPort, workerData } from 'node:worker_threads';
import { toWire } from '../engine/errors.ts';
import { ValidatorStage, type ValidatorStageOptions } from '../engine/validate/stage.ts';
import { installFatalHandlers, post } from './protocol.ts';

const data = workerData as ValidatorStageOptions & { statsEveryMs?: number };
const name = data.name;
installFatalHandlers(name);

const stage = await ValidatorStage.open(data, { warn: (message) => post({ code: 'WARN', name, message }) });

parentPort?.on('message', (m: unknown) => {
  if (typeof m !== 'object' || m === null) return;
  const msg = m as { code?: unknown; id?: unknown; op?: unknown; hourStartMicros?: unknown; expectedRecords?: unknown };
  if (msg.code === 'STOP') { stage.requestStop(); return; }
  if (msg.code !== 'REQUEST' || typeof msg.id !== 'number') return;
  const id = msg.id;
  const reply = (p: Promise<unknown>): void => {
    p.then(
      (result) => post({ code: 'REPLY', name, id, ok: true, result: result ?? null }),
      (err: unknown) => post({ code: 'REPLY', name, id, ok: false, error: toWire(err) }),
    );
  };
  if (msg.op === 'deleteHour') {
    reply(stage.deleteHour(Number(msg.hourStartMicros), typeof msg.expectedRecords === 'number' ? msg.expectedRecords : undefined));
  } else if (msg.op === 'stats') {
    reply(Promise.resolve(stage.stats()));
  } else {
    post({ code: 'REPLY', name, id, ok: false, error: toWire(new Error(`unknown request ${String(msg.op)}`)) });
  }
});

const timer = setInterval(() => post({ code: 'STATS', name, stats: stage.stats() }), data.statsEveryMs ?? 500);
post({ code: 'READY', name });
post({ code: 'STATS', name, stats: stage.stats() });
await stage.run();
clearInterval(timer);
post({ code: 'STOPPED', name, stats: stage.stats() });
parentPort?.close();
