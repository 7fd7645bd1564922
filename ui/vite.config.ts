import { svelte } from '@sveltejs/vite-plugin-svelte';
import { defineConfig } from 'vitest/config';

// A static build embedded in the desktop binary: no dev server at run time, no remote
// content, and no inlined data: assets (the CSP allows fonts from 'self' only).
export default defineConfig({
  plugins: [svelte()],
  clearScreen: false,
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    assetsInlineLimit: 0,
    target: 'safari15',
  },
  test: {
    include: ['src/**/*.spec.ts'],
    environment: 'node',
    // The contrast test reads app.css as text (?raw).
    css: { include: [/app\.css/] },
  },
});
