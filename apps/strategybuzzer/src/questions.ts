import { parse } from 'csv-parse/sync';
import { buzzerErrors } from './buzzer.errors.js';

/** A question to import, checked. */
export interface NewQuestion {
  readonly language: string;
  readonly category: string;
  readonly level: number;
  readonly prompt: string;
  readonly choices: string[];
  readonly answer: number;
}

/** At most this many questions per import (one transaction). */
export const MAX_IMPORT = 5000;

const LANGUAGE = /^[a-z]{2}(-[A-Z]{2})?$/;

/**
 * Checks one question as an admin wrote it (JSON object or CSV row); returns it or the problems,
 * each naming the field. `answer` is the 0-based index of the right choice in JSON, the 1-based
 * number of it in CSV (spreadsheet people count from 1).
 */
function check(raw: Record<string, unknown>, where: string, oneBased: boolean): NewQuestion | string[] {
  const problems: string[] = [];
  const text = (field: string, max: number, fallback?: string) => {
    const value = raw[field] === undefined || raw[field] === '' ? fallback : raw[field];
    if (typeof value !== 'string' || value.trim() === '' || value.length > max) {
      problems.push(`${where}/${field}: must be text of 1 to ${max} characters`);
      return '';
    }
    return value.trim();
  };
  const language = text('language', 5, 'fr');
  if (language !== '' && !LANGUAGE.test(language))
    problems.push(`${where}/language: must be like "fr" or "fr-CA"`);
  const category = text('category', 60, 'general');
  const prompt = text('prompt', 500);
  const level = Number(raw.level === undefined || raw.level === '' ? 1 : raw.level);
  if (!Number.isInteger(level) || level < 1 || level > 10)
    problems.push(`${where}/level: must be an integer from 1 to 10`);
  const choices = (Array.isArray(raw.choices) ? raw.choices : []).map((choice) =>
    typeof choice === 'string' ? choice.trim() : '',
  );
  if (
    choices.length < 2 ||
    choices.length > 6 ||
    choices.some((choice) => choice === '' || choice.length > 200)
  )
    problems.push(`${where}/choices: must be 2 to 6 texts of 1 to 200 characters`);
  const answer = Number(raw.answer) - (oneBased ? 1 : 0);
  if (!Number.isInteger(answer) || answer < 0 || answer >= choices.length)
    problems.push(
      `${where}/answer: must be the ${oneBased ? '1-based number' : '0-based index'} of the right choice`,
    );
  return problems.length > 0 ? problems : { language, category, level, prompt, choices, answer };
}

function checkAll(
  rows: readonly Record<string, unknown>[],
  prefix: string,
  oneBased: boolean,
): NewQuestion[] {
  if (rows.length === 0) throw buzzerErrors.badImport([`${prefix}: no question`]);
  if (rows.length > MAX_IMPORT)
    throw buzzerErrors.badImport([`${prefix}: more than ${MAX_IMPORT} questions`]);
  const problems: string[] = [];
  const questions: NewQuestion[] = [];
  rows.forEach((row, index) => {
    const checked = check(row, `${prefix}/${index + (oneBased ? 2 : 0)}`, oneBased);
    if (Array.isArray(checked)) problems.push(...checked);
    else questions.push(checked);
  });
  if (problems.length > 0) throw buzzerErrors.badImport(problems.slice(0, 50));
  return questions;
}

/** Questions of a JSON import: `[{ prompt, choices: [..], answer: <0-based index>, language?, category?, level? }]`. */
export function parseJsonQuestions(body: unknown): NewQuestion[] {
  if (!Array.isArray(body) || body.some((row) => typeof row !== 'object' || row === null))
    throw buzzerErrors.badImport(['body: must be an array of question objects']);
  return checkAll(body as Record<string, unknown>[], 'body', false);
}

/**
 * Questions of a CSV import (RFC 4180, parsed by csv-parse): a header row naming the columns
 * `prompt`, `choice1`…`choice6`, `answer` (1-based number of the right choice) and optionally
 * `language`, `category`, `level`; rows numbered from 2 (the header is row 1) in problems.
 */
export function parseCsvQuestions(text: string): NewQuestion[] {
  let rows: Record<string, string>[];
  try {
    rows = parse(text, { columns: true, skip_empty_lines: true, trim: true, bom: true });
  } catch (error) {
    throw buzzerErrors.badImport([`row: ${(error as Error).message}`]);
  }
  const first = rows[0];
  if (first !== undefined && (!('prompt' in first) || !('answer' in first) || !('choice1' in first)))
    throw buzzerErrors.badImport(['header: needs the columns prompt, choice1, choice2…, answer']);
  return checkAll(
    rows.map((row) => ({
      ...row,
      choices: [1, 2, 3, 4, 5, 6]
        .map((n) => row[`choice${n}`])
        .filter((choice): choice is string => choice !== undefined && choice !== ''),
    })),
    'row',
    true,
  );
}
