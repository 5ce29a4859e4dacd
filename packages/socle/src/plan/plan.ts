import type {
  CalibrationProfile,
  Capacity,
  ComputeProvider,
  Instance,
  ObjectStore,
  PerGbService,
  PriceTable,
} from './data.js';
import { isUnverified, monthlyPrice } from './data.js';
import {
  type Currency,
  exact,
  formatNumber,
  formatRange,
  map,
  overlaps,
  type Range,
  SECONDS,
  sum,
  times,
} from './quantity.js';
import {
  CLAIM_UNITS,
  type Claim,
  type Phase,
  type RequestProfile,
  type RoomProfile,
  type VoiceLoad,
  type Workload,
} from './workload.js';

/**
 * The planner: from a workload and Socle's measured capacities, machine counts per phase, costs per
 * provider and the checks a seed's arithmetic fails. Pure functions of their inputs, so every
 * formula is unit-tested without a run.
 */

const MONTH = SECONDS.month;
const DAY = SECONDS.day;
/** Claims within this share of the computed figure pass (rounding in a document). */
export const CLAIM_TOLERANCE = 0.1;
/** Postgres connections one Socle process opens at most with its default pools. */
export const CONNECTIONS_PER_PROCESS = 15;

/**
 * The reference apps a workload's load can be "like": the capacity of the calibration profile
 * each is sized from, and the bench run that measures it (in Socle's repository).
 */
export const REFERENCE_APPS: Readonly<
  Record<
    RoomProfile | RequestProfile,
    { readonly capacity: string; readonly label: string; readonly field: string; readonly scenario: string }
  >
> = {
  strategybuzzer: {
    capacity: 'strategybuzzerRoom',
    label: 'StrategyBuzzer-like rooms',
    field: 'rooms',
    scenario: 'strategybuzzer',
  },
  cryptocare: {
    capacity: 'cryptocareRequest',
    label: 'CryptoCare-like requests',
    field: 'requestMix',
    scenario: 'cryptocare',
  },
};

/** A phase's load sized from a reference app's capacity (or not, when the profile lacks it). */
export interface ReferenceLoad {
  readonly like: RoomProfile | RequestProfile;
  readonly label: string;
  /** Rooms at once at peak (`rooms`), or requests per second at peak (`requests/s`). */
  readonly rate: Range;
  readonly unit: 'rooms' | 'requests/s';
  /** vCPU it takes on the API nodes (counted in `api.vcpu`); undefined: no figure, not counted. */
  readonly vcpu: Range | undefined;
  readonly nodes: Range | undefined;
  readonly benchmark: string | undefined;
}

export interface Check {
  readonly severity: 'error' | 'warning';
  readonly kind: 'arithmetic' | 'units' | 'target' | 'missing-component' | 'limit' | 'currency' | 'sizing';
  readonly message: string;
}

export interface CostLine {
  readonly component: string;
  readonly detail: string;
  readonly monthly: Range;
}

export interface ProviderCost {
  readonly provider: string;
  readonly name: string;
  readonly currency: Currency;
  readonly lines: readonly CostLine[];
  readonly total: Range;
  /** The total in the report currency, when the workload gives the rate. */
  readonly converted:
    | { readonly total: Range; readonly currency: Currency; readonly rate: number }
    | undefined;
  readonly source: string;
  readonly recordedOn: string;
  /** How far the prices used were checked (see prices.json): any figure not found makes it `unverified`. */
  readonly priceStatus: 'official' | 'secondary' | 'unverified';
}

export interface ClaimResult {
  readonly text: string;
  readonly unit: string;
  readonly stated: Range;
  readonly computed: Range;
  readonly ok: boolean;
  readonly note?: string;
}

export interface SeedTableResult {
  readonly title: string;
  readonly rows: readonly { readonly item: string; readonly cost: Range; readonly currency: Currency }[];
  readonly statedTotal: Range;
  readonly computedTotal: Range;
  readonly currency: Currency;
  readonly ok: boolean;
}

export interface PhasePlan {
  readonly name: string;
  readonly months: Range;
  readonly load: {
    readonly dailyUsers: Range;
    readonly concurrentUsers: Range;
    readonly peakRequestsPerSecond: { readonly read: Range; readonly write: Range; readonly signIn: Range };
    readonly realtimeConnections: Range;
    readonly deliveriesPerSecond: Range;
    readonly jobsPerDay: Range;
  };
  readonly api: {
    readonly vcpu: Range;
    readonly nodes: Range;
    readonly ramGiBPerNode: Range;
    readonly utilization: Range;
  };
  readonly workers: { readonly concurrentJobs: Range; readonly vcpu: Range; readonly nodes: Range };
  /**
   * Uploads through the API nodes at peak: MB/s, the vCPU they take (counted in `api.vcpu`) and
   * the nodes of `nodeVcpu` they alone would need; undefined without files or without a measured
   * upload figure in the calibration profile.
   */
  readonly fileUploads:
    | {
        readonly peakMegabytesPerSecond: Range;
        readonly vcpu: Range;
        readonly nodes: Range;
        readonly benchmark: string;
      }
    | undefined;
  /** Loads sized from a reference app's benchmark (`rooms`, `requestMix`). */
  readonly referenceLoads: readonly ReferenceLoad[];
  readonly postgres: {
    readonly storageGB: Range;
    /** Connections each Postgres server receives (every process connects to every shard). */
    readonly connections: Range;
    readonly replicas: number;
    readonly vcpu: number;
    readonly ramGiB: number;
    /** Disk operations per second at peak: writes × IOPS per write + reads × miss share. */
    readonly iops: Range;
    /**
     * vCPU the Postgres backends need at peak (measured CPU per operation ÷ `cpuUtilization`),
     * undefined when the calibration profile has no Postgres CPU figure.
     */
    readonly cpu: Range | undefined;
    /** Shards the load needs (IOPS and storage over one server's targets), and the shards planned (the upper end). */
    readonly shardsNeeded: Range;
    readonly shards: number;
  };
  readonly redis: { readonly needed: boolean; readonly why: string };
  readonly storage: {
    readonly addedPerMonthGB: Range;
    /** GB stored at the end of each month of the phase: total and cold. */
    readonly byMonth: readonly { readonly month: number; readonly totalGB: Range; readonly coldGB: Range }[];
  };
  readonly egressGBPerMonth: Range;
  /** Egress served by a CDN (the workload's `cdn.share`), and what it costs per CDN. */
  readonly cdn: { readonly egressGB: Range; readonly services: readonly ProviderCost[] } | undefined;
  /** Voice media relayed by TURN a month, and what a managed relay costs. */
  readonly turn: { readonly relayGB: Range; readonly services: readonly ProviderCost[] } | undefined;
  /** Licensed meeting hosts needed (one meeting at a time each), per meeting provider. */
  readonly meetings: readonly {
    readonly provider: string;
    readonly concurrentAtPeak: Range;
    readonly hosts: Range;
  }[];
  readonly thirdParty: readonly (CostLine & { readonly currency: Currency; readonly source: string })[];
  readonly providers: readonly ProviderCost[];
  readonly objectStores: readonly ProviderCost[];
  readonly capacitySources: readonly string[];
  readonly claims: readonly ClaimResult[];
  readonly seedTables: readonly SeedTableResult[];
  readonly checks: readonly Check[];
}

