import { describe, expect, it } from 'vitest';
import { MAX_FILE_BYTES, isImage, problemOf, sizeText, toBase64 } from './attachments';

describe('attachments', () => {
  it('sizes files for people, with a decimal comma', () => {
    expect(sizeText(300)).toBe('1 KB');
    expect(sizeText(850 * 1024)).toBe('850 KB');
    expect(sizeText(1.5 * 1024 * 1024)).toBe('1,5 MB');
  });

  it('refuses at once what the station would refuse', () => {
    expect(problemOf({ name: 'a.jpg', size: 0, type: 'image/jpeg' })?.key).toBe('file_empty');
    expect(problemOf({ name: 'b.jpg', size: MAX_FILE_BYTES + 1, type: 'image/jpeg' })?.key).toBe('file_too_large');
    expect(problemOf({ name: 'c.docx', size: 10, type: 'application/vnd.openxmlformats' })?.key).toBe('file_type');
    expect(problemOf({ name: 'd.pdf', size: 10, type: 'application/pdf' })).toBeNull();
    // No type given (HEIC on some systems): the station reads the content.
    expect(problemOf({ name: 'e.heic', size: 10, type: '' })).toBeNull();
  });

  it('encodes bytes as base64, large ones too', () => {
    expect(toBase64(new Uint8Array([104, 105]))).toBe('aGk=');
    const big = new Uint8Array(100_000).fill(65);
    expect(atob(toBase64(big)).length).toBe(100_000);
  });

  it('shows only the images a webview can draw', () => {
    expect(isImage('image/png')).toBe(true);
    expect(isImage('image/tiff')).toBe(false);
    expect(isImage('application/pdf')).toBe(false);
  });
});
