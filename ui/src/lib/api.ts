// The typed IPC surface: the functions generated from the Tauri commands themselves
// (bindings/commands.ts, written by src-tauri/tests/ipc.rs), with the types generated from
// Rust by ts-rs. Errors arrive as AppError with a stable `code`.
import { invoke } from '@tauri-apps/api/core';
import type { AppError } from './bindings/AppError';
import type { Choice } from './bindings/Choice';
import { commands } from './bindings/commands';
import type { NewAttachment } from './bindings/NewAttachment';
import type { TipInput } from './bindings/TipInput';
import { SIGNED_OUT_CODES } from './session.svelte';

/** Fired when a command finds the window signed out (idle lock, disabled account). */
export const SIGNED_OUT_EVENT = 'binhyen:signed-out';

async function call<T>(cmd: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(cmd, args);
  } catch (e) {
    if (isAppError(e) && SIGNED_OUT_CODES.includes(e.code)) {
      window.dispatchEvent(new CustomEvent(SIGNED_OUT_EVENT, { detail: e.message }));
    }
    throw e;
  }
}

export function isAppError(e: unknown): e is AppError {
  return typeof e === 'object' && e !== null && 'code' in e && 'message' in e;
}

/** The message to show for any failure: the store's Vietnamese message, or the raw error. */
export function errorText(e: unknown): string {
  return isAppError(e) ? e.message : String(e);
}

/** Commands that may find the window signed out report it (see `call`). */
const checked = commands(call);
/** Signing in and out, and the station's state, answer whatever the session. */
const plain = commands(invoke);

export const api = {
  ...checked,
  stationStatus: plain.stationStatus,
  signIn: plain.signIn,
  signOut: plain.signOut,
  addTip: (input: TipInput, attachments: NewAttachment[] = []) => checked.addTip(input, attachments),
  importRoster: (bytes: Uint8Array, dryRun: boolean) => checked.importRoster(Array.from(bytes), dryRun),
  importBundle: (bytes: Uint8Array) => checked.importBundle(Array.from(bytes)),
  resolveConflict: (id: string, take: Choice, value: unknown = null) => checked.resolveConflict(id, take, value),
};
