// One message: its status, the four KPI tiles, charts of opens over time and of who made the
// events (people, proxies, prefetches, scanners), clicks per link and views per attachment,
// the timeline (first and most recent of each event; "Show all events" for every event with
// its class and reasons), each recipient's own numbers when sent individually, the reminder,
// the recipients' preferences now and the body as delivered, in a sandboxed frame.
// New engagement appears without a reload: the message is asked again every POLL_SECONDS
// (the API's single-message view includes events not folded yet), the full history again
// only when the numbers changed.
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { html } from "../lib/html.js";
import { api } from "../lib/api.js";
import { Chart, PALETTE } from "../lib/charts.js";
import { formatBucket, formatNumber } from "../lib/format.js";
import { Badge, FollowBadge, Loading, Section, StatusBadge, Time } from "../lib/ui.js";

export const POLL_SECONDS = 5;

const EVENTS = {
  sent: "Sent",
  open: "Opened",
  click: "Link clicked",
  attachment: "Attachment opened",
  reply: "Replied",
  auto_reply: "Automatic reply",
};
const OCCURRENCE = { first: "first", latest: "most recent", only: "" };
// shared/core/vocabulary.py EVENT_CLASSES, as docs/measurement.md explains them.
const CLASSES = {
  human: "People",
  proxy_open: "Proxy opens",
  prefetch: "Prefetches",
  unknown: "Unknown",
  scanner: "Scanners",
};
const CONDITIONS = { no_reply_by: "if no reply by", not_opened_by: "if not opened by", at: "at" };

/** What changes when new engagement arrives: the history is asked again only then. */
function signature(view) {
  const { opens, link_clicks, attachment_views, replies, by_class } = view.kpis;
  return JSON.stringify([opens, link_clicks, attachment_views, replies, by_class, view.status]);
}

/**
 * Opens per hour (per day past two days) in the seller's zone, counted and not, from the
 * full history: every bucket between the first and the last open, empty ones included.
 */
export function openBuckets(history) {
  const opens = history.filter((e) => e.event === "open").map((e) => ({ at: new Date(e.at), counted: e.counted }));
  if (!opens.length) return null;
  opens.sort((a, b) => a.at - b.at);
  const first = opens[0].at.getTime();
  const last = opens[opens.length - 1].at.getTime();
  const unit = last - first > 48 * 3600e3 ? "day" : "hour";
  const buckets = new Map();
  const hour = 3600e3;
  for (let t = Math.floor(first / hour) * hour; t <= last && buckets.size < 500; t += hour) {
    buckets.set(formatBucket(new Date(t), unit), { counted: 0, other: 0 });
  }
  for (const open of opens) {
    const bucket = buckets.get(formatBucket(open.at, unit));
    if (bucket) bucket[open.counted ? "counted" : "other"] += 1;
  }
  return { unit, labels: [...buckets.keys()], counted: [...buckets.values()].map((b) => b.counted), other: [...buckets.values()].map((b) => b.other) };
}

function Tile({ name, label, value, children }) {
  return html`<div class="tile">
    <span class="tile-value" data-kpi=${name}>${formatNumber(value)}</span>
    <span class="tile-label">${label}</span>
    ${children && html`<span class="tile-sub">${children}</span>`}
  </div>`;
}

function Tiles({ kpis }) {
  return html`<section class="tiles" aria-label="Engagement" aria-live="polite">
    <${Tile} name="opens" label="Opens" value=${kpis.opens}>
      ${kpis.first_opened_at ? html`first <${Time} at=${kpis.first_opened_at} />` : "not opened yet"}
    <//>
    <${Tile} name="link_clicks" label="Link clicks" value=${kpis.link_clicks} />
    <${Tile} name="attachment_views" label="Attachment views" value=${kpis.attachment_views} />
    <${Tile} name="replies" label="Replies" value=${kpis.replies} />
  </section>`;
}

