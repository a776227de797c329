// Compose: To, Cc and Bcc with each recipient's Follow Email preference as it is typed
// (View Preferences opens the record), the follow state (Follow / Don't Follow; blocked
// with the reason and Retry Follow), a template picker with each template's open and reply
// rates and the Recommended badge, attachments each with a Followed switch, a follow-up
// reminder, and Send now / Save draft / Send later with the send-time advice in the
// recipient's time and the seller's (times typed are in the seller's display zone). A draft
// (/app/compose?draft=<id>) reopens here to be edited (PATCH), sent now or later (PATCH
// .../schedule) or deleted; the drafts are listed below the form. The API's errors show next
// to the field they name, as well as in the alert region.
import { useEffect, useState } from "preact/hooks";
import { html } from "../lib/html.js";
import { api, reportError } from "../lib/api.js";
import { navigate } from "../lib/router.js";
import { FollowBadge, Loading, Section } from "../lib/ui.js";
import { timeZone } from "../lib/format.js";
import {
  RecipientPreferences,
  RecordLinks,
  SendAdvice,
  TemplatePicker,
  addresses,
  fromZoneInput,
  readFile,
  size,
  usePreferences,
  zoneInput,
} from "../lib/compose-parts.js";
import { DraftList } from "./drafts.js";

const CONDITIONS = [
  ["no_reply_by", "If no reply by"],
  ["not_opened_by", "If not opened by"],
  ["at", "At"],
];

/** The form control an API error's field belongs to: "to[1]" → "to", "reminder.at" → "reminder.at". */
export function fieldOf(name) {
  if (!name) return "";
  const root = name.replace(/^body\./, "").split("[")[0];
  return root.startsWith("reminder") ? root : root.split(".")[0];
}

function FieldError({ id, errors }) {
  const message = errors[id];
  return message ? html`<p class="field-error" id=${`${id}-error`}>${message}</p>` : null;
}

// aria-invalid and aria-describedby for a control whose field the API refused.
const invalid = (id, errors) =>
  errors[id] ? { "aria-invalid": "true", "aria-describedby": `${id}-error` } : {};

function AddressField({ id, label, value, onInput, errors, hint }) {
  return html`<div class="field">
    <label for=${`compose-${id}`}>${label}</label>
    <input id=${`compose-${id}`} type="text" inputmode="email" autocomplete="off" value=${value}
      onInput=${(e) => onInput(e.currentTarget.value)} ...${invalid(id, errors)} />
    ${hint && html`<span class="muted small">${hint}</span>`}
    <${FieldError} id=${id} errors=${errors} />
  </div>`;
}

// Three days on, at 9:00 in the seller's zone.
function defaultReminderAt() {
  return `${zoneInput(new Date(Date.now() + 3 * 86400e3)).slice(0, 10)}T09:00`;
}

const emptyForm = () => ({
  to: "",
  cc: "",
  bcc: "",
  subject: "",
  html: "",
  follow: true,
  files: [], // new files: {name, content_type, content, size, followed}
  keptFiles: null, // a draft's stored files, kept as they are unless replaced
  reminderOn: false,
  reminder: { title: "", condition: "no_reply_by", at: defaultReminderAt() },
  sendAt: "",
  template: null, // {id, subject, html}: sent as the template while not edited
});

function fromDraft(view, body) {
  const reminder = view.reminder?.state === "pending" ? view.reminder : null;
  return {
    ...emptyForm(),
    to: view.to.join(", "),
    cc: view.cc.join(", "),
    bcc: view.bcc.join(", "),
    subject: view.subject,
    html: body.original,
    follow: view.follow_state !== "not_followed" || Boolean(view.follow_reason),
    keptFiles: view.attachments,
    reminderOn: Boolean(reminder),
    reminder: reminder
      ? { title: reminder.title, condition: reminder.condition, at: zoneInput(new Date(reminder.at)) }
      : emptyForm().reminder,
  };
}

