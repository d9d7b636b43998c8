/**
 * `tickpipe verify --data-dir D`: checks every Parquet file (workers/compactor/verify.ts: readable, rows
 * inside the partition's hour/day, sorted, no duplicates, valid partition names, no conflicting hour and
 * day files, bars consistent with ticks), prints each problem as `severity code path: message`, and
 * exits 1 when there is an error (warnings alone exit 0).
 */
import { resolve } from 'node:path';
import { type Command, Option } from 'commander';
import { verifyDataDir, type VerifyReport } from '../../workers/compactor/verify.ts';

export async function runVerify(dataDir: string, write: (line: string) => void): Promise<VerifyReport> {
  const report = await verifyDataDir(resolve(dataDir));
  for (const p of report.problems) write(`${p.severity} ${p.code} ${p.path}: ${p.message}`);
  write(`verify: ${report.files} file(s), ${report.rows} tick row(s), ${report.errors} error(s), ${report.warnings} warning(s)`);
  return report;
}

export function registerVerify(program: Command): void {
  program
    .command('verify')
    .description('check every Parquet file: timestamps inside partitions, ordering, duplicates, partition names, hour/day files, bars vs ticks')
    .addOption(new Option('--data-dir <dir>', 'data directory').env('TICKPIPE_DATA_DIR').default('./data'))
    .option('--json', 'print the report as JSON')
    .action(async (o: { dataDir: string; json?: boolean }) => {
      let report: VerifyReport;
      if (o.json) {
        report = await verifyDataDir(resolve(o.dataDir));
        process.stdout.write(`${JSON.stringify(report)}\n`);
      } else {
        report = await runVerify(o.dataDir, (line) => process.stdout.write(`${line}\n`));
      }
      if (report.errors > 0) process.exitCode = 1;
    });
}
