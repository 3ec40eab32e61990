// The keys page in a real browser: Debian's Chromium (/usr/bin/chromium;
// Playwright's own browser downloads are never used), against `make run`
// started for the run on ports of its own: the API on 3300, the page on
// 5300 (its own origin, so every call goes through CORS and preflights).
import { defineConfig } from "@playwright/test";

export const API = "http://127.0.0.1:3300";
export const PAGE = "http://localhost:5300";

export default defineConfig({
  testDir: ".",
  testMatch: "*.spec.js",
  timeout: 90_000,
  workers: 1,
  retries: 0,
  reporter: [["list"]],
  outputDir: "../../target/browser/results",
  use: {
    baseURL: PAGE,
    headless: true,
    viewport: { width: 1280, height: 860 },
    launchOptions: { executablePath: process.env.CHROMIUM || "/usr/bin/chromium" },
  },
  webServer: {
    command: "make -C ../.. run",
    url: `${PAGE}/`,
    env: { PORT: "3300", PAGE_PORT: "5300", MAX_KEYS_PER_ACCOUNT: "5", RUST_LOG: "warn" },
    timeout: 900_000,
    reuseExistingServer: false,
    stdout: "ignore",
    stderr: "pipe",
  },
});