/** What the follow state is now: the last word of the preferences or of the saved draft. */
function decidedFrom(source) {
  if (!source) return null;
  if ("recipients" in source) {
    return { state: source.follow_state, blocked: source.recipients.filter((r) => !r.followable) };
  }
  return { state: source.follow_state, reason: source.follow_reason, blocked: source.blocked_recipients ?? [] };
}

function FollowControl({ form, set, decided, draft, onRetry, busy }) {
  const state = !form.follow ? "not_followed" : decided?.state ?? "followed";
  return html`<fieldset class="follow">
    <legend>Follow this email</legend>
    <label class="inline"><input type="radio" name="follow" checked=${form.follow} onChange=${() => set({ follow: true })} /> Follow</label>
    <label class="inline"><input type="radio" name="follow" checked=${!form.follow} onChange=${() => set({ follow: false })} /> Don't Follow</label>
    <div class="follow-state" role="status" aria-live="polite">
      <p>Follow state: <span data-follow-state=${state}><${FollowBadge} state=${state} /></span>
        ${!form.follow ? html` <span class="muted">(your choice: opens, clicks and replies are not recorded)</span>` : ""}
        ${form.follow && state === "not_followed" && decided?.reason ? html` <span class="muted">(${decided.reason})</span>` : ""}</p>
      ${form.follow && state === "blocked" &&
      html`<div class="blocked">
        <p><strong>Blocked:</strong> this message cannot be followed while${" "}
          ${decided.blocked.length === 1 ? "this recipient" : "these recipients"} may not be:</p>
        <ul>${decided.blocked.map(
          (r) => html`<li key=${r.address}>${r.address}: <span class="reason">${r.reason}</span>${" "}<${RecordLinks} recipient=${r} /></li>`,
        )}</ul>
        <p class="muted small">Sent as it is, it goes out not followed. Once the preference is changed on the record, Retry Follow.</p>
        <button type="button" onClick=${onRetry} disabled=${busy}>Retry Follow</button>
      </div>`}
      ${draft && form.follow && state !== "blocked" && draft.follow_state === "blocked"
        ? html`<button type="button" onClick=${onRetry} disabled=${busy}>Retry Follow</button>`
        : ""}
    </div>
  </fieldset>`;
}

function Attachments({ form, set, errors }) {
  const add = async (event) => {
    const input = event.currentTarget;
    const read = await Promise.all([...input.files].map(readFile));
    input.value = "";
    set((f) => ({ files: [...f.files, ...read] }));
  };
  const update = (i, patch) => set((f) => ({ files: f.files.map((file, j) => (i === j ? { ...file, ...patch } : file)) }));
  return html`<div class="field">
    ${form.keptFiles?.length
      ? html`<p class="small">Saved with the draft (kept unless you add files, which replace them):
          ${form.keptFiles.map((a) => `${a.name} (${size(a.size)}${a.followed ? ", followed" : ""})`).join(", ")}</p>`
      : ""}
    <label for="compose-files">Add attachments</label>
    <input id="compose-files" type="file" multiple onChange=${add} ...${invalid("attachments", errors)} />
    <${FieldError} id="attachments" errors=${errors} />
    ${form.files.length > 0 &&
    html`<ul class="files" aria-label="Attachments">
      ${form.files.map(
        (file, i) => html`<li key=${file.name + i}>
          <span>${file.name} <span class="muted small">${size(file.size)}</span></span>
          <label class="switch"><input type="checkbox" role="switch" checked=${file.followed}
            onChange=${(e) => update(i, { followed: e.currentTarget.checked })} />
            Followed<span class="visually-hidden"> ${file.name}</span></label>
          <button type="button" class="link" onClick=${() => set((f) => ({ files: f.files.filter((_, j) => j !== i) }))}>
            Remove<span class="visually-hidden"> ${file.name}</span></button>
        </li>`,
      )}
    </ul>`}
    <span class="muted small">A followed attachment goes as a tracked download link; one not followed is attached to the mail.</span>
  </div>`;
}

