import test from 'ava';
import {
  EMPTY_ROOT,
  Frontier,
  consistencyProof,
  frontierNodeIds,
  inclusionProof,
  leafHash,
  mthOfLeaves,
  nodeHash,
  rootFromInclusion,
  subtreeRoot,
  verifyConsistency,
  verifyInclusion,
  type NodeReader,
} from '../src/log/merkle.ts';

const hex = (s: string): Buffer => Buffer.from(s, 'hex');

// RFC 6962 test tree shared by certificate-transparency, trillian and transparency-dev/merkle (testonly/constants.go).
const LEAF_INPUTS = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map(hex);

const NODE_HASHES = [
  [
    '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
    '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
    '0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7',
    '07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7',
    'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    '4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658',
    'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f',
    '46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1',
  ],
  [
    'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
    '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
    '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
    'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
  ],
  [
    'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
  ],
  ['5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328'],
].map((level) => level.map(hex));

// ROOTS[n] is the root of the tree over the first n leaf inputs.
const ROOTS = [
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
].map(hex);

// From transparency-dev/merkle proof/verify_test.go (there the leaf number is 1-based; here index is 0-based).
const KNOWN_INCLUSION_PROOFS: Array<{ index: number; size: number; proof: Buffer[] }> = [
  { index: 0, size: 1, proof: [] },
  {
    index: 0,
    size: 8,
    proof: [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ].map(hex),
  },
  {
    index: 5,
    size: 8,
    proof: [
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ].map(hex),
  },
  { index: 2, size: 3, proof: [hex('fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125')] },
  {
    index: 1,
    size: 5,
    proof: [
      '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ].map(hex),
  },
];

const KNOWN_CONSISTENCY_PROOFS: Array<{ oldSize: number; newSize: number; proof: Buffer[] }> = [
  { oldSize: 1, newSize: 1, proof: [] },
  {
    oldSize: 1,
    newSize: 8,
    proof: [
      '96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7',
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4',
    ].map(hex),
  },
  {
    oldSize: 6,
    newSize: 8,
    proof: [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ].map(hex),
  },
  {
    oldSize: 2,
    newSize: 5,
    proof: [
      '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e',
      'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b',
    ].map(hex),
  },
  {
    oldSize: 6,
    newSize: 7,
    proof: [
      '0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a',
      'b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f',
      'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    ].map(hex),
  },
];

const SOME_HASH = hex('abacaba000000000000000000000000000000000000000000060061e00123456');

/** An in-memory node store fed by Frontier.append, with a read counter for cost assertions. */
function memoryTree(leafHashes: readonly Buffer[]): { read: NodeReader; reads: () => number; resetReads: () => void; frontier: Frontier } {
  const nodes = new Map<string, Buffer>();
  const frontier = new Frontier();
  for (const leaf of leafHashes) {
    for (const node of frontier.append(leaf)) nodes.set(`${node.level}/${node.index}`, node.hash);
  }
  let count = 0;
  const read: NodeReader = async (level, index) => {
    count++;
    const hash = nodes.get(`${level}/${index}`);
    if (hash === undefined) throw new Error(`node ${level}/${index} was never stored`);
    return hash;
  };
  return { read, reads: () => count, resetReads: () => (count = 0), frontier };
}

function syntheticLeaves(n: number): Buffer[] {
  return Array.from({ length: n }, (_, i) => leafHash(Buffer.from(`entry-${i}`)));
}

function flipBit(h: Buffer): Buffer {
  const copy = Buffer.from(h);
  copy[0]! ^= 0x08;
  return copy;
}

function bitLength(n: number): number {
  return n === 0 ? 0 : Math.floor(Math.log2(n)) + 1;
}

const TEST_LEAF_HASHES = LEAF_INPUTS.map(leafHash);

test('hashes leaves and nodes with RFC 6962 domain separation', (t) => {
  TEST_LEAF_HASHES.forEach((h, i) => t.deepEqual(h, NODE_HASHES[0]![i], `leaf ${i}`));
  t.deepEqual(nodeHash(NODE_HASHES[0]![0]!, NODE_HASHES[0]![1]!), NODE_HASHES[1]![0]);
  t.deepEqual(EMPTY_ROOT, ROOTS[0]);
});

test('reference MTH matches the published roots for sizes 0 through 8', (t) => {
  for (let n = 0; n <= 8; n++) t.deepEqual(mthOfLeaves(TEST_LEAF_HASHES.slice(0, n)), ROOTS[n], `size ${n}`);
});

test('Frontier root matches the published roots after each append', (t) => {
  const frontier = new Frontier();
  t.deepEqual(frontier.root(), EMPTY_ROOT);
  t.is(frontier.size, 0);
  TEST_LEAF_HASHES.forEach((leaf, i) => {
    frontier.append(leaf);
    t.is(frontier.size, i + 1);
    t.deepEqual(frontier.root(), ROOTS[i + 1], `size ${i + 1}`);
  });
});

test('Frontier.append emits exactly the published complete subtree nodes, each once, leaf first', (t) => {
  const frontier = new Frontier();
  const emitted = TEST_LEAF_HASHES.map((leaf) => frontier.append(leaf));
  t.deepEqual(
    emitted.map((nodes) => nodes.map((n) => `${n.level}/${n.index}`)),
    [['0/0'], ['0/1', '1/0'], ['0/2'], ['0/3', '1/1', '2/0'], ['0/4'], ['0/5', '1/2'], ['0/6'], ['0/7', '1/3', '2/1', '3/0']],
  );
  for (const node of emitted.flat()) t.deepEqual(node.hash, NODE_HASHES[node.level]![node.index], `${node.level}/${node.index}`);
});

test('Frontier.appendSubtree takes an aligned subtree by its root: the same tree, and the nodes above it, as appending its leaves', (t) => {
  const leaves = syntheticLeaves(48);
  // Sizes 0, 16 and 32 are multiples of 16: each 16-leaf subtree goes in whole.
  const byLeaf = new Frontier();
  const bySubtree = new Frontier();
  for (let start = 0; start < 48; start += 16) {
    const below = leaves.slice(start, start + 16).flatMap((leaf) => byLeaf.append(leaf));
    const above = bySubtree.appendSubtree(4, mthOfLeaves(leaves.slice(start, start + 16)));
    t.deepEqual(above, below.filter((node) => node.level >= 4));
    t.is(bySubtree.size, byLeaf.size);
    t.deepEqual(bySubtree.root(), byLeaf.root());
  }
  t.deepEqual(bySubtree.append(SOME_HASH), byLeaf.append(SOME_HASH));
  t.deepEqual(bySubtree.root(), byLeaf.root());
  // Size 49 is no multiple of 2: a subtree of two cannot start there.
  t.throws(() => bySubtree.appendSubtree(1, SOME_HASH), { instanceOf: RangeError });
});

test('frontierNodeIds lists the binary decomposition of the size, largest subtree first', (t) => {
  t.deepEqual(frontierNodeIds(0), []);
  t.deepEqual(frontierNodeIds(1), [{ level: 0, index: 0 }]);
  t.deepEqual(frontierNodeIds(7), [
    { level: 2, index: 0 },
    { level: 1, index: 2 },
    { level: 0, index: 6 },
  ]);
  t.deepEqual(frontierNodeIds(2 ** 40 + 5), [
    { level: 40, index: 0 },
    { level: 2, index: 2 ** 38 },
    { level: 0, index: 2 ** 40 + 4 },
  ]);
});

test('Frontier restored from stored nodes has the same root and continues identically', async (t) => {
  const leaves = syntheticLeaves(40);
  const { read } = memoryTree(leaves);
  for (let size = 0; size < leaves.length; size++) {
    const original = new Frontier();
    for (const leaf of leaves.slice(0, size)) original.append(leaf);
    const restored = await Frontier.fromNodes(size, read);
    const restoredSync = Frontier.restore(size, original.nodes().map((n) => n.hash));
    t.is(restored.size, size);
    t.deepEqual(restored.root(), original.root());
    t.deepEqual(restoredSync.root(), original.root());
    t.deepEqual(restored.append(leaves[size]!), original.append(leaves[size]!));
    t.deepEqual(restored.root(), mthOfLeaves(leaves.slice(0, size + 1)));
  }
});

test('Frontier.restore rejects the wrong number of nodes', (t) => {
  t.throws(() => Frontier.restore(3, [SOME_HASH]), { instanceOf: RangeError });
  t.throws(() => Frontier.restore(0, [SOME_HASH]), { instanceOf: RangeError });
});

test('Frontier.clone is independent of the original', (t) => {
  const original = new Frontier();
  original.append(TEST_LEAF_HASHES[0]!);
  const copy = original.clone();
  copy.append(TEST_LEAF_HASHES[1]!);
  t.is(original.size, 1);
  t.deepEqual(original.root(), ROOTS[1]);
  t.is(copy.size, 2);
  t.deepEqual(copy.root(), ROOTS[2]);
});

test('subtreeRoot over stored nodes equals the root for every prefix of the test tree', async (t) => {
  const { read } = memoryTree(TEST_LEAF_HASHES);
  for (let n = 0; n <= 8; n++) t.deepEqual(await subtreeRoot(read, 0, n), ROOTS[n], `size ${n}`);
});

test('subtreeRoot reads one node per set bit of the range size', async (t) => {
  const { read, reads, resetReads } = memoryTree(syntheticLeaves(200));
  for (const n of [1, 64, 100, 127, 128, 200]) {
    resetReads();
    await subtreeRoot(read, 0, n);
    t.is(reads(), frontierNodeIds(n).length, `size ${n}`);
  }
});

test('subtreeRoot rejects unaligned ranges instead of reading a node that does not exist', async (t) => {
  const { read } = memoryTree(TEST_LEAF_HASHES);
  await t.throwsAsync(subtreeRoot(read, 1, 3), { instanceOf: RangeError });
  await t.throwsAsync(subtreeRoot(read, 3, 2), { instanceOf: RangeError });
});

test('inclusionProof reproduces the published inclusion proofs, and they verify', async (t) => {
  const { read } = memoryTree(TEST_LEAF_HASHES);
  for (const { index, size, proof } of KNOWN_INCLUSION_PROOFS) {
    t.deepEqual(await inclusionProof(read, index, size), proof, `index ${index} size ${size}`);
    t.true(verifyInclusion(index, size, TEST_LEAF_HASHES[index]!, proof, ROOTS[size]!));
    t.deepEqual(rootFromInclusion(index, size, TEST_LEAF_HASHES[index]!, proof), ROOTS[size]);
  }
});

test('verifyInclusion rejects corrupted published proofs', (t) => {
  for (const { index, size, proof } of KNOWN_INCLUSION_PROOFS) {
    const leaf = TEST_LEAF_HASHES[index]!;
    const root = ROOTS[size]!;
    const label = `index ${index} size ${size}`;
    t.false(verifyInclusion(index - 1, size, leaf, proof, root), `${label}: index - 1`);
    t.false(verifyInclusion(index + 1, size, leaf, proof, root), `${label}: index + 1`);
    t.false(verifyInclusion(index ^ 2, size, leaf, proof, root), `${label}: index ^ 2`);
    t.false(verifyInclusion(index, size * 2, leaf, proof, root), `${label}: size * 2`);
    t.false(verifyInclusion(index, Math.floor(size / 2), leaf, proof, root), `${label}: size / 2`);
    t.false(verifyInclusion(index, size, SOME_HASH, proof, root), `${label}: wrong leaf`);
    t.false(verifyInclusion(index, size, leaf, proof, EMPTY_ROOT), `${label}: empty root`);
    t.false(verifyInclusion(index, size, leaf, proof, SOME_HASH), `${label}: random root`);
    t.false(verifyInclusion(index, size, leaf, [...proof, root], root), `${label}: trailing root`);
    t.false(verifyInclusion(index, size, leaf, [root, ...proof], root), `${label}: preceding root`);
    t.false(verifyInclusion(index, size, leaf, [...proof, Buffer.alloc(0)], root), `${label}: trailing garbage`);
    proof.forEach((_, i) => {
      const tampered = proof.map((h, j) => (j === i ? flipBit(h) : h));
      t.false(verifyInclusion(index, size, leaf, tampered, root), `${label}: flipped proof[${i}]`);
    });
    if (proof.length > 0) t.false(verifyInclusion(index, size, leaf, proof.slice(0, -1), root), `${label}: truncated`);
  }
});

test('verifyInclusion rejects indexes outside the tree and malformed hashes', (t) => {
  t.false(verifyInclusion(0, 0, SOME_HASH, [], EMPTY_ROOT));
  t.false(verifyInclusion(1, 1, SOME_HASH, [], SOME_HASH));
  t.false(verifyInclusion(-1, 1, SOME_HASH, [], SOME_HASH));
  t.false(verifyInclusion(0.5, 1, SOME_HASH, [], SOME_HASH));
  t.false(verifyInclusion(0, 1, Buffer.alloc(0), [], Buffer.alloc(0)));
  t.true(verifyInclusion(0, 1, SOME_HASH, [], SOME_HASH));
  t.is(rootFromInclusion(3, 2, SOME_HASH, []), null);
});

test('consistencyProof reproduces the published consistency proofs, and they verify', async (t) => {
  const { read } = memoryTree(TEST_LEAF_HASHES);
  for (const { oldSize, newSize, proof } of KNOWN_CONSISTENCY_PROOFS) {
    t.deepEqual(await consistencyProof(read, oldSize, newSize), proof, `${oldSize} -> ${newSize}`);
    t.true(verifyConsistency(oldSize, newSize, ROOTS[oldSize]!, ROOTS[newSize]!, proof), `${oldSize} -> ${newSize}`);
  }
});

test('verifyConsistency rejects corrupted published proofs', (t) => {
  for (const { oldSize, newSize, proof } of KNOWN_CONSISTENCY_PROOFS.filter((p) => p.proof.length > 0)) {
    const oldRoot = ROOTS[oldSize]!;
    const newRoot = ROOTS[newSize]!;
    const label = `${oldSize} -> ${newSize}`;
    t.false(verifyConsistency(oldSize - 1, newSize, oldRoot, newRoot, proof), `${label}: oldSize - 1`);
    t.false(verifyConsistency(oldSize + 1, newSize, oldRoot, newRoot, proof), `${label}: oldSize + 1`);
    t.false(verifyConsistency(oldSize ^ 2, newSize, oldRoot, newRoot, proof), `${label}: oldSize ^ 2`);
    t.false(verifyConsistency(oldSize, newSize * 2, oldRoot, newRoot, proof), `${label}: newSize * 2`);
    t.false(verifyConsistency(oldSize, Math.floor(newSize / 2), oldRoot, newRoot, proof), `${label}: newSize / 2`);
    t.false(verifyConsistency(oldSize, newSize, SOME_HASH, newRoot, proof), `${label}: wrong old root`);
    t.false(verifyConsistency(oldSize, newSize, oldRoot, SOME_HASH, proof), `${label}: wrong new root`);
    t.false(verifyConsistency(oldSize, newSize, newRoot, oldRoot, proof), `${label}: swapped roots`);
    t.false(verifyConsistency(oldSize, newSize, oldRoot, newRoot, []), `${label}: empty proof`);
    t.false(verifyConsistency(oldSize, newSize, oldRoot, newRoot, [...proof, newRoot]), `${label}: trailing root`);
    t.false(verifyConsistency(oldSize, newSize, oldRoot, newRoot, [oldRoot, ...proof]), `${label}: preceding root`);
    t.false(verifyConsistency(oldSize, newSize, oldRoot, newRoot, [proof[0]!, ...proof]), `${label}: duplicated head`);
    t.false(verifyConsistency(oldSize, newSize, oldRoot, newRoot, proof.slice(0, -1)), `${label}: truncated`);
    proof.forEach((_, i) => {
      const tampered = proof.map((h, j) => (j === i ? flipBit(h) : h));
      t.false(verifyConsistency(oldSize, newSize, oldRoot, newRoot, tampered), `${label}: flipped proof[${i}]`);
    });
  }
});

test('verifyConsistency handles the trivial sizes: equal sizes need equal roots, size 0 needs the empty root', (t) => {
  t.true(verifyConsistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, []));
  t.true(verifyConsistency(0, 5, EMPTY_ROOT, ROOTS[5]!, []));
  t.true(verifyConsistency(3, 3, ROOTS[3]!, ROOTS[3]!, []));
  t.false(verifyConsistency(0, 5, SOME_HASH, ROOTS[5]!, []));
  t.false(verifyConsistency(0, 5, EMPTY_ROOT, ROOTS[5]!, [EMPTY_ROOT]));
  t.false(verifyConsistency(3, 3, ROOTS[3]!, ROOTS[4]!, []));
  t.false(verifyConsistency(3, 3, ROOTS[3]!, ROOTS[3]!, [EMPTY_ROOT]));
  t.false(verifyConsistency(4, 3, ROOTS[4]!, ROOTS[3]!, []));
  t.false(verifyConsistency(1, 2, ROOTS[1]!, ROOTS[2]!, []));
});

test('proof builders reject impossible requests', async (t) => {
  const { read } = memoryTree(TEST_LEAF_HASHES);
  await t.throwsAsync(inclusionProof(read, 8, 8), { instanceOf: RangeError });
  await t.throwsAsync(inclusionProof(read, 0, 0), { instanceOf: RangeError });
  await t.throwsAsync(consistencyProof(read, 5, 4), { instanceOf: RangeError });
  t.deepEqual(await consistencyProof(read, 0, 8), []);
  t.deepEqual(await consistencyProof(read, 8, 8), []);
});

test('every inclusion proof from stored nodes verifies against the reference root, for all sizes 1..70', async (t) => {
  const leaves = syntheticLeaves(70);
  const { read, reads, resetReads } = memoryTree(leaves);
  let checked = 0;
  for (let size = 1; size <= leaves.length; size++) {
    const root = mthOfLeaves(leaves.slice(0, size));
    t.deepEqual(await subtreeRoot(read, 0, size), root, `root of size ${size}`);
    for (let index = 0; index < size; index++) {
      resetReads();
      const proof = await inclusionProof(read, index, size);
      // One read per proof element plus at most one decomposition of the right edge: O(log n).
      t.true(reads() <= 2 * bitLength(size), `reads for ${index}/${size}: ${reads()}`);
      if (!verifyInclusion(index, size, leaves[index]!, proof, root)) t.fail(`proof for ${index} in ${size} did not verify`);
      const other = leaves[(index + 1) % size]!;
      if (size > 1 && verifyInclusion(index, size, other, proof, root)) t.fail(`wrong leaf verified for ${index} in ${size}`);
      if (proof.length > 0 && verifyInclusion(index, size, leaves[index]!, [flipBit(proof[0]!), ...proof.slice(1)], root)) {
        t.fail(`tampered proof verified for ${index} in ${size}`);
      }
      checked++;
    }
  }
  t.is(checked, (70 * 71) / 2);
});

test('every consistency proof from stored nodes verifies between all size pairs up to 40', async (t) => {
  const leaves = syntheticLeaves(40);
  const { read, reads, resetReads } = memoryTree(leaves);
  const roots = Array.from({ length: leaves.length + 1 }, (_, n) => mthOfLeaves(leaves.slice(0, n)));
  let checked = 0;
  for (let newSize = 1; newSize <= leaves.length; newSize++) {
    for (let oldSize = 1; oldSize <= newSize; oldSize++) {
      resetReads();
      const proof = await consistencyProof(read, oldSize, newSize);
      t.true(reads() <= 2 * bitLength(newSize) + 1, `reads for ${oldSize} -> ${newSize}: ${reads()}`);
      if (!verifyConsistency(oldSize, newSize, roots[oldSize]!, roots[newSize]!, proof)) {
        t.fail(`proof ${oldSize} -> ${newSize} did not verify`);
      }
      if (oldSize < newSize) {
        for (let i = 0; i < proof.length; i++) {
          const tampered = proof.map((h, j) => (j === i ? flipBit(h) : h));
          if (verifyConsistency(oldSize, newSize, roots[oldSize]!, roots[newSize]!, tampered)) {
            t.fail(`tampered proof[${i}] verified for ${oldSize} -> ${newSize}`);
          }
        }
        if (verifyConsistency(oldSize, newSize, roots[oldSize - 1]!, roots[newSize]!, proof)) {
          t.fail(`wrong old root verified for ${oldSize} -> ${newSize}`);
        }
      }
      checked++;
    }
  }
  t.is(checked, (40 * 41) / 2);
});

test('proofs work for trees whose size exceeds 32-bit integer range', async (t) => {
  // A huge but consistent tree: every leaf is the same except one, so any node is computable from its coordinates alone.
  const special = 2 ** 32 + 7;
  const plain = [leafHash(Buffer.from('plain'))];
  for (let level = 1; level <= 40; level++) plain.push(nodeHash(plain[level - 1]!, plain[level - 1]!));
  const node = (level: number, index: number): Buffer => {
    const first = index * 2 ** level;
    if (special < first || special >= first + 2 ** level) return plain[level]!;
    if (level === 0) return leafHash(Buffer.from('special'));
    return nodeHash(node(level - 1, 2 * index), node(level - 1, 2 * index + 1));
  };
  const read: NodeReader = async (level, index) => node(level, index);
  const size = 2 ** 33 + 12345;
  const root = await subtreeRoot(read, 0, size);
  const proof = await inclusionProof(read, special, size);
  t.true(verifyInclusion(special, size, node(0, special), proof, root));
  t.false(verifyInclusion(special + 1, size, node(0, special), proof, root));
  t.false(verifyInclusion(special, size, plain[0]!, proof, root));
  const last = await inclusionProof(read, size - 1, size);
  t.true(verifyInclusion(size - 1, size, plain[0]!, last, root));
  const oldSize = 2 ** 32 + 3;
  const consistency = await consistencyProof(read, oldSize, size);
  t.true(verifyConsistency(oldSize, size, await subtreeRoot(read, 0, oldSize), root, consistency));
  t.false(verifyConsistency(oldSize + 1, size, await subtreeRoot(read, 0, oldSize), root, consistency));
});
