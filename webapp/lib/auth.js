// Signing in. AUTH_MODE=dev (a laptop): a development token for any address, from
// POST /app/dev-token. AUTH_MODE=entra (Azure): MSAL for browsers, redirect flow (authorization
// code with PKCE), for a token to the seller API's scope. Either way the token is kept in
// sessionStorage (gone with the tab) and sent as `Authorization: Bearer`.
import { api, onUnauthorized, token } from "./api.js";

const RETURN_KEY = "engagement.return";
let config = null;
let msal = null; // MSAL's PublicClientApplication, in entra mode

/** GET /app/config.json: {"auth": "dev"} or the Entra settings (and which are missing). */
export async function loadConfig() {
  const response = await fetch("/app/config.json", { headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`The app's configuration answered ${response.status}.`);
  config = await response.json();
  return config;
}

/** Finish a sign-in that Entra redirected back from, and renew tokens after a 401. */
export async function start() {
  if (config.auth === "entra" && !config.missing.length) {
    // The UMD build: one minified file, which sets the global `msal` when imported.
    await import("@azure/msal-browser");
    msal = new globalThis.msal.PublicClientApplication({
      auth: {
        clientId: config.client_id,
        authority: config.authority,
        redirectUri: `${location.origin}/app`,
      },
      cache: { cacheLocation: "sessionStorage" },
    });
    await msal.initialize();
    const result = await msal.handleRedirectPromise();
    if (result) {
      msal.setActiveAccount(result.account);
      token.set(result.accessToken);
      const back = sessionStorage.getItem(RETURN_KEY);
      sessionStorage.removeItem(RETURN_KEY);
      if (back) history.replaceState(null, "", back);
    }
  }
  onUnauthorized(renew);
}

// After a 401: a new token without asking the seller, or null (then the sign-in page). Only
// from MSAL's cache and refresh token: its hidden-frame renewal needs a page of its own (MSAL
// 5's redirect bridge), and the app's policy frames nothing.
async function renew() {
  const account = msal && (msal.getActiveAccount() ?? msal.getAllAccounts()[0]);
  if (!account) return null;
  try {
    const result = await msal.acquireTokenSilent({
      scopes: [config.scope],
      account,
      cacheLookupPolicy: globalThis.msal.CacheLookupPolicy.AccessTokenAndRefreshToken,
    });
    token.set(result.accessToken);
    return result.accessToken;
  } catch {
    return null;
  }
}

export function authConfig() {
  return config;
}

export function signedIn() {
  return Boolean(token.get());
}

export async function devSignIn(email, admin) {
  const answer = await api("/app/dev-token", {
    method: "POST",
    body: { email, admin },
    quiet: true,
  });
  token.set(answer.token);
}

/** Off to Entra's sign-in page; back at /app, then on to `returnTo`. */
export async function entraSignIn(returnTo) {
  sessionStorage.setItem(RETURN_KEY, returnTo);
  await msal.loginRedirect({ scopes: [config.scope] });
}

export async function signOut() {
  token.clear();
  dispatchEvent(new Event("app:signed-out"));
  if (msal) {
    await msal.logoutRedirect({
      account: msal.getActiveAccount(),
      postLogoutRedirectUri: `${location.origin}/app`,
    });
  }
}