export interface Plan {
  readonly workload: string;
  readonly source: string | undefined;
  readonly currency: Currency;
  readonly calibration: { readonly measuredAt: string; readonly machine: string; readonly note: string };
  readonly prices: {
    readonly recordedOn: string;
    readonly checkedOn: string | undefined;
    readonly note: string;
  };
  readonly targets: Workload['targets'];
  readonly phases: readonly PhasePlan[];
}

const ceil = (range: Range): Range => map(range, Math.ceil);
const atLeast = (range: Range, minimum: number): Range => map(range, (value) => Math.max(value, minimum));

/** Daily and concurrent users, each derived from the other through the stated share when absent. */
export function users(phase: Phase): { daily: Range; concurrent: Range } {
  const { daily, concurrent, concurrentShare } = phase.users;
  if (daily !== undefined && concurrent !== undefined) return { daily, concurrent };
  if (daily !== undefined)
    return { daily, concurrent: concurrentShare === undefined ? exact(0) : times(daily, concurrentShare) };
  if (concurrent !== undefined)
    return {
      concurrent,
      daily:
        concurrentShare === undefined ? concurrent : map(concurrent, (value) => value / concurrentShare.lo),
    };
  return { daily: exact(0), concurrent: exact(0) };
}

/** Peak requests per second of one kind: users × per-user rate × peak factor. */
export const peakRate = (dailyUsers: Range, perUser: Range, peakFactor: Range): Range =>
  times(times(dailyUsers, perUser), peakFactor);

/** vCPU to serve `rate` operations per second at `cpuMs` each, kept at `utilization`. */
export const vcpuFor = (rate: Range, cpuMs: number, utilization: number): Range =>
  times(rate, cpuMs / 1000 / utilization);

/** Jobs in flight (Little's law): arrivals per second × seconds each. */
export const concurrentJobs = (rate: Range, duration: Range): Range => times(rate, duration);

/** GB stored after `months` months of `perMonthGB`, keeping each file `retentionMonths`. */
export function storedAfter(perMonthGB: Range, months: number, retentionMonths: number | undefined): Range {
  return times(perMonthGB, retentionMonths === undefined ? months : Math.min(months, retentionMonths));
}

/**
 * GB a TURN relay sends a month: the average concurrent users (peak ÷ peak factor) in a call ×
 * the share relayed × both directions of each relayed stream (it reaches the relay and leaves it
 * towards the other side, and the other side's stream comes back through it) × bitrate × a month.
 */
export function turnRelayGB(concurrentAtPeak: Range, peakFactor: Range, voice: VoiceLoad): Range {
  const average = { lo: concurrentAtPeak.lo / peakFactor.hi, hi: concurrentAtPeak.hi / peakFactor.lo };
  return times(times(times(times(average, voice.share), voice.relayed), voice.bitrate), (2 * MONTH) / 1e9);
}

/** Meetings at once at peak (Little: arrivals/s × peak factor × duration) and the hosts they need. */
export function meetingHosts(
  rate: Range,
  duration: Range,
  peakFactor: Range,
): { concurrent: Range; hosts: Range } {
  const concurrent = times(times(rate, peakFactor), duration);
  return { concurrent, hosts: atLeast(ceil(concurrent), 1) };
}

/** A per-GB service's monthly bill: base fee + GB beyond the free allowance × price. */
export const perGbMonthly = (service: PerGbService, gigabytes: number): number =>
  (service.baseMonthly ?? 0) + Math.max(0, gigabytes - (service.freeGB ?? 0)) * service.perGB;

/** Disk operations/s at peak: each write's IOPS, and the reads that miss the cache (one each). */
export const databaseIops = (
  writesPerSecond: Range,
  readsPerSecond: Range,
  iopsPerWrite: number,
  readMissShare: number,
): Range => add2(times(writesPerSecond, iopsPerWrite), times(readsPerSecond, readMissShare));

/**
 * Shards needed: the largest of IOPS, storage and (when measured) Postgres vCPU over what one
 * server is planned to hold; at least 1.
 */
export const shardsNeeded = (
  iops: Range,
  storageGB: Range,
  maxIops: number,
  maxStorageGB: number,
  cpu?: { readonly vcpu: Range; readonly perServer: number },
): Range =>
  atLeast(
    ceil({
      lo: Math.max(
        iops.lo / maxIops,
        storageGB.lo / maxStorageGB,
        (cpu?.vcpu.lo ?? 0) / (cpu?.perServer ?? 1),
      ),
      hi: Math.max(
        iops.hi / maxIops,
        storageGB.hi / maxStorageGB,
        (cpu?.vcpu.hi ?? 0) / (cpu?.perServer ?? 1),
      ),
    }),
    1,
  );

/** Rooms at once at peak from players: concurrent users × the share in a room ÷ players per room. */
export const roomsFromPlayers = (concurrentUsers: Range, share: Range, playersPerRoom: Range): Range => ({
  lo: (concurrentUsers.lo * share.lo) / playersPerRoom.hi,
  hi: (concurrentUsers.hi * share.hi) / playersPerRoom.lo,
});

/** MB uploaded per second on average: Σ files per second × size (GB) × 1000. */
export const uploadMegabytesPerSecond = (files: readonly { rate: Range; size: Range }[]): Range =>
  sum(files.map((file) => times(times(file.rate, file.size), 1000)));

/**
 * vCPU of the Postgres backends at peak: Σ operations/s × their measured Postgres CPU per
 * operation ÷ 1000 ÷ utilization, over the kinds whose capacity has that figure; undefined when
 * none has it (a profile measured on PGlite, or on a Postgres on another machine).
 */
export function databaseVcpu(
  loads: readonly { readonly rate: Range; readonly capacity: Capacity | undefined }[],
  utilization: number,
): Range | undefined {
  const measuredLoads = loads.filter((load) => load.capacity?.databaseCpuMsPerOperation !== undefined);
  if (measuredLoads.length === 0) return undefined;
  return sum(
    measuredLoads.map((load) =>
      vcpuFor(load.rate, load.capacity?.databaseCpuMsPerOperation ?? 0, utilization),
    ),
  );
}

/** A capacity the profile measured with a usable CPU figure (a profile may hold other figures). */
export function measured(capacity: Capacity | undefined): Capacity | undefined {
  return capacity !== undefined &&
    typeof capacity.cpuMsPerOperation === 'number' &&
    capacity.cpuMsPerOperation > 0
    ? capacity
    : undefined;
}

/** The cheapest instance of a provider with at least this vCPU and RAM (undefined: none is). */
export function cheapestInstance(
  provider: ComputeProvider,
  vcpu: number,
  ramGiB: number,
): Instance | undefined {
  return provider.instances
    .filter((instance) => instance.vcpu >= vcpu && instance.ramGiB >= ramGiB)
    .sort((a, b) => monthlyPrice(a) - monthlyPrice(b))[0];
}

