// The typed IPC surface: one function per Tauri command, with the types generated from
// Rust by ts-rs (src/lib/bindings). Errors arrive as AppError with a stable `code`.
import { invoke } from '@tauri-apps/api/core';
import type { AppError } from './bindings/AppError';
import type { ChannelFigures } from './bindings/ChannelFigures';
import type { ChannelInput } from './bindings/ChannelInput';
import type { ChannelView } from './bindings/ChannelView';
import type { ConflictView } from './bindings/ConflictView';
import type { DeadlineRules } from './bindings/DeadlineRules';
import type { DocKind } from './bindings/DocKind';
import type { GroupInput } from './bindings/GroupInput';
import type { GroupView } from './bindings/GroupView';
import type { Hamlet } from './bindings/Hamlet';
import type { PrintDoc } from './bindings/PrintDoc';
import type { RosterPerson } from './bindings/RosterPerson';
import type { RosterPlan } from './bindings/RosterPlan';
import type { SearchHit } from './bindings/SearchHit';
import type { StationStatus } from './bindings/StationStatus';
import type { SyncAttempt } from './bindings/SyncAttempt';
import type { SyncStatus } from './bindings/SyncStatus';
import type { Tip } from './bindings/Tip';
import type { TipFilter } from './bindings/TipFilter';
import type { TipInput } from './bindings/TipInput';
import type { TipPatch } from './bindings/TipPatch';
import type { Today } from './bindings/Today';
import type { UnitReport } from './bindings/UnitReport';

export function isAppError(e: unknown): e is AppError {
  return typeof e === 'object' && e !== null && 'code' in e && 'message' in e;
}

/** The message to show for any failure: the store's Vietnamese message, or the raw error. */
export function errorText(e: unknown): string {
  return isAppError(e) ? e.message : String(e);
}

export const api = {
  stationStatus: () => invoke<StationStatus>('station_status'),
  unlock: (passphrase: string) => invoke<StationStatus>('unlock', { passphrase }),
  listTips: (filter: TipFilter) => invoke<Tip[]>('list_tips', { filter }),
  countTips: (filter: TipFilter) => invoke<number>('count_tips', { filter }),
  getTip: (id: string) => invoke<Tip>('get_tip', { id }),
  revealReporter: (id: string, reason: string) => invoke<Tip>('reveal_reporter', { id, reason }),
  addTip: (input: TipInput) => invoke<Tip>('add_tip', { input }),
  updateTip: (id: string, patch: TipPatch) => invoke<Tip>('update_tip', { id, patch }),
  printDoc: (id: string, kind: DocKind, includeReporter: boolean) =>
    invoke<PrintDoc>('print_doc', { id, kind, includeReporter }),
  search: (text: string, limit: number) => invoke<SearchHit[]>('search', { text, limit }),
  today: () => invoke<Today>('today'),
  getDraft: () => invoke<unknown>('get_draft'),
  saveDraft: (draft: unknown) => invoke<void>('save_draft', { draft }),
  deadlineRules: () => invoke<DeadlineRules>('deadline_rules'),
  setDeadlineRules: (rules: DeadlineRules) => invoke<DeadlineRules>('set_deadline_rules', { rules }),
  listHamlets: () => invoke<Hamlet[]>('list_hamlets'),
  listPeople: () => invoke<RosterPerson[]>('list_people'),
  setHamletRemote: (id: string, remote: boolean) => invoke<void>('set_hamlet_remote', { id, remote }),
  importRoster: (bytes: Uint8Array, dryRun: boolean) =>
    invoke<RosterPlan>('import_roster', { bytes: Array.from(bytes), dryRun }),
  listGroups: () => invoke<GroupView[]>('list_groups'),
  addGroup: (input: GroupInput) => invoke<string>('add_group', { input }),
  recordGroupCount: (groupId: string, on: string, members: number) =>
    invoke<void>('record_group_count', { groupId, on, members }),
  listChannels: () => invoke<ChannelView[]>('list_channels'),
  addChannel: (input: ChannelInput) => invoke<string>('add_channel', { input }),
  recordChannelFigures: (channelId: string, figures: ChannelFigures) =>
    invoke<void>('record_channel_figures', { channelId, figures }),
  listConflicts: (openOnly: boolean) => invoke<ConflictView[]>('list_conflicts', { openOnly }),
  resolveConflict: (id: string, take: 'local' | 'server' | 'value', value?: unknown) =>
    invoke<void>('resolve_conflict', { id, take, value }),
  syncStatus: () => invoke<SyncStatus>('sync_status'),
  syncNow: () => invoke<void>('sync_now'),
  syncHistory: () => invoke<SyncAttempt[]>('sync_history'),
  unitReport: (period: string) => invoke<UnitReport>('unit_report', { period }),
  exportReport: (period: string, format: 'xlsx' | 'csv' | 'pdf') =>
    invoke<string>('export_report', { period, format }),
};
