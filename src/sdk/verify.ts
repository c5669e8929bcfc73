// The verifier lives in packages/writ-verify; this path stays because the CLI imports it from here.
export * from '../../packages/writ-verify/src/verify.ts';
