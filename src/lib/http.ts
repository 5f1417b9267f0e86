// Hono plumbing shared by the routes: typed context, JSON body parsing with a size cap, auth middleware.
import type { Context, MiddlewareHandler } from "hono";
import type * as v from "valibot";
import { parseWith } from "../protocol/frames";
import { AppError } from "./errors";
import { readConfig, type Config } from "./config";
import { extractToken, verifyAccessToken, type Identity } from "./tokens";

export interface AppEnv {
  Bindings: Env;
  Variables: { user: Identity; config: Config };
}
export type AppContext = Context<AppEnv>;

const MAX_JSON_BODY_BYTES = 128 * 1024;

/** Read and validate a JSON body. Oversized bodies are refused before they are read in full. */
export async function readJson<const S extends v.GenericSchema>(c: AppContext, schema: S): Promise<v.InferOutput<S>> {
  const declared = Number(c.req.header("Content-Length") ?? "NaN");
  if (declared > MAX_JSON_BODY_BYTES) throw new AppError("payload_too_large", `request bodies are limited to ${MAX_JSON_BODY_BYTES} bytes`);
  const text = await readCapped(c.req.raw, MAX_JSON_BODY_BYTES);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    throw new AppError("invalid_json", "request body is not valid JSON");
  }
  const parsed = parseWith(schema, data);
  if (!parsed.ok) throw new AppError("validation_failed", parsed.message);
  return parsed.value;
}

async function readCapped(req: Request, max: number): Promise<string> {
  if (!req.body) return "";
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel();
      throw new AppError("payload_too_large", `request bodies are limited to ${max} bytes`);
    }
    chunks.push(value);
  }
  const all = new Uint8Array(total);
  let off = 0;
  for (const ch of chunks) {
    all.set(ch, off);
    off += ch.byteLength;
  }
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(all);
  } catch {
    throw new AppError("invalid_json", "request body is not valid UTF-8");
  }
}

export function parseQuery<const S extends v.GenericSchema>(c: AppContext, schema: S): v.InferOutput<S> {
  const parsed = parseWith(schema, c.req.query());
  if (!parsed.ok) throw new AppError("validation_failed", parsed.message);
  return parsed.value;
}

/** Requires `Authorization: Bearer <access token>`; sets `c.var.user`. */
export const requireUser: MiddlewareHandler<AppEnv> = async (c, next) => {
  const token = extractToken(c.req.raw, false);
  if (!token) throw new AppError("unauthorized", "missing bearer token");
  c.set("user", await verifyAccessToken(c.env.AUTH_SECRET, token));
  await next();
};

export const withConfig: MiddlewareHandler<AppEnv> = async (c, next) => {
  // Refuse to run half-configured: without AUTH_SECRET, signup would create users it cannot log in.
  if (!c.env.AUTH_SECRET || c.env.AUTH_SECRET.length < 16) {
    throw new AppError("unavailable", "server misconfigured: AUTH_SECRET is not set (at least 16 characters)");
  }
  c.set("config", readConfig(c.env));
  await next();
};

/**
 * Compare a presented secret with the real one in constant time. Both are hashed first, so the time taken
 * depends on neither their contents nor their lengths; the runtime's timingSafeEqual compares the digests.
 */
export async function secretEquals(presented: string, secret: string): Promise<boolean> {
  const digest = (s: string) => crypto.subtle.digest("SHA-256", new TextEncoder().encode(s));
  const [a, b] = await Promise.all([digest(presented), digest(secret)]);
  return crypto.subtle.timingSafeEqual(a, b);
}
