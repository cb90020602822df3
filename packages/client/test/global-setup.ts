/**
 * The control plane's PostgreSQL ladder (the wire tests run a real server), shared. Re-exported
 * from here so this package's type-check sees the `ProvidedContext` keys the helpers `inject()`.
 */
export { default } from '@tether/control-plane/testing/global-setup';
