import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { WritError } from '../../errors.ts';
import { defineRoute, type Route } from '../route.ts';

/**
 * The web dashboard, served by Writ itself: one HTML shell for every page (the script in it
 * renders the page the path names) and the assets `npm run build` put in dist/dashboard. Nothing
 * is fetched from anywhere else: the Content-Security-Policy allows this origin only, no inline
 * script or style, no frames.
 */
export const PAGES = ['/', '/login', '/approvals', '/approvals/:id', '/permissions', '/permissions/:id', '/log', '/policies', '/principals', '/oversight', '/status', '/passkeys'] as const;

/** The package root, found from this file whether it runs from src/ (tsx) or dist/src/. */
const ROOT = (() => {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(dir, 'package.json'))) dir = path.dirname(dir);
  return dir;
})();
export const DASHBOARD_DIR = path.join(ROOT, 'dist', 'dashboard');

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "worker-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.map': 'application/json; charset=utf-8',
};

/** Files read once and kept: the build is fixed while a server runs. */
const cache = new Map<string, string>();
function readBuilt(name: string): string {
  const hit = cache.get(name);
  if (hit) return hit;
  let text: string;
  try {
    text = fs.readFileSync(path.join(DASHBOARD_DIR, name), 'utf8');
  } catch {
    throw new WritError('not_found', name === 'index.html' ? 'the dashboard is not built: run npm run build' : `no asset ${name}`, { field: 'file' });
  }
  cache.set(name, text);
  return text;
}

const page = (pagePath: string): Route =>
  defineRoute({
    method: 'GET',
    path: pagePath,
    summary: `The dashboard (${pagePath === '/' ? 'home' : pagePath.slice(1)}): the HTML shell, which signs in with the session cookie and renders the page`,
    auth: 'anyone',
    crossOrigin: false,
    // The page script reads its own query (filters, a cursor, where to go after sign-in), so a
    // reloaded or shared link keeps it; the shell is the same whatever it says.
    query: z.record(z.string(), z.union([z.string(), z.array(z.string())])),
    responses: { 200: { description: 'The dashboard page', type: 'text/html' } },
    errors: ['not_found'],
    handle() {
      return { status: 200, type: 'text/html; charset=utf-8', headers: { ...SECURITY_HEADERS, 'cache-control': 'no-cache' }, body: readBuilt('index.html') };
    },
  });

export const pages: Route[] = PAGES.map(page);

export const asset = defineRoute({
  method: 'GET',
  path: '/assets/:file',
  summary: "The dashboard's scripts, styles and images, built by npm run build",
  auth: 'anyone',
  crossOrigin: false,
  query: z.strictObject({}),
  responses: {
    200: { description: 'The asset', type: 'text/javascript', also: { 'text/css': 'text', 'image/svg+xml': 'text' } },
  },
  errors: ['not_found'],
  handle({ params }) {
    const name = params.file!;
    const type = TYPES[path.extname(name)];
    if (!/^[\w.-]+$/.test(name) || !type || name.endsWith('.map')) throw new WritError('not_found', `no asset ${name}`, { field: 'file' });
    return { status: 200, type, headers: { ...SECURITY_HEADERS, 'cache-control': 'no-cache' }, body: readBuilt(name) };
  },
});
