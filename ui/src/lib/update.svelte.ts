// The program's own update, as the banner and Cài đặt show it: what the province offers and
// how far its download got, and the update the officer chose to install as the app closes.
import { api } from './api';
import type { UpdateScheduled } from './bindings/UpdateScheduled';
import type { UpdateStatus } from './bindings/UpdateStatus';

export const update = $state<{ status: UpdateStatus | null; scheduled: UpdateScheduled | null }>({
  status: null,
  scheduled: null,
});

export async function refreshUpdate() {
  try {
    update.status = await api.updateStatus();
  } catch {
    // Signed out, or the station is closed: the next refresh says.
  }
}

/** The downloaded update, checked and the station backed up now, installed as the app closes. */
export async function installOnClose() {
  update.scheduled = await api.installUpdateOnClose();
}

/** A package and its signature picked from a USB stick. Throws the reason when one is missing. */
export async function installFromUsb(files: File[], missing: string) {
  const pkg = files.find((f) => f.name.endsWith('.deb'));
  const sig = files.find((f) => f.name.endsWith('.minisig'));
  if (!pkg || !sig) throw new Error(missing);
  const bytes = Array.from(new Uint8Array(await pkg.arrayBuffer()));
  update.scheduled = await api.installUpdateFromUsb(pkg.name, bytes, await sig.text());
}

export async function quitToInstall() {
  await api.quitToInstall();
}
