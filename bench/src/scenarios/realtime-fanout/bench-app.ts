/** The realtime app of the Socle bench server (configured app: REALTIME_APP_ID/KEY/SECRET). */
export const BENCH_APP = { id: 'bench', key: 'bench-key', secret: 'bench-secret' } as const;
