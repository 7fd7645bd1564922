export * from './locale.svelte';
