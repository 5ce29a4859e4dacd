import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import type { Generated, Transaction } from 'kysely';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  createFilesModule,
  defineBucket,
  defineModule,
  type FilesServices,
  OrgHeaders,
  requireOrgRole,
  routeSecurity,
  Type,
} from '../src/index.js';
import { createBuiltInModules } from '../src/modules/index.js';
import { createTestSocle, type TestSocle, type TestTenant } from '../src/testing/index.js';
import { describeEachDatabase } from './support/each-database.js';

const PDF = Buffer.concat([Buffer.from('%PDF-1.4\n%âãÏÓ\n1 0 obj\n<<>>\nendobj\n'), Buffer.alloc(4096, 32)]);
const PNG_HEAD = Buffer.from('89504e470d0a1a0a0000000d4948445200000010000000100806000000', 'hex');
const pdf = (bytes: number) => Buffer.concat([PDF, Buffer.alloc(bytes - PDF.length, 32)]);

const scans = defineBucket({ name: 'scans', maxBytes: 64 * 1024, allowedTypes: ['application/pdf'] });

interface ScansTables {
  'scans.documents': { id: string; tenant_id: Generated<string>; object_id: string };
}

/**
 * An app module as an app writes one (the public `socle` API only): `PUT /scans/documents/:id`
 * takes a PDF's bytes and records the document in the transaction that records the file.
 */
const scansModule = defineModule<ScansTables, Record<string, never>>({
  name: 'scans',
  dependsOn: ['files'],
  migrations: [
    {
      name: '0001_documents.sql',
      sql: `
        create table documents (
          id uuid not null, tenant_id uuid not null default socle.current_tenant_id(),
          object_id uuid not null references files.objects (id), primary key (tenant_id, id));
        alter table documents enable row level security;
        alter table documents force row level security;
        create policy documents_tenant on documents using (tenant_id = socle.current_tenant_id())
          with check (tenant_id = socle.current_tenant_id());`,
    },
  ],
  setup: (context) => {
    context.servicesOf<FilesServices>('files').registerBucket(scans);
    return {};
  },
  routes(app, { servicesOf }) {
    servicesOf<FilesServices>('files').uploadRoute(app, {
      method: 'PUT',
      url: '/scans/documents/:id',
      schema: {
        tags: ['scans'],
        security: routeSecurity.memberOrApiKey,
        summary: "A document's scan: the body is the PDF",
        params: Type.Object({ id: Type.String({ format: 'uuid' }) }),
        headers: OrgHeaders,
      },
      bucket: scans.name,
      authorize: (request) => {
        const org = requireOrgRole(request, 'member');
        return { tenantId: org.orgId, userId: org.userId };
      },
      name: (request) => `${request.params.id}.pdf`,
      attach: async (trx: Transaction<ScansTables>, object, request) => {
        await trx
          .insertInto('scans.documents')
          .values({ id: request.params.id, object_id: object.id })
          .execute();
        return request.params.id;
      },
      reply: ({ object, attached }) => ({ document: attached, object: object.id, size: object.size }),
    });
  },
});

