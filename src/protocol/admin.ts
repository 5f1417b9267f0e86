// The admin API's export and erasure jobs (docs/protocol.md 17): the job every route answers with, and the
// lines of an export file. Shared by the Worker's routes, the user object that runs the jobs, and clients.
import type { ChatMessage } from "./frames";
import type { ConversationType, Role } from "./api";

export type JobKind = "export" | "erase";
export type JobState = "running" | "done" | "failed";

/** `job_` + a time-sortable id (src/lib/ids.ts). */
export const JOB_ID_RE = /^job_[0-9a-z]{26}$/;

/** How far a job got. `phase` names the step it is in; the counts only grow. */
export interface JobProgress {
  phase: "start" | "account" | "list" | "conversations" | "exports" | "sweep" | "finish";
  conversations: { done: number; total: number };
  /** Export: messages written; erasure: messages made tombstones. */
  messages: number;
  /** Export: reactions written; erasure: reactions taken back. */
  reactions: number;
  /** Export only: bytes of the file written so far. */
  bytes?: number;
  /** While the job waits for a conversation to finish deleting (D1 or R2 slow or down): what it waits for. */
  waiting?: string;
  /** While a step keeps failing and is retried: why (the job is still running). */
  lastError?: { message: string; at: number };
}

export interface ExportResult {
  /** The download link (signed, no header needed) until `expiresAt`; absent once expired. */
  url?: string;
  expiresAt: number;
  expired?: boolean;
  bytes: number;
  lines: number;
}

export interface EraseResult {
  conversations: number;
  messages: number;
  reactions: number;
}

export interface AdminJob {
  id: string;
  kind: JobKind;
  userId: string;
  state: JobState;
  progress: JobProgress;
  createdAt: number;
  updatedAt: number;
  /** Once done. */
  result?: ExportResult | EraseResult;
  /** Once failed. */
  error?: { code: string; message: string };
}

// ---------------------------------------------------------------- the export file: one JSON object per line

export type ExportLine =
  | { type: "export"; format: 1; jobId: string; userId: string; createdAt: number }
  | {
      type: "account";
      id: string;
      username: string;
      createdAt: number;
      /** Whether the account has a password (the hash itself is never exported). */
      passwordSet: boolean;
      settings: { groupAdds: string | null };
      blocks: { userId: string; blockedAt: number }[];
    }
  | {
      type: "membership";
      conversationId: string;
      conversationType: ConversationType;
      title: string | null;
      createdAt: number;
      createdBy: string;
      /** Null: no longer a member (the user left or was removed). */
      role: Role | null;
      joinedAt: number | null;
    }
  | ({ type: "message"; conversationId: string } & ChatMessage)
  | { type: "reaction"; conversationId: string; seq: number; emoji: string; createdAt: number }
  | { type: "end"; lines: number };
