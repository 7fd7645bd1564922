import { describe, expect, it } from 'vitest';
import en from './en.json';
import vi from './vi.json';
import { setLocale, t } from './index';

describe('translations', () => {
  it('have the same keys in every locale, sorted', () => {
    const viKeys = Object.keys(vi);
    expect(Object.keys(en)).toEqual(viKeys);
    expect(viKeys).toEqual([...viKeys].sort());
  });

  it('are NFC Vietnamese', () => {
    for (const text of Object.values(vi)) expect(text).toBe(text.normalize('NFC'));
  });

  it('fill parameters and fall back to Vietnamese', () => {
    setLocale('vi');
    expect(t('list.shown', { shown: 100, total: 301 })).toBe('Hiển thị 100/301 nguồn tin');
    setLocale('en');
    expect(t('status.verifying')).toBe('Verifying');
    expect(t('no.such.key')).toBe('no.such.key');
    setLocale('vi');
  });
});
