/** What the CryptoCare bench's harness and its servers share. */

/** The configured realtime app whose private user channels the patients listen on. */
export const CRYPTOCARE_APP = Object.freeze({
  id: 'bench-cryptocare',
  key: 'bench-cryptocare-key',
  secret: 'bench-cryptocare-secret',
});

/** Practices (one professional each) and patients the Socle server seeds at start. */
export const PROFESSIONALS = 120;
export const PATIENTS = 100;

/** Where the practices are: Swiss cities, each practice within ±0.1° of one. */
export const CITIES: readonly {
  readonly name: string;
  readonly latitude: number;
  readonly longitude: number;
}[] = [
  { name: 'Zürich', latitude: 47.3769, longitude: 8.5417 },
  { name: 'Genève', latitude: 46.2044, longitude: 6.1432 },
  { name: 'Basel', latitude: 47.5596, longitude: 7.5886 },
  { name: 'Bern', latitude: 46.948, longitude: 7.4474 },
  { name: 'Lausanne', latitude: 46.5197, longitude: 6.6323 },
  { name: 'Lugano', latitude: 46.0037, longitude: 8.9511 },
];
export const SPECIALTIES = ['general', 'psychiatry', 'dermatology', 'pediatrics', 'nutrition'] as const;

/** A seeded professional: their profile, their practice and the owner's access token (agenda). */
export interface SeededProfessional {
  readonly id: string;
  readonly orgId: string;
  readonly token: string;
}
/** A seeded patient: the user's id (their private channel) and access token. */
export interface SeededPatient {
  readonly userId: string;
  readonly token: string;
}
export interface Seed {
  readonly professionals: readonly SeededProfessional[];
  readonly patients: readonly SeededPatient[];
}

/** A BTCPay webhook delivery, signed by the fake BTCPay of the Socle server. */
export interface SignedWebhook {
  readonly body: string;
  readonly headers: Record<string, string>;
}

/** The search of the load: a point near a city, 25 km, a specialty half of the time, 10 results. */
export function searchQuery(random: () => number): string {
  const city = CITIES[Math.floor(random() * CITIES.length)] as (typeof CITIES)[number];
  const latitude = (city.latitude + (random() - 0.5) * 0.1).toFixed(4);
  const longitude = (city.longitude + (random() - 0.5) * 0.1).toFixed(4);
  const specialty =
    random() < 0.5 ? `&specialty=${SPECIALTIES[Math.floor(random() * SPECIALTIES.length)]}` : '';
  return `/cryptocare/search?latitude=${latitude}&longitude=${longitude}&radiusKm=25&limit=10${specialty}`;
}
