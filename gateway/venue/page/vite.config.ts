import { defineConfig } from "vite";

// Relative asset URLs: the gateway serves dist/ at its root, and a proxy may put the
// venue under a path of its own. `npm run dev` serves the page with a local venue
// (`make run`) behind it.
const venue = "http://127.0.0.1:8000";

export default defineConfig({
  base: "./",
  build: { outDir: "dist", emptyOutDir: true, chunkSizeWarningLimit: 1000 },
  server: {
    proxy: {
      "/v1/market": { target: venue.replace("http", "ws"), ws: true },
      "/v1": venue,
    },
  },
});
