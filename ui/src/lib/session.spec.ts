import { describe, expect, it } from 'vitest';
import type { Session } from './bindings/Session';
import { can, idleSecondsLeft, session } from './session.svelte';
import { moveNeeds } from './workflow';

function signedIn(role: Session['role'], permissions: Session['permissions'], mustChange = false): Session {
  return {
    officer_id: 'o1',
    username: 'lan',
    full_name: 'Nguyễn Thị Lan',
    role,
    role_label: role,
    permissions,
    must_change_password: mustChange,
  };
}

describe('the window follows the role', () => {
  it('allows only what the session holds', () => {
    session.current = null;
    expect(can('tip_read')).toBe(false);
    session.current = signedIn('officer', ['tip_read', 'tip_record', 'tip_edit', 'identity_view']);
    expect(can('tip_record')).toBe(true);
    expect(can('tip_transfer')).toBe(false);
    expect(can('accounts_manage')).toBe(false);
  });

  it('allows nothing until a temporary password is changed', () => {
    session.current = signedIn('chief', ['tip_read', 'accounts_manage'], true);
    expect(can('tip_read')).toBe(false);
    session.current = null;
  });

  it('asks the same permission for a move as the store', () => {
    expect(moveNeeds('verifying')).toBe('tip_edit');
    expect(moveNeeds('transferred')).toBe('tip_transfer');
    expect(moveNeeds('closed')).toBe('tip_close');
    expect(moveNeeds('rejected')).toBe('tip_close');
  });

  it('counts down the idle lock', () => {
    expect(idleSecondsLeft(0, 1_000, 600)).toBe(599);
    expect(idleSecondsLeft(0, 700_000, 600)).toBe(0);
  });
});
