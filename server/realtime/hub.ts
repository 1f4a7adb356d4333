// The WebSocket fan-out: sockets subscribe to channels by name; publishers push JSON to a
// channel without knowing who listens. A message is serialised once per publish, not once per
// subscriber, and a socket whose send buffer backs up past a limit is dropped rather than
// letting memory grow with a slow client.
//
// A subscription to a channel that carries a person's data holds a grant (realtime/
// channelAccess.ts decides it): checked before every message, so a token that expired or was
// logged out stops the flow at the next message, and a channel shared by many owners (every
// meter's readings) delivers each subscriber only the messages that are theirs.
export interface RealtimeSocket {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  readonly bufferedAmount: number;
}

/** Channel names of DESIGN.md; `{…}` parts are ids. */
export const channelPatterns = [
  /^consumption\.real-time$/,
  /^generation\.solar$/,
  /^vpp\.[A-Za-z0-9_-]{1,64}\.status$/,
  /^trading\.market\.[A-Za-z0-9_-]{1,32}$/,
  /^events\.[A-Za-z0-9_.:-]{1,64}$/,
  /^orchestrator\.actions$/,
];

export function isChannel(name: string): boolean {
  return channelPatterns.some((p) => p.test(name));
}

export const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

/**
 * What one socket may ask of the hub. Past a limit the client gets an `error` frame (codes
 * `too_many_channels`, `message_too_large`, `rate_limited`) and the socket stays open; only a
 * frame the WebSocket server will not read at all (its maxPayload, above maxMessageBytes) closes it with 1009.
 */
export interface HubLimits {
  /** Channels one socket holds at a time; a subscribe that would pass it is refused whole. */
  maxChannelsPerSocket: number;
  /** Bytes of one client message. */
  maxMessageBytes: number;
  /** Client messages a second per socket, sustained; a burst of as many is let through at once. */
  maxMessagesPerSecond: number;
}

export const defaultHubLimits: HubLimits = { maxChannelsPerSocket: 100, maxMessageBytes: 16 * 1024, maxMessagesPerSecond: 50 };

export interface HubOptions {
  limits?: Partial<HubLimits>;
}

/** What lets one socket hear a private channel. */
export interface SubscriptionGrant {
  /** Still valid (its token is live)? Checked before every message; false ends the subscription. */
  holds(): boolean;
  /** Whether this message is for this subscriber (another owner's meter's reading is not); default every one. */
  admits?(data: unknown): boolean;
  /** The frame sent once when the grant stops holding, telling the client to subscribe again. */
  endedFrame(): string;
}

export type Hub = ReturnType<typeof createHub>;

export function createHub(options: HubOptions = {}) {
  const limits: HubLimits = { ...defaultHubLimits, ...options.limits };
  /** Per channel, its sockets and the grant each subscribed with (null: a public channel). */
  const subscribers = new Map<string, Map<RealtimeSocket, SubscriptionGrant | null>>();
  const channelsOf = new Map<RealtimeSocket, Set<string>>();
  let published = 0;

  function remove(socket: RealtimeSocket) {
    for (const channel of channelsOf.get(socket) ?? []) {
      const set = subscribers.get(channel);
      set?.delete(socket);
      if (set && set.size === 0) subscribers.delete(channel);
    }
    channelsOf.delete(socket);
  }

  function unsubscribe(socket: RealtimeSocket, channels: string[]) {
    const mine = channelsOf.get(socket);
    for (const channel of channels) {
      mine?.delete(channel);
      const set = subscribers.get(channel);
      set?.delete(socket);
      // Channel names come from clients: an emptied set must not stay behind.
      if (set && set.size === 0) subscribers.delete(channel);
    }
  }

  return {
    limits,
    /** How many channels the socket would hold after subscribing to `channels` too. */
    channelsAfter(socket: RealtimeSocket, channels: string[]): number {
      const mine = channelsOf.get(socket);
      const fresh = new Set(channels.filter((c) => !mine?.has(c)));
      return (mine?.size ?? 0) + fresh.size;
    },
    /** Subscribes (again: a new grant replaces the old one, e.g. after a token refresh). */
    subscribe(socket: RealtimeSocket, channels: string[], grant: SubscriptionGrant | null = null) {
      let mine = channelsOf.get(socket);
      if (!mine) channelsOf.set(socket, (mine = new Set()));
      for (const channel of channels) {
        mine.add(channel);
        let set = subscribers.get(channel);
        if (!set) subscribers.set(channel, (set = new Map()));
        set.set(socket, grant);
      }
    },
    unsubscribe,
    remove,
    /** True when someone listens: publishers skip building messages nobody reads. */
    hasSubscribers(channel: string): boolean {
      return (subscribers.get(channel)?.size ?? 0) > 0;
    },
    publish(channel: string, type: string, data: unknown) {
      const set = subscribers.get(channel);
      if (!set || set.size === 0) return;
      published++;
      const text = JSON.stringify({ channel, type, data }, (_k, v) => (typeof v === "bigint" ? v.toString() : v));
      for (const [socket, grant] of set) {
        if (socket.bufferedAmount > MAX_BUFFERED_BYTES) {
          remove(socket);
          socket.close(1013, "too slow: send buffer full");
          continue;
        }
        if (grant) {
          if (!grant.holds()) {
            unsubscribe(socket, [channel]);
            socket.send(grant.endedFrame());
            continue;
          }
          if (grant.admits && !grant.admits(data)) continue;
        }
        socket.send(text);
      }
    },
    stats() {
      let subscriptions = 0;
      for (const set of subscribers.values()) subscriptions += set.size;
      return { sockets: channelsOf.size, channels: subscribers.size, subscriptions, published };
    },
  };
}
