import test from 'ava';
import { Outbox } from '../bot/outbox.ts';
import { sleep } from './helpers/writ.ts';

/** The bot's send queue keeps Telegram's limits and each chat's order. */
test("one call at a time per chat, in order, spaced by the chat's interval", async (t) => {
  const outbox = new Outbox(() => {}, { perSecond: 30, perChatMs: 200 });
  const log: Array<[string, number]> = [];
  const started = Date.now();
  for (const name of ['a', 'b', 'c']) {
    outbox.push(1, async () => {
      log.push([name, Date.now() - started]);
      await sleep(name === 'a' ? 400 : 0); // a slow send: nothing of this chat may overtake it
    });
  }
  await sleep(1200);
  t.deepEqual(log.map(([n]) => n), ['a', 'b', 'c']);
  t.true(log[1]![1] >= 390, 'b waited for a to finish'); // timers may fire a few ms early
  t.true(log[2]![1] - log[1]![1] >= 190, 'c waited the per-chat interval');
  outbox.stop();
});

test('at most perSecond calls start in any second across chats', async (t) => {
  const outbox = new Outbox(() => {}, { perSecond: 5, perChatMs: 1 });
  const starts: number[] = [];
  const t0 = Date.now();
  for (let chat = 0; chat < 12; chat++) outbox.push(chat, async () => void starts.push(Date.now() - t0));
  await sleep(3500);
  t.is(starts.length, 12);
  // No one-second window ever holds more than five starts (a few ms of timer slack allowed).
  for (const s of starts) t.true(starts.filter((x) => x >= s && x < s + 990).length <= 5, `starts: ${starts.join(', ')}`);
  t.is(starts.filter((ms) => ms < 1000).length, 5, 'the first five go at once');
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
  await sleep(1500);
  t.is(refused, 1);
  t.is(flaky, 2);
  t.is(outbox.stats.failed, 1);
  t.regex(errors[0]!, /refused/);
  outbox.stop();
});

test('a job already waiting under the same key is not queued twice', async (t) => {
  const outbox = new Outbox(() => {}, { perSecond: 30, perChatMs: 300 });
  let runs = 0;
  outbox.push(1, async () => void runs++);
  for (let i = 0; i < 5; i++) outbox.push(1, async () => void runs++, 'card-x');
  await sleep(1000);
  t.is(runs, 2);
  outbox.stop();
});
