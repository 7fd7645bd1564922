import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { withSlowNotice } from './slow';

function after<T>(ms: number, value: T, fail = false): () => Promise<T> {
  return () =>
    new Promise((resolve, reject) => {
      setTimeout(() => (fail ? reject(new Error(String(value))) : resolve(value)), ms);
    });
}

describe('a slow wait says so', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('says nothing of a quick one', async () => {
    const seen: boolean[] = [];
    const done = withSlowNotice(after(500, 'ok'), 2000, (s) => seen.push(s));
    await vi.advanceTimersByTimeAsync(500);
    expect(await done).toBe('ok');
    await vi.advanceTimersByTimeAsync(5000);
    expect(seen).toEqual([false]);
  });

  it('says so once the time has passed, and stops saying so when it ends', async () => {
    const seen: boolean[] = [];
    const done = withSlowNotice(after(7000, 'ok'), 2000, (s) => seen.push(s));
    await vi.advanceTimersByTimeAsync(1999);
    expect(seen).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(seen).toEqual([true]);
    await vi.advanceTimersByTimeAsync(5000);
    expect(await done).toBe('ok');
    expect(seen).toEqual([true, false]);
  });

  it('stops saying so when it fails, and passes the failure on', async () => {
    const seen: boolean[] = [];
    const done = withSlowNotice(after(3000, 'wrong password', true), 2000, (s) => seen.push(s));
    const failed = expect(done).rejects.toThrow('wrong password');
    await vi.advanceTimersByTimeAsync(3000);
    await failed;
    expect(seen).toEqual([true, false]);
  });
});
