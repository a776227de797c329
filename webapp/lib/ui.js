// Small pieces the pages share.
import { html } from "./html.js";
import { formatShort, formatTime } from "./format.js";

const STATE_LABELS = {
  followed: "Followed",
  not_followed: "Not followed",
  blocked: "Blocked",
  any: "Any",
};

export function followStateLabel(state) {
  return STATE_LABELS[state] ?? state;
}

/** A short coloured label (its text says it all: colour is never the only cue). */
export function Badge({ tone = "neutral", children }) {
  return html`<span class=${`badge badge-${tone}`}>${children}</span>`;
}

export function FollowBadge({ state }) {
  const tone = { followed: "good", blocked: "bad" }[state] ?? "neutral";
  return html`<${Badge} tone=${tone}>${followStateLabel(state)}<//>`;
}

export function StatusBadge({ status }) {
  const tone = { sent: "good", failed: "bad", sending: "info", scheduled: "info" }[status];
  return html`<${Badge} tone=${tone ?? "neutral"}>${status}<//>`;
}

/** A time in the seller's zone, machine-readable too; `short` for tables (the full time
 * stays in its tooltip). */
export function Time({ at, short = false }) {
  if (!at) return html`<span>—</span>`;
  return short
    ? html`<time datetime=${at} title=${formatTime(at)}>${formatShort(at)}</time>`
    : html`<time datetime=${at}>${formatTime(at)}</time>`;
}

export function Loading({ what = "Loading" }) {
  return html`<p class="muted" role="status">${what}…</p>`;
}

export function Section({ title, id, children, actions }) {
  return html`<section class="card" aria-labelledby=${id}>
    <div class="card-head">
      <h2 id=${id}>${title}</h2>
      ${actions}
    </div>
    ${children}
  </section>`;
}
