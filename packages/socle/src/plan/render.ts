import type { PhasePlan, Plan, ProviderCost } from './plan.js';
import { formatNumber, formatRange, type Range } from './quantity.js';

/** The terminal report: one block per phase (load, machines, costs, the seed's figures, checks). */
export function renderText(plan: Plan): string {
  const out: string[] = [
    `Plan: ${plan.workload}${plan.source ? ` (from ${plan.source})` : ''}`,
    `Capacities: calibration measured ${plan.calibration.measuredAt} on ${plan.calibration.machine}`,
    `Prices: table recorded ${plan.prices.recordedOn}${plan.prices.checkedOn ? `, checked ${plan.prices.checkedOn}` : ''} (list prices; see each source; "unverified" marks a total using a figure not found when checked)`,
    `Targets: CPU ${formatNumber(plan.targets.cpuUtilization * 100)} %, memory ${formatNumber(plan.targets.memoryUtilization * 100)} %, nodes ${plan.targets.nodeVcpu} vCPU / ${plan.targets.nodeRamGiB} GiB, ${plan.targets.workerConcurrency} jobs per worker, database ${plan.targets.databaseVcpu} vCPU / ${plan.targets.databaseRamGiB} GiB`,
  ];
  for (const phase of plan.phases) out.push('', ...renderPhase(phase));
  const errors = plan.phases.reduce(
    (count, phase) => count + phase.checks.filter((check) => check.severity === 'error').length,
    0,
  );
  out.push('', `${errors} error(s) found in the workload's figures.`);
  return out.join('\n');
}

const money = (range: Range, currency: string) =>
  Number.isNaN(range.lo) ? 'n/a' : formatRange(range, `${currency}/month`);

function providerLine(cost: ProviderCost): string {
  const converted = cost.converted
    ? ` ≈ ${money(cost.converted.total, cost.converted.currency)} at ${cost.converted.rate}`
    : '';
  const status = cost.priceStatus === 'unverified' ? '  (unverified prices)' : '';
  return `    ${cost.provider.padEnd(15)} ${money(cost.total, cost.currency).padStart(24)}${converted}${status}`;
}

