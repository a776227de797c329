// Templates: the organisation's grid (GET /api/templates: open rate, reply rate, the
// Recommended badge and the email count; the API's sorts), and a template created or edited
// with a preview rendered for a chosen record (POST /api/templates/preview, or
// /api/templates/{id}/preview with the unsaved subject and HTML), shown in a sandboxed frame.
// `/app/templates/new` creates, `/app/templates/{id}` edits.
import { useEffect, useState } from "preact/hooks";
import { html } from "../lib/html.js";
import { api } from "../lib/api.js";
import { formatNumber } from "../lib/format.js";
import { Field, fieldErrors } from "../lib/forms.js";
import { RecordPicker } from "../lib/records.js";
import { navigate } from "../lib/router.js";
import { DataTable, PAGE_SIZES, Pager } from "../lib/table.js";
import { Badge, Loading, Section, Time } from "../lib/ui.js";
import { frameDocument } from "./message.js";

// The API's sorts (shared/templates/statistics.py SORT_KEYS), by the column that shows each.
const SORTS = {
  name: "Name",
  open_rate: "Open rate",
  reply_rate: "Reply rate",
  recommended: "Recommended",
  sent: "Email count",
  created_at: "Created",
};
const DEFAULT = { sort: "recommended", order: "desc", limit: 25 };

export function formatRate(rate) {
  return rate == null ? "—" : `${(rate * 100).toFixed(rate >= 0.1 || rate === 0 ? 0 : 1)}%`;
}

export function RecommendedBadge() {
  return html`<${Badge} tone="good">Recommended<//>`;
}

function readView(query) {
  const limit = Number(query.get("limit"));
  return {
    sort: query.get("sort") in SORTS ? query.get("sort") : DEFAULT.sort,
    order: query.get("order") === "asc" ? "asc" : query.get("order") === "desc" ? "desc" : DEFAULT.order,
    limit: PAGE_SIZES.includes(limit) ? limit : DEFAULT.limit,
  };
}

function show(view) {
  const changed = Object.entries(view).filter(([k, v]) => DEFAULT[k] !== v);
  const query = new URLSearchParams(changed).toString();
  navigate(query ? `/app/templates?${query}` : "/app/templates", { replace: true });
}

const COLUMNS = [
  {
    key: "name",
    label: "Name",
    sort: "name",
    wide: true,
    render: (t) => html`<a href=${`/app/templates/${t.id}`}>${t.name}</a>
      ${t.subject ? html`<br /><span class="muted small">${t.subject}</span>` : ""}`,
  },
  { key: "open_rate", label: "Open rate", sort: "open_rate", numeric: true, render: (t) => formatRate(t.open_rate) },
  { key: "reply_rate", label: "Reply rate", sort: "reply_rate", numeric: true, render: (t) => formatRate(t.reply_rate) },
  {
    key: "recommended",
    label: "Recommended",
    sort: "recommended",
    render: (t) => (t.recommended ? html`<${RecommendedBadge} />` : html`<span class="muted small">${t.sent ? "—" : "not sent yet"}</span>`),
  },
  { key: "sent", label: "Email count", sort: "sent", numeric: true, render: (t) => formatNumber(t.sent) },
  { key: "updated_at", label: "Changed", render: (t) => html`<${Time} at=${t.updated_at} short />` },
];

/** The API answers every template at once (one row each, however many messages were sent):
 * the pages are cut here. */