/** Monthly object storage bill: storage (hot and cold), egress, the plan's base fee and allowances. */
export function objectStoreMonthly(
  store: ObjectStore,
  hotGB: number,
  coldGB: number,
  egressGB: number,
): number {
  const coldPrice = store.coldGBMonth ?? store.storageGBMonth;
  const storedHot = Math.max(0, hotGB - (store.includedGB ?? 0));
  const freeEgress = Math.max(
    store.includedEgressGB ?? 0,
    store.freeEgressTimesStorage === undefined ? 0 : store.freeEgressTimesStorage * (hotGB + coldGB),
  );
  return (
    (store.baseMonthly ?? 0) +
    storedHot * store.storageGBMonth +
    coldGB * coldPrice +
    Math.max(0, egressGB - freeEgress) * store.egressGB
  );
}

/** The metric a claim names, computed from the phase's facts. */
export function claimMetric(claim: Claim, phase: Phase, storage: PhasePlan['storage']): Range {
  switch (claim.metric) {
    case 'aiAudioHoursPerMonth':
      return times(sum(phase.ai.map((ai) => ai.audio ?? exact(0))), MONTH / 3600);
    case 'storageAddedPerMonthGB':
      return storage.addedPerMonthGB;
    case 'storageAfterPhaseGB':
      return storage.byMonth.at(-1)?.totalGB ?? exact(0);
    case 'jobsPerDay':
      return times(sum(phase.jobs.map((job) => job.rate)), DAY);
    case 'downtimeHoursPerYear':
      return map(phase.availability ?? exact(1), (availability) => (1 - availability) * 8760);
    case 'costPerUserPerMonth': {
      const cost = claim.cost ?? exact(0);
      const people = claim.users ?? exact(1);
      return { lo: cost.lo / people.hi, hi: cost.hi / people.lo };
    }
  }
}

function checkClaim(claim: Claim, phase: Phase, storage: PhasePlan['storage']): ClaimResult {
  const computed = claimMetric(claim, phase, storage);
  const ok = overlaps(claim.stated, computed, CLAIM_TOLERANCE);
  let note: string | undefined;
  if (
    !ok &&
    claim.metric === 'costPerUserPerMonth' &&
    overlaps(claim.stated, times(computed, 12), CLAIM_TOLERANCE)
  )
    note = `the stated figure is the cost per user per year (${formatRange(times(computed, 12))}), not per month`;
  if (
    !ok &&
    claim.metric === 'aiAudioHoursPerMonth' &&
    overlaps(claim.stated, times(computed, 60), CLAIM_TOLERANCE)
  )
    note = 'the stated figure counts minutes as hours';
  return {
    text: claim.text,
    unit: CLAIM_UNITS[claim.metric],
    stated: claim.stated,
    computed,
    ok,
    ...(note ? { note } : {}),
  };
}

/** Each end of `a` within `tolerance` of the same end of `b`: a document's sum, rounded. */
export const endsMatch = (a: Range, b: Range, tolerance: number): boolean =>
  Math.abs(a.lo - b.lo) <= tolerance * Math.max(Math.abs(b.lo), 1e-9) &&
  Math.abs(a.hi - b.hi) <= tolerance * Math.max(Math.abs(b.hi), 1e-9);

/** A seed's table total is right when each end is within 10 % of its rows' sum. */
export const TABLE_TOLERANCE = 0.1;
/** A seed's instance price is right within 15 % of the list price (regions, rounding). */
export const PRICE_TOLERANCE = 0.15;

function checkRowPrice(
  row: Phase['seedTables'][number]['rows'][number],
  title: string,
  prices: PriceTable,
  workload: Workload,
  checks: Check[],
): void {
  if (row.provider === undefined || row.instances === undefined) return;
  const platform = prices.platforms?.[row.provider];
  if (platform !== undefined) {
    const plan = platform.plans[row.instances.type.toLowerCase()];
    if (plan === undefined) {
      checks.push({
        severity: 'warning',
        kind: 'missing-component',
        message: `${title}: "${row.item}": ${platform.name} has no plan "${row.instances.type}" in the price table (plans: ${Object.keys(platform.plans).join(', ')}); price not checked`,
      });
      return;
    }
    const listed = convert(
      { ...times(row.instances.count, plan), currency: platform.currency },
      row.cost.currency,
      workload,
      checks,
      `${title}: "${row.item}"`,
    );
    if (listed !== undefined && !endsMatch(row.cost, listed, PRICE_TOLERANCE))
      checks.push({
        severity: 'error',
        kind: 'arithmetic',
        message: `${title}: "${row.item}" is priced ${formatRange(row.cost, `${row.cost.currency}/month`)}; ${formatRange(row.instances.count)} × ${platform.name} ${row.instances.type} lists at ${formatRange(listed, `${row.cost.currency}/month`)} ${platform.unit} (${platform.source}, checked ${platform.checkedAt}: ${platform.status})`,
      });
    return;
  }
  const provider = prices.compute[row.provider];
  const instance = provider?.instances.find((entry) => entry.type === row.instances?.type);
  if (provider === undefined || instance === undefined) {
    checks.push({
      severity: 'warning',
      kind: 'missing-component',
      message: `${title}: "${row.item}": ${row.provider} ${row.instances.type} is not in the price table; price not checked`,
    });
    return;
  }
  const listed = times(row.instances.count, monthlyPrice(instance));
  const inRowCurrency = convert(
    { ...listed, currency: provider.currency },
    row.cost.currency,
    workload,
    checks,
    `${title}: "${row.item}"`,
  );
  if (inRowCurrency === undefined) return;
  if (!endsMatch(row.cost, inRowCurrency, PRICE_TOLERANCE))
    checks.push({
      severity: 'error',
      kind: 'arithmetic',
      message: `${title}: "${row.item}" is priced ${formatRange(row.cost, `${row.cost.currency}/month`)}; ${formatRange(row.instances.count)} × ${instance.type} lists at ${formatRange(inRowCurrency, `${row.cost.currency}/month`)} (${provider.name}, ${provider.source}, recorded ${provider.recordedOn}${isUnverified(provider, instance) ? `; this price is unverified: not found when checked on ${provider.checkedAt}` : `; checked ${provider.checkedAt}: ${provider.status}`})`,
    });
}

function seedTable(
  table: Phase['seedTables'][number],
  checks: Check[],
  prices: PriceTable,
  workload: Workload,
): SeedTableResult {
  for (const row of table.rows) checkRowPrice(row, table.title, prices, workload, checks);
  const currency = table.total.currency;
  const foreign = table.rows.filter((row) => row.cost.currency !== currency);
  if (foreign.length > 0)
    checks.push({
      severity: 'error',
      kind: 'currency',
      message: `${table.title}: rows in ${[...new Set(foreign.map((row) => row.cost.currency))].join(', ')} are added to a total in ${currency} without a stated rate (${foreign.map((row) => row.item).join('; ')})${
        workload.rates[foreign[0]?.cost.currency ?? currency] === undefined
          ? ''
          : "; checked here at the workload's own rate"
      }`,
    });
  const converted = table.rows.map((row) =>
    convert(row.cost, currency, workload, checks, `${table.title}: "${row.item}"`),
  );
  const computedTotal = sum(converted.filter((cost): cost is Range => cost !== undefined));
  const matches = endsMatch(table.total, computedTotal, TABLE_TOLERANCE);
  const ok = matches && foreign.length === 0;
  if (!matches)
    checks.push({
      severity: 'error',
      kind: 'arithmetic',
      message: `${table.title}: the rows add up to ${formatRange(computedTotal, `${currency}/month`)}, the document says ${formatRange(table.total, `${currency}/month`)}`,
    });
  return {
    title: table.title,
    rows: table.rows.map((row) => ({ item: row.item, cost: row.cost, currency: row.cost.currency })),
    statedTotal: table.total,
    computedTotal,
    currency,
    ok,
  };
}

