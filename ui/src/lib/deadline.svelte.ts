// The statutory transfer deadline of a crime tip, as every screen shows it: how long is
// left (or how late it is), coloured amber when few hours are left and red once passed. A
// shared clock ticks every minute, so that "còn 23 giờ" never goes stale on screen.
import { t } from './i18n';

/** Hours left below which a deadline is shown as near (amber). */
export const SOON_HOURS = 6;

export type DeadlineLevel = 'late' | 'soon' | 'ok';

export const clock = $state({ now: Date.now() });

let ticking = false;
/** Starts the shared clock (once). */
export function startClock() {
  if (ticking) return;
  ticking = true;
  setInterval(() => (clock.now = Date.now()), 60_000);
}

/** Hours from `now` to `deadline` (negative once passed). */
export function hoursLeft(deadline: string, now: number): number {
  return (Date.parse(deadline) - now) / 3_600_000;
}

export function deadlineLevel(deadline: string, now: number): DeadlineLevel {
  const h = hoursLeft(deadline, now);
  if (h <= 0) return 'late';
  return h <= SOON_HOURS ? 'soon' : 'ok';
}

/** "còn 5 giờ", "còn 2 ngày", "quá hạn 3 giờ", "còn 40 phút". */
export function deadlineText(deadline: string, now: number): string {
  const h = hoursLeft(deadline, now);
  const a = Math.abs(h);
  const amount =
    a >= 48 ? t('time.days', { n: Math.floor(a / 24) }) : a >= 1 ? t('time.hours', { n: Math.floor(a) }) : t('time.minutes', { n: Math.max(1, Math.round(a * 60)) });
  return h <= 0 ? t('today.late_by', { amount }) : t('today.left', { amount });
}
