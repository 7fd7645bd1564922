import { describe, expect, it } from 'vitest';
import { proposeFromPaste } from './paste';

const HAMLETS = [
  { id: 'h1', name: 'Buôn Ea Kmar' },
  { id: 'h2', name: 'Thôn Hòa Bình' },
  { id: 'h3', name: 'Thôn 1' },
  { id: 'h4', name: 'Thôn Hòa Bình 2' },
];
// 7 December 2026, 10:00 in Vietnam.
const NOW = new Date('2026-12-07T03:00:00Z');

describe('a message pasted from Zalo', () => {
  it('proposes time, sender, phone, hamlet and content from a bracketed header', () => {
    const p = proposeFromPaste(
      '[07/12/2026 08:15] Y Bliêng Niê: Có 2 người lạ chở bò ra khỏi buôn ea kmar lúc sáng sớm, ai biết gọi 0912.345.678',
      HAMLETS,
      NOW,
    );
    expect(p.receivedAt).toBe('2026-12-07T08:15');
    expect(p.sender).toBe('Y Bliêng Niê');
    expect(p.phone).toBe('0912345678');
    expect(p.hamletId).toBe('h1');
    expect(p.content).toBe('Có 2 người lạ chở bò ra khỏi buôn ea kmar lúc sáng sớm, ai biết gọi 0912.345.678');
    // Taken as the reporter's, the number leaves the tip's text.
    expect(p.contentWithoutPhone).toBe(
      'Có 2 người lạ chở bò ra khỏi buôn ea kmar lúc sáng sớm, ai biết gọi [số điện thoại người báo tin]',
    );
  });

  it('reads the "Name, hh:mm dd/mm" header, a year left out, +84 numbers', () => {
    const p = proposeFromPaste('Trần Thị Lan, 21:40 06/12:\nỞ Hoa Binh 2 có đánh bạc. SĐT +84 987 654 321', HAMLETS, NOW);
    expect(p.sender).toBe('Trần Thị Lan');
    expect(p.receivedAt).toBe('2026-12-06T21:40');
    expect(p.phone).toBe('0987654321');
    // The longer name wins: "Hòa Bình 2", not "Hòa Bình".
    expect(p.hamletId).toBe('h4');
    expect(p.content).toBe('Ở Hoa Binh 2 có đánh bạc. SĐT +84 987 654 321');
  });

  it('proposes nothing it cannot find, and never a hamlet from a number alone', () => {
    const p = proposeFromPaste('Tin nhắn không có tiêu đề, nhà số 1 bị mất trộm', HAMLETS, NOW);
    expect(p).toEqual({
      content: 'Tin nhắn không có tiêu đề, nhà số 1 bị mất trộm',
      contentWithoutPhone: 'Tin nhắn không có tiêu đề, nhà số 1 bị mất trộm',
      sender: null,
      phone: null,
      receivedAt: null,
      hamletId: null,
      hamletName: null,
    });
  });

  it('refuses an impossible time instead of inventing one', () => {
    const p = proposeFromPaste('[31/13/2026 25:61] Ai đó: nội dung', HAMLETS, NOW);
    expect(p.receivedAt).toBeNull();
    expect(p.sender).toBe('Ai đó');
  });

  it('never takes words of the message for a sender, nor a day that does not exist', () => {
    const p = proposeFromPaste('[07/12/2026 09:10] Có trộm lúc 9:30 sáng nay', HAMLETS, NOW);
    expect(p.sender).toBeNull();
    expect(p.receivedAt).toBe('2026-12-07T09:10');
    expect(p.content).toBe('Có trộm lúc 9:30 sáng nay');
    expect(proposeFromPaste('[31/11/2026 08:00] A: x', HAMLETS, NOW).receivedAt).toBeNull();
    expect(proposeFromPaste('[30/02 08:00] A: x', HAMLETS, NOW).receivedAt).toBeNull();
  });

  it('never proposes a time to come: a day without its year is last year, a later hour yesterday', () => {
    expect(proposeFromPaste('[25/12 08:00] A: x', HAMLETS, NOW).receivedAt).toBe('2025-12-25T08:00');
    expect(proposeFromPaste('[06/12 08:00] A: x', HAMLETS, NOW).receivedAt).toBe('2026-12-06T08:00');
    expect(proposeFromPaste('22:15\nx', HAMLETS, NOW).receivedAt).toBe('2026-12-06T22:15');
  });

  it('takes a bare time line as today', () => {
    const p = proposeFromPaste('08:05\nCháy rẫy ở thôn Hòa Bình', HAMLETS, NOW);
    expect(p.receivedAt).toBe('2026-12-07T08:05');
    expect(p.hamletId).toBe('h2');
  });
});
