// Followed emails: the grid of GET /api/messages, with its KPI columns, filtered by follow
// state, sorted by any of the API's sorts and paged by its continuation token. The view
// (filter, sort, page size) lives in the URL, so a reload or a shared link shows the same.
import { html } from "../lib/html.js";
import { api } from "../lib/api.js";
import { formatNumber } from "../lib/format.js";
import { navigate } from "../lib/router.js";
import { DataTable, PAGE_SIZES, Pager, usePages } from "../lib/table.js";
import { FollowBadge, StatusBadge, Time, followStateLabel } from "../lib/ui.js";

const STATES = ["followed", "not_followed", "blocked", "any"];
// The API's sorts (shared/core/list_index.py SORT_FIELDS), by the column that shows each.
const SORTS = {
  sent_at: "Sent",
  opens: "Opens",
  last_opened_at: "Last opened",
  attachment_views: "Attachment views",
  link_clicks: "Link clicks",
  replies: "Replies",
};
const DEFAULT = { sort: "sent_at", order: "desc", state: "followed", limit: 25 };

export function readView(query) {
  const limit = Number(query.get("limit"));
  return {
    sort: query.get("sort") in SORTS ? query.get("sort") : DEFAULT.sort,
    order: query.get("order") === "asc" ? "asc" : "desc",
    state: STATES.includes(query.get("state")) ? query.get("state") : DEFAULT.state,
    limit: PAGE_SIZES.includes(limit) ? limit : DEFAULT.limit,
  };
}

function show(view) {
  const changed = Object.entries(view).filter(([k, v]) => DEFAULT[k] !== v);
  const query = new URLSearchParams(changed).toString();
  navigate(query ? `/app?${query}` : "/app", { replace: true });
}

const recipients = (to) => (to.length > 1 ? `${to[0]} and ${to.length - 1} more` : to[0] ?? "—");
const count = (key) => (row) => formatNumber(row[key]);

const COLUMNS = [
  {
    key: "subject",
    label: "Subject",
    wide: true,
    render: (row) => html`<a href=${`/app/messages/${row.id}`}>${row.subject || "(no subject)"}</a>`,
  },
  { key: "to", label: "To", render: (row) => recipients(row.to) },
  {
    key: "sent_at",
    label: "Sent",
    sort: "sent_at",
    render: (row) => (row.sent_at ? html`<${Time} at=${row.sent_at} short />` : html`<${StatusBadge} status=${row.status} />`),
  },
  { key: "follow_state", label: "Follow state", render: (row) => html`<${FollowBadge} state=${row.follow_state} />` },
  { key: "opens", label: "Opens", sort: "opens", numeric: true, render: count("opens") },
  { key: "last_opened_at", label: "Last opened", sort: "last_opened_at", render: (row) => html`<${Time} at=${row.last_opened_at} short />` },
  { key: "attachment_views", label: "Attachment views", sort: "attachment_views", numeric: true, render: count("attachment_views") },
  { key: "link_clicks", label: "Link clicks", sort: "link_clicks", numeric: true, render: count("link_clicks") },
  { key: "replies", label: "Replies", sort: "replies", numeric: true, render: count("replies") },
];

export default function FollowedEmails({ query }) {
  const view = readView(query);
  const key = JSON.stringify(view);
  const pages = usePages(
    (continuation) =>
      api("/api/messages", {
        query: { sort: view.sort, order: view.order, follow_state: view.state, limit: view.limit, continuation },
      }),
    key,
  );
  const sortBy = (field) =>
    show({ ...view, sort: field, order: field === view.sort && view.order === "desc" ? "asc" : "desc" });
  const direction = view.sort === "sent_at" || view.sort === "last_opened_at"
    ? (view.order === "desc" ? "newest first" : "oldest first")
    : (view.order === "desc" ? "most first" : "fewest first");
  return html`<h1 tabindex="-1">Followed emails</h1>
    <div class="toolbar">
      <label class="inline">Follow state
        <select value=${view.state} onChange=${(e) => show({ ...view, state: e.currentTarget.value })}>
          ${STATES.map((s) => html`<option value=${s}>${followStateLabel(s)}</option>`)}
        </select>
      </label>
      <a class="button" href="/app/compose">Compose</a>
    </div>
    <${DataTable}
      caption=${`${followStateLabel(view.state)} emails by ${SORTS[view.sort].toLowerCase()}, ${direction}`}
      columns=${COLUMNS}
      rows=${pages.items}
      sort=${{ field: view.sort, order: view.order }}
      onSort=${sortBy}
      rowHref=${(row) => `/app/messages/${row.id}`}
      busy=${pages.busy}
      empty=${view.state === "followed" ? "No followed emails yet." : "No emails in this state."}
    />
    <${Pager} pages=${pages} label="Pages of followed emails" size=${view.limit}
      onSize=${(limit) => show({ ...view, limit })} />
    <p class="muted small">The list's numbers are updated within a minute; a message's own page is current to the second.</p>`;
}