function Reminder({ form, set, errors }) {
  const setReminder = (patch) => set((f) => ({ reminder: { ...f.reminder, ...patch } }));
  return html`<div class="field check">
      <input id="compose-reminder" type="checkbox" checked=${form.reminderOn} onChange=${(e) => set({ reminderOn: e.currentTarget.checked })} />
      <label for="compose-reminder">Remind me to follow up</label>
    </div>
    ${form.reminderOn &&
    html`<div class="row">
      <div class="field">
        <label for="reminder-title">Reminder</label>
        <input id="reminder-title" type="text" value=${form.reminder.title} placeholder="Call back about the quote"
          onInput=${(e) => setReminder({ title: e.currentTarget.value })} ...${invalid("reminder.title", errors)} />
        <${FieldError} id="reminder.title" errors=${errors} />
      </div>
      <div class="field">
        <label for="reminder-condition">When</label>
        <select id="reminder-condition" value=${form.reminder.condition} onChange=${(e) => setReminder({ condition: e.currentTarget.value })}
          ...${invalid("reminder.condition", errors)}>
          ${CONDITIONS.map(([value, label]) => html`<option value=${value}>${label}</option>`)}
        </select>
        <${FieldError} id="reminder.condition" errors=${errors} />
      </div>
      <div class="field">
        <label for="reminder-at">Date and time <span class="muted small">(${timeZone()})</span></label>
        <input id="reminder-at" type="datetime-local" value=${form.reminder.at} onInput=${(e) => setReminder({ at: e.currentTarget.value })}
          ...${invalid("reminder.at", errors)} />
        <${FieldError} id="reminder.at" errors=${errors} />
      </div>
    </div>`}`;
}

const iso = (local) => fromZoneInput(local)?.toISOString() ?? null;

/** The request body of a compose (or, `patch`, of a draft's PATCH). */
function requestBody(form, { patch = false } = {}) {
  const usesTemplate = !patch && form.template && form.subject === form.template.subject && form.html === form.template.html;
  const body = {
    to: addresses(form.to),
    cc: addresses(form.cc),
    bcc: addresses(form.bcc),
    subject: usesTemplate ? "" : form.subject,
    html: usesTemplate ? "" : form.html,
    follow: form.follow,
  };
  if (usesTemplate) body.template_id = form.template.id;
  const files = form.files.map(({ size: _, ...file }) => file);
  if (!patch || files.length) body.attachments = files;
  if (!patch && form.reminderOn) body.reminder = { ...form.reminder, at: iso(form.reminder.at) };
  return body;
}

