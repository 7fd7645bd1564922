// Dates as Vietnamese officers write them: dd/MM/yyyy HH:mm, in Asia/Ho_Chi_Minh time
// whatever the laptop's own time zone.

const VN_OFFSET_MINUTES = 7 * 60; // UTC+7, no daylight saving time

function pad(n: number): string {
  return n.toString().padStart(2, '0');
}

function vnParts(date: Date) {
  const shifted = new Date(date.getTime() + VN_OFFSET_MINUTES * 60_000);
  return {
    y: shifted.getUTCFullYear(),
    mo: pad(shifted.getUTCMonth() + 1),
    d: pad(shifted.getUTCDate()),
    h: pad(shifted.getUTCHours()),
    mi: pad(shifted.getUTCMinutes()),
  };
}

export function formatDateTime(iso: string): string {
  const p = vnParts(new Date(iso));
  return `${p.d}/${p.mo}/${p.y} ${p.h}:${p.mi}`;
}

/** The value of a datetime-local input showing `date` in Vietnam time. */
export function toLocalInput(date: Date): string {
  const p = vnParts(date);
  return `${p.y}-${p.mo}-${p.d}T${p.h}:${p.mi}`;
}

/** A datetime-local value, read as Vietnam time, as RFC 3339. */
export function fromLocalInput(value: string): string | null {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$/.test(value)) return null;
  const withSeconds = value.length === 16 ? `${value}:00` : value;
  const date = new Date(`${withSeconds}+07:00`);
  return Number.isNaN(date.getTime()) ? null : date.toISOString();
}

/** dd/MM/yyyy of an instant (Vietnam time) or of a calendar day ("2026-10-31"). */
export function formatDate(value: string): string {
  const day = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
  if (day) return `${day[3]}/${day[2]}/${day[1]}`;
  const p = vnParts(new Date(value));
  return `${p.d}/${p.mo}/${p.y}`;
}

/** The instant a Vietnam calendar day ("2026-10-31") starts, as RFC 3339. */
export function dayStart(day: string): string {
  return `${day}T00:00:00+07:00`;
}

/** The instant after a Vietnam calendar day ends (the next day's start), as RFC 3339. */
export function dayEnd(day: string): string {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + 1);
  return `${d.toISOString().slice(0, 10)}T00:00:00+07:00`;
}

/** Today's calendar day in Vietnam ("2026-11-28"). */
export function vnToday(now: Date = new Date()): string {
  const p = vnParts(now);
  return `${p.y}-${p.mo}-${p.d}`;
}

/** A whole number with Vietnamese grouping: 12.345. */
export function formatNumber(n: number): string {
  return new Intl.NumberFormat('vi-VN').format(n);
}


/** Text for matching without diacritics: "Buôn Đôn" and "buon don" fold alike. */
export function fold(text: string): string {
  return text
    .normalize('NFD')
    .replace(/\p{M}/gu, '')
    .replace(/đ/g, 'd')
    .replace(/Đ/g, 'D')
    .toLowerCase()
    .trim();
}

/** A phone as Vietnamese people write it: "+84912345678" → "0912 345 678". */
export function formatPhone(e164: string): string {
  if (!e164.startsWith('+84')) return e164;
  const national = `0${e164.slice(3)}`;
  if (national.length === 10) return `${national.slice(0, 4)} ${national.slice(4, 7)} ${national.slice(7)}`;
  return national;
}

/** A fingerprint in groups of four, as the province reads it out. */
export function fingerprintGroups(hex: string): string {
  return (hex.toUpperCase().match(/.{1,4}/g) ?? []).join(' ');
}

/**
 * A day typed the Vietnamese way ("7/12/2026", "07/12/26", "07-12-2026", "7.12") as
 * "2026-12-07"; the year defaults to `year`. Null when it is not a day of the calendar.
 */
export function parseDay(typed: string, year: number): string | null {
  const m = /^\s*(\d{1,2})\s*[/.-]\s*(\d{1,2})(?:\s*[/.-]\s*(\d{2}|\d{4}))?\s*$/.exec(typed);
  if (!m) return null;
  const d = Number(m[1]);
  const mo = Number(m[2]);
  let y = m[3] === undefined ? year : Number(m[3]);
  if (m[3]?.length === 2) y += 2000;
  const date = new Date(Date.UTC(y, mo - 1, d));
  if (date.getUTCFullYear() !== y || date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d) return null;
  return `${y}-${String(mo).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
}

/** "2026-12-07" as "07/12/2026"; empty stays empty. */
export function showDay(day: string): string {
  return /^\d{4}-\d{2}-\d{2}$/.test(day) ? formatDate(day) : '';
}
