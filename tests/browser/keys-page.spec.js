// The dashboard's API-keys page, <prolinksqr-api-keys>, in Debian's Chromium
// against `make run`: the page on its own origin (http://localhost:5300)
// calls the API (http://127.0.0.1:3300) cross-origin, as in production.
// Each step writes a screenshot under target/browser/screenshots/.
import fs from "node:fs";
import { createRequire } from "node:module";
import { expect, test } from "@playwright/test";
import { API, PAGE } from "./playwright.config.js";

const require = createRequire(import.meta.url);
const AXE = fs.readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");
const SHOTS = new URL("../../target/browser/screenshots/", import.meta.url).pathname;
fs.mkdirSync(SHOTS, { recursive: true });

const KEY = /^key-[0-9A-Za-z]{40}$/;

/** The local API's unverified dashboard token for `sub`. */
function token(sub) {
  const part = (v) => Buffer.from(JSON.stringify(v)).toString("base64url");
  return `${part({ alg: "none", typ: "JWT" })}.${part({ sub, token_use: "id" })}.local`;
}

function account(label) {
  return `acct-${label}-${Math.random().toString(36).slice(2, 8)}`;
}

/** A protected route called with `key`, as an integration would: the status. */
async function call(key, method = "GET", path = "/links/lnk_1") {
  const resp = await fetch(API + path, { method, headers: { "x-api-key": key } });
  return resp.status;
}

