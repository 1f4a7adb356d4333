// Signs in with Ethereum (EIP-4361): the node's nonce, a message signed by the wallet, a token.
// Other actions sign in by themselves when needed; this one forces a fresh sign-in.
import type { EnergyContext } from "../context.js";
import { signIn } from "../session.js";

export type LoginReturnType = {
  address: string;
  operator: boolean;
  expiresAt: Date;
  /** The bearer token, for callers that open the node's WebSocket themselves. */
  token: string;
};

export async function login(ctx: EnergyContext): Promise<LoginReturnType> {
  const session = await signIn(ctx);
  return { address: session.address, operator: session.operator, expiresAt: new Date(session.expiresAt), token: session.token };
}
