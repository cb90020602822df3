/**
 * The WebSocket upgrade with its credential in the request (docs/decisions/0018): a client that
 * sends `Authorization: Bearer <token>` (and, a node that had an attachment, `x-tether-resume`)
 * is authenticated — and its claim checked and resumed — before the upgrade is answered, and the
 * 101 response carries `x-tether-handshake`.
 *
 * Batched: the upgrades of one event-loop turn share one credential lookup (cached answers
 * aside) and one resume statement (runtime-nodes/resume.ts). A rejected credential is refused
 * before it becomes a socket, charged to the address's auth-failure budget and audited as every
 * rejected credential is; with that budget empty the answer is `rate_limited` (429).
 */
import {
  ResumeClaim,
  RESUME_HEADER_MAX_LENGTH,
  TetherError,
  decodeHeaderJson,
  type HandshakeAnswer,
  type ResumeRefusalReason,
  type AttachmentState,
} from '@tether/contracts';
import type { Principal } from '../auth/principal.js';
import { BatchQueue } from '../lib/single-flight.js';
import {
  resumeAttachments,
  type ResumeRequest,
  type ResumeResult,
} from '../runtime-nodes/resume.js';
import { auditAuthFailure, credentialKind } from '../trpc/audit.js';
import type { Deps } from '../trpc/context.js';
import { systemInfo } from '../trpc/system-info.js';

const BATCH = 1_000;

export interface UpgradeClaim {
  /** The bearer token ('' for an Authorization header that is not one). */
  token: string;
  /** The raw `x-tether-resume` header, if any. */
  resume: string | null;
  clientContractVersion: string | null;
  peer: string;
  connectionId: string;
}

export type UpgradeOutcome =
  | {
      kind: 'refused';
      statusLine: string;
      error: TetherError;
      retryAfterMs: number;
    }
  | {
      kind: 'accepted';
      principal: Principal;
      clientContractVersion: string | null;
      /** Presence was bound to this connection by the resume. */
      bound: boolean;
      answer: HandshakeAnswer;
    };

interface Pending {
  claim: UpgradeClaim;
  resume: ResumeClaim | null;
  settle: (outcome: UpgradeOutcome) => void;
}

/** `not_resumed:<reason>`, `resumed`, `fresh` (no claim), `refused_401`, `refused_400`… */
type HandshakeResult = string;

export class UpgradeHandshakes {
  readonly #deps: Deps;
  readonly #queue: BatchQueue<Pending>;

  constructor(deps: Deps) {
    this.#deps = deps;
    this.#queue = new BatchQueue(BATCH, (batch) => this.#run(batch));
  }

  /** Decides one upgrade (joining the current turn's batch). Never rejects. */
  check(claim: UpgradeClaim): Promise<UpgradeOutcome> {
    let resume: ResumeClaim | null = null;
    if (claim.resume !== null) {
      const decoded =
        claim.resume.length > RESUME_HEADER_MAX_LENGTH
          ? { ok: false as const, message: `longer than ${RESUME_HEADER_MAX_LENGTH} characters` }
          : decodeHeaderJson(ResumeClaim, claim.resume);
      if (!decoded.ok) {
        this.#count('refused_400');
        return Promise.resolve({
          kind: 'refused',
          statusLine: '400 Bad Request',
          error: new TetherError(
            'request.invalid',
            `The x-tether-resume header is not a valid resume claim: ${decoded.message.slice(0, 300)}.`,
            { header: 'x-tether-resume' },
          ),
          retryAfterMs: 0,
        });
      }
      resume = decoded.value;
    }
    return new Promise((settle) => this.#queue.push({ claim, resume, settle }));
  }

  /** Resolves once every upgrade queued so far is decided. */
  idle(): Promise<void> {
    return this.#queue.idle();
  }

  #count(result: HandshakeResult): void {
    this.#deps.metrics.wsHandshakes.inc({ result });
  }