function OpensChart({ history }) {
  const buckets = useMemo(() => (history ? openBuckets(history) : null), [history]);
  if (!history) return html`<${Loading} what="Loading the events" />`;
  if (!buckets) return html`<p class="muted">No opens yet.</p>`;
  const total = buckets.counted.reduce((a, b) => a + b, 0);
  const data = {
    labels: buckets.labels,
    datasets: [
      { label: "Counted opens", data: buckets.counted, backgroundColor: PALETTE[0], maxBarThickness: 48 },
      { label: "Not counted (prefetch, scanner, unknown)", data: buckets.other, backgroundColor: PALETTE[3], maxBarThickness: 48 },
    ],
  };
  return html`<${Chart} type="bar" data=${data}
    label=${`Opens per ${buckets.unit}: ${total} counted, from ${buckets.labels[0]} to ${buckets.labels[buckets.labels.length - 1]}`}
    options=${{ scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } }} />`;
}

function ClassChart({ byClass }) {
  const kinds = [
    ["opens", "Opens"],
    ["link_clicks", "Link clicks"],
    ["attachment_views", "Attachment views"],
  ];
  const data = {
    labels: Object.values(CLASSES),
    datasets: kinds.map(([key, label], i) => ({
      label,
      data: Object.keys(CLASSES).map((c) => byClass[key][c]),
      backgroundColor: PALETTE[i],
    })),
  };
  const summary = Object.entries(CLASSES).map(([c, label]) => `${label} ${byClass.opens[c]}`).join(", ");
  return html`<${Chart} type="bar" data=${data} label=${`Opens by who made them: ${summary}`}
      options=${{ indexAxis: "y", scales: { x: { beginAtZero: true, ticks: { precision: 0 } } } }} />
    <details>
      <summary>The numbers</summary>
      <table class="compact">
        <caption class="visually-hidden">Events by who made them</caption>
        <thead><tr><th scope="col">Made by</th>${kinds.map(([, label]) => html`<th scope="col" class="num">${label}</th>`)}</tr></thead>
        <tbody>
          ${Object.entries(CLASSES).map(
            ([c, label]) => html`<tr><th scope="row">${label}</th>${kinds.map(([key]) => html`<td class="num">${byClass[key][c]}</td>`)}</tr>`,
          )}
        </tbody>
      </table>
    </details>`;
}

function detail(entry, view) {
  if (entry.event === "click") return view.links.find((l) => l.index === entry.index)?.url ?? `link ${entry.index}`;
  if (entry.event === "attachment") return view.attachments.find((a) => a.index === entry.index)?.name ?? `attachment ${entry.index}`;
  return entry.how ?? entry.device ?? "";
}

function Timeline({ view }) {
  if (!view.timeline.length) return html`<p class="muted">Nothing yet.</p>`;
  return html`<ol class="timeline">
    ${view.timeline.map(
      (e) => html`<li>
        <span class="when"><${Time} at=${e.at} /></span>
        <span class="what">${EVENTS[e.event] ?? e.event}${OCCURRENCE[e.occurrence] ? html` <span class="muted">(${OCCURRENCE[e.occurrence]})</span>` : ""}</span>
        <span class="detail">${detail(e, view)}${e.recipient ? ` — ${e.recipient}` : ""}</span>
      </li>`,
    )}
  </ol>`;
}

