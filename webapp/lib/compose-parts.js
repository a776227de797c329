// Pieces of the compose page that stand alone: recipients parsed as typed, their Follow
// Email preferences (GET /api/preferences) looked up while the seller types, the template
// picker with each template's rates (GET /api/templates), files read for the compose API
// (base64) and the send-time advice (GET /api/advice) in the recipient's and the seller's
// time.
import { useEffect, useState } from "preact/hooks";
import { html } from "./html.js";
import { api } from "./api.js";
import { formatNumber, formatTime, timeZone } from "./format.js";
import { Badge } from "./ui.js";

const ADDRESS = /^[^\s@,;]+@[^\s@,;]+\.[^\s@,;]+$/;
export const LOOKUP_DELAY_MS = 400;

/** "a@x.example, b@y.example" as a list (commas, semicolons or spaces between). */
export function addresses(text) {
  return text.split(/[\s,;]+/).map((a) => a.trim()).filter(Boolean);
}

/**
 * Each recipient's preference, asked again a moment after the seller stops typing (only
 * addresses that look whole are asked about; the API judges them on sending). `version`
 * asks again on demand (Retry Follow before the message is saved).
 */
export function usePreferences(to, cc, bcc, version = 0) {
  const [answer, setAnswer] = useState(null);
  const lists = [to, cc, bcc].map((text) => addresses(text).filter((a) => ADDRESS.test(a)));
  const key = JSON.stringify(lists);
  useEffect(() => {
    const [toList, ccList, bccList] = lists;
    if (!toList.length) {
      setAnswer(null);
      return undefined;
    }
    const controller = new AbortController();
    const timer = setTimeout(() => {
      const query = new URLSearchParams();
      toList.forEach((a) => query.append("to", a));
      ccList.forEach((a) => query.append("cc", a));
      bccList.forEach((a) => query.append("bcc", a));
      api(`/api/preferences?${query}`, { quiet: true, signal: controller.signal }).then(
        (found) => setAnswer({ key, ...found }),
        () => {},
      );
    }, LOOKUP_DELAY_MS);
    return () => {
      clearTimeout(timer);
      controller.abort();
    };
  }, [key, version]);
  return answer && answer.key === key ? answer : null;
}

/** The record links of one recipient: each opens the record, with its Follow Email. */
export function RecordLinks({ recipient }) {
  if (!recipient.records.length) return html`<span class="muted">no record</span>`;
  return recipient.records.map(
    (record, i) => html`${i ? ", " : ""}<a href=${`/app/records/${record.type}/${record.id}`}>View Preferences<span
        class="visually-hidden"> of ${record.name} (${record.type}, ${recipient.address})</span></a>${" "}
      <span class="muted small">(${record.name}, ${record.type}: ${record.follow_email === "allow" ? "Allow" : "Do Not Allow"})</span>`,
  );
}

/** Under the address fields: each recipient and whether they may be followed. */
export function RecipientPreferences({ preferences, typed }) {
  if (!typed) return null;
  if (!preferences) return html`<p class="muted small" role="status">Checking the recipients' preferences…</p>`;
  return html`<ul class="recipients" aria-label="Recipients' follow preferences">
    ${preferences.recipients.map(
      (r) => html`<li key=${r.field + r.address} data-recipient=${r.address}>
        <span>${r.address} <span class="muted">(${r.field})</span></span>
        ${r.followable
          ? html`<${Badge} tone="good">May be followed<//>`
          : html`<${Badge} tone="bad">Cannot be followed<//> <span class="reason">${r.reason}</span>`}
        <${RecordLinks} recipient=${r} />
      </li>`,
    )}
  </ul>`;
}

const percent = (rate) => (rate == null ? "—" : `${Math.round(rate * 100)}%`);

/** The templates with their open and reply rates and the Recommended badge (the recommended
 * one first); `onUse(t)`. */
export function TemplatePicker({ chosen, onUse }) {
  const [templates, setTemplates] = useState(null);
  useEffect(() => {
    api("/api/templates", { query: { sort: "recommended", order: "desc" }, quiet: true }).then((answer) => setTemplates(answer.items), () => setTemplates([]));
  }, []);
  if (!templates) return html`<p class="muted" role="status">Loading the templates…</p>`;
  if (!templates.length) return html`<p class="muted">No templates yet: write the message yourself, or add one on the Templates page.</p>`;
  return html`<div class="table-wrap"><table class="compact">
    <caption>Templates, with how the mail sent with each did (the recommended one first)</caption>
    <thead><tr>
      <th scope="col">Template</th><th scope="col" class="num">Open rate</th>
      <th scope="col" class="num">Reply rate</th><th scope="col" class="num">Emails sent</th>
      <th scope="col"><span class="visually-hidden">Use</span></th>
    </tr></thead>
    <tbody>${templates.map(
      (t) => html`<tr key=${t.id} data-template=${t.id}>
        <th scope="row">${t.name} ${t.recommended ? html`<span title=${t.why}><${Badge} tone="good">Recommended<//></span>` : ""}
          <br /><span class="muted small">${t.subject}</span></th>
        <td class="num">${percent(t.open_rate)}</td>
        <td class="num">${percent(t.reply_rate)}</td>
        <td class="num">${formatNumber(t.sent)}</td>
        <td>${chosen === t.id
          ? html`<${Badge} tone="info">In use<//>`
          : html`<button type="button" onClick=${() => onUse(t)}>Use<span class="visually-hidden"> ${t.name}</span></button>`}</td>
      </tr>`,
    )}</tbody>
  </table></div>`;
}

