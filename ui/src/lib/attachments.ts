// Photos and scans chosen in the window: checked here for quick feedback (the store checks
// them again, by content), read as base64 for the IPC call, and sized for people.
import type { NewAttachment } from './bindings/NewAttachment';

/** The store's limit (binhyen_domain::attachment::MAX_ATTACHMENT_BYTES). */
export const MAX_FILE_BYTES = 20 * 1024 * 1024;
/** What the file picker offers. */
export const ACCEPT = 'image/jpeg,image/png,image/webp,image/gif,image/heic,image/heif,image/tiff,application/pdf';

/** "850 KB", "1,5 MB" (Vietnamese decimal comma). */
export function sizeText(bytes: number): string {
  if (bytes < 1024 * 1024) return `${Math.max(1, Math.round(bytes / 1024))} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1).replace('.', ',')} MB`;
}

export type Problem = { name: string; key: 'file_empty' | 'file_too_large' | 'file_type' };

/** A file the window can tell at once the station will refuse, and why. */
export function problemOf(file: { name: string; size: number; type: string }): Problem | null {
  if (file.size === 0) return { name: file.name, key: 'file_empty' };
  if (file.size > MAX_FILE_BYTES) return { name: file.name, key: 'file_too_large' };
  // An unknown type (some systems give none for HEIC) is left to the store, which reads the
  // content; a known type that is neither an image nor a PDF is refused here.
  if (file.type && !file.type.startsWith('image/') && file.type !== 'application/pdf') {
    return { name: file.name, key: 'file_type' };
  }
  return null;
}

/** The files just chosen in a file input (which is emptied, so that the same file can be
 * chosen again), split into those to send and those refused at once. */
export function takeChosen(input: HTMLInputElement): { good: File[]; problems: Problem[] } {
  const good: File[] = [];
  const problems: Problem[] = [];
  for (const f of Array.from(input.files ?? [])) {
    const p = problemOf(f);
    if (p) problems.push(p);
    else good.push(f);
  }
  input.value = '';
  return { good, problems };
}

/** Base64 of some bytes, in chunks (a large photo would overflow the argument list). */
export function toBase64(bytes: Uint8Array): string {
  let binary = '';
  const chunk = 0x8000;
  for (let i = 0; i < bytes.length; i += chunk) {
    binary += String.fromCharCode(...bytes.subarray(i, i + chunk));
  }
  return btoa(binary);
}

/** Reads chosen files for `add_tip` / `attach_files`. */
export async function readFiles(files: File[]): Promise<NewAttachment[]> {
  const out: NewAttachment[] = [];
  for (const f of files) {
    out.push({ file_name: f.name, data_base64: toBase64(new Uint8Array(await f.arrayBuffer())) });
  }
  return out;
}

/** Whether the window can show this type itself. */
export function isImage(mediaType: string): boolean {
  return ['image/jpeg', 'image/png', 'image/webp', 'image/gif'].includes(mediaType);
}
