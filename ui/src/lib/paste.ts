// "Dán tin Zalo": what a message copied from a hamlet's Zalo group proposes for the tip form
// (content, sender, phone number, time, a hamlet named in it). Nothing is filled in by
// itself: the form shows each proposal and the officer ticks what is right.
import { fold, toLocalInput } from './format';
import type { HamletChoice } from './tip-form';

export interface PasteProposal {
  content: string;
  /**
   * The content with the phone number replaced by a mark: what goes into the form when the
   * officer takes the number as the reporter's, so that it is not left in the tip's text
   * (which is not sealed, and is printed in the register book).
   */
  contentWithoutPhone: string;
  /** The sender's name as Zalo shows it ("Nguyễn Văn A"), when the message carries one. */
  sender: string | null;
  /** The first phone number in the message, digits only ("0912345678"). */
  phone: string | null;
  /** When it was sent, as a datetime-local value (Vietnam time), when the message says. */
  receivedAt: string | null;
  /** A hamlet of the station whose name appears in the message. */
  hamletId: string | null;
  hamletName: string | null;
}

// Zalo's copied header: "[07/12/2026 08:15] Nguyễn Văn A:", "Nguyễn Văn A, 08:15 07/12/2026:",
// or a bare "08:15" line; the year may be missing (this year).
// A sender's name holds no digit ("[..] Có trộm lúc 9:30" has no sender).
const BRACKET = /^\s*\[(\d{1,2})\/(\d{1,2})(?:\/(\d{4}|\d{2}))?\s+(\d{1,2}):(\d{2})\]\s*(?:([^:\n\d]{1,60}):)?\s*/;
const TRAILING = /^\s*([^,:\n\d]{1,60}),\s*(\d{1,2}):(\d{2})\s+(\d{1,2})\/(\d{1,2})(?:\/(\d{4}|\d{2}))?\s*:?\s*\n?/;
const TIME_ONLY = /^\s*(\d{1,2}):(\d{2})\s*\n/;
// Vietnamese numbers: 0 or +84 then nine digits, with spaces, dots or dashes between groups.
const PHONE = /(?:\+84|\b0)(?:[\s.-]?\d){9}\b/;

/** The message's time as a datetime-local value, or null when it is no time of the calendar.
 * A day given without its year, or a bare time, is the latest such moment not after `now`. */
function at(now: Date, day?: string, month?: string, year?: string, hour?: string, minute?: string): string | null {
  const today = toLocalInput(now);
  const [ty, tmo, td] = [Number(today.slice(0, 4)), Number(today.slice(5, 7)), Number(today.slice(8, 10))];
  const h = Number(hour);
  const mi = Number(minute);
  if (!(h >= 0 && h <= 23 && mi >= 0 && mi <= 59)) return null;
  const build = (y: number, mo: number, d: number): string | null => {
    const date = new Date(Date.UTC(y, mo - 1, d));
    if (date.getUTCFullYear() !== y || date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d) return null;
    const two = (n: number) => String(n).padStart(2, '0');
    return `${y}-${two(mo)}-${two(d)}T${two(h)}:${two(mi)}`;
  };
  const nowLocal = today;
  if (day === undefined) {
    // A bare time: today, or yesterday if that time has not come yet.
    const t = build(ty, tmo, td);
    if (t !== null && t <= nowLocal) return t;
    const y = new Date(Date.UTC(ty, tmo - 1, td - 1));
    return build(y.getUTCFullYear(), y.getUTCMonth() + 1, y.getUTCDate());
  }
  const d = Number(day);
  const mo = Number(month);
  if (year !== undefined) return build(year.length === 2 ? 2000 + Number(year) : Number(year), mo, d);
  // No year: this year, or last year if that day is still to come.
  const t = build(ty, mo, d);
  if (t !== null && t <= nowLocal) return t;
  return build(ty - 1, mo, d);
}

/** What `text` proposes; `hamlets` are the station's, matched without diacritics. */
export function proposeFromPaste(text: string, hamlets: HamletChoice[], now: Date): PasteProposal {
  let body = text.replace(/\r\n?/g, '\n').trim();
  let sender: string | null = null;
  let receivedAt: string | null = null;
  let m = BRACKET.exec(body);
  if (m) {
    receivedAt = at(now, m[1], m[2], m[3], m[4], m[5]);
    sender = m[6]?.trim() || null;
    body = body.slice(m[0].length);
  } else if ((m = TRAILING.exec(body))) {
    sender = (m[1] ?? '').trim();
    receivedAt = at(now, m[4], m[5], m[6], m[2], m[3]);
    body = body.slice(m[0].length);
  } else if ((m = TIME_ONLY.exec(body))) {
    receivedAt = at(now, undefined, undefined, undefined, m[1], m[2]);
    body = body.slice(m[0].length);
  }
  const phoneMatch = PHONE.exec(body);
  let phone = phoneMatch ? phoneMatch[0].replace(/[\s.-]/g, '') : null;
  const contentWithoutPhone = phoneMatch
    ? `${body.slice(0, phoneMatch.index)}[số điện thoại người báo tin]${body.slice(phoneMatch.index + phoneMatch[0].length)}`.trim()
    : body.trim();
  if (phone?.startsWith('+84')) phone = `0${phone.slice(3)}`;
  // The longest hamlet name found whole in the message (word boundaries, no diacritics).
  const folded = ` ${fold(body).replace(/[^a-z0-9]+/g, ' ')} `;
  let hamlet: HamletChoice | null = null;
  for (const h of hamlets) {
    const name = fold(h.name).replace(/[^a-z0-9]+/g, ' ').trim();
    // "Buôn Ea Kmar" is also written "Ea Kmar": the name without its kind counts too.
    const bare = name.replace(/^(thon|buon|to dan pho|to|khu pho|ap|lang|ban|plei|bon)\s+/, '');
    const found = [name, bare].some((n) => n.length >= 3 && folded.includes(` ${n} `));
    if (found && (!hamlet || fold(h.name).length > fold(hamlet.name).length)) hamlet = h;
  }
  return {
    content: body.trim(),
    contentWithoutPhone,
    sender,
    phone,
    receivedAt,
    hamletId: hamlet?.id ?? null,
    hamletName: hamlet?.name ?? null,
  };
}
