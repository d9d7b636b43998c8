// Public surface of the WebSocket front end (`/ws`). See hub.ts for the design and protocol.ts for messages.
export {
  attachWebSocket, DEFAULT_WS_OPTIONS, WsHub, type BadKeyBudget, type HistoryReader, type TickRows, type WsDeps, type WsOptions, type WsStats,
} from './hub.ts';
export { CHANNELS, WS_CLOSE, WS_ERROR_CODES, type Channel, type WsErrorCode } from './protocol.ts';
export type { BarMessage } from './frames.ts';
export { webhookMetricFamilies, wsMetricFamilies } from './metrics.ts';
