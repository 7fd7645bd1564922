// Generated from src-tauri/src/commands.rs by the test src-tauri/tests/ipc.rs: do not edit.
// One typed function per Tauri command; api.ts gives it the invoker.
import type { Account } from './Account';
import type { BackupDone } from './BackupDone';
import type { BundleApplied } from './BundleApplied';
import type { BundleSaved } from './BundleSaved';
import type { ChannelFigures } from './ChannelFigures';
import type { ChannelInput } from './ChannelInput';
import type { ChannelView } from './ChannelView';
import type { Choice } from './Choice';
import type { ConflictView } from './ConflictView';
import type { DeadlineRules } from './DeadlineRules';
import type { DocKind } from './DocKind';
import type { GroupInput } from './GroupInput';
import type { GroupView } from './GroupView';
import type { Hamlet } from './Hamlet';
import type { IdentityHolder } from './IdentityHolder';
import type { LinkRelation } from './LinkRelation';
import type { NewAccount } from './NewAccount';
import type { NewAttachment } from './NewAttachment';
import type { OfficerChoice } from './OfficerChoice';
import type { PrintDoc } from './PrintDoc';
import type { RegisterFormat } from './RegisterFormat';
import type { ReportFormat } from './ReportFormat';
import type { Role } from './Role';
import type { RosterPerson } from './RosterPerson';
import type { RosterPlan } from './RosterPlan';
import type { SearchGroup } from './SearchGroup';
import type { SearchHit } from './SearchHit';
import type { SetupDone } from './SetupDone';
import type { StationStatus } from './StationStatus';
import type { SyncAttempt } from './SyncAttempt';
import type { SyncStatus } from './SyncStatus';
import type { Tip } from './Tip';
import type { TipFilter } from './TipFilter';
import type { TipInput } from './TipInput';
import type { TipPatch } from './TipPatch';
import type { Today } from './Today';
import type { UnitReport } from './UnitReport';
import type { UpdateScheduled } from './UpdateScheduled';
import type { UpdateStatus } from './UpdateStatus';

export type Invoke = <T>(cmd: string, args?: Record<string, unknown>) => Promise<T>;

export const COMMANDS = [
  'setup_demo',
  'setup_station',
  'check_password',
  'station_status',
  'sign_in',
  'sign_out',
  'still_here',
  'change_password',
  'list_accounts',
  'create_account',
  'set_account_role',
  'set_account_active',
  'reset_password',
  'identity_holders',
  'create_identity_key',
  'grant_identity',
  'list_tips',
  'count_tips',
  'get_tip',
  'reveal_reporter',
  'update_tip',
  'assign_tip',
  'backup_now',
  'link_tips',
  'unlink_tips',
  'list_officers',
  'print_doc',
  'today',
  'get_draft',
  'save_draft',
  'deadline_rules',
  'set_deadline_rules',
  'list_people',
  'set_hamlet_remote',
  'set_area_officer',
  'import_roster',
  'list_groups',
  'add_group',
  'record_group_count',
  'list_channels',
  'add_channel',
  'record_channel_figures',
  'list_conflicts',
  'reveal_conflict',
  'resolve_conflict',
  'sync_history',
  'unit_report',
  'export_report',
  'export_register',
  'open_exports_folder',
  'notify_deadlines',
  'add_tip',
  'attach_files',
  'attachment_content',
  'remove_attachment',
  'save_attachment',
  'search',
  'search_grouped',
  'list_hamlets',
  'sync_status',
  'sync_now',
  'update_status',
  'install_update_on_close',
  'install_update_from_usb',
  'quit_to_install',
  'export_bundle',
  'import_bundle',
] as const;

