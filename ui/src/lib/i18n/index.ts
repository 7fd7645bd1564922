// Vietnamese is the source language; English the second. One JSON file per locale, keys
// sorted. `t` falls back to Vietnamese, then to the key itself.
import en from './en.json';
import vi from './vi.json';

export const locales = { vi, en } as const;
export type Locale = keyof typeof locales;
export type MessageKey = keyof typeof vi;

let current: Locale = 'vi';

export function setLocale(locale: Locale) {
  current = locale;
}

export function t(key: MessageKey | string, params: Record<string, string | number> = {}): string {
  const table: Record<string, string> = locales[current];
  const fallback: Record<string, string> = locales.vi;
  let text = table[key] ?? fallback[key] ?? key;
  for (const [name, value] of Object.entries(params)) {
    text = text.replace(`{${name}}`, String(value));
  }
  return text;
}