  #answer(
    principal: Principal,
    resumed: boolean,
    reason: ResumeRefusalReason | undefined,
    state: AttachmentState | null,
  ): HandshakeAnswer {
    return {
      // What system.info answers this caller.
      ...systemInfo(this.#deps.settings, principal),
      resumed,
      ...(reason !== undefined ? { reason } : {}),
      state,
      readOnly: false,
    };
  }

  async #run(batch: Pending[]): Promise<void> {
    const deps = this.#deps;
    deps.metrics.wsUpgradeBatchSize.observe(batch.length);
    let principals: (Principal | null)[];
    try {
      principals = await deps.auth.authenticateMany(batch.map((p) => p.claim.token));
    } catch (err) {
      deps.log.warn({ err, upgrades: batch.length }, 'upgrade authentication failed');
      for (const p of batch) {
        this.#count('refused_503');
        p.settle({
          kind: 'refused',
          statusLine: '503 Service Unavailable',
          error: new TetherError(
            'system.unavailable',
            'The credential could not be checked; retry.',
            {
              retryAfterMs: 1_000,
            },
          ),
          retryAfterMs: 1_000,
        });
      }
      return;
    }

    const resumes: ResumeRequest[] = [];
    const accepted: { p: Pending; principal: Principal }[] = [];
    await Promise.all(
      batch.map(async (p, i) => {
        const principal = principals[i] ?? null;
        if (principal === null) {
          p.settle(await this.#rejected(p.claim));
          return;
        }
        accepted.push({ p, principal });
        if (principal.kind === 'node' && p.resume !== null) {
          resumes.push({
            nodeId: principal.nodeId,
            ownerParticipantId: principal.ownerParticipantId,
            connectionId: p.claim.connectionId,
            claim: p.resume,
          });
        }
      }),
    );

    let results = new Map<string, ResumeResult>();
    if (resumes.length > 0) {
      try {
        results = await resumeAttachments(deps.db, resumes);
      } catch (err) {
        deps.log.warn({ err, claims: resumes.length }, 'resume failed; the nodes attach instead');
        for (const r of resumes)
          results.set(r.connectionId, { resumed: false, reason: 'unavailable' });
      }
    }
    for (const { p, principal } of accepted) {
      const result = results.get(p.claim.connectionId);
      let answer: HandshakeAnswer;
      let bound = false;
      if (result === undefined) {
        this.#count('fresh');
        answer = this.#answer(principal, false, 'no_claim', null);
      } else if (result.resumed) {
        this.#count('resumed');
        answer = this.#answer(principal, true, undefined, result.state);
        bound = result.bound;
      } else {
        this.#count(`not_resumed:${result.reason}`);
        answer = this.#answer(principal, false, result.reason, null);
      }
      p.settle({
        kind: 'accepted',
        principal,
        clientContractVersion: p.claim.clientContractVersion,
        bound,
        answer,
      });
    }
  }

  async #rejected(claim: UpgradeClaim): Promise<UpgradeOutcome> {
    const deps = this.#deps;
    auditAuthFailure(deps.log.child({ connectionId: claim.connectionId, transport: 'ws' }), {
      peer: claim.peer,
      credential: credentialKind(claim.token),
    });
    let wait = 0;
    try {
      wait = await deps.limits.authFailures.take(claim.peer);
    } catch (err) {
      deps.log.warn({ err }, 'auth-failure budget unavailable');
    }
    if (wait > 0) {
      this.#count('refused_429');
      return {
        kind: 'refused',
        statusLine: '429 Too Many Requests',
        error: new TetherError(
          'rate_limited',
          'Too many failed authentications from this address.',
          {
            retryAfterMs: wait,
          },
        ),
        retryAfterMs: wait,
      };
    }
    this.#count('refused_401');
    return {
      kind: 'refused',
      statusLine: '401 Unauthorized',
      error: new TetherError(
        'auth.unauthenticated',
        'The credential is unknown, expired or revoked.',
      ),
      retryAfterMs: 0,
    };
  }
}
