import { describe, expect, it } from 'vitest';
import { formatDateTime, formatPhone, fromLocalInput, parseDay, showDay, toLocalInput } from './format';

describe('Vietnam time', () => {
  it('shows dd/MM/yyyy HH:mm in UTC+7', () => {
    expect(formatDateTime('2025-12-31T17:30:00Z')).toBe('01/01/2026 00:30');
    expect(formatDateTime('2026-03-05T02:04:00Z')).toBe('05/03/2026 09:04');
  });

  it('reads a datetime-local value as Vietnam time', () => {
    expect(fromLocalInput('2026-01-01T00:30')).toBe('2025-12-31T17:30:00.000Z');
    expect(fromLocalInput('not a date')).toBeNull();
    expect(fromLocalInput('2026-13-45T99:99')).toBeNull();
  });

  it('round-trips through the input', () => {
    const d = new Date('2026-06-15T10:20:00Z');
    expect(fromLocalInput(toLocalInput(d))).toBe(d.toISOString());
  });
});

describe('formatPhone', () => {
  it('writes Vietnamese numbers the national way', () => {
    expect(formatPhone('+84912345678')).toBe('0912 345 678');
    expect(formatPhone('+842623851234')).toBe('02623851234');
    expect(formatPhone('+4930123456')).toBe('+4930123456');
  });
});

describe('a day typed in a filter', () => {
  it('reads the Vietnamese order, with or without the year', () => {
    expect(parseDay('7/12/2026', 2030)).toBe('2026-12-07');
    expect(parseDay(' 07-12-26 ', 2030)).toBe('2026-12-07');
    expect(parseDay('7.12', 2026)).toBe('2026-12-07');
    expect(showDay('2026-12-07')).toBe('07/12/2026');
    expect(showDay('')).toBe('');
  });

  it('refuses what is not a day of the calendar', () => {
    expect(parseDay('31/2/2026', 2026)).toBeNull();
    expect(parseDay('2026-12-07', 2026)).toBeNull();
    expect(parseDay('hôm qua', 2026)).toBeNull();
    expect(parseDay('', 2026)).toBeNull();
  });
});
