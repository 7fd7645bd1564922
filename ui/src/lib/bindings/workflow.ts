// Generated from binhyen_domain (Status::next, Status::needs_note, Status::is_open,
// access::status_permission) by `cargo test -p binhyen-domain`. Do not edit.
import type { Permission } from "./Permission";
import type { Status } from "./Status";

/** The statuses a tip may move to from each one. */
export const NEXT: Record<Status, Status[]> = {
  received: ["verifying", "transferred", "resolved", "closed", "rejected"],
  verifying: ["transferred", "resolved", "closed", "rejected"],
  transferred: ["resolved", "closed"],
  resolved: ["closed"],
  closed: [],
  rejected: [],
};

/** The moves whose note must say something. */
export const NEEDS_NOTE: Status[] = ["transferred", "rejected"];

/** The statuses that still need the station's work. */
export const OPEN: Status[] = ["received", "verifying"];

/** The permission a move to each status needs. */
export const MOVE_NEEDS: Record<Status, Permission> = {
  received: "tip_edit",
  verifying: "tip_edit",
  transferred: "tip_transfer",
  resolved: "tip_close",
  closed: "tip_close",
  rejected: "tip_close",
};
