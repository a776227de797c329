// Records: contacts, leads and accounts found by the start of a name, a word of it, an
// address or a domain (GET /api/records?q=&type=, paged by continuation), a new one created;
// and one record's page (`/app/records/{type}/{id}`): its Follow Email switch (PATCH
// /api/records/{type}/{id}; disabled, with why, when the seller may not change it: undoing an
// opt-out is an admin's), the history of its consent, and its timeline: the followed messages
// sent to it with their KPIs, and the Outlook items tracked to it, whose body opens in a
// sandboxed frame (GET /api/activities/{id}).
import { useEffect, useState } from "preact/hooks";
import { html } from "../lib/html.js";
import { api } from "../lib/api.js";
import { formatNumber } from "../lib/format.js";
import { Field, fieldErrors } from "../lib/forms.js";
import { RECORD_TYPES, recordHref, useSettled } from "../lib/records.js";
import { navigate } from "../lib/router.js";
import { DataTable, PAGE_SIZES, Pager, usePages } from "../lib/table.js";
import { Badge, Loading, Section, Time } from "../lib/ui.js";
import { frameDocument } from "./message.js";

const DEFAULT = { q: "", type: "", limit: 25 };

function readView(query) {
  const limit = Number(query.get("limit"));
  return {
    q: query.get("q") ?? "",
    type: query.get("type") in RECORD_TYPES ? query.get("type") : "",
    limit: PAGE_SIZES.includes(limit) ? limit : DEFAULT.limit,
  };
}

function show(view) {
  const changed = Object.entries(view).filter(([k, v]) => DEFAULT[k] !== v);
  const query = new URLSearchParams(changed).toString();
  navigate(query ? `/app/records?${query}` : "/app/records", { replace: true });
}

export function FollowEmailBadge({ value }) {
  return value === "allow"
    ? html`<${Badge} tone="good">Allow<//>`
    : html`<${Badge} tone="bad">Do Not Allow<//>`;
}

const COLUMNS = [
  { key: "name", label: "Name", wide: true, render: (r) => html`<a href=${recordHref(r)}>${r.name}</a>` },
  { key: "type", label: "Type", render: (r) => RECORD_TYPES[r.type] },
  { key: "emails", label: "Addresses", render: (r) => r.emails.join(", ") },
  { key: "follow_email", label: "Follow Email", render: (r) => html`<${FollowEmailBadge} value=${r.follow_email} />` },
];

const NEW_FIELDS = ["name", "emails", "follow_email"];

function NewRecord() {
  const [form, setForm] = useState({ type: "contact", name: "", email: "", follow_email: "allow" });
  const [errors, setErrors] = useState({});
  const [busy, setBusy] = useState(false);
  const set = (key) => (event) => setForm({ ...form, [key]: event.currentTarget.value });
  const create = async (event) => {
    event.preventDefault();
    setBusy(true);
    setErrors({});
    try {
      const body = { name: form.name, emails: [form.email.trim()], follow_email: form.follow_email };
      const created = await api(`/api/records/${form.type}`, { method: "POST", body, quiet: true });
      navigate(recordHref(created));
    } catch (error) {
      setErrors(fieldErrors(error, NEW_FIELDS));
      setBusy(false);
    }
  };
  return html`<details class="card">
    <summary>Create a contact, lead or account</summary>
    <form onSubmit=${create} novalidate class="form-row">
      <div class="field">
        <label for="new-type">Type</label>
        <select id="new-type" value=${form.type} onChange=${set("type")}>
          ${Object.entries(RECORD_TYPES).map(([k, label]) => html`<option value=${k}>${label}</option>`)}
        </select>
      </div>
      <${Field} id="new-name" label="Name" error=${errors.name}
        control=${(a) => html`<input id=${a.id} type="text" value=${form.name} aria-invalid=${a.invalid}
          aria-describedby=${a.describedBy} onInput=${set("name")} />`} />
      <${Field} id="new-email" label="Email address" error=${errors.emails}
        control=${(a) => html`<input id=${a.id} type="email" value=${form.email} aria-invalid=${a.invalid}
          aria-describedby=${a.describedBy} onInput=${set("email")} />`} />
      <div class="field">
        <label for="new-follow">Follow Email</label>
        <select id="new-follow" value=${form.follow_email} onChange=${set("follow_email")}>
          <option value="allow">Allow</option>
          <option value="do_not_allow">Do Not Allow</option>
        </select>
      </div>
      <div class="field"><span aria-hidden="true"> </span><button type="submit" class="primary" disabled=${busy}>Create</button></div>
    </form>
  </details>`;
}

