export * from './layout.ts';
export * from './ring.ts';
export { parkAsync, parkSync, wakeParked, type ParkResult } from './park.ts';
