// Admin (the Engagement.Admin role; the shell shows others that it is not theirs, and the API
// answers them 403): the organisation's engagement switch (GET/PUT /api/admin/engagement) and
// the mailbox health dashboard, like server-side synchronisation's (GET /api/admin/mailboxes):
// each mailbox's status, last sync, lag, items tracked, failing and undeliverable, and failed
// Graph calls by class per UTC day, for every mailbox or one.
import { useEffect, useState } from "preact/hooks";
import { html } from "../lib/html.js";
import { api } from "../lib/api.js";
import { Chart, PALETTE } from "../lib/charts.js";
import { formatNumber } from "../lib/format.js";
import { Badge, Loading, Section, Time } from "../lib/ui.js";

// shared/outlook/mailboxes.py FAILURE_CLASSES, as the dashboard names them.
const CLASSES = {
  throttled: "Throttled",
  timeout: "Timed out",
  rejected: "Rejected (access denied, bad request)",
  unknown: "Other",
};
const STATUS = {
  ok: ["good", "OK"],
  degraded: ["info", "Degraded"],
  failing: ["bad", "Failing"],
  pending: ["neutral", "Not synced yet"],
};
const WINDOWS = [7, 14, 30];

export function formatLag(seconds) {
  if (seconds == null) return "—";
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${Math.round(seconds / 3600)} h`;
  return `${Math.round(seconds / 86400)} days`;
}

function EngagementSwitch() {
  const [enabled, setEnabled] = useState(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    api("/api/admin/engagement").then((answer) => setEnabled(answer.enabled), () => {});
  }, []);
  if (enabled === null) return html`<${Loading} what="Loading the switch" />`;
  const flip = async () => {
    setBusy(true);
    try {
      const answer = await api("/api/admin/engagement", { method: "PUT", body: { enabled: !enabled } });
      setEnabled(answer.enabled);
    } catch {
      // shown in the alert region
    } finally {
      setBusy(false);
    }
  };
  return html`<div class="switch-row">
    <button type="button" role="switch" class="switch" aria-checked=${enabled ? "true" : "false"}
      aria-describedby="engagement-why" disabled=${busy} onClick=${flip}>
      <span class="switch-track" aria-hidden="true"><span class="switch-thumb"></span></span>
      <span>Email engagement</span>
    </button>
    <${Badge} tone=${enabled ? "good" : "bad"}>${enabled ? "On" : "Off"}<//>
    <p id="engagement-why" class="muted small">
      ${enabled
        ? "Sellers can follow email: opens, clicks and attachment views are recorded."
        : "Off for the whole organisation: new email is not followed, and tracking links only redirect."}${" "}
      Other workers follow a change within 30 seconds.
    </p>
  </div>`;
}

function StatusBadge({ status }) {
  const [tone, label] = STATUS[status] ?? ["neutral", status];
  return html`<${Badge} tone=${tone}>${label}<//>`;
}

const total = (errors) => Object.keys(CLASSES).reduce((sum, c) => sum + errors[c], 0);

function MailboxTable({ mailboxes }) {
  if (!mailboxes.length) return html`<p class="muted">No mailbox is enrolled yet (POST /api/admin/mailboxes).</p>`;
  // Focusable: on a narrow screen the table scrolls sideways, and keyboard users must reach it.
  return html`<div class="table-wrap" tabindex="0" role="region" aria-label="Enrolled mailboxes"><table>
    <caption>Enrolled mailboxes, by address (${mailboxes.length})</caption>
    <thead><tr>
      <th scope="col">Mailbox</th><th scope="col">Status</th><th scope="col">Last sync</th>
      <th scope="col">Last success</th><th scope="col" class="num">Lag</th>
      <th scope="col" class="num">Items tracked</th><th scope="col" class="num">Failing</th>
      <th scope="col" class="num">Undeliverable</th><th scope="col" class="num">Errors</th><th scope="col">Last error</th>
    </tr></thead>
    <tbody>${mailboxes.map(
      (m) => html`<tr key=${m.email} data-mailbox=${m.email}>
        <th scope="row">${m.email}</th>
        <td><${StatusBadge} status=${m.status} /></td>
        <td><${Time} at=${m.last_sync_at} short /></td>
        <td><${Time} at=${m.last_success_at} short /></td>
        <td class="num">${formatLag(m.lag_seconds)}</td>
        <td class="num">${formatNumber(m.items_tracked)}</td>
        <td class="num">${formatNumber(m.items_failing)}</td>
        <td class="num">${formatNumber(m.undeliverable)}</td>
        <td class="num">${formatNumber(total(m.errors))}</td>
        <td class="small">${m.last_error ?? "—"}</td>
      </tr>`,
    )}</tbody>
  </table></div>`;
}

