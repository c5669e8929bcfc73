// RFC 8785 JSON Canonicalization Scheme (JCS): one byte string per JSON value, so hashes and signatures over it are reproducible.
import { canonicalize } from './jcs.ts';

export { canonicalize };

/** The UTF-8 encoding of `canonicalize(value)`, which is what gets hashed or signed. */
export function canonicalBytes(value: unknown): Buffer {
  return Buffer.from(canonicalize(value), 'utf8');
}
