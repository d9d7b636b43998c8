/**
 * The `tickpipe` command line (package.json `bin`). Each subcommand lives in scripts/commands/<name>.ts
 * and registers itself on the commander program; this file only wires them and turns coded errors into
 * a one-line message and a non-zero exit code (no stack traces for users; TICKPIPE_DEBUG=1 shows them).
 */
import { Command, CommanderError } from 'commander';
import { isEngineError } from '../engine/errors.ts';
import { registerBench } from './commands/bench.ts';
import { registerStart } from './commands/start.ts';
import { registerGen } from './commands/gen.ts';
import { registerInspect } from './commands/inspect.ts';
import { registerKeys } from './commands/keys.ts';
import { registerBackfill } from './commands/backfill.ts';
import { registerVerify } from './commands/verify.ts';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('tickpipe')
    .description('Tick-data engine: Sierra Chart files and live feeds → shared-memory rings → hot hour, Redis, hourly Parquet → uWebSockets.js API')
    .version('0.1.0')
    .showHelpAfterError()
    .exitOverride();
  registerStart(program);
  registerBench(program);
  registerInspect(program);
  registerGen(program);
  registerKeys(program);
  registerBackfill(program);
  registerVerify(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode;
      return;
    }
    if (isEngineError(err)) {
      process.stderr.write(`tickpipe: ${err.code}: ${err.message}\n`);
    } else {
      process.stderr.write(`tickpipe: ${err instanceof Error ? err.message : String(err)}\n`);
    }
    if (process.env.TICKPIPE_DEBUG === '1' && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`);
    process.exitCode = 1;
  }
}
