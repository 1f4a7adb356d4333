// Ends the session on the node; the next call that needs one signs in again.
import type { EnergyContext } from "../context.js";
import { signOut } from "../session.js";

export async function logout(ctx: EnergyContext): Promise<void> {
  await signOut(ctx);
}
