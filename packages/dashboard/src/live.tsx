import type { ReactNode } from 'react';

export function LiveProvider({ children }: { children: ReactNode }) {
  return <>{children}</>;
}

export function ConnectionStatus() {
  return (
    <span data-testid="connection-status" data-state="connecting">
      Connecting…
    </span>
  );
}
