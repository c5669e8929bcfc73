import test from 'ava';
import crypto from 'node:crypto';
import { DigestBloom } from '../src/store/bloom.ts';

const digest = (s: string) => crypto.createHash('sha256').update(s).digest();

test('a digest added is always reported as possibly present', (t) => {
  const bloom = new DigestBloom(10_000);
  const added = Array.from({ length: 10_000 }, (_, i) => digest(`id-${i}`));
  for (const d of added) bloom.add(d);
  t.true(added.every((d) => bloom.mightContain(d)));
});

test('at the expected size, about 1 % of absent digests read as possibly present', (t) => {
  const bloom = new DigestBloom(10_000);
  for (let i = 0; i < 10_000; i++) bloom.add(digest(`id-${i}`));
  let falsePositives = 0;
  for (let i = 0; i < 20_000; i++) if (bloom.mightContain(digest(`other-${i}`))) falsePositives++;
  t.true(falsePositives / 20_000 < 0.03, `${falsePositives} false positives`);
});
