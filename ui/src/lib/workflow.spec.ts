import { describe, expect, it } from 'vitest';
import { fold } from './format';
import { matchHamlets, restoreDraft, emptyDraft, isBlankDraft } from './tip-form';
import { nextStatuses, noteRequired } from './workflow';

describe('workflow', () => {
  it('offers only the moves the law allows', () => {
    expect(nextStatuses('received')).toContain('transferred');
    expect(nextStatuses('transferred')).toEqual(['resolved', 'closed']);
    expect(nextStatuses('closed')).toEqual([]);
  });
  it('asks for a note on transfer and rejection only', () => {
    expect(noteRequired('transferred')).toBe(true);
    expect(noteRequired('rejected')).toBe(true);
    expect(noteRequired('verifying')).toBe(false);
  });
});

describe('hamlet type-ahead', () => {
  const hamlets = [
    { id: '1', name: 'Buôn Ea Kpam' },
    { id: '2', name: 'Thôn Đoàn Kết' },
    { id: '3', name: 'Buôn Đôn' },
    { id: '4', name: 'Tổ dân phố 3' },
  ];
  it('ignores diacritics and case', () => {
    expect(fold('Buôn Đôn')).toBe('buon don');
    expect(matchHamlets(hamlets, 'buon don').map((h) => h.id)).toEqual(['3']);
    expect(matchHamlets(hamlets, 'DOAN').map((h) => h.id)).toEqual(['2']);
  });
  it('matches word starts, names starting with the text first', () => {
    expect(matchHamlets(hamlets, 'ea kp').map((h) => h.id)).toEqual(['1']);
    expect(matchHamlets(hamlets, 'buon').map((h) => h.id)).toEqual(['1', '3']);
    expect(matchHamlets(hamlets, 'to dan').map((h) => h.id)).toEqual(['4']);
    expect(matchHamlets(hamlets, 'xyz')).toEqual([]);
  });
});

describe('drafts', () => {
  const fresh = emptyDraft('2026-06-01T10:00');
  it('keeps what was typed and drops what has the wrong shape', () => {
    const restored = restoreDraft({ content: 'Có người lạ', urgency: 'urgent', reporterSecret: 'yes' }, fresh);
    expect(restored?.content).toBe('Có người lạ');
    expect(restored?.urgency).toBe('urgent');
    expect(restored?.reporterSecret).toBe(false);
  });
  it('ignores an empty or foreign draft', () => {
    expect(restoreDraft(null, fresh)).toBeNull();
    expect(restoreDraft('text', fresh)).toBeNull();
    expect(restoreDraft({ content: '   ' }, fresh)).toBeNull();
    expect(isBlankDraft(fresh)).toBe(true);
  });
});