function Compose({ draftId }) {
  const [form, setForm] = useState(draftId ? null : emptyForm());
  const [draft, setDraft] = useState(null); // the saved draft's view
  const [errors, setErrors] = useState({});
  const [busy, setBusy] = useState(false);
  const [later, setLater] = useState(false);
  const [lookup, setLookup] = useState(0);
  const [decided, setDecided] = useState(null);
  const [notice, setNotice] = useState("");
  const set = (patch) => setForm((f) => ({ ...f, ...(typeof patch === "function" ? patch(f) : patch) }));

  useEffect(() => {
    if (!draftId) return;
    Promise.all([api(`/api/messages/${draftId}`), api(`/api/messages/${draftId}/body`)]).then(
      ([view, body]) => {
        if (view.status !== "draft") {
          navigate(`/app/messages/${draftId}`, { replace: true });
          return;
        }
        setDraft(view);
        setDecided(decidedFrom(view));
        setForm(fromDraft(view, body));
      },
      () => setForm(emptyForm()),
    );
  }, [draftId]);

  const preferences = usePreferences(form?.to ?? "", form?.cc ?? "", form?.bcc ?? "", lookup);
  useEffect(() => {
    if (preferences) setDecided(decidedFrom(preferences));
  }, [preferences]);

  if (!form) return html`<h1 tabindex="-1">Edit draft</h1><${Loading} what="Loading the draft" />`;

  const failed = (error) => {
    const found = {};
    for (const detail of error.details?.length ? error.details : [{ field: error.field, message: error.message }]) {
      const id = fieldOf(detail.field);
      if (id && !found[id]) found[id] = detail.message;
    }
    setErrors(found);
  };

  // Every action: errors cleared, the API called, its error shown by the field it names.
  const act = async (work) => {
    setBusy(true);
    setErrors({});
    setNotice("");
    reportError(null);
    try {
      await work();
    } catch (error) {
      if (error.status) failed(error);
    } finally {
      setBusy(false);
    }
  };

  const saveDraft = async () => {
    if (!draft) {
      const saved = await api("/api/messages", { method: "POST", body: { ...requestBody(form), send: false }, quiet: false });
      navigate(`/app/compose?draft=${saved.id}`, { replace: true });
      return saved;
    }
    const saved = await api(`/api/messages/${draft.id}`, { method: "PATCH", body: requestBody(form, { patch: true }) });
    const pending = draft.reminder?.state === "pending";
    let view = saved;
    if (form.reminderOn) {
      view = await api(`/api/messages/${draft.id}/reminder`, { method: "PUT", body: { ...form.reminder, at: iso(form.reminder.at) } });
    } else if (pending) {
      view = await api(`/api/messages/${draft.id}/reminder`, { method: "DELETE" });
    }
    const current = { ...view, follow_reason: saved.follow_reason, blocked_recipients: saved.blocked_recipients };
    setDraft(current);
    setDecided(decidedFrom(current));
    set({ files: [], keptFiles: current.attachments });
    setNotice("Draft saved.");
    return current;
  };

  const sendNow = () =>
    act(async () => {
      const sent = draft
        ? await saveDraft().then((d) => api(`/api/messages/${d.id}/send`, { method: "POST" }))
        : await api("/api/messages", { method: "POST", body: requestBody(form) });
      navigate(`/app/messages/${sent.id}`);
    });

  const sendLater = () =>
    act(async () => {
      if (!form.sendAt) {
        setErrors({ send_at: "Choose when to send it." });
        return;
      }
      const sendAt = iso(form.sendAt);
      const sent = draft
        ? await saveDraft().then((d) => api(`/api/messages/${d.id}/schedule`, { method: "PATCH", body: { send_at: sendAt } }))
        : await api("/api/messages", { method: "POST", body: { ...requestBody(form), send_at: sendAt } });
      navigate(`/app/messages/${sent.id}`);
    });

  const retryFollow = () =>
    act(async () => {
      set({ follow: true });
      if (!draft) {
        setLookup((n) => n + 1); // not saved: ask the preferences again
        return;
      }
      const view = await api(`/api/messages/${draft.id}/retry-follow`, { method: "POST" });
      setDraft(view);
      setDecided(decidedFrom(view));
      setLookup((n) => n + 1);
      setNotice(view.follow_state === "followed" ? "Followed now." : "Still not followed: see why above.");
    });

  const useTemplate = (template) =>
    act(async () => {
      const record = preferences?.recipients.find((r) => r.field === "to" && r.records.length)?.records[0];
      const filled = record
        ? await api(`/api/templates/${template.id}/preview`, { method: "POST", body: { record_type: record.type, record_id: record.id } })
        : await api(`/api/templates/${template.id}`);
      set({ subject: filled.subject, html: filled.html, template: { id: template.id, subject: filled.subject, html: filled.html } });
      setNotice(`Filled from “${template.name}”${record ? ` for ${record.name}` : ""}.`);
    });

  const all = [form.to, form.cc, form.bcc].flatMap(addresses);
  const single = all.length === 1 ? all[0] : null;
  const edited = form.template && (form.subject !== form.template.subject || form.html !== form.template.html);

  return html`<p class="crumbs"><a href="/app">Followed emails</a></p>
    <h1 tabindex="-1">${draft ? "Edit draft" : "Compose"}</h1>
    <form class="compose" onSubmit=${(e) => e.preventDefault()} aria-busy=${busy ? "true" : "false"}>
      <${Section} title="Recipients" id="recipients">
        <${AddressField} id="to" label="To" value=${form.to} onInput=${(to) => set({ to })} errors=${errors}
          hint="Addresses separated by commas; each recipient's preference shows as you type." />
        <${AddressField} id="cc" label="Cc" value=${form.cc} onInput=${(cc) => set({ cc })} errors=${errors} />
        <${AddressField} id="bcc" label="Bcc" value=${form.bcc} onInput=${(bcc) => set({ bcc })} errors=${errors} />
        <${RecipientPreferences} preferences=${preferences} typed=${addresses(form.to).length > 0} />
        <${FollowControl} form=${form} set=${set} decided=${decided} draft=${draft} onRetry=${retryFollow} busy=${busy} />
      <//>
      ${!draft && html`<${Section} title="Template" id="templates">
        <${TemplatePicker} chosen=${form.template && !edited ? form.template.id : null} onUse=${useTemplate} />
        ${edited ? html`<p class="muted small">Edited: sent as your own text, not counted for the template.</p>` : ""}
      <//>`}
      <${Section} title="Message" id="message">
        <div class="field">
          <label for="compose-subject">Subject</label>
          <input id="compose-subject" type="text" value=${form.subject} onInput=${(e) => set({ subject: e.currentTarget.value })}
            ...${invalid("subject", errors)} />
          <${FieldError} id="subject" errors=${errors} />
        </div>
        <div class="field">
          <label for="compose-body">Body <span class="muted small">(HTML)</span></label>
          <textarea id="compose-body" rows="10" value=${form.html} onInput=${(e) => set({ html: e.currentTarget.value })}
            ...${invalid("html", errors)}></textarea>
          <${FieldError} id="html" errors=${errors} />
        </div>
        <${Attachments} form=${form} set=${set} errors=${errors} />
        <${Reminder} form=${form} set=${set} errors=${errors} />
      <//>
      <${Section} title="Send" id="send">
        <div class="actions">
          <button type="button" class="primary" disabled=${busy} onClick=${sendNow}>Send now</button>
          <button type="button" disabled=${busy} onClick=${() => act(saveDraft)}>${draft ? "Save changes" : "Save draft"}</button>
          <button type="button" aria-expanded=${later ? "true" : "false"} aria-controls="send-later"
            onClick=${() => setLater(!later)}>Send later…</button>
        </div>
        <p class="notice" role="status">${notice}</p>
        <div id="send-later">
          ${later &&
          html`<${SendAdvice} recipient=${single} onUse=${(date) => set({ sendAt: zoneInput(date) })} />
            <div class="row">
              <div class="field">
                <label for="compose-send-at">Send at <span class="muted small">(${timeZone()})</span></label>
                <input id="compose-send-at" type="datetime-local" value=${form.sendAt} onInput=${(e) => set({ sendAt: e.currentTarget.value })}
                  ...${invalid("send_at", errors)} />
                <${FieldError} id="send_at" errors=${errors} />
              </div>
              <div class="field end"><button type="button" class="primary" disabled=${busy} onClick=${sendLater}>Schedule</button></div>
            </div>`}
        </div>
      <//>
    </form>
    <${Section} title="Drafts" id="drafts" actions=${html`<a href="/app/drafts">All drafts</a>`}>
      <${DraftList} current=${draft?.id} onDeleted=${(d) => d.id === draft?.id && navigate("/app/compose", { replace: true })} />
    <//>`;
}

export default function ComposePage({ query }) {
  const draftId = query.get("draft");
  // A new form for each draft opened (and for a new message).
  return html`<${Compose} key=${draftId ?? "new"} draftId=${draftId} />`;
}
