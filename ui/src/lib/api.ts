// The typed IPC surface: one function per Tauri command, with the types generated from
// Rust by ts-rs (src/lib/bindings). Errors arrive as AppError with a stable `code`.
import { invoke } from '@tauri-apps/api/core';
import type { AppError } from './bindings/AppError';
import type { Hamlet } from './bindings/Hamlet';
import type { SearchHit } from './bindings/SearchHit';
import type { StationStatus } from './bindings/StationStatus';
import type { SyncStatus } from './bindings/SyncStatus';
import type { Tip } from './bindings/Tip';
import type { TipFilter } from './bindings/TipFilter';
import type { TipInput } from './bindings/TipInput';

export function isAppError(e: unknown): e is AppError {
  return typeof e === 'object' && e !== null && 'code' in e && 'message' in e;
}

export const api = {
  stationStatus: () => invoke<StationStatus>('station_status'),
  unlock: (passphrase: string) => invoke<StationStatus>('unlock', { passphrase }),
  listTips: (filter: TipFilter) => invoke<Tip[]>('list_tips', { filter }),
  countTips: (filter: TipFilter) => invoke<number>('count_tips', { filter }),
  getTip: (id: string) => invoke<Tip>('get_tip', { id }),
  addTip: (input: TipInput) => invoke<Tip>('add_tip', { input }),
  search: (text: string, limit: number) => invoke<SearchHit[]>('search', { text, limit }),
  listHamlets: () => invoke<Hamlet[]>('list_hamlets'),
  syncStatus: () => invoke<SyncStatus>('sync_status'),
  syncNow: () => invoke<void>('sync_now'),
};