function RecordSearch({ query }) {
  const view = readView(query);
  const [text, setText] = useState(view.q);
  const settled = useSettled(text);
  useEffect(() => {
    if (settled !== view.q) show({ ...view, q: settled });
  }, [settled]);
  const pages = usePages(
    (continuation) =>
      api("/api/records", { query: { q: view.q.trim(), type: view.type, limit: view.limit, continuation } }).then(
        (answer) => ({ items: answer.records, continuation: answer.continuation }),
      ),
    JSON.stringify(view),
  );
  const what = view.type ? `${RECORD_TYPES[view.type].toLowerCase()}s` : "records";
  return html`<h1 tabindex="-1">Records</h1>
    <form class="toolbar" role="search" onSubmit=${(e) => {
      e.preventDefault();
      show({ ...view, q: text });
    }}>
      <div class="actions">
        <label class="inline" for="records-q">Search</label>
        <input id="records-q" type="search" value=${text} placeholder="Name, address or domain" size="30"
          onInput=${(e) => setText(e.currentTarget.value)} />
        <label class="inline" for="records-type">Type</label>
        <select id="records-type" value=${view.type} onChange=${(e) => show({ ...view, q: text, type: e.currentTarget.value })}>
          <option value="">All</option>
          ${Object.entries(RECORD_TYPES).map(([k, label]) => html`<option value=${k}>${label}</option>`)}
        </select>
      </div>
    </form>
    <${NewRecord} />
    <${DataTable}
      caption=${view.q ? `${what[0].toUpperCase()}${what.slice(1)} matching “${view.q}”` : `Every ${what === "records" ? "record" : what.slice(0, -1)}, by name`}
      columns=${COLUMNS}
      rows=${pages.items}
      rowKey=${(r) => `${r.type}:${r.id}`}
      rowHref=${recordHref}
      busy=${pages.busy}
      empty=${view.q ? "Nothing matches." : "No records yet."}
    />
    <${Pager} pages=${pages} label="Pages of records" size=${view.limit} onSize=${(limit) => show({ ...view, limit })} />`;
}

/** The Follow Email switch: on is Allow. A seller may switch it off; only an admin may switch
 * an opt-out back on, so for the others it is disabled and says why. */
function FollowSwitch({ record, onChanged }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const on = record.follow_email === "allow";
  const allowed = record.can_change_follow_email;
  const change = async () => {
    setBusy(true);
    setError(null);
    try {
      const answer = await api(`/api/records/${record.type}/${encodeURIComponent(record.id)}`, {
        method: "PATCH",
        body: { follow_email: on ? "do_not_allow" : "allow" },
        quiet: true,
      });
      onChanged(answer);
    } catch (failure) {
      setError(fieldErrors(failure, ["follow_email"]).follow_email ?? null);
    } finally {
      setBusy(false);
    }
  };
  const why = !allowed
    ? "This record opted out (Do Not Allow). Only an admin may allow following its email again."
    : on
      ? "Email to this record's addresses may be followed. Switching it off stops that; only an admin can switch it back on."
      : "Email to this record's addresses is not followed.";
  return html`<div class="switch-row">
    <button type="button" role="switch" id="follow-email" class="switch" aria-checked=${on ? "true" : "false"}
      aria-describedby="follow-email-why${error ? " follow-email-error" : ""}" disabled=${!allowed || busy} onClick=${change}>
      <span class="switch-track" aria-hidden="true"><span class="switch-thumb"></span></span>
      <span>Follow Email</span>
    </button>
    <${FollowEmailBadge} value=${record.follow_email} />
    <p id="follow-email-why" class="muted small">${why}</p>
    ${error && html`<p id="follow-email-error" class="field-error">${error}</p>`}
  </div>`;
}

// How an item came to be tracked (shared/outlook/item_rules.py Method).
const METHODS = {
  token: "by a followed email's token",
  conversation: "as a later message of a tracked thread",
  folder: "in a tracked folder",
  category: "by the tracking category",
};

const STATES = {
  pending: "pending: the category is not written in Outlook yet",
  untracked: "untracked: the category was taken off",
};

function ActivityBody({ id }) {
  const [item, setItem] = useState(null);
  useEffect(() => {
    api(`/api/activities/${encodeURIComponent(id)}`).then(setItem, () => {});
  }, [id]);
  if (!item) return html`<${Loading} what="Loading the body" />`;
  return html`<iframe class="body-frame" sandbox="" title=${`The body of “${item.subject}”`}
    srcdoc=${frameDocument(item.body_html)}></iframe>`;
}

function TimelineEntry({ entry, open, onToggle }) {
  if (entry.type === "message") {
    const m = entry.message;
    return html`<li class="entry">
      <span class="when"><${Time} at=${entry.at} /></span>
      <div>
        <p class="entry-title"><${Badge} tone="info">Followed email<//> <a href=${`/app/messages/${m.id}`}>${m.subject || "(no subject)"}</a></p>
        <p class="muted small">To ${m.to.join(", ")}</p>
        <dl class="kpis">
          <div><dt>Opens</dt><dd>${formatNumber(m.opens)}</dd></div>
          <div><dt>Link clicks</dt><dd>${formatNumber(m.link_clicks)}</dd></div>
          <div><dt>Attachment views</dt><dd>${formatNumber(m.attachment_views)}</dd></div>
          <div><dt>Replies</dt><dd>${formatNumber(m.replies)}</dd></div>
          <div><dt>Last opened</dt><dd><${Time} at=${m.last_opened_at} /></dd></div>
        </dl>
      </div>
    </li>`;
  }
  const a = entry.activity;
  const bodyId = `activity-${a.id}`;
  return html`<li class="entry">
    <span class="when"><${Time} at=${entry.at} /></span>
    <div>
      <p class="entry-title"><${Badge}>${a.kind === "email" ? "Outlook email" : "Appointment"}<//> ${a.subject || "(no subject)"}</p>
      <p class="muted small">From ${a.sender} · tracked ${METHODS[a.method] ?? a.method}${a.status === "tracked" ? "" : ` · ${STATES[a.status] ?? a.status}`}
        ${a.followed_message_id
          ? html` · ${a.mailboxes.includes(a.sender) ? "the sent copy of " : "answers "}<a
              href=${`/app/messages/${a.followed_message_id}`}>a followed email</a>`
          : ""}</p>
      <button type="button" class="link" aria-expanded=${open ? "true" : "false"} aria-controls=${bodyId} onClick=${onToggle}>
        ${open ? "Hide the body" : "Show the body"}
      </button>
      <div id=${bodyId}>${open && html`<${ActivityBody} id=${a.id} />`}</div>
    </div>
  </li>`;
}

