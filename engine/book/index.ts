export {
  OrderBook, createSnapshotBuffers,
  type BookLevel, type BookSnapshot, type BookSnapshotBuffers, type OrderBookOptions, type OrderBookStats,
} from './order-book.ts';