function History({ view, history }) {
  if (!history) return html`<${Loading} what="Loading every event" />`;
  const individually = view.send_individually;
  return html`<div class="table-wrap">
    <table class="compact">
      <caption>Every event, newest first (${history.length})</caption>
      <thead><tr>
        <th scope="col">When</th><th scope="col">Event</th><th scope="col">Made by</th>
        <th scope="col">Counted</th><th scope="col">Reasons</th><th scope="col">Device</th>
        ${individually && html`<th scope="col">Recipient</th>`}
      </tr></thead>
      <tbody>
        ${history.map(
          (e, i) => html`<tr key=${i}>
            <td><${Time} at=${e.at} /></td>
            <td>${EVENTS[e.event] ?? e.event}${e.event === "click" || e.event === "attachment" ? html`<br /><span class="muted small">${detail(e, view)}</span>` : ""}</td>
            <td>${e.class ? CLASSES[e.class] ?? e.class : "—"}</td>
            <td>${e.counted ? "Yes" : "No"}</td>
            <td><ul class="reasons">${e.reasons.map((r) => html`<li><code>${r}</code></li>`)}</ul></td>
            <td>${e.device || "—"}</td>
            ${individually && html`<td>${e.recipient ?? "—"}</td>`}
          </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}

function Links({ links }) {
  if (!links.length) return html`<p class="muted">No followed links.</p>`;
  return html`<table class="compact">
    <caption class="visually-hidden">Clicks per link</caption>
    <thead><tr><th scope="col">Link</th><th scope="col" class="num">Clicks</th></tr></thead>
    <tbody>${links.map((l) => html`<tr><td class="url">${l.url}</td><td class="num">${formatNumber(l.clicks)}</td></tr>`)}</tbody>
  </table>`;
}

const size = (bytes) => (bytes < 1024 ? `${bytes} B` : bytes < 1048576 ? `${Math.round(bytes / 1024)} KB` : `${(bytes / 1048576).toFixed(1)} MB`);

function Attachments({ attachments }) {
  if (!attachments.length) return html`<p class="muted">No attachments.</p>`;
  return html`<table class="compact">
    <caption class="visually-hidden">Views per attachment</caption>
    <thead><tr><th scope="col">Attachment</th><th scope="col">Size</th><th scope="col">Followed</th><th scope="col" class="num">Views</th></tr></thead>
    <tbody>${attachments.map(
      (a) => html`<tr><td>${a.name}</td><td>${size(a.size)}</td><td>${a.followed ? "Yes" : "No"}</td><td class="num">${a.followed ? formatNumber(a.views) : "—"}</td></tr>`,
    )}</tbody>
  </table>`;
}

function Recipients({ copies }) {
  return html`<div class="table-wrap"><table class="compact">
    <caption class="visually-hidden">Each recipient's own copy</caption>
    <thead><tr><th scope="col">Recipient</th><th scope="col" class="num">Opens</th><th scope="col">First opened</th>
      <th scope="col">Last opened</th><th scope="col" class="num">Link clicks</th><th scope="col" class="num">Attachment views</th></tr></thead>
    <tbody>${copies.map(
      (c) => html`<tr><td>${c.address}</td><td class="num">${c.opens}</td><td><${Time} at=${c.first_opened_at} /></td>
        <td><${Time} at=${c.last_opened_at} /></td><td class="num">${c.link_clicks}</td><td class="num">${c.attachment_views}</td></tr>`,
    )}</tbody>
  </table></div>`;
}

function Reminder({ reminder }) {
  if (!reminder) return html`<p class="muted">No follow-up reminder.</p>`;
  const tone = { pending: "info", fired: "bad", satisfied: "good" }[reminder.state];
  return html`<p>
    <strong>${reminder.title}</strong>: ${CONDITIONS[reminder.condition]} <${Time} at=${reminder.at} />
    ${" "}<${Badge} tone=${tone}>${reminder.state}<//>
    ${reminder.closed_at ? html` <span class="muted">(${reminder.state} <${Time} at=${reminder.closed_at} />)</span>` : ""}
  </p>`;
}

