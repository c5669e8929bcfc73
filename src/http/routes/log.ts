import { z } from 'zod';
import { canonicalize } from '../../log/canonical.ts';
import { WritError } from '../../errors.ts';
import { defineRoute } from '../route.ts';
import { logEntrySchema, wholeNumberParam } from '../schemas.ts';
import { parseWith } from '../validate.ts';

const NOTE = 'text/plain; charset=utf-8';

export const checkpoint = defineRoute({
  method: 'GET',
  path: '/api/v1/log/checkpoint',
  summary: 'The latest signed checkpoint (C2SP tlog-checkpoint signed note)',
  auth: 'anyone',
  responses: { 200: { description: 'Signed note', type: NOTE } },
  errors: ['storage_unavailable', 'storage_corrupt'],
  async handle({ writ }) {
    const latest = (await writ.log.newest()) ?? (await writ.log.checkpoint());
    return { status: 200, body: latest.note, type: NOTE };
  },
});

export const newCheckpoint = defineRoute({
  method: 'POST',
  path: '/api/v1/log/checkpoint',
  summary: 'Sign a checkpoint of the current tree now',
  auth: ['admin'],
  responses: { 201: { description: 'Signed note', type: NOTE } },
  async handle({ writ }) {
    return { status: 201, body: (await writ.log.checkpoint()).note, type: NOTE };
  },
});

const proofParams = z.strictObject({ index: wholeNumberParam });

export const proof = defineRoute({
  method: 'GET',
  path: '/api/v1/log/proof/:index',
  summary: 'RFC 6962 inclusion proof of one entry against a signed checkpoint',
  auth: 'anyone',
  responses: {
    200: {
      description: 'Proof; hashes are standard base64, bottom-up',
      schema: z.object({ index: z.number(), tree_size: z.number(), leaf_hash: z.string(), hashes: z.array(z.string()), checkpoint: z.string() }),
    },
    404: { description: 'No entry at that index' },
    422: { description: 'The index is not a whole number' },
  },
  errors: ['not_found', 'storage_unavailable', 'storage_corrupt'],
  async handle({ writ, params }) {
    const { index } = parseWith(proofParams, params, 'params');
    return { status: 200, body: await writ.log.proof(index) };
  },
});

export const consistency = defineRoute({
  method: 'GET',
  path: '/api/v1/log/consistency',
  summary: 'RFC 6962 consistency proof between two tree sizes',
  auth: 'anyone',
  query: z.strictObject({ old: wholeNumberParam, new: wholeNumberParam }),
  responses: { 200: { description: 'Proof', schema: z.object({ old_size: z.number(), new_size: z.number(), hashes: z.array(z.string()) }) } },
  errors: ['storage_unavailable', 'storage_corrupt'],
  async handle({ writ, query }) {
    const size = await writ.log.storedSize();
    if (query.old > query.new || query.new > size) {
      throw new WritError('invalid_value', `need 0 <= old <= new <= ${size}`, { field: query.old > query.new ? 'old' : 'new' });
    }
    return { status: 200, body: { old_size: query.old, new_size: query.new, hashes: await writ.log.consistency(query.old, query.new) } };
  },
});

const CSV_COLUMNS = ['index', 'time', 'type', 'prev', 'data'] as const;
const csvCell = (value: string) => (/[",\n\r]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value);

export const records = defineRoute({
  method: 'GET',
  path: '/api/v1/log/records',
  summary: 'Export log entries [from, to) as JSON or CSV',
  auth: ['admin'],
  query: z.strictObject({
    from: wholeNumberParam.default(0),
    to: wholeNumberParam.optional(),
    format: z.enum(['json', 'csv']).default('json'),
  }),
  responses: {
    200: {
      description: 'Entries in index order (at most 10,000 per call); with format=csv, a CSV of index, time, type, prev and data (canonical JSON)',
      schema: z.object({ records: z.array(logEntrySchema) }),
      also: { 'text/csv': 'text' },
    },
  },
  async handle({ writ, query }) {
    // The log as stored: other nodes sharing it may have written beyond what this one has.
    const to = Math.min(query.to ?? (await writ.log.storedSize()), query.from + 10_000);
    const entries = [];
    for await (const { entry } of writ.log.entries(query.from, to)) entries.push(entry);
    if (query.format === 'json') return { status: 200, body: { records: entries } };
    const lines = [CSV_COLUMNS.join(',')];
    for (const e of entries) lines.push([String(e.index), e.time, e.type, e.prev, canonicalize(e.data)].map(csvCell).join(','));
    return { status: 200, body: `${lines.join('\r\n')}\r\n`, type: 'text/csv; charset=utf-8' };
  },
});

export const stored = defineRoute({
  method: 'GET',
  path: '/api/v1/log/stored',
  summary: "Entries as stored, with their tree nodes and the checkpoints between them: what the dashboard's Verify chain re-derives in the browser",
  auth: ['admin', 'approver'],
  query: z.strictObject({
    from: wholeNumberParam.default(0),
    limit: wholeNumberParam.pipe(z.number().min(1).max(1000)).default(500).describe('Entries per page, 1 to 1000 (default 500)'),
  }),
  responses: {
    200: {
      description:
        'Entries [from, to) as stored bytes (null when missing); nodes[l] is the stored tree node at level l that entry completed (level 0 is its leaf hash), standard base64; checkpoints are the stored signed notes of sizes from < size <= to (and 0 on the first page, and every larger one on the last)',
      schema: z.object({
        size: z.number(),
        from: z.number(),
        to: z.number(),
        entries: z.array(z.object({ index: z.number(), entry: z.string().nullable(), nodes: z.array(z.string().nullable()) })),
        checkpoints: z.array(z.object({ size: z.number(), note: z.string() })),
      }),
    },
  },
  async handle({ writ, query }) {
    return { status: 200, body: await writ.log.storedRange(query.from, query.limit) };
  },
});
