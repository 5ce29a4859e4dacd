import type { PrivacyHooks } from '../../kernel/index.js';

/**
 * Realtime stores nothing about a person (apps belong to organizations; presence lives only while
 * a socket is open), but their open sockets are credentials in use: erasure closes every socket in
 * their name, on every node, when it fences the person out.
 */
export function createRealtimePrivacy(
  terminatePersonConnections: (userId: string) => Promise<void>,
): PrivacyHooks {
  return {
    exportSubject: async () => ({}),
    eraseSubject: async () => {},
    revokeAccess: (subject) => terminatePersonConnections(subject.userId),
  };
}