function Preferences({ id }) {
  const [prefs, setPrefs] = useState(null);
  const load = () => api(`/api/messages/${id}/preferences`).then(setPrefs, () => {});
  useEffect(() => {
    load();
  }, [id]);
  if (!prefs) return html`<${Loading} what="Loading the preferences" />`;
  return html`<p>Sent now, it would be <${FollowBadge} state=${prefs.follow_state} />.${" "}
      <button type="button" class="link" onClick=${load}>Check again</button></p>
    <table class="compact">
      <caption class="visually-hidden">Each recipient's Follow Email preference now</caption>
      <thead><tr><th scope="col">Recipient</th><th scope="col">May be followed</th><th scope="col">Why not</th><th scope="col">Records</th></tr></thead>
      <tbody>${prefs.recipients.map(
        (r) => html`<tr>
          <td>${r.address} <span class="muted">(${r.field})</span></td>
          <td>${r.followable ? "Yes" : "No"}</td>
          <td>${r.reason ?? "—"}</td>
          <td>${r.records.length
            ? r.records.map((rec, i) => html`${i ? ", " : ""}<a href=${`/app/records/${rec.type}/${rec.id}`}>${rec.name}</a> <span class="muted">(${rec.type}, ${rec.follow_email === "allow" ? "Allow" : "Do Not Allow"})</span>`)
            : "no record"}</td>
        </tr>`,
      )}</tbody>
    </table>`;
}

// The body as delivered, never live: a sandbox with no permission at all (no script, no
// navigation, no form, no popup) and, inside it, a policy that loads nothing but inline data,
// so showing the body never fetches its tracking pixel (which would be an open) or any image.
const FRAME_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'";

export function frameDocument(body) {
  return `<!doctype html><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="${FRAME_POLICY}">${withoutLoads(body)}`;
}

// Images from elsewhere (the tracking pixel among them) and scripts taken out before
// framing: the frame's sandbox and policy would refuse them anyway, but each refusal is an
// error in the console.
function withoutLoads(body) {
  const remote = (url) => url && !/^\s*data:/i.test(url);
  const doc = new DOMParser().parseFromString(body, "text/html");
  let changed = false;
  for (const script of doc.querySelectorAll("script")) {
    script.remove();
    changed = true;
  }
  for (const image of doc.querySelectorAll("img, source")) {
    for (const name of ["src", "srcset"]) {
      if (remote(image.getAttribute(name))) {
        image.removeAttribute(name);
        changed = true;
      }
    }
  }
  return changed ? doc.documentElement.outerHTML : body;
}

// The body as delivered: GET /api/messages/<id>/body, once (it does not change), unless the
// view carries it already.
function Body({ view }) {
  const [body, setBody] = useState(typeof view.html === "string" ? view.html : null);
  const [missing, setMissing] = useState(false);
  useEffect(() => {
    if (typeof view.html === "string") return;
    api(`/api/messages/${view.id}/body`, { quiet: true }).then((answer) => setBody(answer.html), () => setMissing(true));
  }, [view.id]);
  if (missing) return html`<p class="muted">The body of this message is no longer kept.</p>`;
  if (body === null) return html`<${Loading} what="Loading the body" />`;
  return html`<p class="muted small">Shown as delivered, without loading its images or its tracking pixel; links do not work here.</p>
    <iframe class="body-frame" sandbox="" title=${`The body of “${view.subject}” as delivered`} srcdoc=${frameDocument(body)}></iframe>`;
}

