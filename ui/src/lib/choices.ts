// The values a form or a filter offers, in the order an officer meets them most often.
// The store accepts exactly these (binhyen_domain); the labels are in i18n.
import type { Category } from './bindings/Category';
import type { Channel } from './bindings/Channel';
import type { Platform } from './bindings/Platform';
import type { Status } from './bindings/Status';
import type { Urgency } from './bindings/Urgency';

export const CATEGORIES: Category[] = [
  'security_order',
  'crime_denunciation',
  'crime_report',
  'admin_question',
  'ordnance',
  'misinformation',
  'other',
];
export const CHANNELS: Channel[] = ['zalo', 'facebook', 'phone', 'in_person', 'vneid', 'hotline', 'letter', 'other'];
export const URGENCIES: Urgency[] = ['normal', 'urgent', 'critical'];
export const STATUSES: Status[] = ['received', 'verifying', 'transferred', 'resolved', 'closed', 'rejected'];
export const PLATFORMS: Platform[] = ['zalo', 'facebook', 'tiktok', 'youtube', 'other'];
