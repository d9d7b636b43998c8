import { mkdirSync } from 'node:fs';
import type { Command } from 'commander';
import { ENV_HELP, loadConfig, loadDotEnv } from '../../engine/config.ts';

const ENV_LIST = Object.entries(ENV_HELP).map(([k, v]) => `  ${k.padEnd(28)} ${v}`).join('\n');

export function registerStart(program: Command): void {
  program
    .command('start')
    .description('run the engine: Sierra Chart sources (or the demo market), shared-memory rings, latest table, HTTP API')
    .option('--data-dir <dir>', 'data directory (env TICKPIPE_DATA_DIR, default ./data)')
    .option('--port <port>', 'HTTP port (env TICKPIPE_PORT, default 8877)')
    .option('--host <host>', 'listen address (env TICKPIPE_HOST, default 127.0.0.1)')
    .option('--sierra-dir <dir>', "Sierra Chart's Data folder (env TICKPIPE_SIERRA_DIR); unset: demo market")
    .option('--symbols <list>', 'contracts, comma-separated (env TICKPIPE_SYMBOLS)')
    .addHelpText('after', `\nConfiguration (environment or a .env file in the working directory; flags win):\n${ENV_LIST}\n`)
    .action(async (opts: { dataDir?: string; port?: string; host?: string; sierraDir?: string; symbols?: string }) => {
      const envFile = loadDotEnv();
      const config = loadConfig(process.env, {
        ...(opts.dataDir ? { TICKPIPE_DATA_DIR: opts.dataDir } : {}),
        ...(opts.port ? { TICKPIPE_PORT: opts.port } : {}),
        ...(opts.host ? { TICKPIPE_HOST: opts.host } : {}),
        ...(opts.sierraDir ? { TICKPIPE_SIERRA_DIR: opts.sierraDir } : {}),
        ...(opts.symbols ? { TICKPIPE_SYMBOLS: opts.symbols } : {}),
      });
      const log = {
        info: (m: string): void => { process.stdout.write(`${new Date().toISOString()} ${m}\n`); },
        warn: (m: string): void => { process.stderr.write(`${new Date().toISOString()} warn ${m}\n`); },
      };
      if (envFile) log.info(`configuration from the environment and ${envFile}`);
      // Loaded lazily: the engine's imports (uWS, workers) would slow every other command's start-up.
      const { Engine } = await import('../../engine/engine.ts');
      const { ensureLocalKey } = await import('../../api/auth/keystore.ts');
      // First run: an admin key for this machine, printed once (stored hashed in <data-dir>/keys.json).
      mkdirSync(config.dataDir, { recursive: true });
      const local = ensureLocalKey(config.dataDir);
      const engine = await Engine.start(config, log);
      const base = `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${engine.port}`;
      log.info(`tickpipe running (${config.demo ? `demo market, ${config.demoRate} trades/s` : `Sierra Chart files in ${config.sierraDir}`}; symbols ${config.symbols.join(', ')})`);
      log.info(`panel: ${base}/status.html   status: ${base}/api/v1/status   health: ${base}/healthz   WebSocket: ${base.replace('http', 'ws')}/ws`);
      if (local) {
        log.info(`local API key (all scopes; shown once, stored hashed in ${config.dataDir}/keys.json): ${local.key}`);
        log.info(`  try: curl -H 'Authorization: Bearer ${local.key}' '${base}/api/v1/ticks/latest?symbols=${config.symbols.join(',')}'`);
      } else {
        log.info(`API keys: ${config.dataDir}/keys.json (tickpipe keys list / create --name bot --scopes realtime,stream)`);
      }
      log.info(`data directory: ${config.dataDir}`);
      const timer = setInterval(() => {
        const v = engine.validatorStats();
        const trades = engine.registry.list().reduce((a, m) => a + (engine.feed.tradesBySymbol[m.id] ?? 0), 0);
        const depth = engine.drains.reduce((a, d) => a + d.counters.depth, 0);
        const comp = engine.compaction?.status();
        log.info(`trades ${trades}, depth records ${depth}, quarantined ${v.quarantined ?? 0}, hours compacted ${comp?.hoursCompacted ?? 0}, ws clients ${engine.hub?.stats().clients ?? 0}`);
      }, 10_000);
      timer.unref();
      await new Promise<void>((resolve) => {
        let stopping = false;
        const stop = (sig: string): void => {
          if (stopping) return;
          stopping = true;
          log.info(`${sig}: stopping (draining rings, saving checkpoints)`);
          clearInterval(timer);
          engine.close().then(() => { log.info('stopped cleanly'); resolve(); }, (err: unknown) => { log.warn(`stop failed: ${(err as Error).message}`); process.exitCode = 1; resolve(); });
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
    });
}
