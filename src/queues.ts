// Queue consumers of this Worker: the inbox fan-out for large conversations, and push notifications.
import { STORED_FANOUT_PACE, type FanoutJob, type PushJob } from "./objects/shared/updates";
import { userStub } from "./objects/shared/stubs";
import { backoffDelay } from "./lib/backoff";
import { pacedSettled } from "./lib/concurrency";
import { readConfig } from "./lib/config";

export async function handleQueue(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  if (batch.queue.startsWith("edgechat-fanout")) return consumeFanout(batch as MessageBatch<FanoutJob>, env);
  if (batch.queue.startsWith("edgechat-push-dlq")) {
    // A push that failed every retry: log who and where (never the message preview), then drop it.
    for (const m of batch.messages) {
      const { userId, conversationId, seq } = m.body as PushJob;
      console.error(JSON.stringify({ at: "push_dead_letter", userId, conversationId, seq, attempts: m.attempts }));
      m.ack();
    }
    return;
  }
  if (batch.queue.startsWith("edgechat-push")) return consumePush(batch as MessageBatch<PushJob>, env);
  console.error(JSON.stringify({ at: "queue", error: `no consumer for ${batch.queue}` }));
}

/** Fan-out retries after the 1st, 2nd, 3rd ... delivery (Queues counts attempts from 1): 2, 4, 8 ... 60 s. */
const FANOUT_RETRY = { base: 2, cap: 60 };

/** Apply a conversation update to up to 100 user objects per message. Updates only move forward, so retries are safe. */
async function consumeFanout(batch: MessageBatch<FanoutJob>, env: Env): Promise<void> {
  const work = batch.messages.flatMap((message) => message.body.targets.map((target) => ({ message, target })));
  const results = await pacedSettled(work, STORED_FANOUT_PACE, ({ message, target }) => userStub(env, target.userId).conversationUpdate(message.body.summary, target));
  const failed = new Set<Message<FanoutJob>>();
  results.forEach((r, i) => {
    if (r.status === "fulfilled") return;
    if (failed.size === 0) console.warn(JSON.stringify({ at: "fanout", error: String(r.reason) }));
    failed.add(work[i]!.message);
  });
  for (const message of batch.messages) {
    if (failed.has(message)) message.retry({ delaySeconds: backoffDelay(message.attempts, FANOUT_RETRY) });
    else message.ack();
  }
}

const SIGNATURE_HEADER = "X-Edgechat-Signature";

/** `sha256=<hex HMAC-SHA256 of the raw body with PUSH_WEBHOOK_SECRET>`. */
async function signBody(secret: string, body: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(body)));
  return `sha256=${[...mac].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

/** Exponential: base x 2^(attempt-1) seconds, capped at 5 minutes. PUSH_RETRY_BASE_SECONDS defaults to 2. */
function retryDelay(env: Env, attempts: number): number {
  return backoffDelay(attempts, { base: readConfig(env).pushRetryBaseSeconds, cap: 300 });
}

/** POST each job to the app's webhook. Non-2xx or network errors retry with backoff, then go to the dead-letter queue. */
async function consumePush(batch: MessageBatch<PushJob>, env: Env): Promise<void> {
  const url = env.PUSH_WEBHOOK_URL;
  if (!url) {
    batch.ackAll(); // push disabled
    return;
  }
  if (!env.PUSH_WEBHOOK_SECRET) {
    // Never send unsigned: keep retrying (then dead-letter) until the secret is configured.
    console.error(JSON.stringify({ at: "push", error: "PUSH_WEBHOOK_URL is set but PUSH_WEBHOOK_SECRET is not; not sending unsigned" }));
    for (const m of batch.messages) m.retry({ delaySeconds: retryDelay(env, m.attempts) });
    return;
  }
  await Promise.all(
    batch.messages.map(async (message) => {
      const body = JSON.stringify({ type: "message", id: message.id, attempt: message.attempts, sentAt: Date.now(), ...message.body });
      try {
        const res = await fetch(url, {
          method: "POST",
          headers: {
            "Content-Type": "application/json",
            [SIGNATURE_HEADER]: await signBody(env.PUSH_WEBHOOK_SECRET, body),
          },
          body,
        });
        if (res.ok) message.ack();
        else message.retry({ delaySeconds: retryDelay(env, message.attempts) });
        await res.body?.cancel();
      } catch (err) {
        console.warn(JSON.stringify({ at: "push", error: String(err) }));
        message.retry({ delaySeconds: retryDelay(env, message.attempts) });
      }
    }),
  );
}
