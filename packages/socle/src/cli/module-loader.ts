import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { SocleError } from '../kernel/errors/index.js';
import type { ModuleDefinition } from '../kernel/modules/index.js';

function isModuleDefinition(value: unknown): value is ModuleDefinition {
  return (
    typeof value === 'object' && value !== null && typeof (value as { name?: unknown }).name === 'string'
  );
}

/**
 * Imports the modules named in the configuration. A specifier starting with `.` or `/` is a file
 * resolved from `baseDir`; any other is a package name. The file's default export is a module or
 * an array of modules.
 */
export async function loadModules(
  specifiers: readonly string[],
  baseDir: string,
): Promise<ModuleDefinition[]> {
  const loaded: ModuleDefinition[] = [];
  for (const specifier of specifiers) {
    const target =
      specifier.startsWith('.') || path.isAbsolute(specifier)
        ? pathToFileURL(path.resolve(baseDir, specifier)).href
        : specifier;
    let exported: unknown;
    try {
      exported = ((await import(target)) as { default?: unknown }).default;
    } catch (error) {
      throw new SocleError(
        'module.load_failed',
        `Cannot load module "${specifier}": ${(error as Error).message}`,
        { cause: error },
      );
    }
    const candidates = Array.isArray(exported) ? exported : [exported];
    if (candidates.length === 0 || !candidates.every(isModuleDefinition)) {
      throw new SocleError(
        'module.load_failed',
        `"${specifier}" must export default a module made with defineModule(), or an array of them`,
      );
    }
    loaded.push(...candidates);
  }
  return loaded;
}
