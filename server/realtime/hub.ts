// The WebSocket fan-out: sockets subscribe to channels by name; publishers push JSON to a
// channel without knowing who listens. A message is serialised once per publish, not once per
// subscriber, and a socket whose send buffer backs up past a limit is dropped rather than
// letting memory grow with a slow client.
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

const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

export type Hub = ReturnType<typeof createHub>;

export function createHub() {
  const subscribers = new Map<string, Set<RealtimeSocket>>();
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

  return {
    subscribe(socket: RealtimeSocket, channels: string[]) {
      let mine = channelsOf.get(socket);
      if (!mine) channelsOf.set(socket, (mine = new Set()));
      for (const channel of channels) {
        mine.add(channel);
        let set = subscribers.get(channel);
        if (!set) subscribers.set(channel, (set = new Set()));
        set.add(socket);
      }
    },
    unsubscribe(socket: RealtimeSocket, channels: string[]) {
      const mine = channelsOf.get(socket);
      for (const channel of channels) {
        mine?.delete(channel);
        const set = subscribers.get(channel);
        set?.delete(socket);
        // Channel names come from clients: an emptied set must not stay behind.
        if (set && set.size === 0) subscribers.delete(channel);
      }
    },
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
      for (const socket of set) {
        if (socket.bufferedAmount > MAX_BUFFERED_BYTES) {
          remove(socket);
          socket.close(1013, "too slow: send buffer full");
          continue;
        }
        socket.send(text);
      }
    },
    stats() {
      return { sockets: channelsOf.size, channels: subscribers.size, published };
    },
  };
}
