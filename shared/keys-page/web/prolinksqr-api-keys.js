// <prolinksqr-api-keys>: the ProLinksQR dashboard's "API keys" page as one
// standard custom element. No framework, no build step, no third-party
// script; it runs under a strict Content-Security-Policy (no inline script or
// style, no eval: its styles are a constructable stylesheet).
//
//   <prolinksqr-api-keys api-base="https://api.example.com/prod"></prolinksqr-api-keys>
//   document.querySelector("prolinksqr-api-keys").getToken = async () => idToken;
//
// `api-base` is the dashboard API's base URL. The caller's bearer token (the
// Cognito ID token in production) is asked for through the `getToken`
// property, a function returning the token or a promise of it, before every
// call: never an attribute, so it is never in the DOM. Optional attribute
// `page-size` (1 to 100, default 20).
//
// A new key (create, roll) is shown once, in a dialog with a copy button.
// When that dialog closes, the component clears the field and drops every
// reference to the key: it is never written to storage, the URL, the history
// or the console.
//
// Events (bubbling, composed): `prolinksqr-sign-in-required` when the API
// answers 401, so the host page can sign the user in again.

const css = `
:host { display: block; font: 15px/1.45 system-ui, sans-serif; color: #1d1d1f; }
:host([hidden]), [hidden] { display: none !important; }
* { box-sizing: border-box; }
.scroll { overflow-x: auto; }
code.masked { white-space: nowrap; }
h2 { font-size: 1.35rem; margin: 0; }
h3 { font-size: 1.15rem; margin: 0 0 .75rem; }
header { display: flex; align-items: center; justify-content: space-between; gap: 1rem; margin-bottom: .75rem; }
button { font: inherit; padding: .4rem .8rem; border-radius: 6px; border: 1px solid #5c5c66; background: #fff; color: #1d1d1f; cursor: pointer; }
button.primary { background: #1a4f9c; border-color: #1a4f9c; color: #fff; }
button.danger { background: #a4161a; border-color: #a4161a; color: #fff; }
button:disabled { opacity: .6; cursor: default; }
button.link { border: none; background: none; padding: .2rem .35rem; color: #1a4f9c; text-decoration: underline; }
:focus-visible { outline: 3px solid #b35c00; outline-offset: 2px; }
input, select { font: inherit; padding: .35rem .5rem; border: 1px solid #5c5c66; border-radius: 6px; }
table { width: 100%; border-collapse: collapse; }
th, td { text-align: left; padding: .5rem .4rem; border-bottom: 1px solid #d0d0d7; vertical-align: top; }
th { font-weight: 600; font-size: .9rem; color: #3a3a42; }
td.actions { white-space: nowrap; }
code, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: .9em; }
.badge { display: inline-block; padding: .05rem .5rem; border-radius: 999px; font-size: .85rem; border: 1px solid currentColor; }
.badge.active { color: #146c2e; }
.badge.inactive { color: #55555d; }
.badge.leaked { color: #a4161a; }
.badge.expired { color: #8a4b00; }
.scopes { display: flex; flex-wrap: wrap; gap: .25rem; list-style: none; margin: 0; padding: 0; }
.scopes li { background: #eef1f6; border-radius: 4px; padding: 0 .35rem; }
.alert:empty, .status:empty { display: none; }
.alert { border: 1px solid #a4161a; background: #fdecec; color: #7a1013; padding: .5rem .75rem; border-radius: 6px; margin: .5rem 0; }
.status { color: #146c2e; margin: .5rem 0; }
.empty { color: #55555d; }
dialog { border: 1px solid #5c5c66; border-radius: 10px; padding: 1.25rem; max-width: min(42rem, 94vw); width: 100%; }
dialog::backdrop { background: rgba(20, 20, 30, .45); }
fieldset { border: 1px solid #d0d0d7; border-radius: 6px; margin: .5rem 0; padding: .4rem .75rem .6rem; }
legend { font-weight: 600; padding: 0 .25rem; }
.field { display: flex; flex-direction: column; gap: .25rem; margin: .6rem 0; }
.check { display: flex; gap: .4rem; align-items: baseline; margin: .15rem 0; }
.groups { display: grid; grid-template-columns: repeat(auto-fill, minmax(16rem, 1fr)); gap: 0 .75rem; max-height: 40vh; overflow: auto; }
.hint { color: #55555d; font-size: .9rem; }
.warning { border-left: 4px solid #b35c00; background: #fff4e5; padding: .5rem .75rem; }
.secret-row { display: flex; gap: .5rem; }
.secret-row input { flex: 1; font-family: ui-monospace, Menlo, monospace; }
.buttons { display: flex; justify-content: flex-end; gap: .5rem; margin-top: 1rem; }
.vh { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
ol.events { list-style: none; padding: 0; margin: 0; max-height: 50vh; overflow: auto; }
ol.events li { border-bottom: 1px solid #d0d0d7; padding: .4rem 0; }
`;

