// The shell: sign-in state, who the seller is (GET /api/me: roles, time zone), the navigation
// bar, the alert region that shows the API's errors, and the page the route names.
import { useEffect, useState } from "preact/hooks";
import { html, render } from "./lib/html.js";
import { api, onError, reportError } from "./lib/api.js";
import { loadConfig, signedIn, signOut, start } from "./lib/auth.js";
import { setTimeZone, timeZone } from "./lib/format.js";
import { hasNavigated, interceptLinks, match, navigate, useLocation } from "./lib/router.js";
import { routes } from "./routes.js";

const APP_NAME = "Email engagement";

function ErrorRegion() {
  const [error, setError] = useState(null);
  useEffect(() => onError(setError), []);
  return html`<div class="alert-region" role="alert">
    ${error &&
    html`<div class="alert">
      <p>
        <strong>${error.status ? `Error ${error.status}` : "Error"}</strong>
        ${error.field ? html` — <code>${error.field}</code>` : ""}: ${error.message}
      </p>
      ${error.details?.length > 1 &&
      html`<ul>${error.details.map((d) => html`<li><code>${d.field}</code>: ${d.message}</li>`)}</ul>`}
      <button type="button" class="link" onClick=${() => setError(null)}>Dismiss</button>
    </div>`}
  </div>`;
}

function NavBar({ me, path }) {
  const shown = me ? routes.filter((r) => r.nav && (!r.admin || me.is_admin)) : [];
  const current = (route) => (route.path === "/app" ? path === "/app" || path.startsWith("/app/messages/") : path.startsWith(route.path));
  return html`<header class="top">
    <a class="brand" href="/app">${APP_NAME}</a>
    ${me &&
    html`<nav aria-label="Main">
      <ul>
        ${shown.map(
          (r) => html`<li key=${r.path}><a href=${r.path} aria-current=${current(r) ? "page" : undefined}>${r.title}</a></li>`,
        )}
      </ul>
    </nav>`}
    ${me &&
    html`<div class="who">
      <span>${me.email}${me.is_admin ? " (admin)" : ""}</span>
      <span class="muted">Times in ${timeZone()}</span>
      <button type="button" class="link light" onClick=${signOut}>Sign out</button>
    </div>`}
  </header>`;
}

function NotFound() {
  return html`<h1 tabindex="-1">Page not found</h1>
    <p>There is no page at this address. <a href="/app">Back to the followed emails</a>.</p>`;
}

/** Loads the route's page module and shows it. */
function Page({ found, me, query }) {
  const [module, setModule] = useState(null);
  useEffect(() => {
    let live = true;
    setModule(null);
    found.route.page().then((m) => live && setModule(m));
    return () => (live = false);
  }, [found.route]);
  // After a navigation, focus goes to the new page's heading, so a screen reader reads it.
  useEffect(() => {
    if (module && hasNavigated()) {
      requestAnimationFrame(() => (document.querySelector("main h1") ?? document.getElementById("main"))?.focus());
    }
  }, [module]);
  if (!module) return html`<p class="muted" role="status">Loading…</p>`;
  const Component = module.default;
  return html`<${Component} params=${found.params} query=${query} me=${me} />`;
}

function App() {
  const { path, query } = useLocation();
  const [me, setMe] = useState(null);
  const [meFailed, setMeFailed] = useState(false);
  const [, setSignedOut] = useState(0);
  const found = match(routes, path);
  const open = found?.route.open;

  useEffect(() => {
    const out = () => setSignedOut((n) => n + 1);
    addEventListener("app:signed-out", out);
    return () => removeEventListener("app:signed-out", out);
  }, []);

  // Not signed in: to the sign-in page, then back here.
  const needsSignIn = !open && !signedIn();
  useEffect(() => {
    if (needsSignIn) {
      setMe(null);
      navigate(`/app/signin?return=${encodeURIComponent(path + location.search)}`, { replace: true });
    }
  }, [needsSignIn, path]);

  useEffect(() => {
    if (open || me || meFailed || !signedIn()) return;
    api("/api/me").then(
      (who) => {
        setTimeZone(who.time_zone);
        setMe(who);
      },
      () => setMeFailed(true),
    );
  }, [open, me, meFailed, needsSignIn]);

  // Each navigation: the page's title, and the last page's errors cleared.
  useEffect(() => {
    document.title = `${found?.route.title ?? "Not found"} — ${APP_NAME}`;
    reportError(null);
  }, [path]);

  if (needsSignIn) return null;
  const denied = found?.route.admin && me && !me.is_admin;
  return html`
    <a class="skip" href="#main">Skip to content</a>
    <${NavBar} me=${open ? null : me} path=${path} />
    <main id="main" tabindex="-1">
      <${ErrorRegion} />
      ${!found
        ? html`<${NotFound} />`
        : denied
          ? html`<h1 tabindex="-1">Admin</h1><p>This page is for admins (the Engagement.Admin role).</p>`
          : open || me
            ? html`<${Page} key=${found.route.path} found=${found} me=${me} query=${query} />`
            : meFailed
              ? html`<p>The app could not load who you are (the error is above).
                  <button type="button" onClick=${() => setMeFailed(false)}>Try again</button></p>`
              : html`<p class="muted" role="status">Signing in…</p>`}
    </main>`;
}

async function boot() {
  const root = document.getElementById("app");
  try {
    await loadConfig();
    await start();
  } catch (error) {
    root.textContent = `The app could not start: ${error.message}`;
    return;
  }
  interceptLinks();
  root.textContent = "";
  render(html`<${App} />`, root);
}

boot();
