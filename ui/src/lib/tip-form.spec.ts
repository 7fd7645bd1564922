import { describe, expect, it } from 'vitest';
import { checkDraft, emptyDraft, fieldErrors, toInput } from './tip-form';

const now = new Date('2026-06-01T03:00:00Z');

describe('tip form', () => {
  it('requires content', () => {
    const errors = checkDraft(emptyDraft('2026-06-01T10:00'), now);
    expect(errors.content).toContain('bắt buộc');
  });

  it('refuses a time in the future and a malformed ID number', () => {
    const draft = { ...emptyDraft('2026-06-02T10:00'), content: 'x', reporterIdNumber: '12345' };
    const errors = checkDraft(draft, now);
    expect(errors.received_at).toContain('tương lai');
    expect(errors['reporter.id_number']).toContain('12 chữ số');
  });

  it('accepts a complete draft', () => {
    const draft = { ...emptyDraft('2026-06-01T09:55'), content: 'Có người lạ' };
    expect(checkDraft(draft, now)).toEqual({});
  });

  it('sends no reporter for an anonymous tip and Vietnam time as UTC', () => {
    const input = toInput({ ...emptyDraft('2026-06-01T09:55'), content: ' Có người lạ ', hamlet: ' ' });
    expect(input.reporter).toBeUndefined();
    expect(input.hamlet).toBeUndefined();
    expect(input.received_at).toBe('2026-06-01T02:55:00.000Z');
  });

  it('sends an answer given on the spot only for a procedure question', () => {
    const base = { ...emptyDraft('2026-06-01T09:55'), content: 'Hỏi thủ tục tạm trú', answeredNow: true };
    expect(toInput({ ...base, category: 'admin_question', answer: ' Hướng dẫn nộp qua VNeID ' }).answered).toBe('Hướng dẫn nộp qua VNeID');
    expect(toInput({ ...base, category: 'admin_question' }).answered).toContain('trả lời ngay');
    expect(toInput({ ...base, category: 'security_order' }).answered).toBeUndefined();
    expect(toInput({ ...base, category: 'admin_question', answeredNow: false }).answered).toBeUndefined();
  });

  it('keeps a secret reporter', () => {
    const input = toInput({ ...emptyDraft('2026-06-01T09:55'), content: 'x', reporterName: 'Y Bli', reporterSecret: true });
    expect(input.reporter).toEqual({ name: 'Y Bli', phone: undefined, id_number: undefined, secret: true });
  });

  it('places store errors beside their fields, with the suggestion', () => {
    const errors = fieldErrors([
      { field: 'reporter.phone', code: 'phone_old_mobile', message: 'Số cũ', suggestion: '+84389123456' },
      { field: 'reporter.phone', code: 'other', message: 'second' },
    ]);
    expect(errors).toEqual({ 'reporter.phone': 'Số cũ (+84389123456)' });
  });
});
