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
  /** When the ticket was made, on the server's monotonic clock. */
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
 * Tickets waiting for a room, and the rule that makes rooms of them: within a group (region
 * first, then mode and language, or a friends' code), tickets sorted by level fill rooms of
 * `roomSize` neighbours; once the group's oldest ticket has waited `waitMs`, whoever is there
 * (at least `minPlayers`) starts. A player holds one ticket at most; the service keeps players in
 * a room from holding one at all.
 */
export function createMatchmaker(rules: MatchmakingRules) {
  const tickets = new Map<string, Ticket>(); // by user id

  return {
    /** Adds the player's ticket; the one they already hold if any. */
    add(ticket: Ticket): Ticket {
      const existing = tickets.get(ticket.userId);
      if (existing !== undefined) return existing;
      tickets.set(ticket.userId, ticket);
      return ticket;
    },
    ticketOf: (userId: string) => tickets.get(userId),
    remove(userId: string): Ticket | undefined {
      const ticket = tickets.get(userId);
      tickets.delete(userId);
      return ticket;
    },
    waiting: () => tickets.size,
    /** Groups that may start now, each a room's players (their tickets leave the queue). */
    match(now: number): Ticket[][] {
      const groups = new Map<string, Ticket[]>();
      for (const ticket of tickets.values()) {
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
      for (const room of rooms) for (const ticket of room) tickets.delete(ticket.userId);
      return rooms;
    },
  };
}

export type Matchmaker = ReturnType<typeof createMatchmaker>;
