// Sign-in. Locally (AUTH_MODE=dev) any address signs in with a development token, as
// `make dev-token` gives; in Azure (AUTH_MODE=entra), Microsoft Entra ID's sign-in page.
import { useEffect, useState } from "preact/hooks";
import { html } from "../lib/html.js";
import { authConfig, devSignIn, entraSignIn, signedIn } from "../lib/auth.js";
import { navigate } from "../lib/router.js";

/** Where to go after signing in: a page of this app, else the followed emails. */
export function returnPath(value) {
  return value && /^\/app(\/|\?|$)/.test(value) && !value.startsWith("/app/signin") ? value : "/app";
}

function DevSignIn({ back }) {
  const [email, setEmail] = useState("");
  const [admin, setAdmin] = useState(false);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await devSignIn(email.trim(), admin);
      navigate(back, { replace: true });
    } catch (failure) {
      setError(failure.message);
      setBusy(false);
    }
  };
  return html`<form class="card narrow" onSubmit=${submit} novalidate>
    <p>
      Development sign-in (<code>AUTH_MODE=dev</code>): any address signs in as that seller,
      with a token like <code>make dev-token</code> gives. The same address is the same seller
      every time.
    </p>
    <div class="field">
      <label for="signin-email">Email address</label>
      <input id="signin-email" type="email" autocomplete="email" required value=${email}
        aria-invalid=${error ? "true" : "false"} aria-describedby=${error ? "signin-error" : undefined}
        onInput=${(e) => setEmail(e.currentTarget.value)} />
      ${error && html`<p id="signin-error" class="field-error" role="alert">${error}</p>`}
    </div>
    <div class="field check">
      <input id="signin-admin" type="checkbox" checked=${admin} onChange=${(e) => setAdmin(e.currentTarget.checked)} />
      <label for="signin-admin">Admin (the Engagement.Admin role)</label>
    </div>
    <button type="submit" class="primary" disabled=${busy}>Sign in</button>
  </form>`;
}

function EntraSignIn({ back, config }) {
  if (config.missing.length) {
    return html`<div class="card narrow">
      <p>Sign-in with Microsoft Entra ID is not configured: set ${config.missing.map((m, i) => html`${i ? ", " : ""}<code>${m}</code>`)}
      (docs/admin.md, "The seller API's app registration").</p>
    </div>`;
  }
  return html`<div class="card narrow">
    <p>Sign in with your work account (Microsoft Entra ID).</p>
    <button type="button" class="primary" onClick=${() => entraSignIn(back)}>Sign in with Microsoft</button>
  </div>`;
}

export default function SignIn({ query }) {
  const back = returnPath(query.get("return"));
  const config = authConfig();
  useEffect(() => {
    if (signedIn()) navigate(back, { replace: true });
  }, []);
  return html`<h1 tabindex="-1">Sign in</h1>
    ${config.auth === "dev"
      ? html`<${DevSignIn} back=${back} />`
      : html`<${EntraSignIn} back=${back} config=${config} />`}`;
}
