// Worker entry: a Sierra Chart `.scid` tick source (workers/sierra/ingest.ts does the work).
import { runSierraWorker } from './sierra/worker-main.ts';

runSierraWorker();
