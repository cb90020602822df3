export const REJECTED_TOKEN_MESSAGE =
  'The server no longer accepts this token (it is wrong, revoked or expired, or its participant is suspended). Sign in with a valid token.';