function TemplateGrid({ query }) {
  const view = readView(query);
  const [items, setItems] = useState(null);
  const [number, setNumber] = useState(1);
  const [busy, setBusy] = useState(true);
  useEffect(() => {
    let live = true;
    setBusy(true);
    setNumber(1);
    api("/api/templates", { query: { sort: view.sort, order: view.order } })
      .then((answer) => live && setItems(answer.items))
      .catch(() => live && setItems((shown) => shown ?? []))
      .finally(() => live && setBusy(false));
    return () => (live = false);
  }, [view.sort, view.order]);
  const all = items ?? [];
  const pageCount = Math.max(1, Math.ceil(all.length / view.limit));
  const shown = Math.min(number, pageCount);
  const pages = {
    number: shown,
    busy,
    hasNext: shown < pageCount,
    hasPrevious: shown > 1,
    next: () => setNumber(shown + 1),
    previous: () => setNumber(shown - 1),
  };
  const rows = all.slice((shown - 1) * view.limit, shown * view.limit);
  const sortBy = (field) => {
    const first = field === "name" ? "asc" : "desc";
    const order = field === view.sort ? (view.order === "desc" ? "asc" : "desc") : first;
    show({ ...view, sort: field, order });
  };
  const recommended = all.find((t) => t.recommended);
  return html`<h1 tabindex="-1">Templates</h1>
    <div class="toolbar">
      <p class="muted small">
        ${recommended
          ? html`<strong>${recommended.name}</strong> is recommended: ${recommended.why.replace(/^Recommended: /, "")}`
          : "No template is recommended yet: one is when it clearly beats the others over enough emails."}
      </p>
      <a class="button" href="/app/templates/new">New template</a>
    </div>
    <${DataTable}
      caption=${`Templates by ${SORTS[view.sort].toLowerCase()}, ${view.order === "asc" ? "ascending" : "descending"} (${all.length})`}
      columns=${COLUMNS}
      rows=${rows}
      sort=${{ field: view.sort, order: view.order }}
      onSort=${sortBy}
      rowHref=${(t) => `/app/templates/${t.id}`}
      busy=${busy}
      empty="No templates yet."
    />
    <${Pager} pages=${pages} label="Pages of templates" size=${view.limit} onSize=${(limit) => show({ ...view, limit })} />
    <p class="muted small">Rates are per email: opened at least once, replied to at least once. A template needs
      30 emails before it can be recommended.</p>`;
}

const FIELDS = ["name", "subject", "html", "record_id"];
const PLACEHOLDERS = "{{ recipient.first_name }}, {{ recipient.last_name }}, {{ recipient.full_name }}, " +
  "{{ recipient.email }}, {{ recipient.company }}, {{ sender.email }}";

