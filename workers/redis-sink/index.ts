/** Redis sink (DESIGN.md §6): see sink.ts. */
export { RedisSink, type RedisSinkOptions } from './sink.ts';
export { parseRedisUrl, type RedisTarget } from './config.ts';
export {
  COUNTER_NAMES, SINK_STATES, createRedisSinkStatus, readRedisSinkStatus, type RedisSinkStatus, type SinkState,
} from './status.ts';
export { formatStreamId, idSeqPart, parseStreamId } from './ids.ts';
export { JournalTail, type JournalTailOptions } from './journal-tail.ts';
export type { RedisSinkWorkerData } from './worker-main.ts';
