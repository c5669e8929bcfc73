/**
 * The environment for a program or an npm run inside a test, as on a user's machine: no npm_*
 * variables, so an `npm test` around it cannot point the inner npm at this repository
 * (npm_config_local_prefix), and no NODE_OPTIONS, so no TypeScript loader comes along.
 */
export const cleanEnv: Record<string, string | undefined> = Object.fromEntries(
  Object.entries(process.env).filter(([name]) => !name.startsWith('npm_') && name !== 'NODE_OPTIONS'),
);

/**
 * npm with scripts off (a package's prepack build would rewrite the `dist/` other test files
 * import; `npm test` has just built it) and offline: everything comes from the cache the
 * repository's own `npm ci` filled, so nothing needs the network.
 */
export const npmEnv: Record<string, string | undefined> = {
  ...cleanEnv,
  npm_config_ignore_scripts: 'true',
  npm_config_offline: 'true',
  npm_config_audit: 'false',
  npm_config_fund: 'false',
};