/** A key made through the API itself (for set-ups). */
async function apiCreate(sub, name, scopes = ["links.read"]) {
  const resp = await fetch(`${API}/apikeys`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token(sub)}`, "Content-Type": "application/json" },
    body: JSON.stringify({ name, scopes }),
  });
  expect(resp.status).toBe(201);
  return resp.json();
}

let shots = 0;
async function shot(page, name) {
  shots += 1;
  await page.screenshot({ path: `${SHOTS}${String(shots).padStart(2, "0")}-${name}.png`, fullPage: true });
}

/** axe-core on the page as it is: no serious or critical violation. */
async function accessible(page, what) {
  await page.evaluate(AXE);
  const violations = await page.evaluate(async () => {
    const r = await globalThis.axe.run(document, { resultTypes: ["violations"] });
    return r.violations
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.id} (${v.impact}): ${v.help}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  });
  expect(violations, `axe on ${what}`).toEqual([]);
}

/** Opens the page signed in as `sub`, and collects the console. */
async function open(page, sub) {
  const consoleLines = [];
  page.on("console", (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => consoleLines.push(`pageerror: ${e.message}`));
  await page.goto("/");
  await page.getByLabel(/Signed in as/).fill(sub);
  await page.getByRole("button", { name: "Switch" }).click();
  await expect(page.getByText("Loading keys…")).toBeHidden();
  return consoleLines;
}

const component = (page) => page.locator("prolinksqr-api-keys");
const row = (page, name) => component(page).getByRole("row").filter({ has: page.getByRole("rowheader", { name, exact: true }) });
const alert = (page) => component(page).locator("#error");

/** The element that has focus, through shadow roots: a short description. */
async function focused(page) {
  return page.evaluate(() => {
    let el = document.activeElement;
    while (el && el.shadowRoot && el.shadowRoot.activeElement) el = el.shadowRoot.activeElement;
    if (!el || el === document.body) return null;
    const dialog = el.closest("dialog");
    return {
      tag: el.tagName.toLowerCase(),
      id: el.id,
      text: (el.textContent || "").trim(),
      label: el.labels && el.labels[0] ? el.labels[0].textContent.trim() : "",
      dialog: dialog ? dialog.id : null,
      outline: getComputedStyle(el).outlineStyle,
      outlineWidth: Number.parseFloat(getComputedStyle(el).outlineWidth),
    };
  });
}

/** Everywhere a page could keep a secret, searched for `key`. */
async function traces(page, key) {
  return page.evaluate(async (key) => {
    const found = [];
    const texts = [document.documentElement.outerHTML];
    const visit = (root) => {
      for (const el of root.querySelectorAll("*")) {
        if (typeof el.value === "string") texts.push(el.value);
        if (el.shadowRoot) {
          texts.push(el.shadowRoot.innerHTML);
          visit(el.shadowRoot);
        }
      }
    };
    visit(document);
    if (texts.some((t) => t.includes(key))) found.push("DOM");
    if (localStorage.length || sessionStorage.length) found.push("web storage written");
    if (document.cookie) found.push("cookies written");
    if ((await indexedDB.databases()).length) found.push("IndexedDB written");
    if ((await caches.keys()).length) found.push("CacheStorage written");
    if (location.href.includes(key) || JSON.stringify(history.state ?? null).includes(key)) found.push("URL or history");
    if (performance.getEntries().some((e) => e.name.includes(key))) found.push("a requested URL");
    if (getSelection().toString().includes(key)) found.push("the selection");
    return found;
  }, key);
}

/** Whether the page's JavaScript heap still holds `key`, after a full GC. */
async function heapHolds(page, key) {
  const cdp = await page.context().newCDPSession(page);
  const chunks = [];
  cdp.on("HeapProfiler.addHeapSnapshotChunk", (e) => chunks.push(e.chunk));
  await cdp.send("HeapProfiler.enable");
  await cdp.send("HeapProfiler.collectGarbage");
  await cdp.send("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
  await cdp.detach();
  return chunks.join("").includes(key);
}

/** Creates a key in the page; returns it as the one-time dialog shows it. */
async function createInPage(page, name, scopeLabels) {
  await component(page).getByRole("button", { name: "Create key" }).first().click();
  const dialog = component(page).getByRole("dialog", { name: "Create an API key" });
  await expect(dialog).toBeVisible();
  await dialog.getByLabel("Name").fill(name);
  for (const label of scopeLabels) await dialog.getByRole("checkbox", { name: label }).check();
  return dialog;
}

/** The one-time dialog's key, read through its copy button and the clipboard. */
async function copyShownKey(page) {
  const secret = component(page).getByRole("dialog", { name: "Copy your new key" });
  await expect(secret).toBeVisible();
  await expect(secret).toContainText("This is the only time the key is shown");
  await secret.getByRole("button", { name: "Copy" }).click();
  await expect(secret.getByRole("status")).toHaveText("Copied to the clipboard.");
  const key = await page.evaluate(() => navigator.clipboard.readText());
  expect(key).toMatch(KEY);
  return { secret, key };
}

test.beforeEach(async ({ context }) => {
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: PAGE });
});

test("the seed's story: create, see the key once, scopes, deactivate, reactivate, roll, history, delete", async ({ page }) => {
  const sub = account("story");
  const consoleLines = await open(page, sub);
  await expect(component(page).getByText("No API keys yet")).toBeVisible();
  await shot(page, "empty-list");
  await accessible(page, "the empty list");

  // Create with one scope: the key is shown once, with the warning and a copy button.
  const form = await createInPage(page, "Zapier integration", ["List and read links links.read"]);
  await shot(page, "create-form");
  await accessible(page, "the create form");
  await form.getByRole("button", { name: "Create key" }).click();
  const { secret, key } = await copyShownKey(page);
  await shot(page, "key-shown-once");
  await accessible(page, "the one-time key");
  await secret.getByRole("button", { name: "I have copied it" }).click();
  await expect(secret).toBeHidden();
  await expect.poll(() => focused(page)).toMatchObject({ tag: "button", text: "Create key", dialog: null });

  // Gone from the page once the dialog is closed: DOM, storage, URL, console, heap.
  expect(await traces(page, key)).toEqual([]);
  expect(consoleLines.filter((l) => l.includes(key))).toEqual([]);
  expect(await heapHolds(page, key), "the page's heap still holds the key").toBe(false);

  // The list: name, prefix and mask, scope, state; never the key.
  const r = row(page, "Zapier integration");
  await expect(r).toContainText(`${key.slice(0, 10)}${"*".repeat(34)}`);
  await expect(r).toContainText("links.read");
  await expect(r).toContainText("Active");
  await expect(r).toContainText("Never");
  await shot(page, "list-with-key");
  await accessible(page, "the list");

  // Its scope opens its routes, and no other.
  expect(await call(key)).toBe(200);
  expect(await call(key, "DELETE")).toBe(403);

  // Grant links.delete: the same call passes.
  await r.getByRole("button", { name: "Edit Zapier integration" }).click();
  const edit = component(page).getByRole("dialog", { name: "Edit “Zapier integration”" });
  await expect(edit.getByLabel("Expires (optional)"), "an expiry is set at creation only").toBeHidden();
  await edit.getByRole("checkbox", { name: "Archive and delete links links.delete" }).check();
  await shot(page, "edit-scopes");
  await edit.getByRole("button", { name: "Save changes" }).click();
  await expect(edit).toBeHidden();
  await expect(r).toContainText("links.delete");
  expect(await call(key, "DELETE")).toBe(200);

  // Deactivate: 401 at the very next call; reactivate: 200.
  await r.getByRole("button", { name: "Turn off Zapier integration" }).click();
  await expect(r).toContainText("Off");
  expect(await call(key)).toBe(401);
  await shot(page, "deactivated");
  await r.getByRole("button", { name: "Turn on Zapier integration" }).click();
  await expect(r).toContainText("Active");
  expect(await call(key)).toBe(200);

  // Roll, the old secret stopping at once: a new key, shown once.
  await r.getByRole("button", { name: "Roll Zapier integration" }).click();
  const roll = component(page).getByRole("dialog", { name: "Roll “Zapier integration”" });
  await roll.getByRole("radio", { name: "stops working at once" }).check();
  await shot(page, "roll");
  await roll.getByRole("button", { name: "Roll key" }).click();
  const rolled = await copyShownKey(page);
  expect(rolled.key).not.toBe(key);
  await rolled.secret.getByRole("button", { name: "I have copied it" }).click();
  await expect.poll(() => focused(page)).toMatchObject({ tag: "button", text: "Roll Zapier integration" });
  expect(await traces(page, rolled.key)).toEqual([]);
  expect(await call(key)).toBe(401);
  expect(await call(rolled.key)).toBe(200);

  // The key's history, newest first.
  await r.getByRole("button", { name: "History Zapier integration" }).click();
  const history = component(page).getByRole("dialog", { name: "History of “Zapier integration”" });
  await expect(history.getByRole("listitem")).toHaveCount(5);
  await expect(history.getByRole("listitem").first()).toContainText("Rolled");
  await expect(history.getByRole("listitem").last()).toContainText("Created");
  await shot(page, "history");
  await accessible(page, "the history");
  await history.getByRole("button", { name: "Close" }).click();
  await expect.poll(() => focused(page)).toMatchObject({ text: "History Zapier integration" });

  // Delete, confirmed: 401 at the very next call.
  await r.getByRole("button", { name: "Delete Zapier integration" }).click();
  const confirm = component(page).getByRole("dialog", { name: "Delete “Zapier integration”?" });
  await expect(confirm).toContainText("stops working at once");
  await shot(page, "delete-confirm");
  await accessible(page, "the delete confirmation");
  await confirm.getByRole("button", { name: "Delete key" }).click();
  await expect(r).toHaveCount(0);
  expect(await call(rolled.key)).toBe(401);
  await shot(page, "deleted");
  expect(consoleLines.filter((l) => l.startsWith("error") || l.startsWith("pageerror"))).toEqual([]);
});

test("a change made in a second tab is a version conflict: the fresh record is shown, then the change goes through", async ({ context }) => {
  const sub = account("tabs");
  const made = await apiCreate(sub, "CI bot");
  const key = made.key;
  const first = await context.newPage();
  const second = await context.newPage();
  await open(first, sub);
  await open(second, sub);

  // The second tab renames the key; the first still shows version 1.
  await row(second, "CI bot").getByRole("button", { name: "Edit CI bot" }).click();
  const edit = component(second).getByRole("dialog", { name: "Edit “CI bot”" });
  await edit.getByLabel("Name").fill("CI bot (renamed)");
  await edit.getByRole("button", { name: "Save changes" }).click();
  await expect(row(second, "CI bot (renamed)")).toHaveCount(1);

  await row(first, "CI bot").getByRole("button", { name: "Turn off CI bot" }).click();
  await expect(alert(first)).toHaveText(/Someone changed this key since it was shown here/);
  await expect(row(first, "CI bot (renamed)")).toContainText("Active");
  await shot(first, "version-conflict");
  expect(await call(key), "nothing changed on a conflict").toBe(200);

  await row(first, "CI bot (renamed)").getByRole("button", { name: "Turn off CI bot (renamed)" }).click();
  await expect(row(first, "CI bot (renamed)")).toContainText("Off");
  expect(await call(key)).toBe(401);
});

test("the key limit is a sentence, and the form stays open; the list pages", async ({ page }) => {
  const sub = account("limit");
  for (let i = 0; i < 5; i += 1) await apiCreate(sub, `key ${i}`);
  await open(page, sub);

  // Two keys a page: more on demand, until there are no more.
  await page.evaluate(() => {
    const keys = document.querySelector("prolinksqr-api-keys");
    keys.setAttribute("page-size", "2");
    return keys.reload();
  });
  const more = component(page).getByRole("button", { name: "Show more keys" });
  await expect(component(page).getByRole("rowheader")).toHaveCount(2);
  await more.click();
  await expect(component(page).getByRole("rowheader")).toHaveCount(4);
  await more.click();
  await expect(component(page).getByRole("rowheader")).toHaveCount(5);
  await expect(more).toBeHidden();

  const form = await createInPage(page, "one too many", ["List and read links links.read"]);
  await form.getByRole("button", { name: "Create key" }).click();
  await expect(form.getByRole("alert")).toHaveText(/as many API keys as it may have/);
  await expect(form).toBeVisible();
  await shot(page, "key-limit");
  await accessible(page, "the key limit's message");
});

test("a key with an expiry shows it, and shows when it has expired", async ({ page }) => {
  const sub = account("expiry");
  await open(page, sub);
  const form = await createInPage(page, "Until 2030", ["List and read links links.read"]);
  await form.getByLabel("Expires (optional)").fill("2030-01-01T12:00");
  await form.getByRole("button", { name: "Create key" }).click();
  await component(page).getByRole("button", { name: "I have copied it" }).click();
  await expect(row(page, "Until 2030")).toContainText("Expires");
  await expect(row(page, "Until 2030")).toContainText("2030");

  const soon = await fetch(`${API}/apikeys`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token(sub)}`, "Content-Type": "application/json" },
    body: JSON.stringify({ name: "Short-lived", scopes: ["links.read"], expiresAt: new Date(Date.now() + 2000).toISOString() }),
  });
  expect(soon.status).toBe(201);
  const { key } = await soon.json();
  expect(await call(key)).toBe(200);
  await page.waitForTimeout(2500);
  await page.evaluate(() => document.querySelector("prolinksqr-api-keys").reload());
  await expect(row(page, "Short-lived")).toContainText("Expired");
  expect(await call(key)).toBe(401);
  await shot(page, "expired");
});