function planPhase(
  workload: Workload,
  phase: Phase,
  prices: PriceTable,
  calibration: CalibrationProfile,
): PhasePlan {
  const checks: Check[] = [];
  const { targets } = workload;
  const capacities = calibration.capacities;
  const tenantRead = capacities.tenantRead as NonNullable<typeof capacities.tenantRead>;
  const signIn = capacities.signIn as NonNullable<typeof capacities.signIn>;
  const job = capacities.job as NonNullable<typeof capacities.job>;
  const delivery = measured(capacities.realtimeDelivery);
  const writeCapacity = measured(capacities.write);
  const uploadCapacity = measured(capacities.fileUpload);
  const memory = calibration.memory ?? {};
  const { daily, concurrent } = users(phase);

  if (phase.users.daily && phase.users.concurrent && phase.users.concurrentShare) {
    const expected = times(phase.users.daily, phase.users.concurrentShare);
    if (!overlaps(expected, phase.users.concurrent, 0.25))
      checks.push({
        severity: 'error',
        kind: 'units',
        message: `users: ${formatRange(phase.users.concurrent)} concurrent is ${formatRange(
          {
            lo: (100 * phase.users.concurrent.lo) / phase.users.daily.hi,
            hi: (100 * phase.users.concurrent.hi) / phase.users.daily.lo,
          },
          '%',
        )} of ${formatRange(phase.users.daily)} daily users, not the stated ${formatRange(times(phase.users.concurrentShare, 100), '%')}: daily (DAU) and concurrent (CCU) users are mixed up`,
      });
  }

  const read = peakRate(daily, phase.requests.read, phase.peakFactor);
  const write = peakRate(daily, phase.requests.write, phase.peakFactor);
  const signInRate = peakRate(daily, phase.requests.signIn, phase.peakFactor);
  const connections = phase.realtime
    ? times(concurrent, phase.realtime.connectionsPerConcurrentUser)
    : exact(0);
  const deliveries = phase.realtime ? times(connections, phase.realtime.messagesPerConnection) : exact(0);
  const capacitySources = [
    `reads: ${formatNumber(tenantRead.cpuMsPerOperation)} ms CPU each, from ${tenantRead.benchmark}`,
    writeCapacity === undefined
      ? `writes: ${formatNumber(tenantRead.cpuMsPerOperation)} ms CPU each, as tenant reads (the calibration profile has no write figure: write a new one with socle bench --calibrate)`
      : `writes: ${formatNumber(writeCapacity.cpuMsPerOperation)} ms CPU each, from ${writeCapacity.benchmark}`,
    `sign-ins: ${formatNumber(signIn.cpuMsPerOperation)} ms CPU each, from ${signIn.benchmark}`,
    `jobs: ${formatNumber(job.cpuMsPerOperation)} ms CPU of queue overhead each, from ${job.benchmark}`,
  ];
  const uploadRate = times(uploadMegabytesPerSecond(phase.files), phase.peakFactor);
  const uploadCpu =
    uploadCapacity === undefined
      ? exact(0)
      : vcpuFor(uploadRate, uploadCapacity.cpuMsPerOperation, targets.cpuUtilization);
  if (phase.files.length > 0 && uploadCapacity === undefined)
    checks.push({
      severity: 'warning',
      kind: 'missing-component',
      message:
        'files: the calibration profile has no file upload figure; the CPU of uploads is not counted (write a new profile with socle bench --calibrate)',
    });
  if (phase.files.length > 0 && uploadCapacity !== undefined)
    capacitySources.push(
      `file uploads: ${formatRange(uploadRate, 'MB/s')} at peak × ${formatNumber(uploadCapacity.cpuMsPerOperation)} ms CPU per MB, from ${uploadCapacity.benchmark}`,
    );
  // Loads like a reference app's: sized from that app's own benchmark, or named as not counted.
  const referenceLoads: ReferenceLoad[] = [];
  const referenceDatabase: { what: string; rate: Range; capacity: Capacity | undefined }[] = [];
  let mixReads = exact(0);
  let mixWrites = exact(0);
  const reference = (
    like: RoomProfile | RequestProfile,
    rate: Range,
    unit: ReferenceLoad['unit'],
    notCounted: string,
  ): Capacity | undefined => {
    const app = REFERENCE_APPS[like];
    const figure = measured(capacities[app.capacity]);
    // A warning like the missing upload figure's: the workload's own figures are not wrong, the
    // profile lacks a measurement (the shipped one until a quiet run records the reference apps).
    if (figure === undefined)
      checks.push({
        severity: 'warning',
        kind: 'missing-component',
        message: `${app.field}: ${app.label} need the calibration profile's ${app.capacity} figure, which it does not have: ${notCounted} not counted (measure it in Socle's repository with npm run bench -- --scenario ${app.scenario} --calibrate, then plan with --calibration)`,
      });
    const vcpu =
      figure === undefined ? undefined : vcpuFor(rate, figure.cpuMsPerOperation, targets.cpuUtilization);
    referenceLoads.push({
      like,
      label: app.label,
      rate,
      unit,
      vcpu,
      nodes: vcpu === undefined ? undefined : ceil(map(vcpu, (value) => value / targets.nodeVcpu)),
      benchmark: figure?.benchmark,
    });
    return figure;
  };
  if (phase.rooms !== undefined) {
    const { rooms } = phase;
    const roomCount =
      rooms.concurrent ?? roomsFromPlayers(concurrent, rooms.share, rooms.playersPerRoom ?? exact(1));
    const figure = reference(
      rooms.like,
      roomCount,
      'rooms',
      "the rooms' CPU on the API nodes and on Postgres is",
    );
    referenceDatabase.push({
      what: `${REFERENCE_APPS[rooms.like].label} (per room-second)`,
      rate: roomCount,
      capacity: figure,
    });
    if (figure !== undefined) {
      const under = figure.measuredUnder ?? {};
      const measuredPlayers = under.playersPerRoom;
      if (
        rooms.playersPerRoom !== undefined &&
        measuredPlayers !== undefined &&
        (rooms.playersPerRoom.lo !== measuredPlayers || rooms.playersPerRoom.hi !== measuredPlayers)
      )
        checks.push({
          severity: 'warning',
          kind: 'sizing',
          message: `rooms: the ${REFERENCE_APPS[rooms.like].capacity} figure was measured with rooms of ${formatNumber(measuredPlayers)} players; this workload's have ${formatRange(rooms.playersPerRoom)}: CPU per room is taken as measured (a room's broadcasts grow with its players, so smaller rooms cost less and larger ones more)`,
        });
      const rate = [
        measuredPlayers === undefined ? undefined : `rooms of ${formatNumber(measuredPlayers)} players`,
        under.buzzesPerRoomSecond === undefined
          ? undefined
          : `${formatNumber(under.buzzesPerRoomSecond)} buzzes/s`,
        under.questionsPerRoomSecond === undefined
          ? undefined
          : `a question every ${formatNumber(1 / under.questionsPerRoomSecond)} s`,
        under.chatMessagesPerRoomSecond === undefined
          ? undefined
          : `${formatNumber(under.chatMessagesPerRoomSecond)} chat messages/s per room`,
        figure.measuredPerSecond > 0 ? `${formatNumber(figure.measuredPerSecond)} rooms at once` : undefined,
        figure.p99Ms === undefined ? undefined : `buzz → order p99 ${formatNumber(figure.p99Ms)} ms`,
      ].filter((part) => part !== undefined);
      capacitySources.push(
        `${REFERENCE_APPS[rooms.like].label}: ${formatRange(roomCount)} at peak × ${formatNumber(figure.cpuMsPerOperation)} ms CPU per room-second (${formatNumber(figure.operationsPerVcpuSecond)} rooms per vCPU${rate.length > 0 ? `; measured with ${rate.join(', ')}` : ''}), from ${figure.benchmark}`,
      );
    }
  }
  if (phase.requestMix !== undefined) {
    const mix = phase.requestMix;
    const rate = peakRate(daily, mix.perUser, phase.peakFactor);
    const figure = reference(
      mix.like,
      rate,
      'requests/s',
      'their CPU on the API nodes and on Postgres, and their disk writes, are',
    );
    referenceDatabase.push({ what: REFERENCE_APPS[mix.like].label, rate, capacity: figure });
    if (figure !== undefined) {
      const under = figure.measuredUnder ?? {};
      // A share, whatever a hand-edited profile says.
      const writeShare =
        under.writeShare === undefined ? undefined : Math.min(1, Math.max(0, under.writeShare));
      // The mix's writes and reads count in the IOPS like any other (its measured write share).
      if (writeShare !== undefined) {
        mixWrites = times(rate, writeShare);
        mixReads = times(rate, 1 - writeShare);
      } else mixReads = rate;
      const measuredAt = [
        under.users === undefined ? undefined : `${formatNumber(under.users)} virtual users`,
        writeShare === undefined ? undefined : `${formatNumber(writeShare * 100)} % writes`,
        figure.measuredPerSecond > 0 ? `${formatNumber(figure.measuredPerSecond)} requests/s` : undefined,
        figure.p99Ms === undefined ? undefined : `p99 ${formatNumber(figure.p99Ms)} ms`,
      ].filter((part) => part !== undefined);
      capacitySources.push(
        `${REFERENCE_APPS[mix.like].label}: ${formatRange(rate, 'requests/s')} at peak × ${formatNumber(figure.cpuMsPerOperation)} ms CPU each (${formatNumber(figure.operationsPerVcpuSecond)} per vCPU-second${measuredAt.length > 0 ? `; the bench's mix at ${measuredAt.join(', ')}` : ''}${writeShare === undefined ? '; no write share measured: counted as reads in the IOPS' : ''}), from ${figure.benchmark}`,
      );
    }
  }
  const apiCpu = sum([
    ...referenceLoads.map((load) => load.vcpu ?? exact(0)),
    uploadCpu,
    vcpuFor(read, tenantRead.cpuMsPerOperation, targets.cpuUtilization),
    vcpuFor(write, (writeCapacity ?? tenantRead).cpuMsPerOperation, targets.cpuUtilization),
    vcpuFor(signInRate, signIn.cpuMsPerOperation, targets.cpuUtilization),
    delivery === undefined
      ? exact(0)
      : vcpuFor(deliveries, delivery.cpuMsPerOperation, targets.cpuUtilization),
  ]);
  if (phase.realtime && delivery === undefined)
    checks.push({
      severity: 'warning',
      kind: 'missing-component',
      message: 'realtime: the calibration profile has no realtime delivery figure; its CPU is not counted',
    });
  if (delivery)
    capacitySources.push(
      `realtime deliveries: ${formatNumber(delivery.cpuMsPerOperation)} ms CPU each, from ${delivery.benchmark}`,
    );
  const highAvailability = (phase.availability?.lo ?? 0) >= 0.999;
  const apiNodes = atLeast(ceil(map(apiCpu, (vcpu) => vcpu / targets.nodeVcpu)), highAvailability ? 2 : 1);
  const perConnection = memory.realtimeConnection?.bytes ?? 0;
  const base = memory.processBase?.bytes ?? 0;
  if (memory.processBase)
    capacitySources.push(
      `memory: ${formatNumber(base / 2 ** 20)} MiB per process and ${formatNumber(perConnection / 1024)} KiB per realtime connection, from ${memory.processBase.benchmark}`,
    );
  const ramPerNode = map(
    { lo: connections.lo / apiNodes.lo, hi: connections.hi / apiNodes.hi },
    (perNode) => (base * targets.nodeVcpu + perNode * perConnection) / 2 ** 30 / targets.memoryUtilization,
  );

  const jobsInFlight = sum(
    phase.jobs.map((entry) => concurrentJobs(times(entry.rate, phase.peakFactor), entry.duration)),
  );
  const jobCpu = sum(
    phase.jobs.map((entry) =>
      add2(
        vcpuFor(times(entry.rate, phase.peakFactor), job.cpuMsPerOperation, targets.cpuUtilization),
        entry.cpuBound
          ? times(
              concurrentJobs(times(entry.rate, phase.peakFactor), entry.duration),
              1 / targets.cpuUtilization,
            )
          : exact(0),
      ),
    ),
  );
  const workerNodes =
    phase.jobs.length === 0
      ? exact(0)
      : atLeast(
          ceil({
            lo: Math.max(jobCpu.lo / targets.nodeVcpu, jobsInFlight.lo / targets.workerConcurrency),
            hi: Math.max(jobCpu.hi / targets.nodeVcpu, jobsInFlight.hi / targets.workerConcurrency),
          }),
          highAvailability ? 2 : 1,
        );
  if (phase.workerQueues !== undefined)
    for (const entry of phase.jobs)
      if (!phase.workerQueues.includes(entry.queue))
        checks.push({
          severity: 'error',
          kind: 'missing-component',
          message: `jobs "${entry.name}" go to queue "${entry.queue}", which no worker consumes (workers: ${phase.workerQueues.join(', ') || 'none'})`,
        });

  const months = map(phase.duration, (seconds) => seconds / MONTH);
  const addedPerMonth = sum(phase.files.map((file) => times(times(file.rate, file.size), MONTH)));
  const monthCount = Math.max(1, Math.round(months.hi));
  const byMonth = Array.from({ length: monthCount }, (_, index) => {
    const month = index + 1;
    let total = exact(0);
    let cold = exact(0);
    for (const file of phase.files) {
      const perMonth = times(times(file.rate, file.size), MONTH);
      const retention = file.retention === undefined ? undefined : file.retention.lo / MONTH;
      const stored = storedAfter(perMonth, month, retention);
      total = add2(total, stored);
      if (file.coldAfter !== undefined) {
        const hot = storedAfter(
          perMonth,
          month,
          Math.min(file.coldAfter.lo / MONTH, retention ?? Number.POSITIVE_INFINITY),
        );
        cold = add2(
          cold,
          map({ lo: stored.lo - hot.lo, hi: stored.hi - hot.hi }, (value) => Math.max(0, value)),
        );
      }
    }
    return { month, totalGB: total, coldGB: cold };
  });
  const storage = { addedPerMonthGB: addedPerMonth, byMonth };
  const end = byMonth.at(-1) ?? { totalGB: exact(0), coldGB: exact(0) };
  const totalEgress = times(phase.egress, MONTH);
  const cdnEgress = phase.cdnShare === undefined ? undefined : times(totalEgress, phase.cdnShare);
  // What leaves the origin: the CDN's misses (the CDN's own fetches from the origin are billed as egress).
  const egress =
    cdnEgress === undefined
      ? totalEgress
      : map({ lo: totalEgress.lo - cdnEgress.hi, hi: totalEgress.hi - cdnEgress.lo }, (value) =>
          Math.max(0, value),
        );

  const replicas = highAvailability
    ? Math.max(1, phase.database.replicas ?? 1)
    : (phase.database.replicas ?? 0);
  if (highAvailability && phase.database.replicas === 0)
    checks.push({
      severity: 'error',
      kind: 'missing-component',
      message: `availability ${formatRange(times(phase.availability ?? exact(0), 100), '%')} with one database and no replica: a failed database is an outage for its whole restore time`,
    });
  const storageGB = add2(phase.database.size, times(times(phase.database.growth, MONTH), months.hi));
  const iops = databaseIops(
    add2(write, mixWrites),
    add2(read, mixReads),
    targets.databaseIopsPerWrite,
    targets.databaseReadMissShare,
  );
  const jobRate = times(sum(phase.jobs.map((entry) => entry.rate)), phase.peakFactor);
  const databaseLoads = [
    { what: 'reads', rate: read, capacity: tenantRead },
    { what: 'writes', rate: write, capacity: writeCapacity ?? tenantRead },
    { what: 'sign-ins', rate: signInRate, capacity: signIn },
    { what: 'jobs', rate: jobRate, capacity: job },
    { what: 'uploads (per MB)', rate: uploadRate, capacity: uploadCapacity },
    ...referenceDatabase,
  ].filter((load) => load.rate.hi > 0);
  // Counted only when every kind of this phase's load has its Postgres figure: a sum over some
  // kinds would understate the server (a profile mixing runs measured some scenarios only).
  const unmeasuredDatabase = databaseLoads.filter(
    (load) => load.capacity?.databaseCpuMsPerOperation === undefined,
  );
  const databaseCpu =
    unmeasuredDatabase.length > 0 ? undefined : databaseVcpu(databaseLoads, targets.cpuUtilization);
  const needed = shardsNeeded(
    iops,
    storageGB,
    targets.databaseMaxIops,
    targets.databaseMaxStorageGB,
    databaseCpu === undefined ? undefined : { vcpu: databaseCpu, perServer: targets.databaseVcpu },
  );
  if (databaseCpu === undefined)
    capacitySources.push(
      `Postgres CPU: not measured for ${unmeasuredDatabase.map((load) => load.what).join(', ')} (calibrate with DATABASE_URL on a Postgres server on the same machine); the server size is the databaseVcpu target, ${formatNumber(targets.databaseVcpu)} vCPU`,
    );
  else
    capacitySources.push(
      `Postgres CPU: ${formatRange(databaseCpu, 'vCPU')} at peak (${databaseLoads
        .map(
          (load) =>
            `${load.what} ${formatNumber(load.capacity?.databaseCpuMsPerOperation ?? 0)} ms each, from ${load.capacity?.benchmark}`,
        )
        .join('; ')}), for ${formatNumber(targets.databaseVcpu)} vCPU per server`,
    );
  const postgres = {
    storageGB,
    // Socle's defaults per process: DATABASE_POOL_MAX 10 + JOBS_POOL_MAX 4 + one LISTEN connection.
    connections: times(add2(apiNodes, workerNodes), CONNECTIONS_PER_PROCESS),
    replicas,
    vcpu: targets.databaseVcpu,
    ramGiB: targets.databaseRamGiB,
    iops,
    cpu: databaseCpu,
    shardsNeeded: needed,
    // Socle's plan: the shards the load needs (a document's own count is only checked).
    shards: needed.hi,
  };
  capacitySources.push(
    `Postgres IOPS: ${targets.databaseIopsPerWrite} per write and ${formatNumber(targets.databaseReadMissShare * 100)} % of reads (targets, not measured); a server is planned at ${formatNumber(targets.databaseMaxIops)} IOPS and ${formatNumber(targets.databaseMaxStorageGB)} GB`,
  );
  const stated = phase.database.shards;
  const why = `${formatRange(iops)} IOPS at peak for ${formatNumber(targets.databaseMaxIops)} per server, ${formatRange(storageGB, 'GB')} for ${formatNumber(targets.databaseMaxStorageGB)} GB per server${databaseCpu === undefined ? '' : `, ${formatRange(databaseCpu, 'vCPU')} of Postgres CPU at peak for ${formatNumber(targets.databaseVcpu)} per server`}`;
  if (stated !== undefined && stated > needed.hi)
    checks.push({
      severity: 'warning',
      kind: 'sizing',
      message: `database: ${stated} shards planned where ${formatRange(needed)} is enough (${why}); each shard adds a server${replicas > 0 ? ` and ${replicas} replica(s)` : ''} and cross-shard queries`,
    });
  if (stated !== undefined && stated < needed.lo)
    checks.push({
      severity: 'error',
      kind: 'sizing',
      message: `database: ${stated} shard(s) planned where ${formatRange(needed)} are needed (${why})`,
    });
  if (stated === undefined && needed.hi > 1)
    checks.push({
      severity: 'warning',
      kind: 'sizing',
      message: `database: ${formatRange(needed)} shards needed (${why}): split the tenants over several Postgres servers, or raise the targets for a larger server`,
    });
  if (postgres.connections.hi > targets.databaseMaxConnections)
    checks.push({
      severity: 'warning',
      kind: 'limit',
      message: `database: ${formatRange(postgres.connections)} connections from ${formatRange(add2(apiNodes, workerNodes))} Socle processes (${CONNECTIONS_PER_PROCESS} each) exceed ${targets.databaseMaxConnections} per server: put a pooler (PgBouncer) in front or lower DATABASE_POOL_MAX`,
    });
  const redisNeeded = apiNodes.hi > 1 || workerNodes.hi > 1;
  const redis = {
    needed: redisNeeded,
    why: redisNeeded
      ? 'more than one Socle process: realtime fan-out and rate limits go through Redis (memory not calibrated: smallest instance)'
      : 'one process: in-process fan-out, no Redis',
  };

  for (const payment of phase.payments) {
    const blockInterval = prices.facts.bitcoinBlockIntervalSeconds?.value ?? 600;
    if (
      payment.method === 'bitcoin-onchain' &&
      payment.confirmationTarget !== undefined &&
      payment.confirmationTarget.hi < blockInterval
    )
      checks.push({
        severity: 'error',
        kind: 'target',
        message: `payments: confirmation in < ${formatRange(payment.confirmationTarget, 's')} on-chain cannot be met: a Bitcoin block comes every ${blockInterval / 60} min on average (one confirmation ≈ ${blockInterval} s, often more). Use Lightning, or accept a zero-confirmation risk`,
      });
  }
  for (const ai of phase.ai)
    if (ai.rateLimit !== undefined && ai.calls !== undefined) {
      const peak = times(ai.calls, phase.peakFactor);
      if (peak.hi > ai.rateLimit.lo)
        checks.push({
          severity: 'error',
          kind: 'limit',
          message: `ai ${ai.model}: ${formatRange(times(peak, 60), 'calls/min')} at peak exceeds the provider limit of ${formatRange(times(ai.rateLimit, 60), 'calls/min')}`,
        });
    }

  const thirdParty: (CostLine & { currency: Currency; source: string })[] = [];
  for (const ai of phase.ai) {
    const price = prices.ai[ai.model];
    if (price === undefined) {
      checks.push({
        severity: 'warning',
        kind: 'missing-component',
        message: `ai ${ai.model}: no price in the price table; not costed`,
      });
      continue;
    }
    let monthly = exact(0);
    let detail = '';
    if (ai.audio !== undefined && price.perAudioMinute !== undefined) {
      const minutes = times(ai.audio, MONTH / 60);
      monthly = times(minutes, price.perAudioMinute);
      detail = `${formatRange(minutes, 'min')} (${formatRange(times(minutes, 1 / 60), 'h')}) of audio/month × ${price.perAudioMinute} ${price.currency}/min`;
    } else if (ai.calls !== undefined) {
      const calls = times(ai.calls, MONTH);
      const input = times(calls, ai.inputTokensPerCall ?? exact(0));
      const output = times(calls, ai.outputTokensPerCall ?? exact(0));
      monthly = add2(
        times(input, (price.perMillionInputTokens ?? 0) / 1e6),
        times(output, (price.perMillionOutputTokens ?? 0) / 1e6),
      );
      detail = `${formatRange(calls, 'calls')}/month, ${formatRange(input, 'input')} + ${formatRange(output, 'output tokens')}`;
    }
    thirdParty.push({
      component: `AI ${ai.model}`,
      detail,
      monthly,
      currency: price.currency,
      source: price.source,
    });
  }
  for (const payment of phase.payments) {
    const price = prices.payments[payment.provider];
    if (price === undefined) {
      checks.push({
        severity: 'warning',
        kind: 'missing-component',
        message: `payments ${payment.provider}: no fee in the price table; not costed`,
      });
      continue;
    }
    const count = times(payment.rate, MONTH);
    const amount = convert(
      payment.average,
      price.currency,
      workload,
      checks,
      `payments ${payment.provider} average`,
    );
    if (amount === undefined) continue;
    const monthly = add2(times(times(count, amount), price.percent / 100), times(count, price.fixed));
    thirdParty.push({
      component: `payments ${payment.provider}`,
      detail: `${formatRange(count)} payments/month × (${price.percent} % + ${price.fixed} ${price.currency})`,
      monthly,
      currency: price.currency,
      source: price.source,
    });
  }

  const meetings = phase.meetings.map((entry) => {
    const { concurrent: atOnce, hosts } = meetingHosts(entry.rate, entry.duration, phase.peakFactor);
    const price = prices.meetings?.[entry.provider];
    if (price === undefined)
      checks.push({
        severity: 'warning',
        kind: 'missing-component',
        message: `meetings ${entry.provider}: no price in the price table; not costed`,
      });
    else
      thirdParty.push({
        component: `meetings ${entry.provider}`,
        detail: `${formatRange(hosts)} licensed host(s) for ${formatRange(atOnce)} meetings at once at peak (${formatRange(times(entry.rate, MONTH))}/month × ${formatRange(times(entry.duration, 1 / 60), 'min')} × peak ${formatRange(phase.peakFactor)}) × ${price.perHostMonthly} ${price.currency}`,
        monthly: times(hosts, price.perHostMonthly),
        currency: price.currency,
        source: price.source,
      });
    return { provider: entry.provider, concurrentAtPeak: atOnce, hosts };
  });
  const relayGB =
    phase.voice === undefined ? undefined : turnRelayGB(concurrent, phase.peakFactor, phase.voice);
  const perGbCosts = (services: Readonly<Record<string, PerGbService>>, gigabytes: Range, what: string) =>
    Object.entries(services).map(([key, service]) => {
      const total = { lo: perGbMonthly(service, gigabytes.lo), hi: perGbMonthly(service, gigabytes.hi) };
      return withConversion(
        {
          provider: key,
          name: service.name,
          currency: service.currency,
          lines: [
            {
              component: what,
              detail: `${formatRange(gigabytes, 'GB')}/month × ${service.perGB} ${service.currency}/GB beyond ${formatNumber(service.freeGB ?? 0)} GB free${service.baseMonthly ? ` + ${service.baseMonthly} ${service.currency}/month` : ''}`,
              monthly: total,
            },
          ],
          total,
          source: service.source,
          recordedOn: service.recordedOn,
          priceStatus: service.status,
        },
        workload,
      );
    });
  const turn =
    relayGB === undefined
      ? undefined
      : { relayGB, services: perGbCosts(prices.turn ?? {}, relayGB, 'TURN relay') };
  const cdn =
    cdnEgress === undefined
      ? undefined
      : { egressGB: cdnEgress, services: perGbCosts(prices.cdn ?? {}, cdnEgress, 'CDN egress') };
  if (phase.voice !== undefined && relayGB !== undefined)
    capacitySources.push(
      `TURN relay: ${formatRange(relayGB, 'GB')}/month = average concurrent users (${formatRange(concurrent)} ÷ peak ${formatRange(phase.peakFactor)}) × ${formatRange(times(phase.voice.share, 100), '%')} in a call × ${formatRange(times(phase.voice.relayed, 100), '%')} relayed × 2 directions × ${formatRange(times(phase.voice.bitrate, 8 / 1000), 'kbit/s')}`,
    );

  const providers = Object.entries(prices.compute).map(([key, provider]) =>
    providerCost(key, provider, workload, {
      apiNodes,
      workerNodes,
      ramPerNode,
      postgres,
      egress,
      redisNeeded,
      relayGB,
    }),
  );
  const objectStores =
    phase.files.length === 0
      ? []
      : Object.entries(prices.objectStorage).map(([key, store]) => {
          const hot = map(
            { lo: end.totalGB.lo - end.coldGB.lo, hi: end.totalGB.hi - end.coldGB.hi },
            (value) => Math.max(0, value),
          );
          const total = {
            lo: objectStoreMonthly(store, hot.lo, end.coldGB.lo, egress.lo),
            hi: objectStoreMonthly(store, hot.hi, end.coldGB.hi, egress.hi),
          };
          const lines = [
            {
              component: 'object storage',
              detail: `${formatRange(end.totalGB, 'GB')} stored at the end of the phase (${formatRange(end.coldGB, 'GB')} ${store.coldClass ?? 'cold'}), ${formatRange(egress, 'GB')} egress/month`,
              monthly: total,
            },
          ];
          return withConversion(
            {
              provider: key,
              name: store.name,
              currency: store.currency,
              lines,
              total,
              source: store.source,
              recordedOn: store.recordedOn,
              priceStatus: store.status,
            },
            workload,
          );
        });

  return {
    name: phase.name,
    months,
    load: {
      dailyUsers: daily,
      concurrentUsers: concurrent,
      peakRequestsPerSecond: { read, write, signIn: signInRate },
      realtimeConnections: connections,
      deliveriesPerSecond: deliveries,
      jobsPerDay: times(sum(phase.jobs.map((entry) => entry.rate)), DAY),
    },
    api: {
      vcpu: apiCpu,
      nodes: apiNodes,
      ramGiBPerNode: ramPerNode,
      utilization: {
        lo: (apiCpu.lo * targets.cpuUtilization) / (apiNodes.lo * targets.nodeVcpu),
        hi: (apiCpu.hi * targets.cpuUtilization) / (apiNodes.hi * targets.nodeVcpu),
      },
    },
    workers: { concurrentJobs: jobsInFlight, vcpu: jobCpu, nodes: workerNodes },
    referenceLoads,
    fileUploads:
      phase.files.length === 0 || uploadCapacity === undefined
        ? undefined
        : {
            peakMegabytesPerSecond: uploadRate,
            vcpu: uploadCpu,
            nodes: ceil(map(uploadCpu, (vcpu) => vcpu / targets.nodeVcpu)),
            benchmark: uploadCapacity.benchmark,
          },
    postgres,
    redis,
    storage,
    egressGBPerMonth: egress,
    cdn,
    turn,
    meetings,
    thirdParty,
    providers,
    objectStores,
    capacitySources,
    claims: phase.claims.map((claim) => {
      const result = checkClaim(claim, phase, storage);
      if (!result.ok)
        checks.push({
          severity: 'error',
          kind: claim.metric === 'costPerUserPerMonth' ? 'units' : 'arithmetic',
          message: `"${claim.text}": stated ${formatRange(result.stated, result.unit)}, computed ${formatRange(result.computed, result.unit)}${result.note ? ` (${result.note})` : ''}`,
        });
      return result;
    }),
    seedTables: phase.seedTables.map((table) => seedTable(table, checks, prices, workload)),
    checks,
  };
}

