/**
 * The control plane's PostgreSQL ladder, shared: `DATABASE_URL` if set, else one embedded
 * PostgreSQL per run, a migrated template database, one clone per test file. Re-exported from
 * here so this package's type-check sees the `ProvidedContext` keys the helpers `inject()`.
 */
export { default } from '@tether/control-plane/testing/global-setup';
