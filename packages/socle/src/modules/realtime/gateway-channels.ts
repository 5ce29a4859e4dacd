import type { Bus, Logger, SharedState } from '../../kernel/index.js';
import type { RealtimeApp } from './apps.js';
import { type FramedText, framedText } from './fanout-writer.js';
import type { SocketOutput } from './gateway-backpressure.js';
import { busChannel, type Connection } from './gateway-connection.js';
import type { WebhookEvent } from './webhooks.js';

type BusChannelHandler = (message: string) => void;

/** This node's recipients of each channel, the bus subscriptions they need, and the channel counts. */
export interface ChannelRouter {
  /** Adds the socket to the node's recipients of the channel; resolves once the bus delivers it. */
  joinLocally(connection: Connection, channel: string): Promise<void>;
  leaveLocally(connection: Connection, channel: string): void;
  /** Sends a frame to a channel's sockets on every node, but `excludeSocketId`'s. */
  publishFrame(appId: string, channel: string, frame: string, excludeSocketId?: string): Promise<void>;
  /**
   * Whether a frame sent to the channel, but `excludeSocketId`'s, may reach any socket: false only
   * when this node is the whole cluster (in-process bus) and no other socket of it is in the
   * channel. A client event on a channel only its sender joined (a player's own channel, read by
   * the server through `onClientEvent`) then costs no frame and no bus message.
   */
  mayReachOthers(appId: string, channel: string, excludeSocketId: string): boolean;
  /** Resolves once every subscription count written so far is answered. */
  drainCountWrites(): Promise<void>;
}

export function createChannelRouter(options: {
  readonly bus: Bus;
  readonly state: SharedState;
  readonly log: Logger;
  readonly output: SocketOutput;
  readonly emit: (app: RealtimeApp, event: WebhookEvent) => void;
  /** A socket joined (+1) or left (-1) a channel on this node; see GatewayOptions.onLocalSubscriber. */
  readonly onLocalSubscriber?: ((appId: string, channel: string, delta: 1 | -1) => void) | undefined;
}): ChannelRouter {
  const { bus, state, log, output, emit, onLocalSubscriber } = options;
  const local = new Map<
    string,
    {
      members: Set<Connection>;
      handler: BusChannelHandler;
      subscribed: Promise<void>;
      /** Members onLocalSubscriber was told about (those whose SUBSCRIBE completed). */
      told: Set<Connection>;
    }
  >();
  /** Subscription count writes not answered yet (see countSubscriber). */
  const stateWrites = new Set<Promise<void>>();

  /**
   * Counts a change of a channel's subscribers in the cluster state without holding the socket's
   * next frame: the writes of one node go over one Redis connection in order, so their answers
   * (and the channel_occupied / channel_vacated webhooks they decide) come in order too. A
   * subscribe/unsubscribe therefore costs the socket no round trip but the bus SUBSCRIBE of a
   * channel new to this node; `shutdown` waits for the writes still in flight.
   */
  function countSubscriber(app: RealtimeApp, channel: string, delta: 1 | -1) {
    const write = state
      .occupy(app.id, channel, delta)
      .then((count) => {
        if (delta === 1 && count === 1) emit(app, { name: 'channel_occupied', channel });
        if (delta === -1 && count === 0) emit(app, { name: 'channel_vacated', channel });
      })
      .catch((error) => log.warn({ err: error, channel }, 'Realtime subscription count not written'))
      .finally(() => stateWrites.delete(write));
    stateWrites.add(write);
  }

  return {
    async joinLocally(connection, channel) {
      const name = busChannel(connection.app.id, channel);
      let entry = local.get(name);
      if (entry === undefined) {
        const members = new Set<Connection>();
        const handler: BusChannelHandler = (message) => {
          const newline = message.indexOf('\n');
          const exclude = message.slice(0, newline);
          // Encoded and framed once per node and message, then written to every recipient; not at
          // all when the excluded sender is the only one here.
          let frame: FramedText | undefined;
          for (const member of members) {
            if (member.socketId === exclude) continue;
            frame ??= framedText(message.slice(newline + 1));
            output.write(member, frame);
          }
        };
        const created = {
          members,
          handler,
          subscribed: bus.subscribe(name, handler),
          told: new Set<Connection>(),
        };
        // A SUBSCRIBE that failed is tried again by the next socket joining the channel.
        created.subscribed.catch(() => {
          if (local.get(name) === created) local.delete(name);
        });
        entry = created;
        local.set(name, entry);
      }
      entry.members.add(connection);
      countSubscriber(connection.app, channel, 1);
      // Sockets joining while the node's SUBSCRIBE is on its way wait for it too.
      await entry.subscribed;
      // Told once the bus delivers the channel here, if the socket is still in it (a failed
      // SUBSCRIBE drops the entry, and a socket gone meanwhile is not told at all).
      if (onLocalSubscriber !== undefined && entry.members.has(connection)) {
        entry.told.add(connection);
        onLocalSubscriber(connection.app.id, channel, 1);
      }
    },

    leaveLocally(connection, channel) {
      const name = busChannel(connection.app.id, channel);
      const entry = local.get(name);
      const left = entry?.members.delete(connection) === true;
      if (left && entry?.told.delete(connection)) onLocalSubscriber?.(connection.app.id, channel, -1);
      if (left && entry?.members.size === 0) {
        local.delete(name);
        // The bus keeps SUBSCRIBE/UNSUBSCRIBE of a channel in order: no need to wait here.
        bus
          .unsubscribe(name, entry.handler)
          .catch((error) => log.warn({ err: error, channel }, 'Realtime bus unsubscribe failed'));
      }
      countSubscriber(connection.app, channel, -1);
    },

    mayReachOthers(appId, channel, excludeSocketId) {
      if (bus.kind !== 'memory') return true;
      const members = local.get(busChannel(appId, channel))?.members;
      if (members === undefined) return false;
      for (const member of members) if (member.socketId !== excludeSocketId) return true;
      return false;
    },

    async publishFrame(appId, channel, frame, excludeSocketId = '') {
      await bus.publish(busChannel(appId, channel), `${excludeSocketId}\n${frame}`);
    },

    async drainCountWrites() {
      while (stateWrites.size > 0) await Promise.all([...stateWrites]);
    },
  };
}
