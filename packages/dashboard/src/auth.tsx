/** The signed-in participant token: kept in sessionStorage (this tab only), never elsewhere. */
import { createContext, useContext } from 'react';

const KEY = 'tether.token';

export function storedToken(): string | null {
  try {
    return window.sessionStorage.getItem(KEY);
  } catch {
    return null;
  }
}

export function storeToken(token: string | null): void {
  try {
    if (token === null) window.sessionStorage.removeItem(KEY);
    else window.sessionStorage.setItem(KEY, token);
  } catch {
    // Storage disabled: the token lives only as long as the page.
  }
}

export interface Auth {
  signOut: (message?: string) => void;
}

export const AuthContext = createContext<Auth>({ signOut: () => undefined });

export function useAuth(): Auth {
  return useContext(AuthContext);
}
