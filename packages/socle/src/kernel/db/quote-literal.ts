/**
 * Quotes a string as a SQL literal, for the statements that cannot take parameters: the
 * simple-protocol scripts that set the scope's settings with BEGIN (see `kysely-dialect.ts`) or
 * before a parameterless statement (see `scoped-statement.ts`). Everywhere else, pass values as
 * parameters.
 *
 * It writes an escape string, `E'…'`, doubling quotes and backslashes. In an escape string a
 * backslash escapes whatever `standard_conforming_strings` says (it is on by default since
 * Postgres 9.1, but a server or role may turn it off), so the result is the same value on any
 * setting. It assumes a UTF-8 client encoding, which both backends use: in UTF-8 every byte of a
 * multibyte character is ≥ 0x80, so a quote or backslash byte is always that character (in
 * encodings such as SJIS or BIG5 it may not be, and no literal quoting is safe there).
 * NUL cannot be part of a Postgres text value and is refused.
 *
 * @example
 * quoteLiteral("O'Reilly") // E'O''Reilly'
 */
export function quoteLiteral(value: string): string {
  if (typeof value !== 'string') throw new TypeError(`A SQL literal must be a string, not ${typeof value}`);
  if (value.includes('\0')) throw new TypeError('A SQL literal cannot contain a NUL character');
  return `E'${value.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`;
}

/** Quotes an identifier (role, schema, savepoint name) for SQL: double quotes doubled. */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
