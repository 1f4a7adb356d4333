// Which domains a Sign-In With Ethereum message may name. The domain is what stops a phishing
// site: a wallet shows the site a message is for, and a message signed on evil.example names
// evil.example. So the list comes from configuration only (SIWE_DOMAINS), never from a request's
// Host header, which the phishing site's own request would set to match its message. On the
// embedded chain, with nothing configured, it is the node's own address as it listens, known
// only after listen (the port may have moved to a free one): hence a late-bound list.

/** A fixed list, or one read on every login (the node's listening address, set after listen). */
export type SiweDomainSource = readonly string[] | (() => readonly string[]);

export function siweDomainsOf(source: SiweDomainSource): readonly string[] {
  return typeof source === "function" ? source() : source;
}

/** host:port names a browser on this machine uses for a node listening on `host`:`port`. */
export function localSiweDomains(host: string, port: number): string[] {
  const names = ["127.0.0.1", "localhost", "[::1]"];
  // A specific address the node was told to listen on is a name too; a wildcard (0.0.0.0, ::)
  // is not one any browser shows, and LAN names must be configured (SIWE_DOMAINS).
  const own = host.includes(":") ? `[${host}]` : host;
  if (!["0.0.0.0", "[::]", "[::0]"].includes(own) && !names.includes(own)) names.push(own);
  return names.map((name) => `${name}:${port}`);
}
