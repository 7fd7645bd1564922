// The logic of the "record a tip" form, apart from its markup so that it can be tested:
// turning what was typed into a TipInput, checking it before it is sent, and placing the
// store's field errors beside the fields they concern.
import type { Category } from './bindings/Category';
import type { Channel } from './bindings/Channel';
import type { FieldError } from './bindings/FieldError';
import type { TipInput } from './bindings/TipInput';
import type { Urgency } from './bindings/Urgency';
import { fold, fromLocalInput } from './format';

export interface TipDraft {
  content: string;
  category: Category;
  channel: Channel;
  receivedAt: string; // datetime-local, Vietnam time
  hamlet: string;
  address: string;
  urgency: Urgency;
  reporterName: string;
  reporterPhone: string;
  reporterIdNumber: string;
  reporterSecret: boolean;
  /** A procedure question answered on the spot, and the answer given. */
  answeredNow: boolean;
  answer: string;
}

export function emptyDraft(receivedAt: string): TipDraft {
  return {
    content: '',
    category: 'security_order',
    channel: 'zalo',
    receivedAt,
    hamlet: '',
    address: '',
    urgency: 'normal',
    reporterName: '',
    reporterPhone: '',
    reporterIdNumber: '',
    reporterSecret: false,
    answeredNow: false,
    answer: '',
  };
}

export type FormErrors = Record<string, string>;

/** Checks what can be checked before sending; the store checks everything again. */
export function checkDraft(draft: TipDraft, now: Date): FormErrors {
  const errors: FormErrors = {};
  if (draft.content.trim() === '') {
    errors.content = 'Nội dung nguồn tin là bắt buộc: hãy ghi lại điều người dân trình báo.';
  }
  const at = fromLocalInput(draft.receivedAt);
  if (at === null) {
    errors.received_at = 'Hãy nhập ngày giờ tiếp nhận (dd/MM/yyyy HH:mm).';
  } else if (new Date(at).getTime() > now.getTime() + 5 * 60_000) {
    errors.received_at = 'Thời điểm tiếp nhận ở tương lai; hãy kiểm tra ngày giờ.';
  }
  const digits = draft.reporterIdNumber.replace(/\s/g, '');
  if (digits !== '' && !/^\d{12}$/.test(digits)) {
    errors['reporter.id_number'] = 'Số định danh cá nhân phải gồm đúng 12 chữ số.';
  }
  return errors;
}

function optional(s: string): string | undefined {
  const t = s.trim();
  return t === '' ? undefined : t;
}

export function toInput(draft: TipDraft): TipInput {
  const hasReporter =
    draft.reporterName.trim() !== '' ||
    draft.reporterPhone.trim() !== '' ||
    draft.reporterIdNumber.trim() !== '' ||
    draft.reporterSecret;
  return {
    content: draft.content,
    category: draft.category,
    channel: draft.channel,
    received_at: fromLocalInput(draft.receivedAt) ?? undefined,
    hamlet: optional(draft.hamlet),
    address: optional(draft.address),
    urgency: draft.urgency,
    answered:
      draft.category === 'admin_question' && draft.answeredNow
        ? optional(draft.answer) ?? 'Đã trả lời ngay khi tiếp nhận.'
        : undefined,
    reporter: hasReporter
      ? {
          name: optional(draft.reporterName),
          phone: optional(draft.reporterPhone),
          id_number: optional(draft.reporterIdNumber),
          secret: draft.reporterSecret,
        }
      : undefined,
  };
}

/** The store's field errors, keyed by field, the first message of each field kept. */
export function fieldErrors(fields: FieldError[]): FormErrors {
  const out: FormErrors = {};
  for (const f of fields) {
    if (!(f.field in out)) out[f.field] = f.suggestion ? `${f.message} (${f.suggestion})` : f.message;
  }
  return out;
}

/** Whether a draft holds anything an officer typed (an untouched form is not kept). */
export function isBlankDraft(draft: TipDraft): boolean {
  return (
    draft.content.trim() === '' &&
    draft.address.trim() === '' &&
    draft.reporterName.trim() === '' &&
    draft.reporterPhone.trim() === '' &&
    draft.reporterIdNumber.trim() === ''
  );
}

/** A saved draft, if it has the draft's shape; anything else is ignored. */
export function restoreDraft(saved: unknown, fallback: TipDraft): TipDraft | null {
  if (typeof saved !== 'object' || saved === null) return null;
  const out: TipDraft = { ...fallback };
  const record = saved as Record<string, unknown>;
  for (const key of Object.keys(fallback) as (keyof TipDraft)[]) {
    const value = record[key];
    if (typeof value === typeof fallback[key]) (out as unknown as Record<string, unknown>)[key] = value;
  }
  return isBlankDraft(out) ? null : out;
}

export interface HamletChoice {
  id: string;
  name: string;
}

/**
 * Hamlets matching what is typed, without regard to diacritics or case: every typed word
 * must begin a word of the name ("ea kp" finds "Buôn Ea Kpam"); names starting with the
 * typed text come first.
 */
export function matchHamlets<T extends HamletChoice>(hamlets: T[], typed: string, limit = 8): T[] {
  const words = fold(typed).split(/\s+/).filter((w) => w !== '');
  if (words.length === 0) return hamlets.slice(0, limit);
  const scored: [number, T][] = [];
  for (const h of hamlets) {
    const name = fold(h.name);
    const nameWords = name.split(/\s+/);
    if (!words.every((w) => nameWords.some((n) => n.startsWith(w)))) continue;
    scored.push([name.startsWith(words.join(' ')) ? 0 : 1, h]);
  }
  return scored
    .sort((a, b) => a[0] - b[0])
    .slice(0, limit)
    .map(([, h]) => h);
}
