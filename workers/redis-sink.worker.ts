// Worker entry: the Redis sink (workers/redis-sink/sink.ts does the work; worker-main.ts wires the protocol).
import { runRedisSinkWorker } from './redis-sink/worker-main.ts';

void runRedisSinkWorker();