/** Failed Graph calls per UTC day and class, summed over the mailboxes shown. */
export function errorsByDay(mailboxes) {
  const days = new Map();
  for (const m of mailboxes) {
    for (const day of m.errors_by_day) {
      const sum = days.get(day.date) ?? Object.fromEntries(Object.keys(CLASSES).map((c) => [c, 0]));
      for (const c of Object.keys(CLASSES)) sum[c] += day[c];
      days.set(day.date, sum);
    }
  }
  return [...days.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([date, counts]) => ({ date, ...counts }));
}

function ErrorsChart({ mailboxes, who }) {
  const days = errorsByDay(mailboxes);
  if (!days.length) return html`<p class="muted">No mailbox to chart.</p>`;
  const data = {
    labels: days.map((d) => d.date.slice(5)),
    datasets: Object.entries(CLASSES).map(([c, label], i) => ({
      label,
      data: days.map((d) => d[c]),
      backgroundColor: [PALETTE[2], PALETTE[3], PALETTE[1], PALETTE[5]][i],
      maxBarThickness: 32,
    })),
  };
  const sums = Object.entries(CLASSES).map(([c, label]) => `${label} ${days.reduce((s, d) => s + d[c], 0)}`).join(", ");
  const busy = days.filter((d) => total(d) > 0);
  return html`<${Chart} type="bar" data=${data}
      label=${`Failed Graph calls per UTC day by class, ${who}, ${days[0].date} to ${days[days.length - 1].date}: ${sums}`}
      options=${{ scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } }} />
    <details>
      <summary>The numbers</summary>
      ${busy.length
        ? html`<table class="compact">
            <caption class="visually-hidden">Failed Graph calls per day by class (days with none left out)</caption>
            <thead><tr><th scope="col">Day (UTC)</th>${Object.values(CLASSES).map((l) => html`<th scope="col" class="num">${l}</th>`)}</tr></thead>
            <tbody>${busy.map(
              (d) => html`<tr><th scope="row">${d.date}</th>${Object.keys(CLASSES).map((c) => html`<td class="num">${d[c]}</td>`)}</tr>`,
            )}</tbody>
          </table>`
        : html`<p class="muted">No failed call in these days.</p>`}
    </details>`;
}

function Dashboard() {
  const [days, setDays] = useState(14);
  const [answer, setAnswer] = useState(null);
  const [chosen, setChosen] = useState("");
  const [forbidden, setForbidden] = useState(false);
  const load = () =>
    api("/api/admin/mailboxes", { query: { days } }).then(setAnswer, (error) => setForbidden(error.status === 403));
  useEffect(() => {
    load();
  }, [days]);
  if (forbidden) return html`<p>Not allowed: the mailbox dashboard is for admins (the Engagement.Admin role).</p>`;
  if (!answer) return html`<${Loading} what="Loading the mailboxes" />`;
  const boxes = answer.mailboxes;
  const counts = Object.fromEntries(Object.keys(STATUS).map((s) => [s, boxes.filter((m) => m.status === s).length]));
  const charted = chosen ? boxes.filter((m) => m.email === chosen) : boxes;
  return html`<div class="tiles" aria-label="Mailboxes by status" role="group">
      ${Object.entries(STATUS).map(
        ([s, [, label]]) => html`<div class="tile"><span class="tile-value" data-status=${s}>${counts[s]}</span>
          <span class="tile-label">${label}</span></div>`,
      )}
    </div>
    <div class="toolbar">
      <label class="inline">Days
        <select value=${days} onChange=${(e) => setDays(Number(e.currentTarget.value))}>
          ${WINDOWS.map((n) => html`<option value=${n}>${n}</option>`)}
        </select>
      </label>
      <label class="inline">Chart
        <select value=${chosen} onChange=${(e) => setChosen(e.currentTarget.value)}>
          <option value="">Every mailbox</option>
          ${boxes.map((m) => html`<option value=${m.email}>${m.email}</option>`)}
        </select>
      </label>
      <button type="button" onClick=${load}>Refresh</button>
    </div>
    <${Section} title="Errors by class over time" id="errors-chart">
      <${ErrorsChart} key=${`${chosen}:${days}`} mailboxes=${charted} who=${chosen || "every mailbox"} />
    <//>
    <${Section} title="Mailboxes" id="mailboxes"><${MailboxTable} mailboxes=${boxes} /><//>
    <p class="muted small">Lag is the time since the last successful sync. A mailbox is failing when its last
      sync failed, degraded when items fail to track. Errors are failed Graph calls since enrolment.</p>`;
}

export default function Admin() {
  return html`<h1 tabindex="-1">Admin</h1>
    <${Section} title="Email engagement" id="engagement"><${EngagementSwitch} /><//>
    <h2 class="page-section">Mailbox health</h2>
    <${Dashboard} />`;
}
