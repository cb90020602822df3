/**
 * The shell: sign-in when this tab holds no token, otherwise the signed-in app (navigation, the
 * live feed, the pages). A token the server refuses (wrong, revoked, expired, suspended) signs
 * out with a message, wherever it is noticed.
 */
import { QueryCache, QueryClient, QueryClientProvider, MutationCache } from '@tanstack/react-query';
import { useCallback, useMemo, useState, type ReactNode } from 'react';
import { Link, Route, Switch, useLocation } from 'wouter';
import { AuthContext, storeToken, storedToken } from './auth.js';
import { isCredentialError } from './errors.js';
import { ConnectionStatus, LiveProvider } from './live.js';
import { REJECTED_TOKEN_MESSAGE } from './messages.js';
import { FleetPage } from './pages/Fleet.js';
import { KeysPage } from './pages/Keys.js';
import { NodePage } from './pages/Node.js';
import { PairingPage } from './pages/Pairing.js';
import { SessionPage } from './pages/Session.js';
import { SessionsPage } from './pages/Sessions.js';
import { SignIn } from './pages/SignIn.js';
import { createApiClient, TRPCProvider } from './trpc.js';

export function App() {
  const [token, setToken] = useState<string | null>(() => storedToken());
  const [notice, setNotice] = useState<string | null>(null);
  const signOut = useCallback((message?: string) => {
    storeToken(null);
    setNotice(message ?? null);
    setToken(null);
  }, []);
  if (token === null) {
    return (
      <SignIn
        notice={notice}
        onSignedIn={(t) => {
          storeToken(t);
          setNotice(null);
          setToken(t);
        }}
      />
    );
  }
  return <SignedIn key={token} token={token} signOut={signOut} />;
}

function SignedIn({ token, signOut }: { token: string; signOut: (message?: string) => void }) {
  const queryClient = useMemo(() => {
    const onError = (error: unknown) => {
      if (isCredentialError(error)) signOut(REJECTED_TOKEN_MESSAGE);
    };
    return new QueryClient({
      queryCache: new QueryCache({ onError }),
      mutationCache: new MutationCache({ onError }),
      defaultOptions: {
        queries: {
          retry: (count, error) => !isCredentialError(error) && count < 2,
          refetchOnWindowFocus: false,
          staleTime: 10_000,
        },
      },
    });
  }, [signOut]);
  const trpcClient = useMemo(() => createApiClient(token), [token]);
  const auth = useMemo(() => ({ signOut }), [signOut]);
  return (
    <AuthContext.Provider value={auth}>
      <QueryClientProvider client={queryClient}>
        <TRPCProvider trpcClient={trpcClient} queryClient={queryClient}>
          <LiveProvider>
            <Layout>
              <Switch>
                <Route path="/">
                  <FleetPage />
                </Route>
                <Route path="/fleet">
                  <FleetPage />
                </Route>
                <Route path="/nodes/:nodeId">{(p) => <NodePage nodeId={p.nodeId} />}</Route>
                <Route path="/sessions">
                  <SessionsPage />
                </Route>
                <Route path="/sessions/:sessionId">
                  {(p) => <SessionPage sessionId={p.sessionId} />}
                </Route>
                <Route path="/pairing">
                  <PairingPage />
                </Route>
                <Route path="/keys">
                  <KeysPage />
                </Route>
                <Route>
                  <NotFound />
                </Route>
              </Switch>
            </Layout>
          </LiveProvider>
        </TRPCProvider>
      </QueryClientProvider>
    </AuthContext.Provider>
  );
}

const NAV = [
  {
    href: '/',
    label: 'Fleet',
    match: (p: string) => p === '/' || p === '/fleet' || p.startsWith('/nodes/'),
  },
  { href: '/sessions', label: 'Sessions', match: (p: string) => p.startsWith('/sessions') },
  { href: '/pairing', label: 'Pairing', match: (p: string) => p === '/pairing' },
  { href: '/keys', label: 'Enrollment keys', match: (p: string) => p === '/keys' },
];

function Layout({ children }: { children: ReactNode }) {
  const [location] = useLocation();
  return (
    <AuthContext.Consumer>
      {({ signOut }) => (
        <div className="shell">
          <a className="skip" href="#main">
            Skip to content
          </a>
          <header className="topbar">
            <span className="brand">Tether</span>
            <nav aria-label="Main">
              <ul>
                {NAV.map((item) => (
                  <li key={item.href}>
                    <Link href={item.href} aria-current={item.match(location) ? 'page' : undefined}>
                      {item.label}
                    </Link>
                  </li>
                ))}
                <li>
                  <a href="/api/docs">API reference</a>
                </li>
              </ul>
            </nav>
            <div className="topbar-end">
              <ConnectionStatus />
              <button type="button" className="secondary" onClick={() => signOut()}>
                Sign out
              </button>
            </div>
          </header>
          <main id="main" tabIndex={-1}>
            {children}
          </main>
        </div>
      )}
    </AuthContext.Consumer>
  );
}

function NotFound() {
  return (
    <section>
      <h1>Not found</h1>
      <p>
        Nothing here. <Link href="/">Back to the fleet</Link>.
      </p>
    </section>
  );
}