test("an API that is down, and API Gateway's own answers, are sentences, never a raw body", async ({ page }) => {
  const sub = account("down");
  await apiCreate(sub, "Reporting");
  await open(page, sub);
  const signIns = [];
  await page.exposeFunction("noteSignIn", () => signIns.push(1));
  await page.evaluate(() =>
    document.querySelector("prolinksqr-api-keys").addEventListener("prolinksqr-sign-in-required", () => window.noteSignIn()),
  );
  const reload = () => page.evaluate(() => document.querySelector("prolinksqr-api-keys").reload());
  const cases = [
    [{ abort: "connectionrefused" }, /could not be reached/],
    [{ status: 503, headers: { "Retry-After": "7" }, body: '{"message": null}' }, /temporarily unavailable\. Try again in 7 seconds/],
    [{ status: 429, body: '{"message":"Too Many Requests"}' }, /Too many requests/],
    [{ status: 403, body: '{"Message":"User is not authorized to access this resource"}' }, /not allowed/],
    [{ status: 500, body: '{"message": null}' }, /went wrong on our side/],
    [{ status: 503, headers: { "Retry-After": "1" }, body: '{"error":{"code":"service_unavailable","message":"the key store is unavailable"}}' }, /Try again in 1 second\b/],
    [{ status: 401, body: '{"message":"Unauthorized"}' }, /session has expired\. Sign in again/],
  ];
  for (const [answer, sentence] of cases) {
    await page.route(`${API}/**`, (route) =>
      answer.abort
        ? route.abort(answer.abort)
        : route.fulfill({
            status: answer.status,
            headers: {
              "content-type": "application/json",
              "access-control-allow-origin": PAGE,
              "access-control-expose-headers": "Retry-After",
              ...answer.headers,
            },
            body: answer.body,
          }),
    );
    await reload();
    await expect(alert(page)).toHaveText(sentence);
    await expect(alert(page)).not.toContainText("{");
    await page.unrouteAll();
  }
  expect(signIns.length, "a 401 asks the host page to sign in again").toBe(1);
  await shot(page, "api-down");

  // Back up: the list loads again.
  await reload();
  await expect(alert(page)).toBeEmpty();
  await expect(row(page, "Reporting")).toHaveCount(1);
});

