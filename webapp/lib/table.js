// The table every list uses: sortable column headers are buttons (aria-sort on the sorted
// one), the API's own orderings only; paging by the API's continuation token (Next and
// Previous), one page in memory at a time, so 20,000 rows cost what 20 do.
import { useEffect, useRef, useState } from "preact/hooks";
import { html } from "./html.js";
import { navigate } from "./router.js";

export const PAGE_SIZES = [10, 25, 50, 100];

/**
 * Pages of a list the API pages by continuation token. `load(continuation)` answers
 * {items, continuation}; `key` names the query (filter, sort, page size): a new key starts
 * again at the first page. Tokens of the pages before are kept for Previous.
 */
export function usePages(load, key) {
  const [where, setWhere] = useState({ key, tokens: [null] });
  const tokens = where.key === key ? where.tokens : [null]; // a new query: its first page
  const continuation = tokens[tokens.length - 1];
  const [page, setPage] = useState(null);
  const [busy, setBusy] = useState(true);
  const asked = useRef(0);
  useEffect(() => {
    const ask = ++asked.current;
    const mine = () => ask === asked.current; // a later request has not overtaken this one
    setBusy(true);
    load(continuation)
      .then((answer) => mine() && setPage(answer))
      .catch(() => mine() && setPage((shown) => shown ?? { items: [], continuation: null }))
      .finally(() => mine() && setBusy(false));
  }, [key, tokens.length, continuation]);
  return {
    items: page?.items ?? [],
    busy,
    loaded: page !== null,
    number: tokens.length,
    hasNext: Boolean(page?.continuation),
    hasPrevious: tokens.length > 1,
    next: () => page?.continuation && setWhere({ key, tokens: [...tokens, page.continuation] }),
    previous: () => tokens.length > 1 && setWhere({ key, tokens: tokens.slice(0, -1) }),
  };
}

function ariaSort(column, sort) {
  if (!column.sort || sort?.field !== column.sort) return undefined;
  return sort.order === "asc" ? "ascending" : "descending";
}

function SortHeader({ column, sort, onSort }) {
  const state = ariaSort(column, sort);
  const arrow = state === "ascending" ? "▲" : state === "descending" ? "▼" : "↕";
  const classes = [column.numeric && "num", column.wide && "wide"].filter(Boolean).join(" ");
  return html`<th scope="col" aria-sort=${state} class=${classes}>
    ${column.sort
      ? html`<button type="button" class="sort" onClick=${() => onSort(column.sort)}>
          ${column.label}<span class="arrow" aria-hidden="true">${arrow}</span>
        </button>`
      : column.label}
  </th>`;
}

/**
 * columns: [{key, label, sort?: the API's sort field, numeric?, render?(row)}];
 * rowHref(row): where a click anywhere on the row goes (a link in the row does it by keyboard).
 */
export function DataTable({ caption, columns, rows, sort, onSort, rowKey = (r) => r.id, rowHref, busy, empty }) {
  const open = (row) => (event) => {
    if (event.target.closest("a, button, input, select, textarea, label")) return;
    navigate(rowHref(row));
  };
  return html`<div class="table-wrap">
    <table aria-busy=${busy ? "true" : "false"}>
      <caption>${caption}</caption>
      <thead>
        <tr>${columns.map((c) => html`<${SortHeader} key=${c.key} column=${c} sort=${sort} onSort=${onSort} />`)}</tr>
      </thead>
      <tbody>
        ${rows.length
          ? rows.map(
              (row) => html`<tr key=${rowKey(row)} class=${rowHref ? "clickable" : ""} onClick=${rowHref ? open(row) : undefined}>
                ${columns.map((c) => html`<td key=${c.key} class=${c.numeric ? "num" : ""}>${c.render ? c.render(row) : row[c.key]}</td>`)}
              </tr>`,
            )
          : html`<tr><td colspan=${columns.length} class="empty">${busy ? "Loading…" : empty}</td></tr>`}
      </tbody>
    </table>
  </div>`;
}

/** Previous / Next over continuation pages, and the page size. */
export function Pager({ pages, label, size, onSize }) {
  return html`<nav class="pager" aria-label=${label}>
    <button type="button" onClick=${pages.previous} disabled=${!pages.hasPrevious || pages.busy}>Previous</button>
    <span aria-live="polite">Page ${pages.number}</span>
    <button type="button" onClick=${pages.next} disabled=${!pages.hasNext || pages.busy}>Next</button>
    ${onSize &&
    html`<label class="inline">Rows per page
      <select value=${size} onChange=${(e) => onSize(Number(e.currentTarget.value))}>
        ${PAGE_SIZES.map((n) => html`<option value=${n}>${n}</option>`)}
      </select>
    </label>`}
  </nav>`;
}
