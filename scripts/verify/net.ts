// Talking to the server over REST for `npm run verify`: one request with the retries a busy server needs
// (429 and 503 waited out, network errors retried a few times), and minting a user of the run with the
// admin secret (allowed to be added to groups by anyone).
import type { WorkloadOptions } from "./workload.ts";

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function http<T>(base: string, method: string, path: string, init: { token?: string; body?: unknown } = {}): Promise<{ status: number; body: T }> {
  const headers: Record<string, string> = {};
  if (init.token) headers.Authorization = `Bearer ${init.token}`;
  if (init.body !== undefined) headers["Content-Type"] = "application/json";
  for (let attempt = 0; ; attempt++) {
    try {
      const res = await fetch(`${base}${path}`, { method, headers, body: init.body === undefined ? undefined : JSON.stringify(init.body) });
      const text = await res.text();
      // Transient trouble (rate limits, a restarting object) is retried; anything else is the caller's to judge.
      if ((res.status === 429 || res.status === 503) && attempt < 20) {
        await sleep(Number(res.headers.get("Retry-After") ?? "0.2") * 1000 || 200);
        continue;
      }
      return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
    } catch (err) {
      if (attempt >= 5) throw err;
      await sleep(200 * (attempt + 1));
    }
  }
}

export interface User {
  id: string;
  username: string;
  token: string;
}

export async function mintUser(opts: Pick<WorkloadOptions, "url" | "adminSecret">, id: string): Promise<User> {
  const r = await http<{ user: { id: string; username: string }; accessToken: string }>(opts.url, "POST", "/v1/admin/tokens", {
    token: opts.adminSecret,
    body: { userId: id, username: id },
  });
  if (r.status !== 200) throw new Error(`minting ${id} failed: ${r.status} ${JSON.stringify(r.body)}`);
  // The run puts its own users in groups with each other: let it, whatever the deployment's default (protocol 13.1).
  const settings = await http(opts.url, "PATCH", "/v1/me/settings", { token: r.body.accessToken, body: { groupAdds: "anyone" } });
  if (settings.status !== 200) throw new Error(`settings of ${id} failed: ${settings.status} ${JSON.stringify(settings.body)}`);
  return { id: r.body.user.id, username: r.body.user.username, token: r.body.accessToken };
}