function Header({ view, live }) {
  return html`<p class="meta">
      <${StatusBadge} status=${view.status} /> <${FollowBadge} state=${view.follow_state} />
      ${view.send_individually ? html` <${Badge}>sent individually<//>` : ""}
      ${view.status === "draft" ? html` <a href=${`/app/compose?draft=${view.id}`}>Edit the draft</a>` : ""}
    </p>
    <dl class="facts">
      <div><dt>To</dt><dd>${view.to.join(", ") || "—"}</dd></div>
      ${view.cc.length ? html`<div><dt>Cc</dt><dd>${view.cc.join(", ")}</dd></div>` : ""}
      <div><dt>${view.sent_at ? "Sent" : view.send_at ? "Scheduled for" : "Created"}</dt>
        <dd><${Time} at=${view.sent_at ?? view.send_at ?? view.created_at} /></dd></div>
      ${view.failure ? html`<div><dt>Last failure</dt><dd>${view.failure}</dd></div>` : ""}
    </dl>
    <p class="muted small">
      ${live
        ? `Live: new engagement shows here within ${POLL_SECONDS} seconds.`
        : "Live updates paused: the server did not answer; trying again."}
      ${view.kpis_complete === false ? " Some events recorded in the last minute could not be read; the numbers may be a little behind." : ""}
    </p>`;
}

export default function Message({ params }) {
  const { id } = params;
  const [view, setView] = useState(null);
  const [history, setHistory] = useState(null);
  const [showAll, setShowAll] = useState(false);
  const [live, setLive] = useState(true);
  const seen = useRef(null);
  const [missing, setMissing] = useState(false);

  useEffect(() => {
    let stopped = false;
    seen.current = null;
    setView(null);
    setHistory(null);
    setMissing(false);
    // The whole view with every event; then the summary every few seconds, and the whole
    // again when it changed.
    const full = () =>
      api(`/api/messages/${id}`, { query: { history: "full" }, quiet: seen.current !== null }).then((answer) => {
        if (stopped) return;
        seen.current = signature(answer);
        setView(answer);
        setHistory(answer.history);
      });
    const poll = async () => {
      if (stopped || document.hidden) return;
      try {
        const answer = await api(`/api/messages/${id}`, { quiet: true });
        if (stopped) return;
        setLive(true);
        if (signature(answer) !== seen.current) await full();
        else setView(answer);
      } catch {
        if (!stopped) setLive(false);
      }
    };
    full().catch((error) => !stopped && setMissing(error.status === 404));
    const timer = setInterval(poll, POLL_SECONDS * 1000);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, [id]);

  // One heading element from loading to loaded, so that focus put on it stays.
  const title = missing ? "Message not found" : view ? view.subject || "(no subject)" : "Message";
  const heading = html`<p class="crumbs"><a href="/app">Followed emails</a></p><h1 tabindex="-1">${title}</h1>`;
  if (missing) return html`${heading}<p>It is not there, or not yours.</p>`;
  if (!view) return html`${heading}<${Loading} what="Loading the message" />`;
  const { kpis } = view;
  return html`${heading}
    <${Header} view=${view} live=${live} />
    <${Tiles} kpis=${kpis} />
    <div class="grid-2">
      <${Section} title="Opens over time" id="opens-chart"><${OpensChart} history=${history} /><//>
      <${Section} title="Who made the events" id="class-chart">
        <p class="muted small">People and opens through a proxy count; prefetches, scanners and unknown fetches are shown, not counted.</p>
        <${ClassChart} byClass=${kpis.by_class} />
      <//>
    </div>
    <div class="grid-2">
      <${Section} title="Clicks per link" id="links"><${Links} links=${view.links} /><//>
      <${Section} title="Views per attachment" id="attachments"><${Attachments} attachments=${view.attachments} /><//>
    </div>
    ${view.by_recipient && html`<${Section} title="Per recipient" id="recipients"><${Recipients} copies=${view.by_recipient} /><//>`}
    <${Section} title="Timeline" id="timeline"
      actions=${html`<button type="button" aria-expanded=${showAll ? "true" : "false"} aria-controls="history"
        onClick=${() => setShowAll(!showAll)}>${showAll ? "Hide the events" : "Show all events"}</button>`}>
      <${Timeline} view=${view} />
      <div id="history">${showAll && html`<${History} view=${view} history=${history} />`}</div>
    <//>
    <div class="grid-2">
      <${Section} title="Follow-up reminder" id="reminder"><${Reminder} reminder=${view.reminder} /><//>
      <${Section} title="Recipients' preferences now" id="preferences"><${Preferences} id=${id} /><//>
    </div>
    <${Section} title="Body as delivered" id="body"><${Body} view=${view} /><//>`;
}
