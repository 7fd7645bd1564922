// Who is signed in, for the screens to show only what the officer's role allows. The store
// refuses anything else anyway; this only keeps the window honest about it.
import type { AppErrorCode } from './bindings/AppErrorCode';
import type { Permission } from './bindings/Permission';
import type { Session } from './bindings/Session';

export const session = $state<{ current: Session | null }>({ current: null });

export function can(permission: Permission): boolean {
  const s = session.current;
  return s !== null && !s.must_change_password && s.permissions.includes(permission);
}

/** The errors after which the window must show the sign-in screen again. */
export const SIGNED_OUT_CODES: AppErrorCode[] = ['signed_out', 'account_disabled', 'revoked'];

/** Seconds left before the idle lock, given the last activity (ms) and now (ms). */
export function idleSecondsLeft(lastActivity: number, now: number, limitSeconds: number): number {
  return Math.max(0, Math.ceil(limitSeconds - (now - lastActivity) / 1000));
}
