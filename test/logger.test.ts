import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { createLogger, reporter } from '../src/ops/logger.ts';
import { tempDir } from './helpers/writ.ts';

/**
 * The logger writes JSON for collectors and text for a person at a terminal; reports from every
 * part of Writ land at the level their words call for.
 */
async function written(pretty: boolean, log: (logger: ReturnType<typeof createLogger>) => void): Promise<string> {
  const file = path.join(await tempDir(), 'out.log');
  const fd = fs.openSync(file, 'w');
  try {
    log(createLogger('info', { fd, pretty }));
  } finally {
    fs.closeSync(fd);
  }
  // Written synchronously: everything is in the file the moment the call returns.
  return fs.readFileSync(file, 'utf8');
}

test('off a terminal every line is a JSON object with a level name and an ISO time', async (t) => {
  const out = await written(false, (logger) => {
    logger.info({ route: '/healthz', status: 200 }, 'request');
    logger.debug('below the level');
    logger.error('something broke');
  });
  const lines = out.trim().split('\n').map((line) => JSON.parse(line));
  t.is(lines.length, 2);
  t.like(lines[0], { level: 'info', msg: 'request', route: '/healthz', status: 200, pid: process.pid });
  t.like(lines[1], { level: 'error', msg: 'something broke' });
  t.is(new Date(lines[0].time).toISOString(), lines[0].time);
});

test('for a terminal, lines are text a person reads, one per event', async (t) => {
  const out = await written(true, (logger) => {
    logger.info({ route: '/healthz', status: 200 }, 'request');
    logger.warn('careful');
  });
  const plain = out.replace(/\x1b\[[0-9;]*m/g, '');
  const lines = plain.trim().split('\n');
  t.is(lines.length, 2);
  t.regex(lines[0]!, /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: request \{"route":"\/healthz","status":200\}$/);
  t.regex(lines[1]!, /WARN: careful$/);
  t.throws(() => JSON.parse(lines[0]!));
});

test('fields that carry credentials are censored if anything ever logs them', async (t) => {
  const out = await written(false, (logger) => logger.info({ authorization: 'Bearer writ_admin_x.secret', nested: { token: 'wtk_secret' } }, 'oops'));
  t.false(out.includes('secret'));
  t.like(JSON.parse(out), { authorization: '[redacted]', nested: { token: '[redacted]' } });
});

test('a report is one log line at its level', async (t) => {
  const out = await written(false, (logger) => reporter(logger)('checkpoint failed: storage is not accepting writes', 'error'));
  t.like(JSON.parse(out), { level: 'error', msg: 'checkpoint failed: storage is not accepting writes' });
});
