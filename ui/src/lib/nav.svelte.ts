// Which screen the window shows. One place, so that any screen can send the officer to
// another (a report figure to the tips behind it, a deadline to its tip).
import type { TipFilter } from './bindings/TipFilter';

export type Screen =
  | 'today'
  | 'record'
  | 'tips'
  | 'tip'
  | 'hamlets'
  | 'channels'
  | 'conflicts'
  | 'sync'
  | 'reports'
  | 'accounts'
  | 'settings';

export const nav = $state<{ screen: Screen; tipId: string | null; filter: TipFilter; back: Screen }>({
  screen: 'today',
  tipId: null,
  filter: {},
  back: 'tips',
});

export function go(screen: Screen) {
  nav.screen = screen;
}

export function openTip(id: string) {
  if (nav.screen !== 'tip') nav.back = nav.screen;
  nav.tipId = id;
  nav.screen = 'tip';
}

/** The tip list with a filter (drill-down from a report or the Today screen). */
export function showTips(filter: TipFilter) {
  nav.filter = filter;
  nav.screen = 'tips';
}