test("keyboard only: focus order, focus kept in the dialog and returned, visible focus", async ({ page }) => {
  const sub = account("keys");
  await open(page, sub);
  // A slow catalogue, as on a loaded machine: the form must not open before
  // its scopes are there, or Tab would skip them.
  await page.route(`${API}/scopes`, async (route) => {
    await new Promise((resolve) => setTimeout(resolve, 700));
    await route.continue();
  });
  // Start from the top of the page, as a keyboard user arriving does.
  await page.mouse.click(2, 2);
  await page.keyboard.press("Tab");
  expect(await focused(page)).toMatchObject({ tag: "input", id: "account" });
  await page.keyboard.press("Tab");
  expect(await focused(page)).toMatchObject({ tag: "button", text: "Switch" });
  await page.keyboard.press("Tab");
  const create = await focused(page);
  expect(create).toMatchObject({ tag: "button", text: "Create key", dialog: null });
  expect(create.outline).not.toBe("none");
  expect(create.outlineWidth).toBeGreaterThanOrEqual(2);

  // The form opens with focus on its first field, and keeps it inside.
  await page.keyboard.press("Enter");
  await expect(component(page).getByRole("dialog", { name: "Create an API key" })).toBeVisible();
  expect(await focused(page)).toMatchObject({ id: "name", dialog: "form-dialog" });
  await page.keyboard.type("Keyboard bot");
  await page.keyboard.press("Tab");
  expect(await focused(page)).toMatchObject({ label: expect.stringContaining("all") });
  await page.keyboard.press("Tab");
  const firstScope = await focused(page);
  expect(firstScope).toMatchObject({ dialog: "form-dialog", label: expect.stringContaining("links.read") });
  await page.keyboard.press("Space");
  for (let i = 0; i < 60; i += 1) {
    const f = await focused(page);
    if (f && f.text === "Create key" && f.dialog === "form-dialog") break;
    if (f) expect(f.dialog, "focus stays in the dialog").toBe("form-dialog");
    await page.keyboard.press("Tab");
  }
  expect(await focused(page)).toMatchObject({ text: "Create key", dialog: "form-dialog" });
  await page.keyboard.press("Enter");

  // The key's dialog: focus on the key; Escape closes it, and focus returns.
  await expect(component(page).getByRole("dialog", { name: "Copy your new key" })).toBeVisible();
  expect(await focused(page)).toMatchObject({ id: "secret-value", dialog: "secret-dialog" });
  await page.keyboard.press("Tab");
  expect(await focused(page)).toMatchObject({ text: "Copy", dialog: "secret-dialog" });
  await page.keyboard.press("Tab");
  expect(await focused(page)).toMatchObject({ text: "I have copied it", dialog: "secret-dialog" });
  await shot(page, "keyboard-focus");
  await page.keyboard.press("Escape");
  await expect(component(page).getByRole("dialog", { name: "Copy your new key" })).toBeHidden();
  await expect.poll(() => focused(page)).toMatchObject({ text: "Create key", dialog: null });

  // The new row's actions follow, in order, by Tab.
  const order = [];
  for (let i = 0; i < 5; i += 1) {
    await page.keyboard.press("Tab");
    order.push((await focused(page)).text);
  }
  expect(order).toEqual([
    "Edit Keyboard bot",
    "Turn off Keyboard bot",
    "Roll Keyboard bot",
    "History Keyboard bot",
    "Delete Keyboard bot",
  ]);
  // Escape on the delete confirmation cancels it: the key stays, focus returns.
  await page.keyboard.press("Enter");
  await expect(component(page).getByRole("dialog", { name: "Delete “Keyboard bot”?" })).toBeVisible();
  await page.keyboard.press("Escape");
  await expect.poll(() => focused(page)).toMatchObject({ text: "Delete Keyboard bot" });
  await expect(row(page, "Keyboard bot")).toHaveCount(1);
});
