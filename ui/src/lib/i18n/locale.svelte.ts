// Vietnamese is the source language; English the second. One JSON file per locale, keys
// sorted. `t` falls back to Vietnamese, then to the key itself. The locale is reactive:
// every `t(...)` in a template follows a change of language at once.
import en from './en.json';
import vi from './vi.json';

export const locales = { vi, en } as const;
export type Locale = keyof typeof locales;
export type MessageKey = keyof typeof vi;

const STORAGE_KEY = 'binhyen.locale';

function initial(): Locale {
  try {
    const saved = globalThis.localStorage?.getItem(STORAGE_KEY);
    if (saved === 'en' || saved === 'vi') return saved;
  } catch {
    // No storage (tests): Vietnamese.
  }
  return 'vi';
}

const state = $state<{ current: Locale }>({ current: initial() });

export function setLocale(locale: Locale) {
  state.current = locale;
  try {
    globalThis.localStorage?.setItem(STORAGE_KEY, locale);
  } catch {
    // The choice lasts until the window closes.
  }
  if (typeof document !== 'undefined') document.documentElement.lang = locale;
}

export function getLocale(): Locale {
  return state.current;
}

export function t(key: MessageKey | string, params: Record<string, string | number> = {}): string {
  const table: Record<string, string> = locales[state.current];
  const fallback: Record<string, string> = locales.vi;
  let text = table[key] ?? fallback[key] ?? key;
  for (const [name, value] of Object.entries(params)) {
    text = text.replaceAll(`{${name}}`, String(value));
  }
  return text;
}
