// Types of boot-listener.mjs (plain JavaScript, run before anything is compiled).
export declare const RETRY_MIN_MS: number;
export declare const RETURN_PER_SECOND: number;
export declare const RETRY_MAX_MS: number;
export declare function startingRefusal(retryAfterMs: number): {
  error: {
    message: string;
    code: number;
    data: {
      code: string;
      httpStatus: number;
      tetherError: { code: string; message: string; details: { retryAfterMs: number } };
    };
  };
};
export declare function openBootListener(
  env?: Record<string, string | undefined>,
  random?: () => number,
): Promise<void>;