function renderPhase(phase: PhasePlan): string[] {
  const { load, api, workers, postgres } = phase;
  const lines = [
    `== ${phase.name} (${formatRange(phase.months, 'months')})`,
    `  load     ${formatRange(load.dailyUsers)} daily users, ${formatRange(load.concurrentUsers)} concurrent; peak ${formatRange(load.peakRequestsPerSecond.read)} reads/s, ${formatRange(load.peakRequestsPerSecond.write)} writes/s, ${formatRange(load.peakRequestsPerSecond.signIn)} sign-ins/s; ${formatRange(load.realtimeConnections)} realtime connections; ${formatRange(load.jobsPerDay)} jobs/day`,
    `  api      ${formatRange(api.nodes)} node(s), ${formatRange(api.vcpu)} vCPU needed, ${
      api.ramGiBPerNode.hi > 0
        ? `${formatRange(api.ramGiBPerNode)} GiB RAM per node needed`
        : 'RAM not calibrated (no realtime-fanout memory figure)'
    }`,
    `  workers  ${formatRange(workers.nodes)} node(s), ${formatRange(workers.concurrentJobs)} jobs in flight at peak, ${formatRange(workers.vcpu)} vCPU`,
    `  postgres ${postgres.shards > 1 ? `${postgres.shards} shards × ` : ''}${postgres.vcpu} vCPU / ${postgres.ramGiB} GiB + ${postgres.replicas} replica(s), ${formatRange(postgres.storageGB, 'GB')} at the end, ${formatRange(postgres.connections)} connections, ${formatRange(postgres.iops)} IOPS${postgres.cpu === undefined ? '' : ` and ${formatRange(postgres.cpu, 'vCPU')}`} at peak (${formatRange(postgres.shardsNeeded)} shard(s) needed)`,
    `  redis    ${phase.redis.needed ? 'yes' : 'no'}: ${phase.redis.why}`,
  ];
  const last = phase.storage.byMonth.at(-1);
  if (last !== undefined && last.totalGB.hi > 0)
    lines.push(
      `  files    ${formatRange(phase.storage.addedPerMonthGB, 'GB')}/month added, ${formatRange(last.totalGB, 'GB')} stored after month ${last.month} (${formatRange(last.coldGB, 'GB')} cold)`,
    );
  for (const load of phase.referenceLoads)
    lines.push(
      `  ${(load.unit === 'rooms' ? 'rooms' : 'mix').padEnd(8)} ${formatRange(load.rate, load.unit)} at peak, ${load.label}: ${
        load.vcpu === undefined
          ? 'NOT counted (the calibration profile has no figure for them; see the warning below)'
          : `${formatRange(load.vcpu, 'vCPU')} (included above; ${formatRange(load.nodes ?? load.vcpu)} node(s) of their own), from ${load.benchmark}`
      }`,
    );
  if (phase.fileUploads !== undefined)
    lines.push(
      `  uploads  ${formatRange(phase.fileUploads.peakMegabytesPerSecond, 'MB/s')} at peak through the API nodes: ${formatRange(phase.fileUploads.vcpu, 'vCPU')} (included above; ${formatRange(phase.fileUploads.nodes)} node(s) of their own), from ${phase.fileUploads.benchmark}`,
    );
  if (phase.egressGBPerMonth.hi > 0 || phase.cdn !== undefined)
    lines.push(
      `  egress   ${formatRange(phase.egressGBPerMonth, 'GB')}/month from the origin${phase.cdn ? `, ${formatRange(phase.cdn.egressGB, 'GB')}/month from a CDN` : ''}`,
    );
  if (phase.turn !== undefined)
    lines.push(`  turn     ${formatRange(phase.turn.relayGB, 'GB')}/month of voice relayed`);
  for (const meeting of phase.meetings)
    lines.push(
      `  meetings ${meeting.provider}: ${formatRange(meeting.concurrentAtPeak)} at once at peak, ${formatRange(meeting.hosts)} licensed host(s)`,
    );
  lines.push('  capacity from:', ...phase.capacitySources.map((source) => `    ${source}`));
  lines.push('  monthly infrastructure by provider:', ...phase.providers.map(providerLine));
  if (phase.objectStores.length > 0)
    lines.push('  object storage by store:', ...phase.objectStores.map(providerLine));
  if (phase.cdn !== undefined) lines.push('  CDN by provider:', ...phase.cdn.services.map(providerLine));
  if (phase.turn !== undefined)
    lines.push(
      '  managed TURN relay (or self-hosted coTURN, in each provider above):',
      ...phase.turn.services.map(providerLine),
    );
  if (phase.thirdParty.length > 0)
    lines.push(
      '  third parties:',
      ...phase.thirdParty.map(
        (cost) =>
          `    ${cost.component.padEnd(24)} ${money(cost.monthly, cost.currency).padStart(24)}  ${cost.detail}`,
      ),
    );
  for (const table of phase.seedTables)
    lines.push(
      `  seed: ${table.title}: rows add up to ${money(table.computedTotal, table.currency)}, stated ${money(table.statedTotal, table.currency)} ${table.ok ? '(right)' : '(WRONG)'}`,
    );
  for (const claim of phase.claims)
    lines.push(
      `  seed: "${claim.text}": stated ${formatRange(claim.stated, claim.unit)}, computed ${formatRange(claim.computed, claim.unit)} ${claim.ok ? '(right)' : '(WRONG)'}`,
    );
  for (const check of phase.checks)
    lines.push(`  ${check.severity === 'error' ? 'ERROR' : 'warn '} [${check.kind}] ${check.message}`);
  return lines;
}

const escapeHtml = (text: string) =>
  text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');

const COLORS = [
  '#4e79a7',
  '#f28e2b',
  '#e15759',
  '#76b7b2',
  '#59a14f',
  '#edc948',
  '#b07aa1',
  '#ff9da7',
  '#9c755f',
];

