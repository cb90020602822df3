/**
 * The control plane's PostgreSQL ladder, shared: `DATABASE_URL` if set, else one embedded
 * PostgreSQL per run (as a `postgres` system user under root), a migrated template database,
 * one clone per test server. Re-exported from here so this package's type-check sees the
 * `ProvidedContext` keys (`pgAdminUrl`, `pgTemplateDatabase`) that the control-plane's test
 * helpers `inject()`.
 */
export { default } from '@tether/control-plane/testing/global-setup';
