// The user object's small named values. Owns the `meta` table.
//
// An object is addressed by a name it cannot read back, so it learns whose object it is from the first
// socket, fan-out update or device lease that reaches it (`user_id`). The other keys belong to presence.ts
// and limits.ts.

export type MetaKey =
  /** Whose object this is. */
  | "user_id"
  /** "1" or "0": the presence last announced to subscribers. */
  | "online"
  /** When presence last changed (ms). */
  | "last_seen_at"
  /** When the subscriptions with watched users were last renewed (ms). */
  | "watches_renewed_at"
  /** A per-user quota's token bucket, `{tokens, at}` as JSON (limits.ts). */
  | `quota:${"create" | "members" | "presence"}`;

export class Meta {
  readonly #sql: SqlStorage;

  constructor(sql: SqlStorage) {
    this.#sql = sql;
  }

  get(key: MetaKey): string | null {
    return this.#sql.exec<{ value: string }>("SELECT value FROM meta WHERE key = ?", key).toArray()[0]?.value ?? null;
  }

  set(key: MetaKey, value: string): void {
    this.#sql.exec("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", key, value);
  }
}
