import type { PageDef } from '../page.ts';
import { approval, approvals } from './approvals.ts';
import { log } from './log.ts';
import { oversight } from './oversight.ts';
import { passkeys } from './passkeys.ts';
import { permission, permissions } from './permissions.ts';
import { policies } from './policies.ts';
import { principals } from './principals.ts';
import { status } from './status.ts';

/** Every page, in the order of the navigation bar. The server serves the same list (src/http/routes/dashboard.ts PAGES). */
export const PAGES: PageDef[] = [approvals, approval, permissions, permission, log, policies, principals, oversight, status, passkeys];
