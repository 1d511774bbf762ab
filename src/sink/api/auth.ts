/**
 * The optional bearer token of /api and /ui (setting http_token_file). A
 * browser cannot add an Authorization header to a link it follows, so /ui
 * also takes the token once as `?token=`, answers with an HttpOnly cookie
 * holding it and a redirect to the same page without it; the explorer's own
 * API calls then carry the cookie.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";

export const TOKEN_COOKIE = "reluwatch_token";

export class BearerAuth {
  private readonly digest: Buffer;

  constructor(token: string) {
    this.digest = sha256(token);
  }

  /** True when the request carries the token as a bearer header or as the cookie. */
  allows(req: IncomingMessage): boolean {
    const header = String(req.headers.authorization ?? "");
    const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
    if (bearer !== undefined && this.matches(bearer)) return true;
    const cookie = cookieValue(String(req.headers.cookie ?? ""), TOKEN_COOKIE);
    return cookie !== undefined && this.matches(cookie);
  }

  /** Compared as digests, in constant time, so the comparison reveals nothing about the token. */
  matches(candidate: string): boolean {
    return timingSafeEqual(sha256(candidate), this.digest);
  }
}

function sha256(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

function cookieValue(header: string, name: string): string | undefined {
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

export function tokenCookie(token: string): string {
  return `${TOKEN_COOKIE}=${encodeURIComponent(token)}; Path=/; HttpOnly; SameSite=Strict`;
}
