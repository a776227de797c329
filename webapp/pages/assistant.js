// The assistant: action cards for first opens and fired reminders, high priority first
// (GET /api/alerts answers them in that order), each linking to its message and the records
// of the message's recipients and the record it is about, with Snooze and Dismiss. New
// cards appear live: the alerts are asked every POLL_SECONDS with the ETag of the last
// answer (If-None-Match), so asking while nothing changed costs a 304.
import { useEffect, useRef, useState } from "preact/hooks";
import { html } from "../lib/html.js";
import { api } from "../lib/api.js";
import { usePoll } from "../lib/poll.js";
import { Badge, Loading, Time } from "../lib/ui.js";

export const POLL_SECONDS = 4;
const SNOOZES = [
  ["1 hour", 3600e3],
  ["1 day", 86400e3],
  ["1 week", 7 * 86400e3],
];
const KINDS = { first_open: "First open", reminder: "Reminder" };

// Each message's recipients' records, asked once per message while the page is open.
const recordsOf = new Map();
function useRecords(messageId) {
  const [records, setRecords] = useState(recordsOf.get(messageId) ?? null);
  useEffect(() => {
    if (recordsOf.has(messageId)) return;
    api(`/api/messages/${messageId}/preferences`, { quiet: true }).then(
      (prefs) => {
        const seen = new Map();
        for (const r of prefs.recipients) for (const rec of r.records) seen.set(`${rec.type}/${rec.id}`, rec);
        recordsOf.set(messageId, [...seen.values()]);
        setRecords(recordsOf.get(messageId));
      },
      () => setRecords([]),
    );
  }, [messageId]);
  return records;
}

function Records({ alert }) {
  const records = useRecords(alert.message_id);
  const regarding = alert.regarding;
  const links = (records ?? []).map((r) => html`<a href=${`/app/records/${r.type}/${r.id}`}>${r.name}</a> <span class="muted small">(${r.type})</span>`);
  if (regarding && !(records ?? []).some((r) => r.type === regarding.type && r.id === regarding.id)) {
    links.push(html`<a href=${`/app/records/${regarding.type}/${regarding.id}`}>the ${regarding.type} it is about</a>`);
  }
  if (!links.length) return records ? null : html`<p class="muted small">Loading the records…</p>`;
  return html`<p class="small">Records: ${links.map((l, i) => html`${i ? ", " : ""}${l}`)}</p>`;
}

function Card({ alert, fresh, onDone }) {
  const [busy, setBusy] = useState(false);
  const [snoozing, setSnoozing] = useState(SNOOZES[1][1]);
  const title = alert.kind === "reminder" ? alert.subject : `Opened: ${alert.subject || "(no subject)"}`;
  const act = async (path, body, what) => {
    setBusy(true);
    try {
      await api(`/api/alerts/${alert.id}/${path}`, { method: "POST", body });
      onDone(alert, what);
    } catch {
      setBusy(false);
    }
  };
  const headingId = `alert-${alert.id}`;
  return html`<li class=${`alert-card ${alert.priority}`} data-alert=${alert.id}>
    <p class="meta">
      <${Badge} tone=${alert.priority === "high" ? "bad" : "info"}>${alert.priority === "high" ? "High priority" : "Normal"}<//>
      <${Badge}>${KINDS[alert.kind] ?? alert.kind}<//>
      ${fresh ? html`<${Badge} tone="good">New<//>` : ""}
    </p>
    <h2 id=${headingId}>${title}</h2>
    <p>${alert.kind === "reminder" ? "Follow-up reminder for " : ""}
      <a href=${`/app/messages/${alert.message_id}`}>${alert.kind === "reminder" ? "the message" : "Open the message"}</a>
      ${" · "}<${Time} at=${alert.created_at} />
      ${alert.how ? html` · <span>${alert.how}</span>` : ""}
      ${alert.recipient ? html` · by ${alert.recipient}` : ""}</p>
    <${Records} alert=${alert} />
    <div class="card-actions">
      <label class="inline">Snooze for
        <select value=${snoozing} onChange=${(e) => setSnoozing(Number(e.currentTarget.value))}>
          ${SNOOZES.map(([label, ms]) => html`<option value=${ms}>${label}</option>`)}
        </select>
      </label>
      <button type="button" disabled=${busy}
        onClick=${() => act("snooze", { until: new Date(Date.now() + snoozing).toISOString() }, "snoozed")}>
        Snooze<span class="visually-hidden"> “${title}”</span></button>
      <button type="button" disabled=${busy} onClick=${() => act("dismiss", undefined, "dismissed")}>
        Dismiss<span class="visually-hidden"> “${title}”</span></button>
    </div>
  </li>`;
}

export default function Assistant() {
  const [version, setVersion] = useState(0);
  const [said, setSaid] = useState("");
  const { data, live } = usePoll("/api/alerts", POLL_SECONDS, version);
  const known = useRef(null);
  const [fresh, setFresh] = useState(new Set());

  // Cards that arrived after the first answer are marked New, and announced.
  useEffect(() => {
    if (!data) return;
    const ids = data.alerts.map((a) => a.id);
    if (known.current) {
      const added = ids.filter((id) => !known.current.has(id));
      if (added.length) {
        setFresh((f) => new Set([...f, ...added]));
        setSaid(added.length === 1 ? "1 new card." : `${added.length} new cards.`);
      }
    }
    known.current = new Set([...(known.current ?? []), ...ids]);
  }, [data]);

  const done = (alert, what) => {
    setSaid(`“${alert.subject || "(no subject)"}” ${what}.`);
    setVersion((v) => v + 1);
  };
  const alerts = data?.alerts ?? [];
  return html`<h1 tabindex="-1">Assistant</h1>
    <p class="muted small">First opens of your followed emails and your follow-up reminders that fired, high priority first.
      ${live ? ` New cards appear here within ${POLL_SECONDS} seconds.` : " Live updates paused: the server did not answer; trying again."}</p>
    <p class="notice" role="status" aria-live="polite">${said}</p>
    ${!data
      ? html`<${Loading} what="Loading the cards" />`
      : alerts.length
        ? html`<ul class="cards" aria-label="Action cards">
            ${alerts.map((a) => html`<${Card} key=${a.id} alert=${a} fresh=${fresh.has(a.id)} onDone=${done} />`)}
          </ul>`
        : html`<div class="card"><p>Nothing to act on. Cards appear here when a followed email is first opened or a reminder fires.</p></div>`}`;
}
