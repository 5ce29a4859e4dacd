/** The module's tables as Kysely sees them: `<module>.<table>`. */
export interface NotesTables {
  'notes.notes': {
    id: string;
    tenant_id: string;
    author_id: string;
    body: string;
    created_at: Date;
    deleted_at: Date | null;
  };
}