let sheet = null;
function stylesheet() {
  if (!sheet) {
    sheet = new CSSStyleSheet();
    sheet.replaceSync(css);
  }
  return sheet;
}

// The skeleton: static markup only. Every value from the API is set with
// textContent or a property, never as markup.
const skeleton = `
<section aria-labelledby="title">
  <header>
    <h2 id="title">API keys</h2>
    <button type="button" class="primary" id="create">Create key</button>
  </header>
  <p class="hint">Keys let your integrations call the ProLinksQR API without signing in. Each key can only do what its scopes allow.</p>
  <div class="alert" id="error" role="alert"></div>
  <p class="status" id="status" role="status"></p>
  <div class="scroll">
  <table id="table" hidden>
    <caption class="vh">Your API keys</caption>
    <thead><tr>
      <th scope="col">Name</th><th scope="col">Key</th><th scope="col">Scopes</th>
      <th scope="col">Created</th><th scope="col">Last used</th><th scope="col">Status</th>
      <th scope="col"><span class="vh">Actions</span></th>
    </tr></thead>
    <tbody id="rows"></tbody>
  </table>
  </div>
  <p class="empty" id="empty" hidden>No API keys yet. Create one to get started.</p>
  <p class="empty" id="loading">Loading keys…</p>
  <button type="button" id="more" hidden>Show more keys</button>
</section>

<dialog id="form-dialog" aria-labelledby="form-title">
  <form id="form" novalidate>
    <h3 id="form-title">Create an API key</h3>
    <div class="alert" id="form-error" role="alert"></div>
    <div class="field">
      <label for="name">Name</label>
      <input id="name" name="name" maxlength="100" autocomplete="off" required aria-describedby="name-hint">
      <span class="hint" id="name-hint">What uses the key, for example “Zapier integration”.</span>
    </div>
    <fieldset id="scopes-fieldset">
      <legend>Scopes</legend>
      <p class="hint" id="scopes-hint">What the key may do. Choose at least one.</p>
      <div id="scope-choices"></div>
    </fieldset>
    <div class="field" id="expiry-field">
      <label for="expires">Expires (optional)</label>
      <input id="expires" name="expires" type="datetime-local" aria-describedby="expires-hint">
      <span class="hint" id="expires-hint">In your local time. Leave empty for a key that does not expire.</span>
    </div>
    <div class="buttons">
      <button type="button" id="form-cancel">Cancel</button>
      <button type="submit" class="primary" id="form-submit">Create key</button>
    </div>
  </form>
</dialog>

<dialog id="secret-dialog" aria-labelledby="secret-title" aria-describedby="secret-warning">
  <h3 id="secret-title">Copy your new key</h3>
  <p class="warning" id="secret-warning">This is the only time the key is shown. Copy it now and keep it somewhere safe: once you close this window it cannot be shown again. If you lose it, roll the key or create a new one.</p>
  <div class="field">
    <label for="secret-value">API key</label>
    <div class="secret-row">
      <input id="secret-value" readonly autocomplete="off" spellcheck="false">
      <button type="button" id="copy">Copy</button>
    </div>
    <span class="status" id="copy-status" role="status"></span>
  </div>
  <div class="buttons">
    <button type="button" class="primary" id="secret-done">I have copied it</button>
  </div>
</dialog>

<dialog id="roll-dialog" aria-labelledby="roll-title">
  <form id="roll-form">
    <h3 id="roll-title">Roll key</h3>
    <div class="alert" id="roll-error" role="alert"></div>
    <p id="roll-text">Rolling gives the key a new secret. Its name, scopes and state stay.</p>
    <fieldset>
      <legend>The current secret</legend>
      <label class="check"><input type="radio" name="grace" value="0" checked> stops working at once</label>
      <label class="check"><input type="radio" name="grace" value="3600"> keeps working for one hour</label>
      <label class="check"><input type="radio" name="grace" value="86400"> keeps working for one day</label>
    </fieldset>
    <div class="buttons">
      <button type="button" id="roll-cancel">Cancel</button>
      <button type="submit" class="primary" id="roll-submit">Roll key</button>
    </div>
  </form>
</dialog>

<dialog id="confirm-dialog" aria-labelledby="confirm-title" aria-describedby="confirm-text">
  <h3 id="confirm-title">Delete key</h3>
  <div class="alert" id="confirm-error" role="alert"></div>
  <p id="confirm-text"></p>
  <div class="buttons">
    <button type="button" id="confirm-cancel">Cancel</button>
    <button type="button" class="danger" id="confirm-ok">Delete key</button>
  </div>
</dialog>

<dialog id="events-dialog" aria-labelledby="events-title">
  <h3 id="events-title">Key history</h3>
  <div class="alert" id="events-error" role="alert"></div>
  <ol class="events" id="events"></ol>
  <div class="buttons">
    <button type="button" id="events-more" hidden>Show older events</button>
    <button type="button" class="primary" id="events-close">Close</button>
  </div>
</dialog>
`;