export function commands(invoke: Invoke) {
  return {
    /** The set-up screen's demo: a station of sample data, never enrolled. */
    setupDemo: () => invoke<StationStatus>('setup_demo'),
    /** The set-up screen's station from a provisioning file (its text, read by the window from the file the installer picks, and for a sealed file the code the province reads out), with its chief's account. */
    setupStation: (provisioning: string, code: string | null, fullName: string, username: string, password: string) => invoke<SetupDone>('setup_station', { provisioning, code, fullName, username, password }),
    /** The library's password rule, for the strength shown as a password is typed. */
    checkPassword: (username: string, password: string) => invoke<void>('check_password', { username, password }),
    stationStatus: () => invoke<StationStatus>('station_status'),
    signIn: (username: string, password: string) => invoke<StationStatus>('sign_in', { username, password }),
    /** Locks the window (the officer's button, or the window's own inactivity timer). */
    signOut: () => invoke<StationStatus>('sign_out'),
    /** The officer is active in the window (typing, clicking) without calling anything else. */
    stillHere: () => invoke<void>('still_here'),
    changePassword: (old: string, new_: string) => invoke<StationStatus>('change_password', { old, new: new_ }),
    listAccounts: () => invoke<Account[]>('list_accounts'),
    createAccount: (account: NewAccount) => invoke<Account>('create_account', { account }),
    setAccountRole: (id: string, role: Role) => invoke<Account>('set_account_role', { id, role }),
    setAccountActive: (id: string, active: boolean) => invoke<Account>('set_account_active', { id, active }),
    resetPassword: (id: string, password: string) => invoke<Account>('reset_password', { id, password }),
    /** Who holds the commune's identity key and who waits for a chief to grant it. */
    identityHolders: () => invoke<IdentityHolder[]>('identity_holders'),
    /** A chief makes the commune's identity key where it has none yet. */
    createIdentityKey: () => invoke<boolean>('create_identity_key'),
    /** A chief grants the commune's identity key to one officer key (signed, audited). */
    grantIdentity: (officerKeyId: string) => invoke<number>('grant_identity', { officerKeyId }),
    listTips: (filter: TipFilter) => invoke<Tip[]>('list_tips', { filter }),
    countTips: (filter: TipFilter) => invoke<number>('count_tips', { filter }),
    /** A tip with its timeline, without its reporter's identity (see `reveal_reporter`). */
    getTip: (id: string) => invoke<Tip>('get_tip', { id }),
    /** The tip with its reporter's identity, for a stated reason that goes to the audit trail (the library refuses a reason of too few words). */
    revealReporter: (id: string, reason: string) => invoke<Tip>('reveal_reporter', { id, reason }),
    updateTip: (id: string, patch: TipPatch) => invoke<Tip>('update_tip', { id, patch }),
    /** Gives the tip to an officer of the station to handle. */
    assignTip: (id: string, officer: string, note: string | null) => invoke<Tip>('assign_tip', { id, officer, note }),
    /** Writes an encrypted backup of the station (chief, administrator). */
    backupNow: () => invoke<BackupDone>('backup_now'),
    /** Links the tip to another of its unit (by register number or id). */
    linkTips: (id: string, other: string, relation: LinkRelation) => invoke<Tip>('link_tips', { id, other, relation }),
    /** Removes a link; returns the tip as it is now. */
    unlinkTips: (id: string, link: string) => invoke<Tip>('unlink_tips', { id, link }),
    /** The officers a tip may be given to (and the list filtered by). */
    listOfficers: () => invoke<OfficerChoice[]>('list_officers'),
    printDoc: (id: string, kind: DocKind, revealReason: string | null) => invoke<PrintDoc>('print_doc', { id, kind, revealReason }),
    today: () => invoke<Today>('today'),
    getDraft: () => invoke<unknown | null>('get_draft'),
    /** Keeps the form's draft in the encrypted database (never in the webview's storage). */
    saveDraft: (draft: unknown | null) => invoke<void>('save_draft', { draft }),
    deadlineRules: () => invoke<DeadlineRules>('deadline_rules'),
    setDeadlineRules: (rules: DeadlineRules) => invoke<DeadlineRules>('set_deadline_rules', { rules }),
    listPeople: () => invoke<RosterPerson[]>('list_people'),
    setHamletRemote: (id: string, remote: boolean) => invoke<void>('set_hamlet_remote', { id, remote }),
    /** Puts an officer (by id) in charge of a hamlet, or no one. */
    setAreaOfficer: (id: string, officer: string | null) => invoke<Hamlet>('set_area_officer', { id, officer }),
    /** Imports a roster file (CSV or XLSX); `dry_run` previews without writing anything. */
    importRoster: (bytes: number[], dryRun: boolean) => invoke<RosterPlan>('import_roster', { bytes, dryRun }),
    listGroups: () => invoke<GroupView[]>('list_groups'),
    addGroup: (input: GroupInput) => invoke<string>('add_group', { input }),
    recordGroupCount: (groupId: string, on: string, members: number) => invoke<void>('record_group_count', { groupId, on, members }),
    listChannels: () => invoke<ChannelView[]>('list_channels'),
    addChannel: (input: ChannelInput) => invoke<string>('add_channel', { input }),
    recordChannelFigures: (channelId: string, figures: ChannelFigures) => invoke<void>('record_channel_figures', { channelId, figures }),
    listConflicts: (openOnly: boolean) => invoke<ConflictView[]>('list_conflicts', { openOnly }),
    /** The two values of a conflict on a reporter's identity, for a stated reason (audited). */
    revealConflict: (id: string, reason: string) => invoke<ConflictView>('reveal_conflict', { id, reason }),
    /** Resolves a conflict: `take` is "local", "server", or (with `value`) a value typed in. */
    resolveConflict: (id: string, take: Choice, value: unknown | null) => invoke<void>('resolve_conflict', { id, take, value }),
    syncHistory: () => invoke<SyncAttempt[]>('sync_history'),
    unitReport: (period: string) => invoke<UnitReport>('unit_report', { period }),
    /** Writes the report for `period` as `format` into the data directory's `exports` folder and returns the file's path. */
    exportReport: (period: string, format: ReportFormat) => invoke<string>('export_report', { period, format }),
    /** Writes the register book of the tips `filter` selects (the list's filter: its dates, kind, status…) as `format` into the `exports` folder and returns the file's path. No reporter is named in it (the library reads no identity for it). */
    exportRegister: (filter: TipFilter, format: RegisterFormat) => invoke<string>('export_register', { filter, format }),
    /** Opens the data directory's `exports` folder (where every export of the window is written) in the system's file manager. It takes no path: the window cannot have any other folder or file opened. */
    openExportsFolder: () => invoke<void>('open_exports_folder'),
    /** The header badge's refresh: today's figures (as [`today`]), and the desktop told (its notification service) when crime tips come near their transfer deadline or pass it: once per tip and stage, by register number and hours only, never content or a reporter. One read of the tips serves both. */
    notifyDeadlines: () => invoke<Today>('notify_deadlines'),
    addTip: (input: TipInput, attachments: NewAttachment[] | null) => invoke<Tip>('add_tip', { input, attachments }),
    /** Attaches photos or scans to a tip (all or none); returns the tip as it is now. */
    attachFiles: (id: string, files: NewAttachment[]) => invoke<Tip>('attach_files', { id, files }),
    /** An attachment's content, as raw bytes (the window shows photos from it). */
    attachmentContent: (attachment: string) => invoke<ArrayBuffer>('attachment_content', { attachment }),
    /** Removes an attachment; returns the tip as it is now. */
    removeAttachment: (id: string, attachment: string) => invoke<Tip>('remove_attachment', { id, attachment }),
    /** Saves a copy of an attachment into the data directory's `exports` folder (logged, for those who may export) and returns its path. An existing file is never overwritten. */
    saveAttachment: (attachment: string) => invoke<string>('save_attachment', { attachment }),
    search: (text: string, limit: number) => invoke<SearchHit[]>('search', { text, limit }),
    /** The search box of the header: a few hits of each kind, the station's tips first. */
    searchGrouped: (text: string, perKind: number) => invoke<SearchGroup[]>('search_grouped', { text, perKind }),
    listHamlets: () => invoke<Hamlet[]>('list_hamlets'),
    syncStatus: () => invoke<SyncStatus>('sync_status'),
    syncNow: () => invoke<void>('sync_now'),
    /** Where the program's own update stands (Cài đặt, and the banner when one is ready). */
    updateStatus: () => invoke<UpdateStatus>('update_status'),
    /** "Cài đặt khi đóng ứng dụng": the downloaded update is checked and the station backed up now; the system's package tool installs it as the app closes. */
    installUpdateOnClose: () => invoke<UpdateScheduled>('install_update_on_close'),
    /** An update from a USB stick (the package and its signature, picked in Cài đặt), checked and the station backed up now, installed as the app closes. */
    installUpdateFromUsb: (fileName: string, bytes: number[], signature: string) => invoke<UpdateScheduled>('install_update_from_usb', { fileName, bytes, signature }),
    /** Closes the app now, so that the scheduled update is installed. */
    quitToInstall: () => invoke<void>('quit_to_install'),
    /** Writes every pending change into an offline bundle (the Đồng bộ screen's "Xuất gói"), into the data folder's `exports`, for a station no network reaches; a station set up with no network enrols by it. */
    exportBundle: () => invoke<BundleSaved>('export_bundle'),
    /** Applies the server's reply to an offline bundle (the file the officer picks). */
    importBundle: (bytes: number[]) => invoke<BundleApplied>('import_bundle', { bytes }),
  };
}
