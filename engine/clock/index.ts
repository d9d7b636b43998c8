/**
 * engine/clock: Sierra Chart SCDateTime, ISO 8601, IANA time zones and trading-session calendars.
 * All times are Unix microseconds as JS numbers (exact below 2^53, years 1684..2255); no BigInt.
 */
export { MAX_TIME_MICROS, MICROS_PER_DAY, MICROS_PER_HOUR, MICROS_PER_MINUTE, MICROS_PER_SECOND, MIN_TIME_MICROS } from './civil.ts';
export {
  PLAUSIBLE_MAX_MICROS, PLAUSIBLE_MIN_MICROS, SC_EPOCH_OFFSET_DAYS, SC_EPOCH_OFFSET_MICROS,
  decodeScDateTimeParts, isLegacyScParts, isPlausibleScMicros, readScDateTimeView, readScDateTimeWords, scDaysToUnixMicros,
  scPartsAsDays, scPartsToUnixMicros, unixMicrosToScDays, unixMicrosToScHi, unixMicrosToScLo, writeScDateTimeView,
  writeScDateTimeWords,
} from './scdatetime.ts';
export {
  EPOCH_MICROS_MIN, EPOCH_MILLIS_MIN, EPOCH_NANOS_MIN, epochUnitOf, formatIsoMicros, parseTimeToMicros,
  type EpochUnit, type ParseTimeOptions,
} from './iso.ts';
export {
  assertTimeZone, isValidTimeZone, offsetSecondsAt, unixMicrosToWallMicros, wallMicrosToUnixMicros, wallTimeToUnixMicros,
  zonedParts, zonedPartsInto, type Disambiguation, type ZonedParts,
} from './tz.ts';
export {
  CALENDAR_NAMES, SessionCalendar, createSessionCalendar, isInSession, nextSessionOpen, sessionBounds, sessionCalendar,
  sessionOverlapMicros, tradingDate, tradingEpochDay,
  type CalendarConfig, type CalendarInput, type CalendarName, type SessionBounds,
} from './session.ts';
