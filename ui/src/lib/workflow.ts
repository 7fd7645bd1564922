// The legal workflow of a tip as the window offers it. The rules are the library's
// (binhyen_domain::tip and ::access), generated into ./bindings/workflow.ts: the window only
// avoids offering what the store would refuse, and never keeps a copy of its own.
import type { Permission } from './bindings/Permission';
import type { Status } from './bindings/Status';
import { MOVE_NEEDS, NEEDS_NOTE, NEXT, OPEN } from './bindings/workflow';

export function nextStatuses(status: Status): Status[] {
  return NEXT[status];
}

/** A transfer names the receiving agency; a rejection names the duplicate. */
export function noteRequired(to: Status): boolean {
  return NEEDS_NOTE.includes(to);
}

/** Still needs the station's work. */
export function isOpen(status: Status): boolean {
  return OPEN.includes(status);
}

/** The permission a move to `to` needs (binhyen_domain::access::status_permission). */
export function moveNeeds(to: Status): Permission {
  return MOVE_NEEDS[to];
}
