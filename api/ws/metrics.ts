/**
 * `/metrics` families (api/deps.ts MetricFamily) of the WebSocket hub and the webhooks, for the engine's
 * `ApiDeps.metrics()`: `[...wsMetricFamilies(hub.stats()), ...webhookMetricFamilies(hooks.stats())]`.
 */
import type { MetricFamily } from '../deps.ts';
import type { WebhookStats } from '../webhooks/index.ts';
import type { WsStats } from './hub.ts';

export function wsMetricFamilies(s: WsStats): MetricFamily[] {
  return [
    { name: 'tickpipe_ws_clients', help: 'WebSocket clients connected', type: 'gauge', samples: [{ labels: { auth: 'key' }, value: s.clients - s.anonymousClients }, { labels: { auth: 'anonymous' }, value: s.anonymousClients }] },
    { name: 'tickpipe_ws_connections_total', help: 'WebSocket connections accepted', type: 'counter', samples: [{ value: s.connectionsTotal }] },
    {
      name: 'tickpipe_ws_upgrades_refused_total', help: 'WebSocket upgrades refused', type: 'counter',
      samples: [{ labels: { reason: 'unauthorized' }, value: s.upgradesRefused.unauthorized }, { labels: { reason: 'bad_request' }, value: s.upgradesRefused.badRequest }, { labels: { reason: 'full' }, value: s.upgradesRefused.full }],
    },
    { name: 'tickpipe_ws_frames_out_total', help: 'frames sent to WebSocket clients', type: 'counter', samples: [{ value: s.framesOut }] },
    { name: 'tickpipe_ws_bytes_out_total', help: 'bytes sent to WebSocket clients', type: 'counter', samples: [{ value: s.bytesOut }] },
    { name: 'tickpipe_ws_ticks_out_total', help: 'ticks delivered to WebSocket clients (ticks x subscribers)', type: 'counter', samples: [{ value: s.ticksOut }] },
    { name: 'tickpipe_ws_messages_in_total', help: 'client messages received', type: 'counter', samples: [{ value: s.messagesIn }] },
    { name: 'tickpipe_ws_errors_sent_total', help: 'coded error frames sent to clients', type: 'counter', samples: [{ value: s.errorsSent }] },
    {
      name: 'tickpipe_ws_slow_consumer_drops_total', help: 'slow-consumer handling: closes (4008), trades not delivered, conflated quote/book values, skipped status ticks', type: 'counter',
      samples: [
        { labels: { kind: 'closes' }, value: s.drops.slowConsumerCloses }, { labels: { kind: 'trades_not_delivered' }, value: s.drops.tradesNotDelivered },
        { labels: { kind: 'quotes_conflated' }, value: s.drops.conflatedQuotes }, { labels: { kind: 'books_conflated' }, value: s.drops.conflatedBooks },
        { labels: { kind: 'status_skipped' }, value: s.drops.skippedStatus }, { labels: { kind: 'send_dropped' }, value: s.drops.sendDropped },
      ],
    },
    { name: 'tickpipe_ws_heartbeat_closes_total', help: 'connections closed for not answering pings', type: 'counter', samples: [{ value: s.heartbeatCloses }] },
    {
      name: 'tickpipe_ws_replays', help: 'replays (from a time): active, completed, rows replayed, gaps reported, clients catching up', type: 'gauge',
      samples: [
        { labels: { kind: 'active' }, value: s.replays.active }, { labels: { kind: 'completed' }, value: s.replays.completed }, { labels: { kind: 'rows' }, value: s.replays.rows },
        { labels: { kind: 'gaps' }, value: s.replays.gaps }, { labels: { kind: 'catching_up' }, value: s.replays.catchingUp },
      ],
    },
    {
      name: 'tickpipe_ws_fanout_microseconds', help: 'time to encode and send one batch to every subscriber (percentiles since start)', type: 'gauge',
      samples: [{ labels: { quantile: '0.5' }, value: s.fanoutMicros.p50 }, { labels: { quantile: '0.99' }, value: s.fanoutMicros.p99 }, { labels: { quantile: '1' }, value: s.fanoutMicros.max }],
    },
  ];
}

export function webhookMetricFamilies(s: WebhookStats): MetricFamily[] {
  const answers = Object.entries(s.answers).map(([k, v]) => {
    const i = k.lastIndexOf(' ');
    return { labels: { route: k.slice(0, i), status: k.slice(i + 1) }, value: v };
  });
  return [
    { name: 'tickpipe_webhook_answers_total', help: 'webhook and GEX query answers by route and status', type: 'counter', samples: answers },
    {
      name: 'tickpipe_webhook_uw_total', help: '/uw messages', type: 'counter',
      samples: [{ labels: { kind: 'received' }, value: s.uw.received }, { labels: { kind: 'ignored' }, value: s.uw.ignored }, { labels: { kind: 'published' }, value: s.uw.published }, { labels: { kind: 'publish_failed' }, value: s.uw.publishFailed }],
    },
    { name: 'tickpipe_webhook_ml_trade_total', help: '/ml-trade trades', type: 'counter', samples: [{ labels: { kind: 'received' }, value: s.mlTrade.received }, { labels: { kind: 'redis_unavailable' }, value: s.mlTrade.redisUnavailable }] },
    {
      name: 'tickpipe_gex_downloads', help: '/gex_history_url downloads', type: 'gauge',
      samples: [
        { labels: { kind: 'queued_total' }, value: s.gex.queued }, { labels: { kind: 'refused_total' }, value: s.gex.refused }, { labels: { kind: 'waiting' }, value: s.gex.jobs.queued },
        { labels: { kind: 'running' }, value: s.gex.jobs.running }, { labels: { kind: 'done' }, value: s.gex.jobs.done }, { labels: { kind: 'failed' }, value: s.gex.jobs.failed },
      ],
    },
  ];
}
