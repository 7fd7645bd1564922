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
