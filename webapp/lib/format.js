// Dates and numbers as the seller reads them: times in their display time zone (GET /api/me;
// the browser's own until they set one), in the browser's language.

let zone = browserZone();

export function browserZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

/** Show times in `name` (an IANA zone), or the browser's zone when it is null. */
export function setTimeZone(name) {
  zone = name || browserZone();
}

export function timeZone() {
  return zone;
}

const formats = new Map();
function formatter(options) {
  const key = zone + JSON.stringify(options);
  if (!formats.has(key)) {
    formats.set(key, new Intl.DateTimeFormat(undefined, { timeZone: zone, ...options }));
  }
  return formats.get(key);
}

/** "12 Jun 2026, 14:05" in the seller's zone; an em dash for no time. */
export function formatTime(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return formatter({ dateStyle: "medium", timeStyle: "short" }).format(date);
}

/** "Jun 12, 2:05 PM" (the year too when it is not this one): for tables. */
export function formatShort(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const year = (d) => formatter({ year: "numeric" }).format(d);
  const options = { month: "short", day: "numeric", hour: "numeric", minute: "2-digit" };
  if (year(date) !== year(new Date())) options.year = "numeric";
  return formatter(options).format(date);
}

/** A shorter label for a chart's axis: the hour or the day, in the seller's zone. */
export function formatBucket(date, unit) {
  return unit === "hour"
    ? formatter({ month: "short", day: "numeric", hour: "numeric" }).format(date)
    : formatter({ month: "short", day: "numeric" }).format(date);
}

export function formatNumber(value) {
  return value == null ? "—" : new Intl.NumberFormat().format(value);
}