function add2(a: Range, b: Range): Range {
  return { lo: a.lo + b.lo, hi: a.hi + b.hi };
}

/** An amount in another currency, converted only with the workload's explicit rate. */
function convert(
  money: Range & { currency: Currency },
  to: Currency,
  workload: Workload,
  checks: Check[],
  what: string,
): Range | undefined {
  if (money.currency === to) return money;
  const toReport = (currency: Currency) => (currency === workload.currency ? 1 : workload.rates[currency]);
  const from = toReport(money.currency);
  const target = toReport(to);
  if (from === undefined || target === undefined) {
    checks.push({
      severity: 'warning',
      kind: 'currency',
      message: `${what}: ${money.currency} to ${to} needs a rate under "rates" in the workload; not converted`,
    });
    return undefined;
  }
  return times(money, from / target);
}

function withConversion(cost: Omit<ProviderCost, 'converted'>, workload: Workload): ProviderCost {
  const rate = cost.currency === workload.currency ? undefined : workload.rates[cost.currency];
  return {
    ...cost,
    converted:
      rate === undefined ? undefined : { total: times(cost.total, rate), currency: workload.currency, rate },
  };
}

function providerCost(
  key: string,
  provider: ComputeProvider,
  workload: Workload,
  needs: {
    apiNodes: Range;
    workerNodes: Range;
    ramPerNode: Range;
    postgres: PhasePlan['postgres'];
    egress: Range;
    redisNeeded: boolean;
    relayGB: Range | undefined;
  },
): ProviderCost {
  const { targets } = workload;
  const lines: CostLine[] = [];
  const used: Instance[] = [];
  const node = (vcpu: number, ram: number) => cheapestInstance(provider, vcpu, ram);
  const apiInstance = node(targets.nodeVcpu, Math.max(targets.nodeRamGiB, needs.ramPerNode.hi));
  const dbInstance = node(needs.postgres.vcpu, needs.postgres.ramGiB);
  const redisInstance = node(1, 1) ?? node(0, 0);
  const line = (component: string, instance: Instance | undefined, count: Range) => {
    if (count.hi === 0) return;
    if (instance === undefined) {
      lines.push({
        component,
        detail: 'no instance in the table is large enough',
        monthly: exact(Number.NaN),
      });
      return;
    }
    used.push(instance);
    lines.push({
      component,
      detail: `${formatRange(count)} × ${instance.type} (${instance.vcpu} vCPU, ${instance.ramGiB} GiB)${instance.unverified ? ', price unverified' : ''}`,
      monthly: times(count, monthlyPrice(instance)),
    });
  };
  const { shards, replicas } = needs.postgres;
  line('API nodes', apiInstance, needs.apiNodes);
  line('worker nodes', apiInstance, needs.workerNodes);
  line(
    shards > 1 ? `Postgres (${shards} shards, self-run on VMs)` : 'Postgres (self-run on VMs)',
    dbInstance,
    exact(shards * (1 + replicas)),
  );
  lines.push({
    component: 'Postgres disk',
    detail: `${formatRange(needs.postgres.storageGB, 'GB')} × ${1 + replicas}`,
    monthly: times(needs.postgres.storageGB, provider.blockStorageGBMonth * (1 + replicas)),
  });
  if (needs.redisNeeded) line('Redis', redisInstance, exact(1));
  if (needs.apiNodes.hi > 1)
    lines.push({ component: 'load balancer', detail: '1', monthly: exact(provider.loadBalancerMonthly) });
  if (needs.egress.hi > 0)
    lines.push({
      component: 'egress',
      detail: `${formatRange(needs.egress, 'GB')}/month × ${provider.egressGB} ${provider.currency}/GB`,
      monthly: times(needs.egress, provider.egressGB),
    });
  if (needs.relayGB !== undefined) {
    line('TURN relay (coTURN)', redisInstance, exact(1));
    lines.push({
      component: 'TURN relay egress',
      detail: `${formatRange(needs.relayGB, 'GB')}/month × ${provider.egressGB} ${provider.currency}/GB`,
      monthly: times(needs.relayGB, provider.egressGB),
    });
  }
  const total = sum(lines.map((entry) => entry.monthly));
  return withConversion(
    {
      provider: key,
      name: provider.name,
      currency: provider.currency,
      lines,
      total,
      source: provider.source,
      recordedOn: provider.recordedOn,
      priceStatus: used.some((instance) => isUnverified(provider, instance)) ? 'unverified' : provider.status,
    },
    workload,
  );
}

/** Plans every phase of a workload. */
export function plan(workload: Workload, prices: PriceTable, calibration: CalibrationProfile): Plan {
  const machine = calibration.machine;
  return {
    workload: workload.name,
    source: workload.source,
    currency: workload.currency,
    calibration: {
      measuredAt: calibration.measuredAt,
      machine: `${machine.cpus} × ${machine.cpuModel ?? 'unknown CPU'}${machine.loadAverageAtStart ? ` (load average ${machine.loadAverageAtStart.map((value) => formatNumber(value)).join(' / ')} at start)` : ''}`,
      note: calibration.note,
    },
    prices: { recordedOn: prices.recordedOn, checkedOn: prices.checkedOn, note: prices.note },
    targets: workload.targets,
    phases: workload.phases.map((phase) => planPhase(workload, phase, prices, calibration)),
  };
}
