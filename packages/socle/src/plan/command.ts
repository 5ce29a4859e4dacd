import { readFile, writeFile } from 'node:fs/promises';
import { loadCalibration, loadPrices, PlanDataError } from './data.js';
import { plan } from './plan.js';
import { renderHtml, renderJson, renderText } from './render.js';
import { parseWorkload, WorkloadError } from './workload.js';

export interface PlanOptions {
  readonly json: boolean;
  /** Where to write the HTML report. */
  readonly html: string | undefined;
  /** A calibration profile of the user's own (default: the shipped one). */
  readonly calibration: string | undefined;
}

/**
 * `socle plan <workload.yaml>`: exit 0 when planned (the checks are part of the report, found
 * errors included), 2 when the workload or a data file is invalid, naming every problem.
 */
export async function runPlan(file: string, options: PlanOptions): Promise<number> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    process.stderr.write(`socle plan: cannot read ${file}: ${(error as Error).message}\n`);
    return 2;
  }
  try {
    const workload = parseWorkload(text);
    const result = plan(workload, loadPrices(), loadCalibration(options.calibration));
    process.stdout.write(options.json ? renderJson(result) : `${renderText(result)}\n`);
    if (options.html !== undefined) {
      await writeFile(options.html, renderHtml(result));
      process.stderr.write(`HTML report: ${options.html}\n`);
    }
    return 0;
  } catch (error) {
    if (error instanceof WorkloadError) {
      process.stderr.write(`socle plan: ${file}: ${error.message}\n`);
      return 2;
    }
    if (error instanceof PlanDataError) {
      process.stderr.write(`socle plan: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
}
