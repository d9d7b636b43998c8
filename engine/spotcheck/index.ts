/** Spot checks: random stored ticks compared with their source (Sierra file or journal). */
export { SpotChecker, type SpotCheckerOptions, type SpotCheckStatus, type SpotMismatch, type SpotRunResult } from './spot-checker.ts';