/** A file as the compose API takes it: base64 content, its media type, followed. */
export function readFile(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => {
      const data = String(reader.result);
      resolve({
        name: file.name,
        content_type: /^[\w.+-]+\/[\w.+-]+$/.test(file.type) ? file.type : "application/octet-stream",
        content: data.slice(data.indexOf(",") + 1),
        size: file.size,
        followed: true,
      });
    };
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

export const size = (bytes) =>
  bytes < 1024 ? `${bytes} B` : bytes < 1048576 ? `${Math.round(bytes / 1024)} KB` : `${(bytes / 1048576).toFixed(1)} MB`;

/** A time in an IANA zone, as "Tue, Dec 8, 9:00 AM". */
export function formatIn(iso, zone) {
  return new Intl.DateTimeFormat(undefined, {
    timeZone: zone, weekday: "short", month: "short", day: "numeric", hour: "numeric", minute: "2-digit",
  }).format(new Date(iso));
}

// A datetime-local input holds a wall-clock time with no zone: here it is read and written in
// the seller's display zone (GET /api/me), as every time the app shows, not the browser's.
const inputParts = new Map();
function wallClock(date, zone) {
  if (!inputParts.has(zone)) {
    inputParts.set(zone, new Intl.DateTimeFormat("en-US", {
      timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
    }));
  }
  return Object.fromEntries(inputParts.get(zone).formatToParts(date).map((p) => [p.type, p.value]));
}

/** The value of a datetime-local input for an instant, in `zone` (the seller's by default). */
export function zoneInput(date, zone = timeZone()) {
  const p = wallClock(date, zone);
  return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}`;
}

/** The instant a datetime-local value names in `zone` (the seller's by default); null for none. */
export function fromZoneInput(value, zone = timeZone()) {
  const found = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(value ?? "");
  if (!found) return null;
  const [y, mo, d, h, mi] = found.slice(1).map(Number);
  const wanted = Date.UTC(y, mo - 1, d, h, mi);
  // The zone's offset at the guess, then again at the answer (a daylight-saving change
  // between the two moves it).
  const offset = (t) => {
    const p = wallClock(new Date(t), zone);
    return Date.UTC(+p.year, +p.month - 1, +p.day, +p.hour, +p.minute) - Math.floor(t / 60e3) * 60e3;
  };
  let at = wanted - offset(wanted);
  at = wanted - offset(at);
  return new Date(at);
}

/** When to send to the one recipient, in their time and the seller's; `onUse(date)`. */
export function SendAdvice({ recipient, onUse }) {
  const [advice, setAdvice] = useState(null);
  useEffect(() => {
    setAdvice(null);
    if (!recipient || !ADDRESS.test(recipient)) return undefined;
    const controller = new AbortController();
    const timer = setTimeout(() => {
      api("/api/advice", { query: { to: recipient }, quiet: true, signal: controller.signal }).then(setAdvice, () =>
        setAdvice({ send_at: null, reason: "No advice for this address." }),
      );
    }, LOOKUP_DELAY_MS);
    return () => {
      clearTimeout(timer);
      controller.abort();
    };
  }, [recipient]);
  if (!recipient) return html`<p class="muted small">Send-time advice is given for a message to one recipient.</p>`;
  if (!advice) return html`<p class="muted small" role="status">Looking for the best time…</p>`;
  if (!advice.send_at) return html`<p class="muted small">No send-time advice: ${advice.reason}</p>`;
  return html`<div class="advice" data-advice>
    <p><strong>Suggested:</strong>${" "}
      <span data-time="recipient">${formatIn(advice.local_time ?? advice.send_at, advice.time_zone ?? "UTC")}</span>
      <span class="muted"> recipient's time (${advice.time_zone})</span>, that is${" "}
      <span data-time="seller">${advice.seller_time ? formatIn(advice.seller_time, advice.seller_time_zone) : formatTime(advice.send_at)}</span>
      <span class="muted"> your time (${advice.seller_time_zone ?? timeZone()})</span>.</p>
    <p class="muted small">${advice.reason}</p>
    <button type="button" onClick=${() => onUse(new Date(advice.send_at))}>Use the suggested time</button>
  </div>`;
}
