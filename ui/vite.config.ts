/// <reference types="vitest/config" />
// The panel is served by the gateway under /admin/ from files embedded at build time
// (crates/panel). `base: './'` makes every asset URL relative, so the same build works under
// any mount prefix. `npm run dev` proxies the admin API to a running gateway.
import { defineConfig } from 'vite';

// Vite runs this file in Node; this is all of Node's API it uses.
declare const process: { env: Record<string, string | undefined> };

const adminUrl = process.env.KEYLOOP_ADMIN_URL ?? 'http://127.0.0.1:8081';

export default defineConfig({
  base: './',
  esbuild: {
    jsx: 'automatic',
    jsxImportSource: 'preact',
  },
  build: {
    target: 'es2022',
    outDir: 'dist',
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 300,
  },
  server: {
    proxy: {
      '/admin/api': { target: adminUrl, changeOrigin: false },
    },
  },
  test: {
    include: ['src/**/*.test.ts'],
    environment: 'node',
    // Clock formatting is tested against fixed wall times.
    env: { TZ: 'UTC' },
  },
});
