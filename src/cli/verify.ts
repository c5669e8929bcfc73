import fs from 'node:fs/promises';
import { ReceiptVerificationError, verifyReceipt, type Jwks } from '../../packages/writ-verify/src/verify.ts';
import { UsageError, parseFlags } from './args.ts';

/** `writ verify <receipt> --jwks <url|file>`: offline check of a receipt; prints its claims. */
export async function verify(args: string[]): Promise<number> {
  const { values, positionals } = parseFlags(args, {
    jwks: { type: 'string' },
    issuer: { type: 'string' },
    audience: { type: 'string' },
    'check-expiry': { type: 'boolean' },
    json: { type: 'boolean' },
  }, { max: 1 });
  const [input] = positionals;
  if (!input) throw new UsageError('verify needs a receipt (the JWS, a file holding it, or - for stdin)');
  if (!values.jwks) throw new UsageError('verify needs --jwks <url or file>');
  const jws = (await readInput(input)).trim();
  const jwksOption = /^https?:\/\//.test(values.jwks)
    ? { jwksUrl: values.jwks }
    : { jwks: JSON.parse(await fs.readFile(values.jwks, 'utf8')) as Jwks };
  try {
    const result = await verifyReceipt(jws, {
      ...jwksOption,
      ...(values.issuer ? { issuer: values.issuer } : {}),
      ...(values.audience ? { audience: values.audience } : {}),
      checkExpiry: values['check-expiry'] ?? false,
    });
    const c = result.claims;
    if (values.json) {
      process.stdout.write(`${JSON.stringify({ valid: true, kid: result.kid, expired: result.expired, claims: c }, null, 2)}\n`);
      return 0;
    }
    process.stdout.write(
      `receipt OK: signed by key ${result.kid}${result.expired ? ' (expired: still valid evidence, no longer to be honoured)' : ''}\n` +
        `  ${c.iss_role} ${c.iss}\n  ${c.decision} ${String(c.action ?? '')} on ${String(c.resource ?? '')} for ${c.sub}` +
        `${c.tier ? ` (tier ${String(c.tier)})` : ''}\n` +
        (c.log ? `  log ${c.log.origin} index ${c.log.index}\n` : '') +
        `${JSON.stringify(c, null, 2)}\n`,
    );
    return 0;
  } catch (err) {
    if (err instanceof ReceiptVerificationError) {
      process.stdout.write(values.json ? `${JSON.stringify({ valid: false, code: err.code, message: err.message }, null, 2)}\n` : `receipt INVALID (${err.code}): ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

async function readInput(input: string): Promise<string> {
  if (input === '-') {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  }
  if (/^[\w-]+\.[\w-]+\.[\w-]+$/.test(input.trim())) return input;
  return fs.readFile(input, 'utf8');
}
