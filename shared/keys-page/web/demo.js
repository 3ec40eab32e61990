// The demo page's local sign-in: an account picker that mints the local
// API's unverified token ({"alg":"none"}, the account as `sub`), which
// `make run` accepts and nothing deployed does. The token lives in this
// closure only.
const keys = document.getElementById("keys");
const form = document.getElementById("account-form");
const input = document.getElementById("account");

function base64url(text) {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function unsignedToken(sub) {
  const header = base64url(JSON.stringify({ alg: "none", typ: "JWT" }));
  const payload = base64url(JSON.stringify({ sub, token_use: "id" }));
  return `${header}.${payload}.local`;
}

function signIn(account) {
  const token = unsignedToken(account);
  keys.getToken = async () => token;
}

form.addEventListener("submit", (e) => {
  e.preventDefault();
  const account = input.value.trim();
  if (account) signIn(account);
});

keys.addEventListener("prolinksqr-sign-in-required", () => input.focus());

await customElements.whenDefined("prolinksqr-api-keys");
signIn(input.value.trim() || "acct-demo");
