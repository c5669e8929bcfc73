import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TelegramServer as Emulator } from 'telegram-test-api/lib/telegramServer.js';
import emulatorModule from 'telegram-test-api';

// A CommonJS module whose default export ESM sees one level down.
const TelegramServer = ((emulatorModule as unknown as { default?: unknown }).default ?? emulatorModule) as unknown as typeof Emulator;

/**
 * The `telegram-test-api` emulator on loopback, behind a small recording proxy: the proxy lets a
 * test read what the bot asked Telegram to do (answerCallbackQuery text, setWebhook's secret),
 * make Telegram unreachable, or answer 429 with retry_after.
 */
export const BOT_TOKEN = '123456789:writ-test-bot-token';

export interface ApiCall {
  method: string;
  body: Record<string, any>;
  at: number;
}

export interface FakeTelegram {
  apiRoot: string;
  emulator: Emulator;
  calls: ApiCall[];
  /** While true the proxy drops every connection, as an unreachable Telegram would. */
  down: boolean;
  /** The next call of `method` is answered 429 with this retry_after (seconds). */
  throttleNext(method: string, retryAfter: number): void;
  user(id: number, options?: { chatId?: number; type?: 'private' | 'group'; name?: string }): ReturnType<Emulator['getClient']>;
  /** Bot messages in a chat, as they look now (edits applied). */
  messages(chatId: number): Array<{ message_id: number; text: string; reply_markup?: { inline_keyboard: Array<Array<{ text: string; callback_data: string }>> } }>;
  answers(): string[];
  close(): Promise<void>;
}

export async function startFakeTelegram(): Promise<FakeTelegram> {
  const emulator = new TelegramServer({ host: '127.0.0.1', storeTimeout: 600 });
  // It reads a port of 0 as "the default", so it is told 0 after it has read its options: it then
  // listens on a port of the system's choosing, and its clients are told which.
  const internals = emulator as unknown as { server: { address(): AddressInfo }; config: { port: number; apiURL: string } };
  internals.config.port = 0;
  await emulator.start();
  const port = internals.server.address().port;
  internals.config.apiURL = `http://127.0.0.1:${port}`;
  const calls: ApiCall[] = [];
  const throttles = new Map<string, number>();
  const fake: Partial<FakeTelegram> = { down: false };

  const proxy = http.createServer(async (req, res) => {
    if (fake.down) return void req.socket.destroy();
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const method = /\/bot[^/]+\/(\w+)/.exec(req.url ?? '')?.[1] ?? '';
    let body: Record<string, any> = {};
    try {
      body = raw ? JSON.parse(raw) : {};
    } catch {
      // not JSON
    }
    calls.push({ method, body, at: Date.now() });
    const retryAfter = throttles.get(method);
    if (retryAfter !== undefined) {
      throttles.delete(method);
      res.writeHead(429, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify({ ok: false, error_code: 429, description: `Too Many Requests: retry after ${retryAfter}`, parameters: { retry_after: retryAfter } }));
    }
    const upstream = await fetch(`http://127.0.0.1:${port}${req.url}`, { method: req.method, headers: { 'content-type': req.headers['content-type'] ?? 'application/json' }, ...(raw ? { body: raw } : {}) });
    res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/json' });
    res.end(Buffer.from(await upstream.arrayBuffer()));
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  const proxyPort = (proxy.address() as AddressInfo).port;

  return Object.assign(fake, {
    apiRoot: `http://127.0.0.1:${proxyPort}`,
    emulator,
    calls,
    throttleNext: (method: string, retryAfter: number) => void throttles.set(method, retryAfter),
    user: (id: number, options: { chatId?: number; type?: 'private' | 'group'; name?: string } = {}) =>
      emulator.getClient(BOT_TOKEN, { userId: id, chatId: options.chatId ?? id, type: options.type ?? 'private', firstName: options.name ?? `user${id}`, userName: `user${id}` }),
    messages: (chatId: number) =>
      (emulator as unknown as { storage: { botMessages: Array<{ messageId: number; message: any }> } }).storage.botMessages
        .filter((m) => String(m.message.chat_id) === String(chatId))
        .map((m) => ({
          message_id: m.messageId,
          text: m.message.text,
          reply_markup: typeof m.message.reply_markup === 'string' ? JSON.parse(m.message.reply_markup) : m.message.reply_markup,
        })),
    answers: () => calls.filter((c) => c.method === 'answerCallbackQuery').map((c) => String(c.body.text ?? '')),
    close: async () => {
      proxy.closeAllConnections();
      await new Promise((r) => proxy.close(r));
      await emulator.stop();
    },
  }) as FakeTelegram;
}
