/** A player asking to play. */
export interface Ticket {
  readonly id: string;
  readonly userId: string;
  readonly name: string;
  /** The region whose node answered this player fastest (one of the configured regions). */
  readonly region: string;
  readonly mode: 'classic' | 'premium';
  readonly language: string;
  readonly level: number;
  /** A friends' room code: tickets with the same code play together, whatever their level. */
  readonly code: string | undefined;
  /** When the ticket was made, in fleet milliseconds (see `fleetTime`). */
  readonly createdAt: number;
  /** The coins held for a premium room's entry (posted when the room starts, voided otherwise). */
  readonly holdId: string | undefined;
}

export interface MatchmakingRules {
  /** Players per room at most (N). */
  readonly roomSize: number;
  /** Fewest players a room starts with once the wait is over. */
  readonly minPlayers: number;
  /** How long the oldest ticket of a group waits for the room to fill. */
  readonly waitMs: number;
}

/** The group a ticket is matched within: its friends' code, else region, mode and language. */
export const groupOf = (ticket: Ticket) =>
  ticket.code === undefined ? `${ticket.region}|${ticket.mode}|${ticket.language}` : `code|${ticket.code}`;

/**
 * The rule that makes rooms of waiting tickets: within a group (region first, then mode and
 * language, or a friends' code), tickets sorted by level fill rooms of `roomSize` neighbours;
 * once the group's oldest ticket has waited `waitMs`, whoever is there (at least `minPlayers`)
 * starts. Pure: the tickets come from the database, where one node at a time claims them.
 */
export function matchTickets(tickets: readonly Ticket[], now: number, rules: MatchmakingRules): Ticket[][] {
  const groups = new Map<string, Ticket[]>();
  for (const ticket of tickets) {
    const key = groupOf(ticket);
    groups.set(key, [...(groups.get(key) ?? []), ticket]);
  }
  const rooms: Ticket[][] = [];
  for (const group of groups.values()) {
    group.sort((a, b) => a.level - b.level || a.createdAt - b.createdAt);
    while (group.length >= rules.roomSize) rooms.push(group.splice(0, rules.roomSize));
    const oldest = Math.min(...group.map((ticket) => ticket.createdAt));
    if (group.length >= rules.minPlayers && now - oldest >= rules.waitMs) rooms.push(group.splice(0));
  }
  return rooms;
}