describeEachDatabase('files.uploadRoute, as an app declares it', (target) => {
  let socle: TestSocle;
  let tenant: TestTenant;
  const blobRoot = mkdtempSync(path.join(tmpdir(), 'socle-upload-route-'));

  beforeAll(async () => {
    socle = await createTestSocle(target, {
      modules: [...createBuiltInModules(), createFilesModule(), scansModule],
      config: { jobsQueues: [], blobUrl: pathToFileURL(blobRoot).href },
    });
    tenant = await socle.newTenant();
  }, 180_000);
  afterAll(async () => {
    await socle?.dispose();
    rmSync(blobRoot, { recursive: true, force: true });
  });

  const headers = (extra: Record<string, string> = {}) => ({
    authorization: `Bearer ${tenant.owner.token}`,
    'x-org-id': tenant.id,
    ...extra,
  });
  const put = (id: string, body: Buffer, extra: Record<string, string> = {}) =>
    socle.app.inject({
      method: 'PUT',
      url: `/scans/documents/${id}`,
      payload: body,
      headers: headers(extra),
    });
  /** What is left of uploads: blobs under the bucket, temporary files, records, documents. */
  const leftovers = async () => {
    const keys: string[] = [];
    for await (const info of socle.blobs.list(`t.${tenant.id}/scans/`)) keys.push(info.key);
    const temporary = temporaryFiles();
    const objects = await socle
      .servicesOf<FilesServices>('files')
      .list({ tenantId: tenant.id }, 'scans', 200);
    const documents = await socle.db
      .withTables<ScansTables>()
      .withSettings({ 'app.tenant_id': tenant.id })
      .selectFrom('scans.documents')
      .selectAll()
      .execute();
    return { blobs: keys.length, temporary, objects: objects.length, documents: documents.length };
  };
  /** The local backend's files being written (`<root>/.tmp/<random>`, renamed onto their key at the end). */
  const temporaryFiles = () =>
    existsSync(path.join(blobRoot, '.tmp')) ? readdirSync(path.join(blobRoot, '.tmp')).length : 0;
  const failedUploads = async () => {
    const metrics = (await socle.app.inject({ method: 'GET', url: '/metrics' })).body;
    return Number(/^socle_files_uploads_failed_total (\d+)/m.exec(metrics)?.[1] ?? 0);
  };

  it('stores the bytes, runs attach in the same transaction and answers what reply returns', async () => {
    const id = crypto.randomUUID();
    const response = await put(id, PDF, { 'content-type': 'application/pdf' });
    expect(response.statusCode, response.body).toBe(200);
    const body = response.json() as { document: string; object: string; size: number };
    expect(body).toMatchObject({ document: id, size: PDF.length });
    const object = await socle
      .servicesOf<FilesServices>('files')
      .find({ tenantId: tenant.id }, 'scans', body.object);
    expect(object).toMatchObject({
      name: `${id}.pdf`,
      contentType: 'application/pdf',
      ownerId: tenant.owner.userId,
    });
  });

  it('refuses a body over the bucket limit, announced or streamed: 413 problem+json, connection closed, nothing kept', async () => {
    const before = await leftovers();
    const announced = await put(crypto.randomUUID(), pdf(65 * 1024));
    expect(announced.statusCode).toBe(413);
    expect(announced.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(announced.json()).toMatchObject({ code: 'files.too_large', status: 413 });
    expect(announced.headers.connection).toBe('close');

    // Chunked, no Content-Length: cut while streaming.
    const streamed = await socle.app.inject({
      method: 'PUT',
      url: `/scans/documents/${crypto.randomUUID()}`,
      headers: headers({ 'transfer-encoding': 'chunked' }),
      payload: Readable.from(
        (function* () {
          for (let sent = 0; sent < 80 * 1024; sent += PDF.length) yield PDF;
        })(),
      ),
    });
    expect(streamed.statusCode, streamed.body).toBe(413);
    expect(streamed.json()).toMatchObject({ code: 'files.too_large' });
    expect(await leftovers()).toEqual(before);
  });

  it('refuses bytes that are not an allowed type, whatever the header says: 415 problem+json, nothing kept', async () => {
    const before = await leftovers();
    const png = Buffer.concat([PNG_HEAD, Buffer.alloc(2048, 7)]);
    const response = await put(crypto.randomUUID(), png, { 'content-type': 'application/pdf' });
    expect(response.statusCode).toBe(415);
    expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(response.json()).toMatchObject({ code: 'files.type_not_allowed', detected: 'image/png' });
    expect(await leftovers()).toEqual(before);
  });

  it('refuses before reading the body when authorize throws (401), and answers 400 for a bad param', async () => {
    const anonymous = await socle.app.inject({
      method: 'PUT',
      url: `/scans/documents/${crypto.randomUUID()}`,
      payload: PDF,
    });
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.headers['content-type']).toMatch(/^application\/problem\+json/);
    const badId = await put('not-a-uuid', PDF);
    expect(badId.statusCode).toBe(400);
  });

  it('leaves nothing when the client hangs up in the middle of the body', async () => {
    const before = await leftovers();
    const failed = await failedUploads();
    const url = new URL(await socle.listen());
    const socket = connect(Number(url.port), url.hostname);
    await once(socket, 'connect');
    const body = pdf(60 * 1024);
    socket.write(
      [
        `PUT /scans/documents/${crypto.randomUUID()} HTTP/1.1`,
        `host: ${url.host}`,
        `authorization: Bearer ${tenant.owner.token}`,
        `x-org-id: ${tenant.id}`,
        'content-type: application/pdf',
        `content-length: ${body.length}`,
        '',
        '',
      ].join('\r\n'),
    );
    socket.write(body.subarray(0, 30 * 1024));
    // The server has read part of the body once the upload is under way: then hang up.
    await expect.poll(temporaryFiles).toBeGreaterThan(before.temporary);
    socket.destroy();
    await expect.poll(failedUploads).toBe(failed + 1);
    expect(await leftovers()).toEqual(before);
  });
});
