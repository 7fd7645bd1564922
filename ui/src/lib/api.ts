// The typed IPC surface: one function per Tauri command, with the types generated from
// Rust by ts-rs (src/lib/bindings). Errors arrive as AppError with a stable `code`.
import { invoke } from '@tauri-apps/api/core';
import type { Account } from './bindings/Account';
import type { IdentityHolder } from './bindings/IdentityHolder';
import { SIGNED_OUT_CODES } from './session.svelte';
import type { NewAccount } from './bindings/NewAccount';
import type { OfficerChoice } from './bindings/OfficerChoice';
import type { Role } from './bindings/Role';
import type { AppError } from './bindings/AppError';
import type { BackupDone } from './bindings/BackupDone';
import type { ChannelFigures } from './bindings/ChannelFigures';
import type { ChannelInput } from './bindings/ChannelInput';
import type { ChannelView } from './bindings/ChannelView';
import type { Choice } from './bindings/Choice';
import type { ConflictView } from './bindings/ConflictView';
import type { DeadlineRules } from './bindings/DeadlineRules';
import type { DocKind } from './bindings/DocKind';
import type { GroupInput } from './bindings/GroupInput';
import type { GroupView } from './bindings/GroupView';
import type { Hamlet } from './bindings/Hamlet';
import type { LinkRelation } from './bindings/LinkRelation';
import type { NewAttachment } from './bindings/NewAttachment';
import type { PrintDoc } from './bindings/PrintDoc';
import type { ReportFormat } from './bindings/ReportFormat';
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

export const api = {
  stationStatus: () => invoke<StationStatus>('station_status'),
  signIn: (username: string, password: string) => invoke<StationStatus>('sign_in', { username, password }),
  signOut: () => invoke<StationStatus>('sign_out'),
  stillHere: () => call<void>('still_here'),
  changePassword: (old: string, next: string) => call<StationStatus>('change_password', { old, new: next }),
  listAccounts: () => call<Account[]>('list_accounts'),
  createAccount: (account: NewAccount) => call<Account>('create_account', { account }),
  setAccountRole: (id: string, role: Role) => call<Account>('set_account_role', { id, role }),
  setAccountActive: (id: string, active: boolean) => call<Account>('set_account_active', { id, active }),
  resetPassword: (id: string, password: string) => call<Account>('reset_password', { id, password }),
  identityHolders: () => call<IdentityHolder[]>('identity_holders'),
  createIdentityKey: () => call<boolean>('create_identity_key'),
  grantIdentity: (officerKeyId: string) => call<number>('grant_identity', { officerKeyId }),
  listTips: (filter: TipFilter) => call<Tip[]>('list_tips', { filter }),
  countTips: (filter: TipFilter) => call<number>('count_tips', { filter }),
  getTip: (id: string) => call<Tip>('get_tip', { id }),
  revealReporter: (id: string, reason: string) => call<Tip>('reveal_reporter', { id, reason }),
  addTip: (input: TipInput, attachments: NewAttachment[] = []) => call<Tip>('add_tip', { input, attachments }),
  attachFiles: (id: string, files: NewAttachment[]) => call<Tip>('attach_files', { id, files }),
  /** The content of an attachment, as bytes. */
  attachmentContent: (attachment: string) => call<ArrayBuffer>('attachment_content', { attachment }),
  removeAttachment: (id: string, attachment: string) => call<Tip>('remove_attachment', { id, attachment }),
  saveAttachment: (attachment: string) => call<string>('save_attachment', { attachment }),
  updateTip: (id: string, patch: TipPatch) => call<Tip>('update_tip', { id, patch }),
  assignTip: (id: string, officer: string, note: string | null) => call<Tip>('assign_tip', { id, officer, note }),
  listOfficers: () => call<OfficerChoice[]>('list_officers'),
  backupNow: () => call<BackupDone>('backup_now'),
  linkTips: (id: string, other: string, relation: LinkRelation) => call<Tip>('link_tips', { id, other, relation }),
  unlinkTips: (id: string, link: string) => call<Tip>('unlink_tips', { id, link }),
  /** A paper for a tip; the reporter is printed only for a stated reason (as a reveal). */
  printDoc: (id: string, kind: DocKind, revealReason: string | null) =>
    call<PrintDoc>('print_doc', { id, kind, revealReason }),
  search: (text: string, limit: number) => call<SearchHit[]>('search', { text, limit }),
  today: () => call<Today>('today'),
  getDraft: () => call<unknown>('get_draft'),
  saveDraft: (draft: unknown) => call<void>('save_draft', { draft }),
  deadlineRules: () => call<DeadlineRules>('deadline_rules'),
  setDeadlineRules: (rules: DeadlineRules) => call<DeadlineRules>('set_deadline_rules', { rules }),
  listHamlets: () => call<Hamlet[]>('list_hamlets'),
  listPeople: () => call<RosterPerson[]>('list_people'),
  setHamletRemote: (id: string, remote: boolean) => call<void>('set_hamlet_remote', { id, remote }),
  setAreaOfficer: (id: string, officer: string | null) => call<Hamlet>('set_area_officer', { id, officer }),
  importRoster: (bytes: Uint8Array, dryRun: boolean) =>
    call<RosterPlan>('import_roster', { bytes: Array.from(bytes), dryRun }),
  listGroups: () => call<GroupView[]>('list_groups'),
  addGroup: (input: GroupInput) => call<string>('add_group', { input }),
  recordGroupCount: (groupId: string, on: string, members: number) =>
    call<void>('record_group_count', { groupId, on, members }),
  listChannels: () => call<ChannelView[]>('list_channels'),
  addChannel: (input: ChannelInput) => call<string>('add_channel', { input }),
  recordChannelFigures: (channelId: string, figures: ChannelFigures) =>
    call<void>('record_channel_figures', { channelId, figures }),
  listConflicts: (openOnly: boolean) => call<ConflictView[]>('list_conflicts', { openOnly }),
  revealConflict: (id: string, reason: string) => call<ConflictView>('reveal_conflict', { id, reason }),
  resolveConflict: (id: string, take: Choice, value?: unknown) =>
    call<void>('resolve_conflict', { id, take, value }),
  syncStatus: () => call<SyncStatus>('sync_status'),
  syncNow: () => call<void>('sync_now'),
  syncHistory: () => call<SyncAttempt[]>('sync_history'),
  unitReport: (period: string) => call<UnitReport>('unit_report', { period }),
  exportReport: (period: string, format: ReportFormat) =>
    call<string>('export_report', { period, format }),
};
