// A page that is not built yet: its title and what it will hold (issue 15), so the
// navigation is whole from the start. Building the page replaces its module, nothing else.
import { html } from "../lib/html.js";

export function notBuiltYet(title, what) {
  return function NotBuiltYet() {
    return html`<h1 tabindex="-1">${title}</h1>
      <div class="card">
        <p><strong>Not built yet.</strong> ${what}</p>
        <p>Until then the JSON API does it: see <a href="/docs">the API documentation</a>.</p>
      </div>`;
  };
}
