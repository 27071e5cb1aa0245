import { z } from "zod";
import { CommandIdSchema, IsoTimeSchema, SlackChannelIdSchema, SlackTeamIdSchema, SlackUserIdSchema } from "@iaas/contracts";
import { readKvJson, type KV, type Logger } from "@iaas/runtime";
import { JetStreamApiCodes, JetStreamApiError } from "@nats-io/jetstream";

/**
 * Where to answer a command, kept in the `iaas_requests` bucket by command id. Written only by
 * the gateway, from a verified Slack request, before the command is published; read when its
 * results arrive. The bucket is the gateway's own, so its schema lives here, not in contracts.
 */
export const RequestRecordSchema = z.strictObject({
  id: CommandIdSchema,
  /** Absent for a command from the App Home: its answers go to the user's DM with the app. */
  responseUrl: z.url().optional(),
  teamId: SlackTeamIdSchema,
  channelId: SlackChannelIdSchema,
  userId: SlackUserIdSchema,
  /** The text after `/iaas`, as typed. */
  text: z.string().max(4000),
  createdAt: IsoTimeSchema,
  /** response_url posts made so far; Slack allows 5 within 30 minutes of the command. */
  posts: z.number().int().nonnegative(),
  /** The final result was delivered, so a redelivered result is not posted twice. */
  finalDelivered: z.boolean(),
});
export type RequestRecord = z.infer<typeof RequestRecordSchema>;

/** https://api.slack.com/interactivity/handling#message_responses: "up to 5 times within 30 minutes". */
export const RESPONSE_URL_MAX_POSTS = 5;
/** A minute short of Slack's 30, so a slow post does not land just after the URL expired. */
export const RESPONSE_URL_TTL_MS = 29 * 60 * 1000;

/** A record with the revision it was read or written at, so the next change can be a compare-and-set without reading it again. */
export interface StoredRequest {
  record: RequestRecord;
  revision: number;
}

export type PostSlot = { ok: true; stored: StoredRequest } | { ok: false; reason: "exhausted" | "expired" | "unknown" };

export class RequestStore {
  constructor(
    private readonly kv: KV,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Stores a new record; `false` when one already exists (a retry of the same request).
   * A put expecting "no previous revision" rather than `kv.create`, which on a timeout spends a
   * second timeout reading the key back; this runs inside Slack's 3-second ack.
   */
  async create(rec: RequestRecord, timeoutMs: number): Promise<boolean> {
    const value = JSON.stringify(RequestRecordSchema.parse(rec));
    try {
      await this.kv.put(rec.id, value, { previousSeq: 0, timeout: timeoutMs });
      return true;
    } catch (err) {
      if (isWrongLastSequence(err)) return false;
      throw err;
    }
  }

  /** The record and its revision; undefined when there is none (or it is unreadable). */
  async get(id: string): Promise<StoredRequest | undefined> {
    return this.read(id);
  }

  /**
   * Takes one of the request's response_url posts, if any is left and the URL has not expired.
   * A progress message may not take the last one: that is kept for the final result.
   * Compare-and-set, so two instances relaying results for one request do not overspend. `known`
   * (what the caller just read) saves a read; if it is stale the write is refused and the
   * record read again.
   */
  async takePost(id: string, kind: "progress" | "final", known?: StoredRequest): Promise<PostSlot> {
    let cur = known;
    for (let attempt = 0; attempt < 10; attempt++) {
      cur ??= await this.read(id);
      if (!cur) return { ok: false, reason: "unknown" };
      const { record, revision } = cur;
      if (this.now() - Date.parse(record.createdAt) > RESPONSE_URL_TTL_MS) return { ok: false, reason: "expired" };
      const limit = kind === "final" ? RESPONSE_URL_MAX_POSTS : RESPONSE_URL_MAX_POSTS - 1;
      if (record.posts >= limit) return { ok: false, reason: "exhausted" };
      const next = { ...record, posts: record.posts + 1 };
      const written = await this.cas(id, next, revision);
      if (written !== undefined) return { ok: true, stored: { record: next, revision: written } };
      cur = undefined;
    }
    throw new Error(`could not update request ${id}: too many concurrent updates`);
  }

  /** Marks the final result delivered; `known` as for takePost. */
  async markFinalDelivered(id: string, known?: StoredRequest): Promise<void> {
    let cur = known;
    for (let attempt = 0; attempt < 10; attempt++) {
      cur ??= await this.read(id);
      if (!cur || cur.record.finalDelivered) return;
      if ((await this.cas(id, { ...cur.record, finalDelivered: true }, cur.revision)) !== undefined) return;
      cur = undefined;
    }
    throw new Error(`could not update request ${id}: too many concurrent updates`);
  }

  private async read(id: string): Promise<StoredRequest | undefined> {
    // A malformed record (someone else wrote to our bucket) is never a reply target.
    const r = await readKvJson(this.kv, id, RequestRecordSchema, this.log, "request record");
    return r && { record: r.value, revision: r.revision };
  }

  /** The new revision, or undefined when someone else updated the record first (read it again). */
  private async cas(id: string, rec: RequestRecord, revision: number): Promise<number | undefined> {
    try {
      return await this.kv.update(id, JSON.stringify(rec), revision);
    } catch (err) {
      if (isWrongLastSequence(err)) return undefined;
      throw err;
    }
  }
}

function isWrongLastSequence(err: unknown): boolean {
  return err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamWrongLastSequence;
}
