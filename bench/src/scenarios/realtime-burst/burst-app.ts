/** The realtime app of the realtime-burst scenario's nodes (configured, as REALTIME_APP_*). */
export const BURST_APP = Object.freeze({ id: 'burst-app', key: 'burst-key', secret: 'burst-secret' });
