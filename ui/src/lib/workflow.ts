// The legal workflow of a tip as the window offers it. The store enforces the same rules
// (binhyen_domain::tip): the window only avoids offering what would be refused.
import type { Permission } from './bindings/Permission';
import type { Status } from './bindings/Status';

const NEXT: Record<Status, Status[]> = {
  received: ['verifying', 'transferred', 'resolved', 'closed', 'rejected'],
  verifying: ['transferred', 'resolved', 'closed', 'rejected'],
  transferred: ['resolved', 'closed'],
  resolved: ['closed'],
  closed: [],
  rejected: [],
};

export function nextStatuses(status: Status): Status[] {
  return NEXT[status];
}

/** A transfer names the receiving agency; a rejection names the duplicate. */
export function noteRequired(to: Status): boolean {
  return to === 'transferred' || to === 'rejected';
}

/** Still needs the station's work. */
export function isOpen(status: Status): boolean {
  return status === 'received' || status === 'verifying';
}

/** The permission a move to `to` needs (binhyen_domain::access::status_permission). */
export function moveNeeds(to: Status): Permission {
  if (to === 'received' || to === 'verifying') return 'tip_edit';
  if (to === 'transferred') return 'tip_transfer';
  return 'tip_close';
}
