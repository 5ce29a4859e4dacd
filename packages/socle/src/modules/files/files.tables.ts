import type { ColumnType, Generated } from 'kysely';

/** Tables of the files module, as Kysely sees them. */
export interface FilesTables {
  'files.objects': {
    id: string;
    tenant_id: string | null;
    owner_id: string | null;
    bucket: string;
    blob_key: string;
    name: string | null;
    // bigint: pg returns it as a string; Socle keeps sizes below 2^53 and converts.
    size: ColumnType<string, number, number>;
    sha256: string;
    content_type: string;
    metadata: ColumnType<Record<string, unknown>, string, string>;
    storage_class: Generated<'standard' | 'archive'>;
    created_at: ColumnType<Date, Date | undefined, never>;
  };
  'files.usage': {
    scope_id: string;
    scope_kind: 'tenant' | 'user';
    bytes: ColumnType<string, number, number>;
    objects: ColumnType<string, number, number>;
  };
  'files.signing_keys': {
    id: string;
    sealed_key: string;
    created_at: Generated<Date>;
  };
}