function Preview({ preview, stale }) {
  if (!preview) return html`<p class="muted">Choose a record and press Preview.</p>`;
  return html`<p><span class="muted">To</span> ${preview.to} ${stale ? html`<${Badge}>changed since<//>` : ""}</p>
    <p><span class="muted">Subject</span> <strong data-preview="subject">${preview.subject || "(no subject)"}</strong></p>
    <iframe class="body-frame" sandbox="" title="The template rendered for the record"
      srcdoc=${frameDocument(preview.html)}></iframe>`;
}

function TemplateEditor({ id }) {
  const isNew = id === "new";
  const [saved, setSaved] = useState(null);
  const [form, setForm] = useState(isNew ? { name: "", subject: "", html: "" } : null);
  const [errors, setErrors] = useState({});
  const [record, setRecord] = useState(null);
  const [preview, setPreview] = useState(null);
  const [previewed, setPreviewed] = useState(null);
  const [busy, setBusy] = useState(false);
  const [status, setStatus] = useState("");
  const [missing, setMissing] = useState(false);

  useEffect(() => {
    if (isNew) return;
    api(`/api/templates/${id}`).then(
      (t) => {
        setSaved(t);
        setForm({ name: t.name, subject: t.subject, html: t.html });
      },
      (error) => setMissing(error.status === 404),
    );
  }, [id]);

  const set = (key) => (event) => setForm({ ...form, [key]: event.currentTarget.value });
  const fail = (error) => setErrors(fieldErrors(error, FIELDS));

  const save = async (event) => {
    event.preventDefault();
    setBusy(true);
    setErrors({});
    setStatus("");
    try {
      if (isNew) {
        const created = await api("/api/templates", { method: "POST", body: form, quiet: true });
        navigate(`/app/templates/${created.id}`, { replace: true });
        return;
      }
      const changed = Object.fromEntries(Object.entries(form).filter(([k, v]) => saved[k] !== v));
      const answer = Object.keys(changed).length
        ? await api(`/api/templates/${id}`, { method: "PATCH", body: changed, quiet: true })
        : saved;
      setSaved(answer);
      setStatus("Saved.");
    } catch (error) {
      fail(error);
      setStatus("Not saved: see the fields marked.");
    } finally {
      setBusy(false);
    }
  };

  const showPreview = async () => {
    if (!record) {
      setErrors({ ...errors, record_id: "Choose a record to render the template for." });
      return;
    }
    setBusy(true);
    setErrors({});
    const body = { record_type: record.type, record_id: record.id, subject: form.subject, html: form.html };
    try {
      const path = isNew ? "/api/templates/preview" : `/api/templates/${id}/preview`;
      setPreview(await api(path, { method: "POST", body, quiet: true }));
      setPreviewed(JSON.stringify(body));
      setStatus("");
    } catch (error) {
      fail(error);
      setStatus("No preview: see the fields marked.");
    } finally {
      setBusy(false);
    }
  };

  const title = missing ? "Template not found" : isNew ? "New template" : saved ? saved.name : "Template";
  const heading = html`<p class="crumbs"><a href="/app/templates">Templates</a></p><h1 tabindex="-1">${title}</h1>`;
  if (missing) return html`${heading}<p>It is not there, or it was deleted.</p>`;
  if (!form) return html`${heading}<${Loading} what="Loading the template" />`;
  const current = record && JSON.stringify({ record_type: record.type, record_id: record.id, subject: form.subject, html: form.html });
  return html`${heading}
    ${saved &&
    html`<p class="meta">
      ${saved.recommended ? html`<${RecommendedBadge} />` : ""}
      <span>Open rate ${formatRate(saved.open_rate)}</span> · <span>Reply rate ${formatRate(saved.reply_rate)}</span> ·
      <span>${formatNumber(saved.sent)} emails</span> · <span class="muted">${saved.why}</span>
    </p>`}
    <div class="grid-2">
      <${Section} title="Template" id="template-form">
        <form onSubmit=${save} novalidate>
          <${Field} id="template-name" label="Name" error=${errors.name}
            control=${(a) => html`<input id=${a.id} type="text" value=${form.name} required maxlength="200"
              aria-invalid=${a.invalid} aria-describedby=${a.describedBy} onInput=${set("name")} />`} />
          <${Field} id="template-subject" label="Subject" error=${errors.subject}
            control=${(a) => html`<input id=${a.id} type="text" value=${form.subject}
              aria-invalid=${a.invalid} aria-describedby=${a.describedBy} onInput=${set("subject")} />`} />
          <${Field} id="template-html" label="HTML" error=${errors.html} hint=${`Fields: ${PLACEHOLDERS}.`}
            control=${(a) => html`<textarea id=${a.id} rows="12" value=${form.html} required spellcheck="false"
              aria-invalid=${a.invalid} aria-describedby=${a.describedBy} onInput=${set("html")}></textarea>`} />
          <div class="actions">
            <button type="submit" class="primary" disabled=${busy}>${isNew ? "Create template" : "Save"}</button>
            <span role="status" class="muted">${status}</span>
          </div>
        </form>
      <//>
      <${Section} title="Preview" id="template-preview"
        actions=${html`<button type="button" onClick=${showPreview} disabled=${busy}>Preview</button>`}>
        <${RecordPicker} id="preview-record" value=${record} onChange=${setRecord} error=${errors.record_id} />
        <${Preview} preview=${preview} stale=${preview && previewed !== current} />
      <//>
    </div>`;
}

export default function Templates({ params, query }) {
  return params.id ? html`<${TemplateEditor} key=${params.id} id=${params.id} />` : html`<${TemplateGrid} query=${query} />`;
}
