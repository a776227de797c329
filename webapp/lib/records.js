// Contacts, leads and accounts as the pages show them, and a picker that finds one by the
// start of its name, a word of it, an address or a domain (GET /api/records?q=).
import { useEffect, useState } from "preact/hooks";
import { html } from "./html.js";
import { api } from "./api.js";

export const RECORD_TYPES = { contact: "Contact", lead: "Lead", account: "Account" };

export function recordHref(record) {
  return `/app/records/${record.type}/${encodeURIComponent(record.id)}`;
}

export function recordLabel(record) {
  return `${record.name} (${RECORD_TYPES[record.type] ?? record.type}, ${record.emails[0] ?? "no address"})`;
}

/** Waits until `value` has stopped changing for `ms`, then answers it. */
export function useSettled(value, ms = 250) {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => setSettled(value), ms);
    return () => clearTimeout(timer);
  }, [value]);
  return settled;
}

/**
 * A search box and the records it finds, as a select; `onChange(record)` with the chosen one
 * (a new search chooses its first; null when it finds none). `error` (a message) is shown below, for the form's `record_id`.
 */
export function RecordPicker({ id, value, onChange, error }) {
  const [text, setText] = useState("");
  const [found, setFound] = useState([]);
  const q = useSettled(text.trim());
  useEffect(() => {
    let live = true;
    api("/api/records", { query: { q, limit: 20 }, quiet: true }).then(
      (answer) => {
        if (!live) return;
        setFound(answer.records);
        // A new search chooses its first record, unless the chosen one is still found.
        const kept = value && answer.records.find((r) => r.type === value.type && r.id === value.id);
        if (!kept) onChange(answer.records[0] ?? null);
      },
      () => live && setFound([]),
    );
    return () => (live = false);
  }, [q]);
  const chosen = value ? `${value.type}:${value.id}` : "";
  const options = found;
  return html`<div class="picker">
    <div class="field">
      <label for=${`${id}-q`}>Find a record</label>
      <input id=${`${id}-q`} type="search" value=${text} placeholder="Name, address or domain"
        onInput=${(e) => setText(e.currentTarget.value)} />
    </div>
    <div class="field">
      <label for=${id}>Record</label>
      <select id=${id} value=${chosen} aria-invalid=${error ? "true" : "false"}
        aria-describedby=${error ? `${id}-error` : undefined}
        onChange=${(e) => onChange(options.find((r) => `${r.type}:${r.id}` === e.currentTarget.value) ?? null)}>
        ${!options.length && html`<option value="">No record found</option>`}
        ${options.map((r) => html`<option key=${`${r.type}:${r.id}`} value=${`${r.type}:${r.id}`}>${recordLabel(r)}</option>`)}
      </select>
      ${error && html`<p id=${`${id}-error`} class="field-error">${error}</p>`}
    </div>
  </div>`;
}
