// Worker entry: a Sierra Chart `.depth` market-depth source (workers/sierra/ingest.ts does the work).
import { runSierraWorker } from './sierra/worker-main.ts';

runSierraWorker();
