import { SocleError } from '../errors/index.js';
import type { SettingParser } from './parsers.js';
import * as parsers from './parsers.js';

/**
 * One setting a module declares: read from the environment variable `env`, or from
 * `socle.config.json` under the camelCase of `env` (`MAIL_FROM` → `mailFrom`), parsed and validated
 * by the kernel at start with every other setting, so all bad values are reported in one message.
 */
export interface SettingDefinition<T> {
  /** Environment variable, UPPER_SNAKE_CASE, unique across the kernel and every module. */
  readonly env: string;
  /** One line for `socle help config`. */
  readonly description: string;
  readonly defaultValue: T;
  readonly parse: SettingParser<T>;
  /**
   * Its value is a credential (a token, a key, a URL that may carry a password): never shown, in a
   * problem or on the operator's configuration page (`describeConfiguration` masks it).
   */
  readonly secret?: boolean;
}

/** A module's settings: the name it reads each value under, and its definition. */
export type SettingsSpec<Values> = { readonly [K in keyof Values]: SettingDefinition<Values[K]> };

/** The values a spec parses to: `SettingValues<typeof mailSettings>` is what `context.settings` holds. */
export type SettingValues<Spec> = {
  readonly [K in keyof Spec]: Spec[K] extends SettingDefinition<infer T> ? T : never;
};

interface Described {
  readonly env: string;
  readonly description: string;
  /** A credential stored as a plain string or list (a webhook secret): never shown. */
  readonly secret?: boolean;
}

/**
 * Builders of module settings: each gives the parser, so every module validates the same way and
 * names the variable in its problem.
 *
 * @example
 * const mailSettings = defineSettings({
 *   smtpUrl: setting.url({ env: 'SMTP_URL', description: 'SMTP server', protocols: ['smtp:', 'smtps:'] }),
 *   maxAttempts: setting.integer({ env: 'MAIL_MAX_ATTEMPTS', description: 'Delivery attempts', default: 10, min: 1, max: 100 }),
 * });
 */
export const setting = {
  integer(options: Described & { default: number; min: number; max: number }): SettingDefinition<number> {
    return {
      ...described(options),
      defaultValue: options.default,
      parse: parsers.integer(options.min, options.max),
    };
  },
  boolean(options: Described & { default: boolean }): SettingDefinition<boolean> {
    return { ...described(options), defaultValue: options.default, parse: parsers.boolean };
  },
  /** A non-empty string with a default, optionally matching `pattern` (`expectation` says how). */
  string(
    options: Described & { default: string; pattern?: RegExp; expectation?: string },
  ): SettingDefinition<string> {
    return {
      ...described(options),
      defaultValue: options.default,
      parse: parsers.text(options.pattern, options.expectation),
    };
  },
  /** A string that may be unset (empty counts as unset). */
  optionalString(options: Described): SettingDefinition<string | undefined> {
    return { ...described(options), defaultValue: undefined, parse: parsers.optionalText };
  },
  /** A URL of one of `protocols` (`['smtp:', 'smtps:']`), unset by default; never echoed in problems. */
  url(options: Described & { protocols: readonly string[] }): SettingDefinition<string | undefined> {
    const expectation = `${options.protocols.map((protocol) => `${protocol}//`).join(' or ')} URL`;
    return {
      ...described(options),
      defaultValue: undefined,
      secret: true,
      // "an smtp://", "an https://": the article goes by how the first letter is spelled out.
      parse: parsers.url(
        options.protocols,
        `a${/^[aefhilmnorsx]/i.test(expectation) ? 'n' : ''} ${expectation}`,
      ),
    };
  },
  /** A secret (a token, a password), unset by default; never echoed in problems. */
  secret(options: Described & { minLength?: number }): SettingDefinition<string | undefined> {
    return {
      ...described(options),
      defaultValue: undefined,
      parse: parsers.secret(options.minLength ?? 1),
      secret: true,
    };
  },
  /** A base64 32-byte key, unset by default; never echoed in problems. */
  key(options: Described): SettingDefinition<string | undefined> {
    return { ...described(options), defaultValue: undefined, parse: parsers.secretKey, secret: true };
  },
  /** A comma-separated list (a JSON array in the file). */
  list(options: Described & { default?: readonly string[] }): SettingDefinition<readonly string[]> {
    return { ...described(options), defaultValue: options.default ?? [], parse: parsers.list };
  },
  oneOf<T extends string>(options: Described & { values: readonly T[]; default: T }): SettingDefinition<T> {
    return { ...described(options), defaultValue: options.default, parse: parsers.oneOf(...options.values) };
  },
  /** Any other type: `parse` turns the raw value (a string, or JSON from the file) into it. */
  custom<T>(options: Described & { default: T; parse: SettingParser<T> }): SettingDefinition<T> {
    return { ...described(options), defaultValue: options.default, parse: options.parse };
  },
};

const described = ({ env, description, secret }: Described) => ({
  env,
  description,
  ...(secret ? { secret: true } : {}),
});

const ENV_NAME = /^[A-Z][A-Z0-9_]{0,99}$/;

export const settingErrors = {
  invalidEnv: (env: string) =>
    new SocleError('config.invalid_setting_name', `Setting variable "${env}" must be UPPER_SNAKE_CASE`),
  duplicate: (env: string, owners: readonly string[]) =>
    new SocleError(
      'config.duplicate_setting',
      `Setting ${env} is declared twice (by ${owners.join(' and ')}): every variable has one owner`,
      { details: { env, owners } },
    ),
};

/**
 * Declares a module's settings (see {@link setting}); checks the variable names where they are
 * written. Hand the result to `defineModule({ settings })`; the module reads the parsed values as
 * `context.settings`.
 */
export function defineSettings<Values>(spec: SettingsSpec<Values>): SettingsSpec<Values> {
  for (const definition of Object.values(spec) as SettingDefinition<unknown>[]) {
    if (!ENV_NAME.test(definition.env)) throw settingErrors.invalidEnv(definition.env);
    declaredFileKeys.add(fileKeyOf(definition.env));
  }
  return Object.freeze({ ...spec });
}

// Keys of `socle.config.json` some module loaded in this process declares: loadConfig accepts them
// even before it knows which modules run (createSocle then reads them for the modules it has).
const declaredFileKeys = new Set<string>();

/** Whether a module loaded in this process declares `key` (a `socle.config.json` key). */
export function isDeclaredFileKey(key: string): boolean {
  return declaredFileKeys.has(key);
}

/** `MAIL_FROM` → `mailFrom`: a module setting's key in `socle.config.json`. */
export function fileKeyOf(env: string): string {
  return env.toLowerCase().replace(/_([a-z0-9])/g, (_, letter: string) => letter.toUpperCase());
}

/** What loadConfig and createSocle need of a module to read its settings. */
export interface SettingsOwner {
  readonly name: string;
  /** A {@link SettingsSpec} (typed by each module with its own values). */
  readonly settings?: object | undefined;
}
