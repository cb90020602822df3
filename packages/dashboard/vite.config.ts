/**
 * The dashboard's build: a static bundle in dist/ (hashed file names under assets/) that the
 * control plane serves at `/`. `pnpm --filter @tether/dashboard dev` runs Vite's dev server,
 * which forwards the API paths to a control plane (TETHER_URL, default http://localhost:4000).
 */
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

const api = process.env.TETHER_URL ?? 'http://localhost:4000';

export default defineConfig({
  plugins: [react()],
  build: {
    outDir: 'dist',
    assetsDir: 'assets',
    emptyOutDir: true,
    sourcemap: false,
    // The whole app is one small bundle; nothing is loaded from elsewhere.
    assetsInlineLimit: 0,
  },
  server: {
    proxy: {
      '/trpc': { target: api, ws: true },
      '/api': { target: api },
    },
  },
});
