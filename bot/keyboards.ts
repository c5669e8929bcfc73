import type { Approval } from '../src/domain/approvals.ts';
import { pack } from './callback-data.ts';

type Button = { text: string; callback_data: string };

/** Approve/Deny while votes are open, Cancel during a critical delay, nothing once decided. */
export function approvalKeyboard(approval: Approval, handle: string): { inline_keyboard: Button[][] } {
  if (approval.status === 'pending') {
    return { inline_keyboard: [[{ text: '✅ Approve', callback_data: pack('approve', handle) }, { text: '❌ Deny', callback_data: pack('deny', handle) }]] };
  }
  if (approval.status === 'delay') return { inline_keyboard: [[{ text: '🛑 Cancel', callback_data: pack('cancel', handle) }]] };
  // An explicit empty keyboard: an edit without one would leave the old buttons in place.
  return { inline_keyboard: [] };
}