/** A horizontal stacked bar per provider: its cost lines (upper bound), to scale. */
function costChart(phase: PhasePlan): string {
  const providers = phase.providers.filter((cost) => !Number.isNaN(cost.total.hi));
  // Bars in the report currency where the workload gives the rate; otherwise in their own, said so.
  const factor = (cost: ProviderCost) => cost.converted?.rate ?? 1;
  const max = Math.max(1, ...providers.map((cost) => cost.total.hi * factor(cost)));
  const components = [...new Set(providers.flatMap((cost) => cost.lines.map((line) => line.component)))];
  const rowHeight = 26;
  const width = 640;
  const labelWidth = 110;
  const bars = providers.map((cost, row) => {
    let x = labelWidth;
    const segments = cost.lines.map((line) => {
      const w = ((width - labelWidth - 160) * line.monthly.hi * factor(cost)) / max;
      const color = COLORS[components.indexOf(line.component) % COLORS.length];
      const rect = `<rect x="${x.toFixed(1)}" y="${row * rowHeight + 4}" width="${Math.max(0, w).toFixed(1)}" height="${rowHeight - 8}" fill="${color}"><title>${escapeHtml(`${line.component}: ${formatRange(line.monthly, cost.currency)}`)}</title></rect>`;
      x += Math.max(0, w);
      return rect;
    });
    return `<text x="0" y="${row * rowHeight + 18}">${escapeHtml(cost.provider)}</text>${segments.join('')}<text x="${(x + 6).toFixed(1)}" y="${row * rowHeight + 18}">${escapeHtml(
      (cost.converted
        ? `${formatRange(cost.converted.total, cost.converted.currency)} (${formatRange(cost.total, cost.currency)})`
        : formatRange(cost.total, cost.currency)) + (cost.priceStatus === 'unverified' ? ', unverified' : ''),
    )}</text>`;
  });
  const legend = components
    .map(
      (component, index) =>
        `<span class="key"><i style="background:${COLORS[index % COLORS.length]}"></i>${escapeHtml(component)}</span>`,
    )
    .join(' ');
  return `<svg role="img" aria-label="monthly cost by provider, stacked by component" width="${width}" height="${providers.length * rowHeight}" font-size="12">${bars.join('')}</svg><div class="legend">${legend}</div>`;
}

/** API capacity headroom: the share of the planned vCPU the peak uses. */
function headroomChart(phase: PhasePlan): string {
  const used = Math.min(1, phase.api.utilization.hi);
  return `<svg role="img" aria-label="API CPU at peak" width="300" height="22"><rect width="300" height="22" fill="#e6e6e6"/><rect width="${(300 * used).toFixed(1)}" height="22" fill="#4e79a7"/></svg> <span>${formatNumber(used * 100)} % of the API nodes' vCPU busy at peak</span>`;
}

/** The HTML report: static, one file, inline CSS and SVG, no script and no external resource. */
export function renderHtml(plan: Plan): string {
  const phases = plan.phases
    .map((phase) => {
      const text = renderPhase(phase).slice(1).join('\n');
      const checks =
        phase.checks.length === 0
          ? '<p>No problem found in this phase’s figures.</p>'
          : `<ul class="checks">${phase.checks.map((check) => `<li class="${check.severity}"><b>${check.kind}</b> ${escapeHtml(check.message)}</li>`).join('')}</ul>`;
      return `<section><h2>${escapeHtml(phase.name)}</h2><h3>Checks</h3>${checks}<h3>Monthly infrastructure cost by provider</h3>${costChart(phase)}<h3>Capacity headroom</h3>${headroomChart(phase)}<h3>Details</h3><pre>${escapeHtml(text)}</pre></section>`;
    })
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Plan: ${escapeHtml(plan.workload)}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{border-bottom:1px solid #ccc;margin-top:2em}h3{font-size:1em;margin:1.2em 0 .4em}
pre{background:#f6f6f6;padding:.8em;overflow-x:auto;font-size:12px}
.checks li.error{color:#a11}.checks li.warning{color:#a60}
.legend{font-size:12px;margin:.3em 0}.key{margin-right:1em;white-space:nowrap}.key i{display:inline-block;width:10px;height:10px;margin-right:4px}
.meta{color:#555;font-size:12px}
</style></head><body>
<h1>Plan: ${escapeHtml(plan.workload)}</h1>
<p class="meta">${plan.source ? `From ${escapeHtml(plan.source)}. ` : ''}Capacities measured ${escapeHtml(plan.calibration.measuredAt)} on ${escapeHtml(plan.calibration.machine)}. Prices recorded ${escapeHtml(plan.prices.recordedOn)}: ${escapeHtml(plan.prices.note)}</p>
${phases}
</body></html>
`;
}

/** JSON for tools: the plan as computed (ranges as {lo, hi}). */
export function renderJson(plan: Plan): string {
  return `${JSON.stringify(plan, null, 2)}\n`;
}
