import { expect, it } from "vitest";
import { api } from "./helpers";

// What reaches the logs is checked over a real server in e2e/no-secrets-in-logs.test.ts.

it("sets security headers on every API response", async () => {
  for (const r of [await api("GET", "/healthz"), await api("GET", "/v1/me"), await api("GET", "/v1/nope")]) {
    expect(r.headers.get("X-Content-Type-Options")).toBe("nosniff");
    expect(r.headers.get("X-Frame-Options")).toBe("SAMEORIGIN");
    expect(r.headers.get("Strict-Transport-Security")).toContain("max-age=");
    expect(r.headers.get("Referrer-Policy")).toBe("no-referrer");
  }
});

it("answers CORS only for allow-listed origins", async () => {
  const allowed = await api("OPTIONS", "/v1/auth/login", {
    headers: { Origin: "https://app.example.test", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type" },
  });
  expect(allowed.status).toBe(204);
  expect(allowed.headers.get("Access-Control-Allow-Origin")).toBe("https://app.example.test");
  expect(allowed.headers.get("Access-Control-Allow-Headers")?.toLowerCase()).toContain("authorization");
  const denied = await api("OPTIONS", "/v1/auth/login", {
    headers: { Origin: "https://evil.example.test", "Access-Control-Request-Method": "POST" },
  });
  expect(denied.headers.get("Access-Control-Allow-Origin")).toBeNull();
  const simple = await api("GET", "/healthz", { headers: { Origin: "https://evil.example.test" } });
  expect(simple.headers.get("Access-Control-Allow-Origin")).toBeNull();
});