const ACTIONS = {
  created: "Created",
  updated: "Changed",
  deactivated: "Turned off",
  reactivated: "Turned on",
  rolled: "Rolled",
  deleted: "Deleted",
  leaked: "Reported as leaked",
};

/** An API call that did not succeed: a status (0: no answer at all), the
 * API's error code when it sent one, and Retry-After in seconds. */
class ApiFailure extends Error {
  constructor(status, code = null, field = null, retryAfter = null) {
    super(`API call failed (${status}${code ? ` ${code}` : ""})`);
    this.status = status;
    this.code = code;
    this.field = field;
    this.retryAfter = retryAfter;
  }
}

/** The field an `invalid_field` / `missing_field` message names (`name`). */
function namedField(message) {
  const m = /`([A-Za-z]+)`/.exec(message || "");
  return m ? m[1] : null;
}

function inSeconds(f, fallback) {
  return f.retryAfter ? `in ${f.retryAfter} second${f.retryAfter === 1 ? "" : "s"}` : fallback;
}

/** A sentence a person understands, for any answer the API (or API Gateway
 * in front of it) can give, or none at all. */
export function sentence(f) {
  if (f.status === 0) {
    return "The API could not be reached. Check your connection, then try again.";
  }
  switch (f.code) {
    case "version_conflict":
      return "Someone changed this key since it was shown here. The latest version is shown now: check it, then make your change again.";
    case "key_limit_reached":
      return "This account has as many API keys as it may have. Delete a key you no longer use, then create the new one.";
    case "key_leaked":
      return "This key was reported as leaked, so it cannot be turned back on. Roll it to give it a new secret, or create a new key.";
    case "not_found":
      return "This key no longer exists: it may have been deleted elsewhere. The list is up to date now.";
    case "idempotency_in_progress":
      return `Your previous request is still being processed. Try again ${inSeconds(f, "in a few seconds")}.`;
    case "idempotency_key_reused":
      return "This request looks like an earlier one with different details. Close the window and start again.";
    case "throttled":
      return `The service is busy right now. Try again ${inSeconds(f, "in a few seconds")}. If you were changing a key, check it first: the change may already be saved.`;
    case "service_unavailable":
      return `The service is temporarily unavailable. Try again ${inSeconds(f, "in a few seconds")}. If you were changing a key, check it first: the change may already be saved.`;
    case "missing_field":
    case "invalid_field":
      switch (f.field) {
        case "name":
          return "Give the key a name of 1 to 100 characters.";
        case "scopes":
          return "Choose at least one scope.";
        case "expiresAt":
          return "Choose an expiry in the future, or leave it empty.";
        case "gracePeriodSeconds":
          return "Choose how long the current secret keeps working: at most one day.";
        default:
          break;
      }
      break;
    default:
      break;
  }
  if (f.status === 401) return "Your session has expired. Sign in again, then retry.";
  if (f.status === 403) return "You are not allowed to manage API keys here.";
  if (f.status === 404) return "This key no longer exists. The list is up to date now.";
  if (f.status === 409) return "This change conflicts with the key's current state. The list is up to date now: try again.";
  if (f.status === 429) return "Too many requests in a short time. Wait a moment, then try again.";
  if (f.status === 503) {
    return `The service is temporarily unavailable. Try again ${inSeconds(f, "in a few seconds")}.`;
  }
  if (f.status >= 500) return "Something went wrong on our side. Try again in a moment.";
  return "The request was not accepted. Reload the page, then try again.";
}

