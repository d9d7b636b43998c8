import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';

const RUNNER = fileURLToPath(new URL('../../bench/run.ts', import.meta.url));

export function registerBench(program: Command): void {
  program
    .command('bench')
    .description('run the micro benchmarks (tinybench, hdr-histogram); writes bench/results/latest.json and bench/RESULTS.md')
    .option('--quick', 'short runs (smoke test, not for figures)')
    .option('--only <suites>', 'comma-separated suite names, e.g. ring,latest')
    .action(async (opts: { quick?: boolean; only?: string }) => {
      const args = ['--import', 'tsx', RUNNER];
      if (opts.quick) args.push('--quick');
      if (opts.only) args.push('--only', opts.only);
      // A child process keeps benchmark threads off whatever else this process holds.
      const code = await new Promise<number>((resolve) => {
        const child = spawn(process.execPath, args, { stdio: 'inherit' });
        child.on('exit', (c) => resolve(c ?? 1));
      });
      process.exitCode = code;
    });
}
