// Stylesheets imported for their side effect (Vite puts them into the page's CSS).
declare module '*.css';
