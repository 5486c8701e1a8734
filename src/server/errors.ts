// Errors in the shape OpenAI-compatible clients expect:
//   {"error": {"message": "...", "type": "invalid_request_error", "param": "max_tokens", "code": null}}
// The official `openai` client turns the status into its error classes (BadRequestError,
// AuthenticationError, ...) and shows `message`.

export type ErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'not_found_error'
  | 'server_error'
  | 'unavailable_error';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: ErrorType = 'invalid_request_error',
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  body(): {
    error: { message: string; type: ErrorType; param: string | null; code: string | null };
  } {
    return {
      error: { message: this.message, type: this.type, param: this.param, code: this.code },
    };
  }
}

/** 400 naming the field: `field: why`. */
export const badField = (param: string, why: string, code: string | null = null) =>
  new ApiError(400, `${param}: ${why}`, 'invalid_request_error', param, code);

/**
 * A client's value as an error message shows it: short, and safe for anything JSON.parse can
 * return (1e309 parses to Infinity, which JSON.stringify would print as null; a value nested
 * 100k deep would overflow the stack of JSON.stringify).
 */
export function shown(v: unknown): string {
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') return JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}...` : v);
  if (v === null || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return `an array of ${v.length}`;
  return 'an object';
}
