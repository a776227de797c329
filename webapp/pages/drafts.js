// The seller's drafts (GET /api/messages/drafts, paged by its continuation token): each
// reopens in the compose form (/app/compose?draft=<id>) or is deleted, after a confirmation
// in place. Shown under the compose form, and alone at /app/drafts.
import { useState } from "preact/hooks";
import { html } from "../lib/html.js";
import { api } from "../lib/api.js";
import { DataTable, Pager, usePages } from "../lib/table.js";
import { FollowBadge } from "../lib/ui.js";

const recipients = (to) => (to.length > 1 ? `${to[0]} and ${to.length - 1} more` : to[0] ?? "—");

function DeleteDraft({ draft, onDeleted }) {
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const name = draft.subject || "(no subject)";
  if (!asking) {
    return html`<button type="button" onClick=${() => setAsking(true)}>Delete<span class="visually-hidden"> “${name}”</span></button>`;
  }
  const remove = async () => {
    setBusy(true);
    try {
      await api(`/api/messages/${draft.id}`, { method: "DELETE" });
      onDeleted(draft);
    } catch {
      setBusy(false);
    }
  };
  return html`<span class="confirm" role="group" aria-label=${`Delete “${name}”?`}>
    <span>Delete it for good?</span>
    <button type="button" class="danger" disabled=${busy} onClick=${remove}>Yes, delete<span class="visually-hidden"> “${name}”</span></button>
    <button type="button" disabled=${busy} onClick=${() => setAsking(false)}>Keep it</button>
  </span>`;
}

/** The drafts table; `current` (a draft's id) is marked as the one in the form. */
export function DraftList({ current, onDeleted = () => {} }) {
  const [version, setVersion] = useState(0);
  const [deleted, setDeleted] = useState(null);
  const pages = usePages((continuation) => api("/api/messages/drafts", { query: { limit: 10, continuation } }), String(version));
  const gone = (draft) => {
    setDeleted(draft.subject || "(no subject)");
    setVersion((v) => v + 1);
    onDeleted(draft);
  };
  const columns = [
    {
      key: "subject",
      label: "Subject",
      wide: true,
      render: (row) => html`<a href=${`/app/compose?draft=${row.id}`} aria-current=${row.id === current ? "true" : undefined}>${row.subject || "(no subject)"}</a>
        ${row.id === current ? html` <span class="muted small">(open above)</span>` : ""}`,
    },
    { key: "to", label: "To", render: (row) => recipients(row.to) },
    { key: "follow_state", label: "Follow state", render: (row) => html`<${FollowBadge} state=${row.follow_state} />` },
    { key: "actions", label: html`<span class="visually-hidden">Actions</span>`, render: (row) => html`<${DeleteDraft} key=${row.id} draft=${row} onDeleted=${gone} />` },
  ];
  return html`<p class="muted small" role="status">${deleted ? `Deleted “${deleted}”.` : ""}</p>
    <${DataTable} caption="Your drafts" columns=${columns} rows=${pages.items} busy=${pages.busy} empty="No drafts." />
    ${(pages.hasNext || pages.hasPrevious) && html`<${Pager} pages=${pages} label="Pages of drafts" />`}`;
}

export default function Drafts() {
  return html`<h1 tabindex="-1">Drafts</h1>
    <div class="toolbar"><span></span><a class="button" href="/app/compose">New message</a></div>
    <${DraftList} />`;
}
