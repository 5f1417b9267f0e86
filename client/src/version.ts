// Which protocol version a conversation socket speaks (docs/protocol.md 15.6). The SDK asks for the newest
// (`v=2`); a server that does not know it (an older deployment, mid-rollout) closes with 4426, and the SDK
// comes back at once with the next lower version it speaks instead of stopping. The version in use is the
// lower of the one asked for and the one the server's `welcome` names.
import { CloseCode } from "../../src/protocol/errors";
import { PROTOCOL_VERSION } from "../../src/protocol/frames";

/** The versions this SDK can speak, newest first. */
export const CLIENT_PROTOCOL_VERSIONS: readonly number[] = [PROTOCOL_VERSION, 1];

/** The version to try after the server closed with `closeCode` on a socket that asked for `asked`, or null: stop. */
export function fallbackVersion(asked: number, closeCode: number): number | null {
  if (closeCode !== CloseCode.VersionUnsupported) return null;
  return CLIENT_PROTOCOL_VERSIONS.find((v) => v < asked) ?? null;
}

/** The version a socket speaks, once the server's `welcome` told its own. */
export function negotiatedVersion(asked: number, welcomed: number): number {
  return Number.isInteger(welcomed) && welcomed >= 1 ? Math.min(asked, welcomed) : asked;
}

/** Edit, delete and react exist from version 2 on. */
export function supportsChanges(version: number): boolean {
  return version >= 2;
}
