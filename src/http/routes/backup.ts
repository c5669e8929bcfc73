import { backupStream } from '../../backup.ts';
import { defineRoute } from '../route.ts';

export default defineRoute({
  method: 'GET',
  path: '/api/v1/backup',
  summary: 'A consistent snapshot of this live instance (database and key files), for `writ restore`; it holds the keys: protect it like the data directory',
  auth: ['admin'],
  responses: {
    200: { description: 'gzipped JSON lines: header, key files, every database entry from one snapshot, a checksummed trailer', type: 'application/gzip' },
  },
  handle({ writ }) {
    const name = `writ-backup-${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl.gz`;
    return {
      status: 200,
      type: 'application/gzip',
      headers: { 'content-disposition': `attachment; filename="${name}"`, 'cache-control': 'no-store' },
      body: backupStream(writ.store, writ.vault, writ.log.origin),
    };
  },
});