function keyState(k, now = Date.now()) {
  if (k.deactivatedReason === "leaked") return "leaked";
  if (k.expiresAt && Date.parse(k.expiresAt) <= now) return "expired";
  return k.active ? "active" : "inactive";
}

const STATE_TEXT = { active: "Active", inactive: "Off", leaked: "Leaked", expired: "Expired" };

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

function timeElement(iso, none) {
  if (!iso) {
    const span = document.createElement("span");
    span.textContent = none;
    return span;
  }
  const t = document.createElement("time");
  t.dateTime = iso;
  t.textContent = dateFormat.format(new Date(iso));
  return t;
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("data-") || k.startsWith("aria-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const c of children) node.append(c);
  return node;
}

/** A row action's button: its visible verb, and the key's name for screen readers. */
function actionButton(verb, action, key) {
  return el(
    "button",
    { type: "button", class: "link", "data-action": action, "data-id": key.id },
    verb,
    el("span", { class: "vh", text: ` ${key.name}` }),
  );
}

export class ProlinksqrApiKeys extends HTMLElement {
  static observedAttributes = ["api-base", "page-size"];

  #getToken = null;
  #root;
  #keys = new Map(); // id → record, in list order
  #nextToken = null;
  #catalogue = null;
  #editing = null; // the record the form edits, or null when it creates
  #idempotency = null; // { key, body } for create and roll retries
  #returns = new Map(); // dialog id → where focus goes when it closes
  #eventsToken = null;
  #eventsKey = null;
  #loaded = false;
  #listFailed = false; // the last page could not be loaded: "no keys" would be untrue

  constructor() {
    super();
    this.#root = this.attachShadow({ mode: "open" });
    this.#root.adoptedStyleSheets = [stylesheet()];
    this.#root.innerHTML = skeleton;
    const $ = (id) => this.#root.getElementById(id);
    $("create").addEventListener("click", () => this.#openCreate());
    $("more").addEventListener("click", () => this.#loadPage(false));
    $("rows").addEventListener("click", (e) => this.#rowAction(e));
    $("form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.#submitForm();
    });
    $("form-cancel").addEventListener("click", () => $("form-dialog").close());
    $("copy").addEventListener("click", () => this.#copySecret());
    $("secret-done").addEventListener("click", () => $("secret-dialog").close());
    $("roll-form").addEventListener("submit", (e) => {
      e.preventDefault();
      this.#submitRoll();
    });
    $("roll-cancel").addEventListener("click", () => $("roll-dialog").close());
    $("confirm-cancel").addEventListener("click", () => $("confirm-dialog").close());
    $("confirm-ok").addEventListener("click", () => this.#confirmDelete());
    $("events-close").addEventListener("click", () => $("events-dialog").close());
    $("events-more").addEventListener("click", () => this.#loadEvents(false));
    // Whichever way a dialog closes (a button, Escape): the secret goes, and
    // focus returns to what opened it.
    for (const id of ["form-dialog", "secret-dialog", "roll-dialog", "confirm-dialog", "events-dialog"]) {
      $(id).addEventListener("close", () => this.#dialogClosed(id));
    }
  }

  /** The function that gives the caller's bearer token (or a promise of it). */
  get getToken() {
    return this.#getToken;
  }

  set getToken(fn) {
    this.#getToken = typeof fn === "function" ? fn : null;
    if (this.isConnected && this.#getToken) this.reload();
  }

  connectedCallback() {
    if (this.#getToken && !this.#loaded) this.reload();
  }

  attributeChangedCallback(name, before, after) {
    if (name === "api-base" && before !== null && before !== after && this.isConnected) this.reload();
  }

  /** Loads the scope catalogue and the first page of keys again. */
  async reload() {
    this.#loaded = true;
    this.#catalogue = null;
    await this.#loadPage(true);
  }

  get #base() {
    return (this.getAttribute("api-base") || "").replace(/\/+$/, "");
  }

  get #pageSize() {
    const n = Number.parseInt(this.getAttribute("page-size") || "20", 10);
    return Number.isInteger(n) && n >= 1 && n <= 100 ? n : 20;
  }

  $(id) {
    return this.#root.getElementById(id);
  }

  async #call(method, path, { body, ifMatch, idempotencyKey } = {}) {
    let token = null;
    try {
      token = this.#getToken ? await this.#getToken() : null;
    } catch {
      token = null;
    }
    if (!token) throw new ApiFailure(401);
    const headers = { Authorization: `Bearer ${token}` };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (ifMatch !== undefined && ifMatch !== null) headers["If-Match"] = `"${ifMatch}"`;
    if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
    let resp;
    try {
      resp = await fetch(this.#base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
        credentials: "omit",
        mode: "cors",
      });
    } catch {
      throw new ApiFailure(0);
    }
    let json = null;
    try {
      const text = await resp.text();
      json = text ? JSON.parse(text) : null;
    } catch {
      json = null;
    }
    if (resp.ok) return json;
    // The API's {"error":{code,message}}, or API Gateway's own {"message":…}.
    const error = json && typeof json.error === "object" && json.error ? json.error : null;
    const seconds = Number.parseInt(resp.headers.get("Retry-After") || "", 10);
    const failure = new ApiFailure(
      resp.status,
      error && typeof error.code === "string" ? error.code : null,
      error ? namedField(error.message) : null,
      Number.isInteger(seconds) && seconds > 0 ? seconds : null,
    );
    if (resp.status === 401) {
      this.dispatchEvent(new CustomEvent("prolinksqr-sign-in-required", { bubbles: true, composed: true }));
    }
    throw failure;
  }

  #showError(regionId, failure) {
    this.$(regionId).textContent = failure instanceof ApiFailure ? sentence(failure) : "Something went wrong. Reload the page, then try again.";
  }

  #say(text) {
    this.$("status").textContent = text;
  }

  async #ensureCatalogue() {
    if (!this.#catalogue) this.#catalogue = await this.#call("GET", "/scopes");
    return this.#catalogue;
  }

  async #loadPage(first) {
    this.$("error").textContent = "";
    if (first) this.$("loading").hidden = false;
    const query = new URLSearchParams({ limit: String(this.#pageSize) });
    if (!first && this.#nextToken) query.set("nextToken", this.#nextToken);
    try {
      const page = await this.#call("GET", `/apikeys?${query}`);
      if (first) this.#keys.clear();
      for (const k of page.items || []) this.#keys.set(k.id, k);
      this.#nextToken = page.nextToken || null;
      this.#listFailed = false;
    } catch (f) {
      this.#listFailed = true;
      this.#showError("error", f);
    } finally {
      this.$("loading").hidden = true;
    }
    this.#render();
  }

  #render() {
    const rows = this.$("rows");
    rows.replaceChildren(...[...this.#keys.values()].map((k) => this.#row(k)));
    this.$("table").hidden = this.#keys.size === 0;
    this.$("empty").hidden = this.#keys.size !== 0 || !this.$("loading").hidden || this.#listFailed;
    this.$("more").hidden = !this.#nextToken;
  }

  #row(k) {
    const state = keyState(k);
    const scopes = el("ul", { class: "scopes", "aria-label": "Scopes" });
    for (const s of k.scopes || []) scopes.append(el("li", { class: "mono", text: s === "all" ? "all (every scope)" : s }));
    const toggle = k.active ? actionButton("Turn off", "deactivate", k) : actionButton("Turn on", "reactivate", k);
    return el(
      "tr",
      { "data-id": k.id },
      el("th", { scope: "row", text: k.name }),
      el("td", {}, el("code", { class: "masked", text: k.masked, title: `Prefix ${k.prefix}` })),
      el("td", {}, scopes),
      el("td", {}, timeElement(k.createdAt, "—")),
      el("td", {}, timeElement(k.lastUsedAt, "Never")),
      el(
        "td",
        {},
        el("span", { class: `badge ${state}`, text: STATE_TEXT[state] }),
        k.expiresAt ? el("div", { class: "hint" }, state === "expired" ? "Expired " : "Expires ", timeElement(k.expiresAt, "")) : "",
      ),
      el(
        "td",
        { class: "actions" },
        actionButton("Edit", "edit", k),
        toggle,
        actionButton("Roll", "roll", k),
        actionButton("History", "events", k),
        actionButton("Delete", "delete", k),
      ),
    );
  }

  /** Replaces a key's row with its fresh record, focus kept on `action`. */
  #update(record, action) {
    this.#keys.set(record.id, record);
    this.#render();
    if (action) this.#focusAction(record.id, action);
  }

  #focusAction(id, action) {
    const row = [...this.$("rows").children].find((r) => r.dataset.id === id);
    const target = row && row.querySelector(`[data-action="${action}"]`);
    (target || this.$("create")).focus();
  }

  /** After a 409 or 404: the key as it is now (or gone), shown. */
  async #refresh(id) {
    try {
      const fresh = await this.#call("GET", `/apikeys/${encodeURIComponent(id)}`);
      this.#keys.set(fresh.id, fresh);
      this.#render();
      return fresh;
    } catch (f) {
      if (f instanceof ApiFailure && f.status === 404) {
        this.#keys.delete(id);
        this.#render();
      }
      return null;
    }
  }

  /** Opens a dialog; when it closes, focus goes back to `back`: an element,
   * or `{ id, action }`, a row's action button (rows are drawn anew). */
  #open(dialogId, back) {
    const dialog = this.$(dialogId);
    if (dialog.open) return;
    this.#returns.set(dialogId, back || this.#root.activeElement || this.$("create"));
    dialog.showModal();
  }

  #dialogClosed(id) {
    if (id === "secret-dialog") {
      // The key goes with the dialog: the field, its selection, the copy note.
      const input = this.$("secret-value");
      input.value = "";
      input.setSelectionRange(0, 0);
      this.$("copy-status").textContent = "";
    }
    if (id === "events-dialog") this.$("events").replaceChildren();
    for (const region of ["form-error", "roll-error", "confirm-error", "events-error"]) {
      if (this.$(region).closest("dialog").id === id) this.$(region).textContent = "";
    }
    const back = this.#returns.get(id);
    this.#returns.delete(id);
    // Another dialog opened in its place (a new key after its form): focus
    // stays there, and returns when that one closes.
    if (this.#root.querySelector("dialog[open]")) return;
    // The browser gives focus back to the opener when it is still there;
    // the user may even have moved on since: focus is never taken back.
    // Only focus left nowhere (its opener was drawn anew) is placed.
    const elsewhere = document.activeElement && document.activeElement !== document.body && document.activeElement !== this;
    const active = this.#root.activeElement;
    if (elsewhere || (active && active.isConnected && !active.closest("dialog"))) return;
    if (back instanceof HTMLElement && back.isConnected) back.focus();
    else if (back && back.id) this.#focusAction(back.id, back.action);
    else this.$("create").focus();
  }

  async #rowAction(e) {
    const button = e.target.closest("button[data-action]");
    if (!button) return;
    const key = this.#keys.get(button.dataset.id);
    if (!key) return;
    this.$("error").textContent = "";
    this.#say("");
    // Focus comes back to this action of this key's row, drawn anew or not.
    const back = { id: key.id, action: button.dataset.action };
    switch (button.dataset.action) {
      case "edit":
        return this.#openEdit(key, back);
      case "deactivate":
      case "reactivate":
        return this.#setActive(key, button.dataset.action === "reactivate");
      case "roll":
        this.#editing = key;
        this.$("roll-title").textContent = `Roll “${key.name}”`;
        this.$("roll-form").reset();
        this.#idempotency = null;
        return this.#open("roll-dialog", back);
      case "events":
        return this.#openEvents(key, back);
      case "delete":
        this.#editing = key;
        this.$("confirm-title").textContent = `Delete “${key.name}”?`;
        this.$("confirm-text").textContent =
          "Anything using this key stops working at once. This cannot be undone.";
        return this.#open("confirm-dialog", back);
      default:
        return undefined;
    }
  }

  /** Draws the scope checkboxes, `selected` checked; false (the failure
   * shown in `errorRegion`) when the catalogue cannot be loaded. */
  async #scopeChoices(selected, errorRegion) {
    const box = this.$("scope-choices");
    let catalogue;
    try {
      catalogue = await this.#ensureCatalogue();
    } catch (f) {
      this.#showError(errorRegion, f);
      box.replaceChildren();
      return false;
    }
    const checkbox = (s) =>
      el(
        "label",
        { class: "check" },
        el("input", { type: "checkbox", name: "scope", value: s.scope, checked: selected.has(s.scope) }),
        el("span", {}, s.label, " ", el("code", { text: s.scope })),
      );
    const groups = el("div", { class: "groups" });
    for (const g of catalogue.groups) {
      groups.append(el("fieldset", {}, el("legend", { text: g.label }), ...g.scopes.map(checkbox)));
    }
    box.replaceChildren(checkbox(catalogue.all), groups);
    const all = box.querySelector('input[value="all"]');
    const sync = () => {
      for (const c of groups.querySelectorAll("input")) c.disabled = all.checked;
    };
    all.addEventListener("change", sync);
    sync();
    return true;
  }

  #chosenScopes() {
    const checked = [...this.$("scope-choices").querySelectorAll('input[name="scope"]:checked')].map((c) => c.value);
    return checked.includes("all") ? ["all"] : checked;
  }

  async #openCreate() {
    this.#editing = null;
    this.#idempotency = null;
    this.$("form").reset();
    this.$("form-title").textContent = "Create an API key";
    this.$("form-submit").textContent = "Create key";
    this.$("expiry-field").hidden = false;
    this.$("form-error").textContent = "";
    // The form opens whole: its scopes are there before anyone can type.
    if (!(await this.#scopeChoices(new Set(), "error"))) return;
    this.#open("form-dialog", this.$("create"));
    this.$("name").focus();
  }

  async #openEdit(key, opener) {
    this.#editing = key;
    this.$("form").reset();
    this.$("form-title").textContent = `Edit “${key.name}”`;
    this.$("form-submit").textContent = "Save changes";
    this.$("expiry-field").hidden = true;
    this.$("form-error").textContent = "";
    this.$("name").value = key.name;
    if (!(await this.#scopeChoices(new Set(key.scopes), "error"))) return;
    this.#open("form-dialog", opener);
    this.$("name").focus();
  }

  async #submitForm() {
    const submit = this.$("form-submit");
    this.$("form-error").textContent = "";
    const name = this.$("name").value.trim();
    const scopes = this.#chosenScopes();
    if (!name) return this.#formProblem("Give the key a name of 1 to 100 characters.", "name");
    if (scopes.length === 0) return this.#formProblem("Choose at least one scope.", null);
    submit.disabled = true;
    try {
      if (this.#editing) await this.#saveEdit(name, scopes);
      else await this.#create(name, scopes);
    } finally {
      submit.disabled = false;
    }
    return undefined;
  }

  #formProblem(text, focusId) {
    this.$("form-error").textContent = text;
    const target = focusId ? this.$(focusId) : this.$("scope-choices").querySelector("input");
    if (target) target.focus();
  }

  async #create(name, scopes) {
    const body = { name, scopes };
    const expires = this.$("expires").value;
    if (expires) {
      const at = new Date(expires);
      if (Number.isNaN(at.getTime())) return this.#formProblem("Choose an expiry in the future, or leave it empty.", "expires");
      body.expiresAt = at.toISOString();
    }
    let created;
    try {
      created = await this.#call("POST", "/apikeys", { body, idempotencyKey: this.#idempotencyFor(body) });
    } catch (f) {
      return this.#showError("form-error", f);
    }
    this.#idempotency = null;
    this.$("form-dialog").close();
    this.#showSecret(created, this.$("create"));
    return undefined;
  }

  /** One Idempotency-Key per request body: a retry of the same request after
   * a lost answer gets the first answer (its key included), never a second key. */
  #idempotencyFor(body) {
    const text = JSON.stringify(body);
    if (!this.#idempotency || this.#idempotency.body !== text) {
      this.#idempotency = { key: crypto.randomUUID(), body: text };
    }
    return this.#idempotency.key;
  }

  /** Shows a created or rolled key once, and its record in the list. */
  #showSecret(created, back) {
    const input = this.$("secret-value");
    input.value = created.key;
    delete created.key;
    this.#keys.delete(created.id);
    this.#keys = new Map([[created.id, created], ...this.#keys]);
    this.#render();
    this.#say(`Key “${created.name}” is ready.`);
    this.#open("secret-dialog", back);
    input.focus();
    input.select();
  }

  async #copySecret() {
    const input = this.$("secret-value");
    try {
      await navigator.clipboard.writeText(input.value);
      this.$("copy-status").textContent = "Copied to the clipboard.";
    } catch {
      input.focus();
      input.select();
      this.$("copy-status").textContent = "Copying was not allowed: the key is selected, press Ctrl+C (⌘C on a Mac) to copy it.";
    }
  }

  async #saveEdit(name, scopes) {
    const key = this.#editing;
    const body = {};
    if (name !== key.name) body.name = name;
    const before = [...key.scopes].sort().join(" ");
    if ([...scopes].sort().join(" ") !== before) body.scopes = scopes;
    if (Object.keys(body).length === 0) {
      this.$("form-dialog").close();
      return;
    }
    try {
      const record = await this.#call("PATCH", `/apikeys/${encodeURIComponent(key.id)}`, { body, ifMatch: key.version });
      this.#editing = record;
      this.#returns.set("form-dialog", { id: record.id, action: "edit" });
      this.$("form-dialog").close();
      this.#update(record, null);
      this.#say(`Saved “${record.name}”.`);
    } catch (f) {
      this.#showError("form-error", f);
      await this.#afterFailure(f, key.id, async (fresh) => {
        // The form shows the key as it is now, for the user to decide again.
        this.#editing = fresh;
        this.$("name").value = fresh.name;
        await this.#scopeChoices(new Set(fresh.scopes), "form-error");
      });
    }
  }

  /** A conflict shows the fresh record; a vanished key leaves the list. */
  async #afterFailure(f, id, onFresh) {
    if (!(f instanceof ApiFailure)) return;
    if (f.code === "version_conflict" || f.status === 404 || f.status === 503) {
      const fresh = await this.#refresh(id);
      if (fresh && onFresh) await onFresh(fresh);
    }
  }

  async #setActive(key, active) {
    const action = active ? "deactivate" : "reactivate";
    try {
      const record = await this.#call("PATCH", `/apikeys/${encodeURIComponent(key.id)}`, {
        body: { active },
        ifMatch: key.version,
      });
      this.#update(record, action);
      this.#say(active ? `“${record.name}” is on again.` : `“${record.name}” is off: it stops working at once.`);
    } catch (f) {
      this.#showError("error", f);
      await this.#afterFailure(f, key.id);
      this.#focusAction(key.id, active ? "reactivate" : "deactivate");
    }
  }

  async #submitRoll() {
    const key = this.#editing;
    const grace = Number.parseInt(new FormData(this.$("roll-form")).get("grace") || "0", 10);
    const body = { gracePeriodSeconds: grace };
    this.$("roll-error").textContent = "";
    this.$("roll-submit").disabled = true;
    try {
      const rolled = await this.#call("POST", `/apikeys/${encodeURIComponent(key.id)}/roll`, {
        body,
        ifMatch: key.version,
        idempotencyKey: this.#idempotencyFor({ id: key.id, ...body }),
      });
      this.#idempotency = null;
      this.$("roll-dialog").close();
      this.#showSecret(rolled, { id: rolled.id, action: "roll" });
    } catch (f) {
      this.#showError("roll-error", f);
      await this.#afterFailure(f, key.id, (fresh) => {
        this.#editing = fresh;
      });
    } finally {
      this.$("roll-submit").disabled = false;
    }
  }

  async #confirmDelete() {
    const key = this.#editing;
    this.$("confirm-ok").disabled = true;
    try {
      await this.#call("DELETE", `/apikeys/${encodeURIComponent(key.id)}`, { ifMatch: key.version });
      this.#keys.delete(key.id);
      this.#returns.set("confirm-dialog", this.$("create"));
      this.$("confirm-dialog").close();
      this.#render();
      this.#say(`Deleted “${key.name}”: it no longer works.`);
    } catch (f) {
      this.#showError("confirm-error", f);
      await this.#afterFailure(f, key.id, (fresh) => {
        this.#editing = fresh;
      });
    } finally {
      this.$("confirm-ok").disabled = false;
    }
  }

  async #openEvents(key, opener) {
    this.#eventsKey = key;
    this.#eventsToken = null;
    this.$("events-title").textContent = `History of “${key.name}”`;
    this.$("events").replaceChildren();
    this.#open("events-dialog", opener);
    this.$("events-close").focus();
    await this.#loadEvents(true);
  }

  async #loadEvents(first) {
    const key = this.#eventsKey;
    const query = new URLSearchParams({ limit: "20" });
    if (!first && this.#eventsToken) query.set("nextToken", this.#eventsToken);
    try {
      const page = await this.#call("GET", `/apikeys/${encodeURIComponent(key.id)}/events?${query}`);
      for (const ev of page.items || []) {
        const changes = Object.keys(ev.changes || {});
        this.$("events").append(
          el(
            "li",
            {},
            el("strong", { text: ACTIONS[ev.action] || ev.action }),
            " ",
            timeElement(ev.time, ""),
            el("div", { class: "hint", text: `By ${ev.actor || "the system"}${changes.length ? ` · ${changes.join(", ")}` : ""}` }),
          ),
        );
      }
      this.#eventsToken = page.nextToken || null;
      this.$("events-more").hidden = !this.#eventsToken;
    } catch (f) {
      this.#showError("events-error", f);
    }
  }
}

if (!customElements.get("prolinksqr-api-keys")) {
  customElements.define("prolinksqr-api-keys", ProlinksqrApiKeys);
}