function RecordTimeline({ record }) {
  const [open, setOpen] = useState(null);
  const path = `/api/records/${record.type}/${encodeURIComponent(record.id)}/timeline`;
  const pages = usePages((continuation) => api(path, { query: { limit: 20, continuation } }), path);
  return html`${pages.loaded && !pages.items.length
      ? html`<p class="muted">No followed email sent to it yet, and no Outlook item tracked to it.</p>`
      : !pages.loaded
        ? html`<${Loading} what="Loading the timeline" />`
        : html`<ol class="record-timeline" aria-busy=${pages.busy ? "true" : "false"}>
            ${pages.items.map((e) => {
              const key = e.type === "message" ? e.message.id : e.activity.id;
              return html`<${TimelineEntry} key=${key} entry=${e} open=${open === key}
                onToggle=${() => setOpen(open === key ? null : key)} />`;
            })}
          </ol>`}
    ${(pages.hasNext || pages.hasPrevious) && html`<${Pager} pages=${pages} label="Pages of the timeline" />`}`;
}

function Changes({ history }) {
  if (!history?.length) return html`<p class="muted">No changes.</p>`;
  const value = (v) => (v == null ? "—" : Array.isArray(v) ? v.join(", ") : v === "allow" ? "Allow" : "Do Not Allow");
  // Focusable: in a narrow column the table scrolls sideways, and keyboard users must reach it.
  return html`<div class="table-wrap" tabindex="0" role="region" aria-label="Changes">
    <table class="compact">
    <caption class="visually-hidden">Changes to Follow Email and the addresses, oldest first</caption>
    <thead><tr><th scope="col">When</th><th scope="col">By</th><th scope="col">Field</th><th scope="col">From</th><th scope="col">To</th></tr></thead>
    <tbody>${history.map(
      (c, i) => html`<tr key=${i}><td><${Time} at=${c.at} /></td><td>${c.by.email}</td>
        <td>${c.field === "follow_email" ? "Follow Email" : "Addresses"}</td><td>${value(c.old)}</td><td>${value(c.new)}</td></tr>`,
    )}</tbody>
  </table></div>`;
}

function RecordPage({ type, id }) {
  const [record, setRecord] = useState(null);
  const [missing, setMissing] = useState(false);
  const path = `/api/records/${type}/${encodeURIComponent(id)}`;
  const load = () => api(path).then(setRecord, (error) => setMissing(error.status === 404 || error.status === 422));
  useEffect(() => {
    load();
  }, [path]);
  const title = missing ? "Record not found" : record ? record.name : "Record";
  const heading = html`<p class="crumbs"><a href="/app/records">Records</a></p><h1 tabindex="-1">${title}</h1>`;
  if (missing) return html`${heading}<p>There is no such ${RECORD_TYPES[type]?.toLowerCase() ?? "record"}.</p>`;
  if (!record) return html`${heading}<${Loading} what="Loading the record" />`;
  return html`${heading}
    <p class="meta"><${Badge}>${RECORD_TYPES[record.type]}<//></p>
    <dl class="facts">
      <div><dt>Addresses</dt><dd>${record.emails.join(", ")}</dd></div>
      ${record.address?.time_zone ? html`<div><dt>Time zone</dt><dd>${record.address.time_zone}</dd></div>` : ""}
      ${record.address?.city ? html`<div><dt>City</dt><dd>${[record.address.city, record.address.country].filter(Boolean).join(", ")}</dd></div>` : ""}
      <div><dt>Changed</dt><dd><${Time} at=${record.updated_at} /></dd></div>
    </dl>
    <${Section} title="Preferences" id="preferences">
      <${FollowSwitch} record=${record} onChanged=${() => load()} />
    <//>
    <${Section} title="Changes" id="changes"><${Changes} history=${record.history} /><//>
    <${Section} title="Timeline" id="timeline"><${RecordTimeline} record=${record} /><//>`;
}

export default function Records({ params, query }) {
  return params.type
    ? html`<${RecordPage} key=${`${params.type}:${params.id}`} type=${params.type} id=${params.id} />`
    : html`<${RecordSearch} query=${query} />`;
}
