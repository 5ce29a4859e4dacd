import { useState } from 'preact/hooks';
import { api } from '../api.js';
import { format, type Words } from '../i18n.js';
import { Messages, type PageProps, useLoad, useWords, when } from '../shared.js';

interface BucketUsage {
  name: string;
  scope: 'tenant' | 'user';
  public: boolean;
  maxBytes: number;
  allowedTypes: string[] | null;
  archiveAfterDays: number | null;
  deleteAfterDays: number | null;
  objects: number | null;
  bytes: number | null;
}
interface FileObject {
  id: string;
  bucket: string;
  name: string | null;
  size: number;
  contentType: string;
  createdAt: string;
  url: string;
}
interface PersonalObject {
  id: string;
  bucket: string;
  name: string | null;
  size: number;
  contentType: string;
  createdAt: string;
}
interface ScopeUsage {
  kind: 'tenant' | 'user';
  id: string;
  objects: number;
  bytes: number;
  quotaBytes: number | null;
}

/** Bytes as people read them: 1536 → "1.5 KB" (powers of 1024, one decimal). */
export function bytesText(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

const quotaText = (words: Words, used: number, quota: number | null) =>
  quota === null
    ? format(words.storedNoQuota, { used: bytesText(used) })
    : format(words.storedOfQuota, { used: bytesText(used), quota: bytesText(quota) });

/**
 * Files (the files module, when loaded): the buckets with the organization's use of each and its
 * quota (`GET /org/files/buckets`, admins), a tenant bucket's objects (`GET /files/:bucket`) with
 * their download links and deletion after a confirmation (`DELETE /files/:bucket/:id`, audited);
 * with the operator token, storage by organization (`GET /operator/files/usage`) and a person's
 * objects in per-user buckets.
 */
export function Files({ context }: PageProps) {
  const words = useWords();
  const orgId = context.orgId;
  const [bucket, setBucket] = useState<string | undefined>(undefined);
  const { data, error, reload } = useLoad(
    async () =>
      orgId === undefined
        ? undefined
        : api<{ usedBytes: number; quotaBytes: number | null; buckets: BucketUsage[] }>(
            '/org/files/buckets',
            {
              orgId,
            },
          ),
    [orgId],
  );
  const usage = context.operator && <UsageByOrganization context={context} />;
  if (orgId === undefined)
    return (
      <>
        {usage}
        <p>{words.noOrganization}</p>
      </>
    );
  return (
    <>
      <Messages error={error} />
      {data && <p>{quotaText(words, data.usedBytes, data.quotaBytes)}</p>}
      <h3>{words.buckets}</h3>
      <table>
        <thead>
          <tr>
            <th>{words.name}</th>
            <th>{words.kind}</th>
            <th>{words.maxSize}</th>
            <th>{words.fileTypes}</th>
            <th>{words.fileObjects}</th>
            <th>{words.size}</th>
            <th>{words.actions}</th>
          </tr>
        </thead>
        <tbody>
          {data?.buckets.map((row) => (
            <tr key={row.name}>
              <td>{row.name}</td>
              <td>
                {row.scope === 'tenant' ? words.bucketOfOrganization : words.bucketPerPerson}
                {row.public ? ` · ${words.publicBucket}` : ''}
              </td>
              <td>{bytesText(row.maxBytes)}</td>
              <td>{row.allowedTypes?.join(', ') ?? words.anyType}</td>
              <td>{row.objects ?? '—'}</td>
              <td>{row.bytes === null ? '—' : bytesText(row.bytes)}</td>
              <td>
                {row.scope === 'tenant' && (
                  <button
                    type="button"
                    aria-pressed={bucket === row.name}
                    aria-label={format(words.showFilesOf, { bucket: row.name })}
                    onClick={() => setBucket(row.name)}
                  >
                    {words.showFiles}
                  </button>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {bucket !== undefined && (
        <BucketObjects key={bucket} orgId={orgId} bucket={bucket} onDeleted={reload} />
      )}
      {usage}
    </>
  );
}

/** A tenant bucket's objects, newest first, page after page; each downloadable and deletable. */
function BucketObjects({ orgId, bucket, onDeleted }: { orgId: string; bucket: string; onDeleted(): void }) {
  const words = useWords();
  const [before, setBefore] = useState<string | undefined>(undefined);
  const { data, error, notice, run } = useLoad(
    () =>
      api<{ objects: FileObject[] }>(
        `/files/${encodeURIComponent(bucket)}?limit=50${before === undefined ? '' : `&before=${encodeURIComponent(before)}`}`,
        { orgId },
      ),
    [bucket, before],
  );
  const remove = (object: FileObject) => {
    const name = object.name ?? object.id;
    if (!confirm(format(words.confirmDeleteFile, { name }))) return;
    void run(
      async () => {
        await api(`/files/${encodeURIComponent(bucket)}/${object.id}`, { method: 'DELETE', orgId });
        onDeleted();
      },
      format(words.deletedFile, { name }),
    );
  };
  const objects = data?.objects ?? [];
  return (
    <section aria-labelledby="bucket-objects-title">
      <h3 id="bucket-objects-title">{format(words.filesOf, { bucket })}</h3>
      <Messages error={error} notice={notice} />
      {data && objects.length === 0 ? (
        <p>{words.none}</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>{words.name}</th>
              <th>{words.contentType}</th>
              <th>{words.size}</th>
              <th>{words.created}</th>
              <th>{words.actions}</th>
            </tr>
          </thead>
          <tbody>
            {objects.map((object) => (
              <tr key={object.id}>
                <td>
                  {object.name ?? ''}
                  <br />
                  <span class="muted">{object.id}</span>
                </td>
                <td>{object.contentType}</td>
                <td>{bytesText(object.size)}</td>
                <td>{when(object.createdAt)}</td>
                <td>
                  <a
                    href={object.url}
                    download={object.name ?? object.id}
                    rel="noopener"
                    aria-label={format(words.downloadFile, { name: object.name ?? object.id })}
                  >
                    {words.download}
                  </a>{' '}
                  <button
                    type="button"
                    class="danger"
                    aria-label={format(words.deleteFile, { name: object.name ?? object.id })}
                    onClick={() => remove(object)}
                  >
                    {words.delete}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <p>
        {before !== undefined && (
          <button type="button" onClick={() => setBefore(undefined)}>
            {words.firstPage}
          </button>
        )}{' '}
        {objects.length === 50 && (
          <button type="button" onClick={() => setBefore(objects[objects.length - 1]?.createdAt)}>
            {words.more}
          </button>
        )}
      </p>
    </section>
  );
}

/** Operator token: the organizations (and people) storing the most. */
function UsageByOrganization({ context }: PageProps) {
  const words = useWords();
  const [person, setPerson] = useState<string | undefined>(undefined);
  const { data, error } = useLoad(() => api<{ scopes: ScopeUsage[] }>('/operator/files/usage?limit=100'), []);
  const nameOf = new Map(context.organizations.map((org) => [org.id, org.name]));
  return (
    <section aria-labelledby="files-usage-title">
      <h3 id="files-usage-title">{words.storageByOrganization}</h3>
      <Messages error={error} />
      {data && data.scopes.length === 0 ? (
        <p>{words.none}</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>{words.organization}</th>
              <th>{words.fileObjects}</th>
              <th>{words.size}</th>
              <th>{words.quota}</th>
              <th>{words.actions}</th>
            </tr>
          </thead>
          <tbody>
            {data?.scopes.map((scope) => (
              <tr key={scope.id}>
                <td>
                  {scope.kind === 'tenant' ? (nameOf.get(scope.id) ?? '') : words.bucketPerPerson}
                  <br />
                  <span class="muted">{scope.id}</span>
                </td>
                <td>{scope.objects}</td>
                <td>{bytesText(scope.bytes)}</td>
                <td>{scope.quotaBytes === null ? words.noQuota : bytesText(scope.quotaBytes)}</td>
                <td>
                  {scope.kind === 'user' && (
                    <button
                      type="button"
                      aria-pressed={person === scope.id}
                      aria-label={format(words.personFilesOf, { id: scope.id })}
                      onClick={() => setPerson(scope.id)}
                    >
                      {words.showFiles}
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {person !== undefined && <PersonObjects key={person} userId={person} />}
    </section>
  );
}

/**
 * Operator token: one person's objects in per-user buckets (names and sizes, no content), newest
 * first, page after page (`GET /operator/files/users/:userId/objects`, a read the audit log records).
 */
function PersonObjects({ userId }: { userId: string }) {
  const words = useWords();
  const [cursor, setCursor] = useState<string | undefined>(undefined);
  const { data, error } = useLoad(
    () =>
      api<{ objects: PersonalObject[]; next: string | null }>(
        `/operator/files/users/${encodeURIComponent(userId)}/objects?limit=50${cursor === undefined ? '' : `&cursor=${encodeURIComponent(cursor)}`}`,
      ),
    [userId, cursor],
  );
  return (
    <section aria-labelledby="person-objects-title">
      <h4 id="person-objects-title">{format(words.personFilesOf, { id: userId })}</h4>
      <Messages error={error} />
      {data && data.objects.length === 0 ? (
        <p>{words.none}</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>{words.name}</th>
              <th>{words.bucket}</th>
              <th>{words.contentType}</th>
              <th>{words.size}</th>
              <th>{words.created}</th>
            </tr>
          </thead>
          <tbody>
            {data?.objects.map((object) => (
              <tr key={object.id}>
                <td>
                  {object.name ?? ''}
                  <br />
                  <span class="muted">{object.id}</span>
                </td>
                <td>{object.bucket}</td>
                <td>{object.contentType}</td>
                <td>{bytesText(object.size)}</td>
                <td>{when(object.createdAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <p>
        {cursor !== undefined && (
          <button type="button" onClick={() => setCursor(undefined)}>
            {words.firstPage}
          </button>
        )}{' '}
        {data?.next != null && (
          <button type="button" onClick={() => setCursor(data.next ?? undefined)}>
            {words.more}
          </button>
        )}
      </p>
    </section>
  );
}
