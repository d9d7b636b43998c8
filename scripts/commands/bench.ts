import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';

const RUNNER = fileURLToPath(new URL('../../bench/run.ts', import.meta.url));
const E2E_RUNNER = fileURLToPath(new URL('../../bench/e2e/run.ts', import.meta.url));

interface BenchOpts {
  quick?: boolean;
  only?: string;
  e2e?: boolean;
  paced?: boolean;
  max?: boolean;
  rate?: string;
  seconds?: string;
  clients?: string;
  backlog?: string;
  redis?: boolean;
  compare?: boolean;
  out?: string;
}

export function registerBench(program: Command): void {
  program
    .command('bench')
    .description('run the micro benchmarks (tinybench, hdr-histogram); writes bench/results/latest.json and bench/RESULTS.md. '
      + 'With --e2e: the end-to-end bench (paced and max runs through the whole engine, zero-loss checks, latency percentiles); writes bench/E2E.md')
    .option('--quick', 'short runs (smoke test, not for figures)')
    .option('--only <suites>', 'comma-separated suite names, e.g. ring,latest')
    .option('--e2e', 'the end-to-end bench (bench/e2e/run.ts) instead of the micro suites')
    .option('--paced', 'e2e: the paced run only')
    .option('--max', 'e2e: the max-throughput run only')
    .option('--rate <n>', 'e2e: paced ticks/s (default 10000)')
    .option('--seconds <n>', 'e2e: paced duration in s (default 60)')
    .option('--clients <n>', 'e2e: WebSocket clients (default 10)')
    .option('--backlog <n>', 'e2e: max-mode ticks (default 3000000)')
    .option('--no-redis', 'e2e: do not use Redis even when one answers on 127.0.0.1:6379')
    .option('--no-compare', 'e2e: skip the ring/api comparisons')
    .option('--out <dir>', 'e2e: output directory (default bench/)')
    .action(async (opts: BenchOpts) => {
      const args = ['--import', 'tsx'];
      if (opts.e2e) {
        args.push(E2E_RUNNER);
        if (opts.quick) args.push('--quick');
        if (opts.paced) args.push('--paced');
        if (opts.max) args.push('--max');
        for (const k of ['rate', 'seconds', 'clients', 'backlog', 'out'] as const) if (opts[k] !== undefined) args.push(`--${k}`, opts[k]);
        if (opts.redis === false) args.push('--no-redis');
        if (opts.compare === false) args.push('--no-compare');
      } else {
        args.push(RUNNER);
        if (opts.quick) args.push('--quick');
        if (opts.only) args.push('--only', opts.only);
      }
      // A child process keeps benchmark threads off whatever else this process holds.
      const code = await new Promise<number>((resolve) => {
        const child = spawn(process.execPath, args, { stdio: 'inherit' });
        child.on('exit', (c) => resolve(c ?? 1));
      });
      process.exitCode = code;
    });
}
