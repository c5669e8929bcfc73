import test from 'ava';
import path from 'node:path';
import { ConfigError, loadConfig } from '../src/config.ts';

/** Configuration is parsed once; every bad or unknown value is refused at start, by the name the user typed. */
test('defaults are the documented ones', (t) => {
  const c = loadConfig({}, {});
  t.like(c, { port: 8080, host: '127.0.0.1', tokenTtlDefault: 300, approvalTimeout: 900, criticalDelay: 300, checkpointInterval: 900 });
  t.is(c.data, path.resolve('./data'));
  t.is(c.policies, path.resolve('./policies'));
});

test('flags win over the environment, which wins over defaults', (t) => {
  const c = loadConfig({ port: '9001' }, { WRIT_PORT: '9000', WRIT_HOST: '0.0.0.0', WRIT_CRITICAL_DELAY_SECONDS: '5' });
  t.is(c.port, 9001);
  t.is(c.host, '0.0.0.0');
  t.is(c.criticalDelay, 5);
});

test('a bad value is refused naming the variable', (t) => {
  const e = t.throws(() => loadConfig({}, { WRIT_PORT: 'eighty' }), { instanceOf: ConfigError });
  t.regex(e!.message, /WRIT_PORT/);
  const f = t.throws(() => loadConfig({ port: '70000' }, {}), { instanceOf: ConfigError });
  t.regex(f!.message, /--port/);
});

test('an unknown WRIT_ variable is refused as a likely typo', (t) => {
  const e = t.throws(() => loadConfig({}, { WRIT_PROT: '1' }), { instanceOf: ConfigError });
  t.regex(e!.message, /WRIT_PROT: unknown setting/);
});

test('a short admin token and a default ttl above the maximum are refused', (t) => {
  t.regex(t.throws(() => loadConfig({}, { WRIT_ADMIN_TOKEN: 'short' }))!.message, /WRIT_ADMIN_TOKEN: .*16/);
  t.regex(t.throws(() => loadConfig({}, { WRIT_TOKEN_TTL_DEFAULT: '600', WRIT_TOKEN_TTL_MAX: '60' }))!.message, /tokenTtlMax/);
});

test('a number is read only from decimal digits: a blank, hexadecimal, exponent or fractional value is refused, not read as another number', (t) => {
  for (const value of ['', ' ', '0x1F90', '1e3', '8080.0', '+80', '-1']) {
    const e = t.throws(() => loadConfig({ port: value }, {}), { instanceOf: ConfigError }, `--port ${JSON.stringify(value)}`);
    t.regex(e!.message, /--port: must be a whole number, in decimal digits|--port: .*>=/);
  }
  // An environment variable set to blanks is a value (only an empty one is unset): no critical delay by accident.
  t.regex(t.throws(() => loadConfig({}, { WRIT_CRITICAL_DELAY_SECONDS: ' ' }))!.message, /WRIT_CRITICAL_DELAY_SECONDS: must be a whole number/);
  t.is(loadConfig({}, { WRIT_PORT: '0' }).port, 0);
});

test('a configuration file value is taken as written, never as YAML reads it: a long number stays exact, 1.50 keeps its zero, 0x1F90 is refused', (t) => {
  const file = (text: string) => ({ path: 'writ.yaml', text });
  const c = loadConfig({}, {}, file('admin_token: 1234567890123456789\nlog_origin: 1.50\nport: 8081\n'));
  t.is(c.adminToken, '1234567890123456789');
  t.is(c.logOrigin, '1.50');
  t.is(c.port, 8081);
  const hex = t.throws(() => loadConfig({}, {}, file('# port\nport: 0x1F90\n')), { instanceOf: ConfigError });
  t.regex(hex!.message, /writ\.yaml:2: port: must be a whole number, in decimal digits/);
  const empty = t.throws(() => loadConfig({}, {}, file('critical_delay_seconds:\n')), { instanceOf: ConfigError });
  t.regex(empty!.message, /writ\.yaml:1: critical_delay_seconds has no value/);
});
