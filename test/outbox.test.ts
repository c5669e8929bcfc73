import test from 'ava';
import { setTimeout as slowSend } from 'node:timers/promises';
import { Outbox } from '../bot/outbox.ts';
import { eventually } from './helpers/writ.ts';

/** The bot's send queue keeps Telegram's limits and each chat's order. */
test("one call at a time per chat, in order, spaced by the chat's interval", async (t) => {
  const outbox = new Outbox(() => {}, { perSecond: 30, perChatMs: 200 });
  const log: Array<{ name: string; start: number; end?: number }> = [];
  for (const name of ['a', 'b', 'c']) {
    outbox.push(1, async () => {
      const entry: { name: string; start: number; end?: number } = { name, start: Date.now() };
      log.push(entry);
      // a is a slow send (longer than the chat's interval): nothing of this chat may overtake it.
      if (name === 'a') await slowSend(400);
      entry.end = Date.now();
    });
  }
  await eventually(() => log.length === 3 && log.every((e) => e.end !== undefined), 'all three sends');
  t.deepEqual(log.map((e) => e.name), ['a', 'b', 'c']);
  t.true(log[1]!.start >= log[0]!.end!, 'b waited for a to finish');
  t.true(log[2]!.start - log[1]!.start >= 190, 'c waited the per-chat interval'); // timers may fire a few ms early
  outbox.stop();
});

test('at most perSecond calls start in any second across chats', async (t) => {
  const outbox = new Outbox(() => {}, { perSecond: 5, perChatMs: 1 });
  const starts: number[] = [];
  const t0 = Date.now();
  for (let chat = 0; chat < 12; chat++) outbox.push(chat, async () => void starts.push(Date.now() - t0));
  await eventually(() => starts.length === 12, 'all twelve sends');
  // No one-second window ever holds more than five starts (a few ms of timer slack allowed).
  for (const s of starts) t.true(starts.filter((x) => x >= s && x < s + 990).length <= 5, `starts: ${starts.join(', ')}`);
  t.true(starts[5]! - starts[0]! >= 990, 'the sixth waits for the first second to pass');
  outbox.stop();
});

test('a 4xx other than 429 is dropped, a network failure is retried', async (t) => {
  const errors: string[] = [];
  const outbox = new Outbox((m) => errors.push(m), { perSecond: 30, perChatMs: 1 });
  let refused = 0;
  let flaky = 0;
  outbox.push(1, async () => {
    refused++;
    throw Object.assign(new Error('Bad Request: message to edit not found'), { response: { error_code: 400 } });
  });
  outbox.push(2, async () => {
    if (flaky++ === 0) throw new Error('connect ECONNREFUSED');
  });
  await eventually(() => flaky === 2 && outbox.stats.failed === 1, 'the retry and the refusal');
  t.is(refused, 1, 'a refused call is not sent again');
  t.regex(errors[0]!, /refused/);
  outbox.stop();
});

test('a job already waiting under the same key is not queued twice', async (t) => {
  const outbox = new Outbox(() => {}, { perSecond: 30, perChatMs: 300 });
  let runs = 0;
  outbox.push(1, async () => void runs++);
  for (let i = 0; i < 5; i++) outbox.push(1, async () => void runs++, 'card-x');
  await eventually(() => runs >= 2 && outbox.stats.queued === 0, 'the queue to drain');
  t.is(runs, 2);
  outbox.stop();
});
